"""Differential cases run inside Pyodide (imported by the browser tests)."""

from pytest_pyodide import run_in_pyodide
from pytest_pyodide.utils import set_webdriver_script_timeout

from helpers import DIFFERENTIAL


@run_in_pyodide(packages=["pyspark-web"])
def _run_cases(selenium, url, files, cases_file):
    import json
    import os
    import sys
    import time

    # The same local time zone as the native reference (UTC), or timestamps differ.
    assert time.timezone == 0 and not time.daylight, f"Pyodide's local zone is {time.tzname}"
    os.makedirs("/tmp/differential", exist_ok=True)
    for name, text in files.items():
        with open(f"/tmp/differential/{name}", "w") as f:
            f.write(text)
    sys.path.insert(0, "/tmp/differential")
    import runner

    runner.main(url, "/tmp/differential/out.json", cases_file and f"/tmp/differential/{cases_file}")
    return json.loads(open("/tmp/differential/out.json").read())


def run_cases_in_pyodide(selenium, url, cases_file=None):
    """runner.py on cases.py (or on ``cases_file``, from the files it writes to Pyodide's
    file system, so functions there have source); the JSON results."""
    names = ["runner.py", "cases.py"] + ([cases_file] if cases_file else [])
    files = {name: (DIFFERENTIAL / name).read_text() for name in names}
    with set_webdriver_script_timeout(selenium, script_timeout=900):
        return _run_cases(selenium, url, files, cases_file)
