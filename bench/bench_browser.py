"""Cold start of PySpark in headless Chromium, and small-query latency in the browser.

    build/venv-test/bin/python bench/bench_browser.py      (needs ./build.sh up and a build)

Serves dist/ and bench/pages/ from a loopback server, opens cold_start.html in a fresh
Chromium profile (empty cache) and reports: Pyodide boot, pyspark-web package load, the
first collect() (session + query), the bytes downloaded, and the median of 20
spark.sql("select 1").collect() in the page (JSPI, main thread).
"""

import http.server
import sys
import tempfile
import threading
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from helpers import CHROME_FLAGS, CONTENT_TYPES  # noqa: E402


class Handler(http.server.SimpleHTTPRequestHandler):
    def translate_path(self, path):
        path = path.split("?", 1)[0]
        if path.startswith("/dist/"):
            return str(ROOT / "dist" / path[6:])
        return str(ROOT / "bench/pages" / path.lstrip("/"))

    def guess_type(self, path):
        return CONTENT_TYPES.get(Path(str(path)).suffix, "application/octet-stream")

    def log_message(self, *args):
        pass


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in [
        "--headless=new",
        "--no-sandbox",
        *CHROME_FLAGS,
        f"--user-data-dir={tempfile.mkdtemp()}",
    ]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/cold_start.html")
        deadline = time.monotonic() + 180
        result = None
        while result is None and time.monotonic() < deadline:
            result = driver.execute_script("return window.result || null")
            time.sleep(0.1)
        version = driver.capabilities.get("browserVersion")
    finally:
        driver.quit()
        server.shutdown()
    if result is None:
        raise SystemExit("no result from the page within 180 s")
    boot = result["pyodide"]
    packages = result["packages"] - result["pyodide"]
    print(f"Chromium {version}, headless, fresh profile; page, dist/ and Envoy on 127.0.0.1")
    print("| from page load | ms |")
    print("| --- | --- |")
    print(f"| Pyodide boot (loadPyodide) | {boot:.0f} |")
    print(
        "| package load (loadPackage('pyspark-web'): pyspark-web, protobuf, "
        f"googleapis-common-protos, urllib3) | {packages:.0f} |"
    )
    print(f"| first query (session + select 1 collect) | {result['first_query_ms']:.0f} |")
    print(f"| total to the first collect() | {result['packages'] + result['first_query_ms']:.0f} |")
    print(f"bytes downloaded: {result['bytes']:,}")
    print(
        "median spark.sql('select 1').collect() in the browser: "
        f"{result['select1_median_ms']:.1f} ms"
    )


if __name__ == "__main__":
    main()
