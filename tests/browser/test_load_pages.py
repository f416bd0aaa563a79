"""Four Chromium pages at once, each its own Pyodide and session running the load mix
(tests/load_client.py) against the stack, every result checked. Chromium only (marker
chromium_only): Node has no pages.
"""

import json
import time

import pytest
from helpers import ROOT

pytestmark = [pytest.mark.usefixtures("stack"), pytest.mark.chromium_only]
PAGES, QUERIES = 4, 24

START = """
window.loadOutcome = null;
(async () => {
  try {
    const { loadPyodide } = await import("./pyodide.mjs");
    const pyodide = await loadPyodide();
    await pyodide.loadPackage("pyspark-web");
    pyodide.FS.writeFile("/tmp/load_client.py", %(source)s);
    await pyodide.runPythonAsync(`
import sys
sys.path.insert(0, "/tmp")
import load_client
load_client.main(["", "http://127.0.0.1:8081", "%(queries)d", "%(seed)d", "/tmp/out.json"])
`);
    window.loadOutcome = {ok: pyodide.FS.readFile("/tmp/out.json", {encoding: "utf8"})};
  } catch (error) {
    window.loadOutcome = {error: String(error)};
  }
})();
"""


def test_four_pages_at_once_get_every_result_right(selenium_jspi):
    driver = selenium_jspi.driver
    page, home = driver.current_url, driver.current_window_handle
    source = json.dumps((ROOT / "tests/load_client.py").read_text())
    windows = []
    try:
        outcomes = run_pages(driver, page, source, windows)
    finally:
        for handle in windows:
            driver.switch_to.window(handle)
            driver.close()
        driver.switch_to.window(home)
    assert len(outcomes) == PAGES, f"only {sorted(outcomes)} of {PAGES} pages finished"
    for seed, outcome in outcomes.items():
        assert "error" not in outcome, f"page {seed}: {outcome['error'][-3000:]}"
        result = json.loads(outcome["ok"])
        assert result["failures"] == [], f"page {seed}: {result['failures'][:2]}"
        assert len(result["latencies"]) == QUERIES


def run_pages(driver, page, source, windows):
    """Open PAGES windows, start the mix in each, and collect their outcomes."""
    for seed in range(PAGES):
        driver.switch_to.new_window("window")
        driver.get(page)
        driver.execute_script(START % {"source": source, "queries": QUERIES, "seed": seed})
        windows.append(driver.current_window_handle)
    outcomes = {}
    deadline = time.monotonic() + 600
    while len(outcomes) < PAGES and time.monotonic() < deadline:
        for seed, handle in enumerate(windows):
            if seed not in outcomes:
                driver.switch_to.window(handle)
                outcome = driver.execute_script("return window.loadOutcome")
                if outcome:
                    outcomes[seed] = outcome
        time.sleep(0.5)
    return outcomes
