"""Differential cases run inside Pyodide, for the browser tests (a plain module: pytest-pyodide's
run_in_pyodide only works in test modules, so this one hands Pyodide code as text)."""

import json

from helpers import DIFFERENTIAL
from pytest_pyodide.utils import set_webdriver_script_timeout

RUN_CASES = """
import json, os, sys, time

# The same local time zone as the native reference (UTC), or timestamps differ.
assert time.timezone == 0 and not time.daylight, f"Pyodide's local zone is {{time.tzname}}"
os.makedirs("/tmp/differential", exist_ok=True)
for name, text in json.loads({files}).items():
    with open(f"/tmp/differential/{{name}}", "w") as f:
        f.write(text)
sys.path.insert(0, "/tmp/differential")
import runner

runner.main({url}, "/tmp/differential/out.json", {cases_file})
open("/tmp/differential/out.json").read()
"""


def run_cases_in_pyodide(selenium, url, cases_file=None, modules=()):
    """runner.py on cases.py, or on ``cases_file`` (written to Pyodide's file system, so its
    functions have source, with the ``modules`` of tests/differential it imports); the JSON
    results."""
    names = ["runner.py", "cases.py", *modules] + ([cases_file] if cases_file else [])
    files = {name: (DIFFERENTIAL / name).read_text() for name in names}
    path = f"/tmp/differential/{cases_file}" if cases_file else None
    code = RUN_CASES.format(files=repr(json.dumps(files)), url=repr(url), cases_file=repr(path))
    selenium.load_package("pyspark-web")
    with set_webdriver_script_timeout(selenium, script_timeout=900):
        return json.loads(selenium.run_async(code))
