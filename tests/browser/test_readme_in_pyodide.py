"""README.md's Pyodide snippets (top-level await), each run as written in a fresh runtime
in Chromium and Node with JSPI against the stack; the CPython snippets:
tests/stack/test_readme_snippets.py."""

import re
import textwrap

import pytest
from helpers import ROOT, release_lines

pytestmark = pytest.mark.usefixtures("stack")


def pyodide_snippets():
    text = (ROOT / "README.md").read_text()
    blocks = [textwrap.dedent(block) for block in re.findall(r"```python\n(.*?)```", text, re.S)]
    return [block for block in blocks if "await " in block]


def expected_output(snippet):
    """What a snippet prints when it works: the query's table, or the version of the
    release line it installs (README, "Release lines")."""
    line = re.search(r'"pyspark-web==(\d+\.\d+)\.\*"', snippet)
    if line:
        return [release_lines()[line[1]][0]]
    return ["|  9|", "| id|"]


def test_the_readme_has_its_pyodide_snippets():
    assert len(pyodide_snippets()) == 2


@pytest.mark.parametrize("index", range(len(pyodide_snippets())))
def test_the_pyodide_snippet_runs_as_written(selenium_jspi, index):
    snippet = pyodide_snippets()[index]
    selenium_jspi.load_package("micropip")
    output = selenium_jspi.run_async(
        "import contextlib, io\nout = io.StringIO()\nwith contextlib.redirect_stdout(out):\n"
        + textwrap.indent(snippet, "    ")
        + "\nout.getvalue()"
    )
    for expected in expected_output(snippet):
        assert expected in output, output
