"""The doctest examples that patches/ adds to upstream's docstrings run, and pass, on the
patched client. Upstream's own examples in the same docstrings are not ours to run (some
of pyspark-client's are not valid doctests), so only the added ones are taken."""

import doctest
import importlib
import re

import pytest
from helpers import ROOT


def added_examples():
    """{module name: set of example source lines} from the '+' lines of patches/."""
    found = {}
    for patch in sorted((ROOT / "patches").glob("*.patch")):
        path = None
        for line in patch.read_text().splitlines():
            if line.startswith("+++ "):
                path = line[6:] if line.startswith("+++ b/") else None
            elif path and path.endswith(".py") and re.match(r"\+\s*>>> ", line):
                module = path[: -len(".py")].replace("/", ".")
                found.setdefault(module, set()).add(line[1:].strip()[4:])
    return found


ADDED = added_examples()


def test_the_patches_add_doctest_examples():
    # So that the test below is not vacuous: 0011 documents the http(s) shorthand.
    assert "pyspark.sql.connect.client.core" in ADDED


@pytest.mark.parametrize("module_name", sorted(ADDED))
def test_added_examples_pass(module_name):
    module = importlib.import_module(module_name)
    wanted = ADDED[module_name]
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    ran = set()
    for test in doctest.DocTestFinder().find(module, module_name, globs=vars(module).copy()):
        test.examples = [e for e in test.examples if e.source.strip() in wanted]
        if test.examples:
            runner.run(test)
            ran.update(e.source.strip() for e in test.examples)
    assert ran == wanted, f"examples not found in any docstring: {wanted - ran}"
    assert runner.failures == 0, f"{runner.failures} of the patches' doctest examples failed"
