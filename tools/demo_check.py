"""Run the demo notebook in the real JupyterLite UI, in headless Chromium, offline.

    python tools/demo_check.py [--url URL] [--screenshot PNG] [--json OUT] [--spki-pin PIN]

Opens the notebook in JupyterLab (served by ./build.sh up under /lite/), runs its code
cells one after the other through JupyterLab's own commands, prints each cell's output,
and exits non-zero if a cell fails, a cell does not finish, or the page requested
anything outside 127.0.0.1. Also prints the time from page load to the kernel being
ready, to the package install, and to the first Spark result.
Needs selenium and Debian's chromium + chromedriver (./build.sh test's venv has them).
``--spki-pin`` makes Chromium trust one more server certificate (base64 SHA-256 of its
public key, tools/prod_keys.py's spki_pin): the prod site of ``./build.sh up --prod``,
whose URL carries the token in its fragment (``#token=...``).
"""

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

DEFAULT_URL = "http://127.0.0.1:8000/lite/lab/index.html?path=demo.ipynb"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
    # Every host but 127.0.0.1 resolves to nothing: a CDN fallback fails instead of hiding.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
CELL_TIMEOUT = 180

NOTEBOOK = "window.jupyterapp && window.jupyterapp.shell.currentWidget"
STATE = """
const panel = window.jupyterapp.shell.currentWidget;
const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
return {
  kernel: kernel ? kernel.status : null,
  cells: panel.content.widgets.map((cell) => ({
    type: cell.model.type,
    count: cell.model.type === "code" ? cell.model.executionCount : null,
    outputs: cell.model.type === "code" ? cell.model.outputs.toJSON() : [],
  })),
};
"""


def wait(driver, script, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not happen within {timeout} s")


def output_text(outputs):
    parts = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            parts.append("".join(output.get("text", "")))
        elif kind in ("execute_result", "display_data"):
            data = output.get("data", {})
            html = "".join(data.get("text/html", ""))
            if "<table" in html:
                parts.append("[html table]")
            elif html:
                # A progress summary, say: its text without the tags.
                parts.append(
                    re.sub(r"<[^>]+>", "", html) + "\n" if re.sub(r"<[^>]+>", "", html) else ""
                )
            else:
                parts.append("".join(data.get("text/plain", "")))
        elif kind == "error":
            parts.append(f"ERROR {output.get('ename')}: {output.get('evalue')}")
    return "".join(parts).rstrip("\n")


def run(url, screenshot, spki_pin=None):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    trust = [f"--ignore-certificate-errors-spki-list={spki_pin}"] if spki_pin else []
    for flag in [*FLAGS, *trust, f"--user-data-dir={tempfile.mkdtemp()}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    report = {"cells": [], "timings": {}, "foreign_requests": []}
    try:
        began = time.monotonic()
        driver.get(url)
        wait(
            driver,
            f"return !!({NOTEBOOK} && {NOTEBOOK}.sessionContext "
            f"&& {NOTEBOOK}.sessionContext.session "
            f"&& {NOTEBOOK}.sessionContext.session.kernel "
            f"&& {NOTEBOOK}.sessionContext.session.kernel.status === 'idle')",
            120,
            "the kernel becoming ready",
        )
        report["timings"]["kernel_ready_s"] = time.monotonic() - began
        state = driver.execute_script(STATE)
        for index, cell in enumerate(state["cells"]):
            if cell["type"] != "code":
                continue
            started = time.monotonic()
            driver.execute_script(
                "const panel = window.jupyterapp.shell.currentWidget;"
                f"panel.content.activeCellIndex = {index};"
                "window.jupyterapp.commands.execute('notebook:run-cell');"
            )
            try:
                wait(
                    driver,
                    STATE.replace("return {", "const s = {")
                    + f"; return s.kernel === 'idle' && s.cells[{index}].count !== null;",
                    CELL_TIMEOUT,
                    f"cell {index}",
                )
                finished = True
            except TimeoutError:
                finished = False
            state = driver.execute_script(STATE)
            cell = state["cells"][index]
            if not finished:
                print(
                    f"cell {index}: kernel {state['kernel']}, execution count {cell['count']}",
                    file=sys.stderr,
                )
            seconds = time.monotonic() - started
            outputs = (
                cell["outputs"]
                if finished
                else cell["outputs"]
                + [
                    {
                        "output_type": "error",
                        "ename": "Timeout",
                        "evalue": f"the cell did not finish within {CELL_TIMEOUT} s",
                    }
                ]
            )
            report["cells"].append(
                {
                    "index": index,
                    "seconds": seconds,
                    "outputs": outputs,
                    "text": output_text(outputs),
                }
            )
            print(
                f"cell {index}: {'done' if finished else 'TIMED OUT'} in {seconds:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            if not finished:
                break
        hosts = driver.execute_script(
            "return performance.getEntriesByType('resource').map((e) => e.name)"
        )
        report["foreign_requests"] = sorted(
            {u for u in hosts if urlparse(u).hostname not in ("127.0.0.1", None)}
        )
        if screenshot:
            driver.save_screenshot(str(screenshot))
        report["timings"]["all_cells_s"] = time.monotonic() - began
    finally:
        driver.quit()
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--screenshot", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--spki-pin", help="trust the server certificate with this SPKI hash")
    args = parser.parse_args()
    report = run(args.url, args.screenshot, args.spki_pin)
    failed = False
    for cell in report["cells"]:
        print(f"--- cell {cell['index']} ({cell['seconds']:.1f} s)")
        print(cell["text"] or "(no output)")
        failed |= any(o.get("output_type") == "error" for o in cell["outputs"])
    timings = report["timings"]
    code = report["cells"]
    if len(code) >= 3:
        timings["package_install_s"] = code[0]["seconds"]
        timings["first_spark_result_s"] = code[1]["seconds"] + code[2]["seconds"]
    print("--- timings (s):", ", ".join(f"{k}={v:.1f}" for k, v in timings.items()))
    if report["foreign_requests"]:
        print("--- requests outside 127.0.0.1:", *report["foreign_requests"], sep="\n  ")
        failed = True
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if failed:
        print("demo check FAILED", file=sys.stderr)
        return 1
    print("demo check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
