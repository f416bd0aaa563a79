"""The loopback page server and the fresh Chromium of the browser tests that drive selenium
themselves (test_workers.py, test_cross_origin.py): a plain module, not a test module."""

import http.server
import tempfile
import threading
import time
from pathlib import Path

from helpers import CHROME_FLAGS, CONTENT_TYPES, DIST
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

PAGES = Path(__file__).resolve().parent / "pages"


class PageHandler(http.server.SimpleHTTPRequestHandler):
    """/dist/... from dist/, /pages/... from tests/browser/pages; cross-origin isolated
    (COOP + COEP, and CORP for its own files) when ``isolated``."""

    isolated = False

    def translate_path(self, path):
        path = path.split("?", 1)[0]
        for prefix, root in (("/dist/", DIST), ("/pages/", PAGES)):
            if path.startswith(prefix):
                return str(root / path[len(prefix) :])
        return str(PAGES / "missing")

    def guess_type(self, path):
        return CONTENT_TYPES.get(Path(str(path)).suffix, "application/octet-stream")

    def end_headers(self):
        if self.isolated:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.send_header("Cross-Origin-Resource-Policy", "cross-origin")
        super().end_headers()

    def log_message(self, *args):
        pass


def serve_pages(isolated):
    """Yields (isolated, base URL) of a page server on 127.0.0.1; stops it afterwards."""
    handler = type(
        "IsolatedHandler" if isolated else "PlainHandler", (PageHandler,), {"isolated": isolated}
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield isolated, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def fresh_chromium():
    """Yields a headless Chromium with a new profile and the offline host rules."""
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
    yield driver
    driver.quit()


def wait_for(driver, script, seconds=240):
    """The first truthy value of ``script`` (JavaScript with a return), polled every 0.25 s;
    fails after ``seconds`` with the end of the page's console."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(
        f"no result after {seconds} s: {script}; console: "
        f"{driver.get_log('browser')[-5:] if hasattr(driver, 'get_log') else ''}"
    )
