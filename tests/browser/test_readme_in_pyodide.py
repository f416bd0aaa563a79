"""README.md's Pyodide snippet (top-level await), run as written in Chromium and Node with
JSPI against the stack; the CPython snippets: tests/stack/test_readme_snippets.py."""

import re
import textwrap

import pytest
from helpers import ROOT

pytestmark = pytest.mark.usefixtures("stack")


def pyodide_snippets():
    text = (ROOT / "README.md").read_text()
    blocks = [textwrap.dedent(block) for block in re.findall(r"```python\n(.*?)```", text, re.S)]
    return [block for block in blocks if "await " in block]


def test_the_pyodide_snippet_runs_as_written(selenium_jspi):
    [snippet] = pyodide_snippets()
    selenium_jspi.load_package("micropip")
    output = selenium_jspi.run_async(
        "import contextlib, io\nout = io.StringIO()\nwith contextlib.redirect_stdout(out):\n"
        + textwrap.indent(snippet, "    ")
        + "\nout.getvalue()"
    )
    assert "|  9|" in output and "| id|" in output, output
