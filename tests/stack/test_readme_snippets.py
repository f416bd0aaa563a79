"""Every Python snippet of README.md runs as written (issue 13): the CPython ones here, in a
venv with pyspark-web and grpcio (the native-gRPC line needs it) against the stack; the
Pyodide one (top-level await) in tests/browser/test_readme_in_pyodide.py."""

import re
import textwrap

import pytest
from helpers import ROOT, native_venv, run_python

pytestmark = pytest.mark.usefixtures("stack")


def readme_snippets():
    text = (ROOT / "README.md").read_text()
    return [textwrap.dedent(block) for block in re.findall(r"```python\n(.*?)```", text, re.S)]


CPYTHON = [snippet for snippet in readme_snippets() if "await " not in snippet]


def test_the_readme_has_snippets_of_both_kinds():
    assert len(CPYTHON) >= 2 and len(readme_snippets()) > len(CPYTHON)


@pytest.fixture(scope="module")
def native(wheel):
    return native_venv(wheel)


@pytest.mark.parametrize("snippet", CPYTHON, ids=[f"snippet-{i}" for i in range(len(CPYTHON))])
def test_a_readme_snippet_runs_as_written(native, snippet):
    # Then one query through whatever session the snippet left active, so that a snippet
    # that only builds sessions is still checked end to end where it can be.
    result = run_python(native, snippet + "\nprint('snippet ran')\n")
    assert result.stdout.strip().endswith("snippet ran"), result.stdout + result.stderr
