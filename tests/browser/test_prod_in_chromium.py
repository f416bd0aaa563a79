"""deploy/envoy.prod.yaml end to end from the browser: TLS with a generated CA, JWTs, the
identity check and CORS for the site's own origin.

- Chromium trusts the generated server certificate through its SPKI pin flag
  (--ignore-certificate-errors-spki-list); Node trusts the CA through NODE_EXTRA_CA_CERTS.
- A page of tests/browser/pages, served over TLS by the prod Envoy's own static listener
  (the config rendered with one extra path mapping), takes the token from its URL
  fragment and runs queries; missing, expired and foreign-issuer tokens fail with
  UNAUTHENTICATED, and the requests that reached Envoy are counted on its admin interface.
- The demo notebook, in JupyterLite from the site of `./build.sh up --prod`, connects to
  grpc-web on its page's host (port 8443 under https) with the token of its URL fragment.
"""

import json
import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import CHROME_FLAGS, run_demo_check
from pages_server import wait_for
from prod_envoy import BROWSER_PORTS as PORTS
from prod_envoy import make_etc, prod_keys, render, run_envoy, stop_envoy
from prod_envoy import stat as admin_stat
from pytest_pyodide import run_in_pyodide
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

PAGES = Path(__file__).resolve().parent / "pages"
SITE = f"https://127.0.0.1:{PORTS['static']}"
GRPC_WEB = PORTS["grpc_web"]
USER = "page-user"

# The bad tokens of the issue: what a user meets (none, an old one, one from elsewhere).
BAD_TOKENS = {
    "missing": lambda tokens: None,
    "expired": lambda tokens: tokens.token(subject=USER, expires_in=-3600),
    "foreign-issuer": lambda tokens: tokens.token(
        subject=USER, issuer="https://elsewhere.example.com/"
    ),
}
REASONS = {"missing": "missing", "expired": "expired", "foreign-issuer": "issuer"}
# What one collect() of a new session sends when its token is refused, each call refused
# once and none retried (upstream retries UNAVAILABLE, never UNAUTHENTICATED):
# - Config: the session's first plan asks for the plan-compression settings (upstream
#   swallows this failure and sends the plan uncompressed),
# - ExecutePlan, whose UNAUTHENTICATED is the error raised,
# - ReleaseExecute, which upstream's reattachable iterator sends after any failed
#   execution (in the background).
# A browser adds at most one CORS preflight per URL (none while its cache holds them).
REFUSED_POSTS = 3
PREFLIGHTS_AT_MOST = 3


@pytest.fixture(scope="module")
def prod(stack, tmp_path_factory):
    """The prod config on the test ports, allowing only its own site's origin, with
    tests/browser/pages served at /test-pages/ beside dist/."""
    tokens = prod_keys.TokenMaker()
    etc = tmp_path_factory.mktemp("etc-pyspark-web")
    ca = make_etc(etc, tokens)
    config = etc / "envoy.yaml"
    config.write_text(render(etc, origins=[SITE], ports=PORTS, extra_paths={"/test-pages/": PAGES}))
    process = run_envoy(config, etc / "envoy.log", PORTS)
    yield SimpleNamespace(
        tokens=tokens, ca=ca, pin=prod_keys.spki_pin(etc / "tls/fullchain.pem"), log=etc
    )
    stop_envoy(process)


def stat(name):
    return admin_stat(name, PORTS)


def chromium(pin):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in [
        "--headless=new",
        "--no-sandbox",
        *CHROME_FLAGS,
        f"--ignore-certificate-errors-spki-list={pin}",
        f"--user-data-dir={tempfile.mkdtemp()}",
    ]:
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


@pytest.fixture(scope="module")
def page(prod):
    driver = chromium(prod.pin)
    try:
        token = prod.tokens.token(subject=USER, expires_in=1800)
        driver.get(f"{SITE}/test-pages/prod.html#token={token}")
        assert wait_for(driver, "return window.ready") is True
        yield SimpleNamespace(driver=driver, token=token)
    finally:
        driver.quit()


def run(driver, code, seconds=180):
    """Python on the page (runPythonAsync); its value, which is JSON text."""
    driver.set_script_timeout(seconds)
    outcome = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.run(arguments[0]).then((value) => done({value}),"
        " (error) => done({error: String(error)}));",
        code,
    )
    assert "error" not in outcome, outcome["error"]
    return json.loads(outcome["value"])


def set_fragment(driver, fragment):
    # No navigation: the page keeps its Pyodide; connect() reads the fragment when called.
    driver.execute_script("history.replaceState(null, '', '#' + arguments[0])", fragment)


def test_a_page_on_the_prod_origin_queries_spark_with_its_fragment_token(page, prod):
    set_fragment(page.driver, f"token={page.token}")
    allowed, upstream = (
        stat("http.grpc_web.jwt_authn.allowed"),
        stat("cluster.spark_connect.upstream_rq_total"),
    )
    result = run(
        page.driver,
        f"""
import json
spark = connect({GRPC_WEB})
result = {{
    "rows": [r.asDict() for r in spark.sql("SELECT 1 AS a, 'x' AS b").collect()],
    "count": spark.range(1000).count(),
    "version": spark.version,
    "user_id": spark.client._user_id,
    "secure": bool(__import__("js").isSecureContext),
    "origin": str(location.origin),
}}
spark.stop()
json.dumps(result)
""",
    )
    assert result["rows"] == [{"a": 1, "b": "x"}]
    assert result["count"] == 1000 and result["version"] == "4.3.0"
    assert result["user_id"] == USER and result["secure"] is True
    assert result["origin"] == SITE
    assert stat("http.grpc_web.jwt_authn.allowed") > allowed
    assert stat("cluster.spark_connect.upstream_rq_total") > upstream
    # The token is in the address bar only, never in the document.
    assert page.token not in page.driver.execute_script("return document.documentElement.outerHTML")


BAD_COLLECT = """
import json
spark = connect({port}, user_id="{user}")
try:
    spark.range(1).collect()
    outcome = {{"error": None}}
except Exception as error:
    code = error.getGrpcStatusCode() if hasattr(error, "getGrpcStatusCode") else None
    outcome = {{
        "error": type(error).__name__,
        "classes": [c.__name__ for c in type(error).__mro__],
        "status": code.name if code is not None else None,
        "message": str(error),
    }}
json.dumps(outcome)
"""


def counters():
    return {
        "total": stat("http.grpc_web.downstream_rq_total"),
        "denied": stat("http.grpc_web.jwt_authn.denied"),
        "upstream": stat("cluster.spark_connect.upstream_rq_total"),
    }


def settled(before, posts):
    """The counters' growth once the asynchronous ReleaseExecute has had time to arrive,
    and a little more for anything that would follow it (a retry would)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and counters()["denied"] - before["denied"] < posts:
        time.sleep(0.1)
    time.sleep(1.5)
    after = counters()
    return {key: after[key] - before[key] for key in after}


@pytest.mark.parametrize("case", BAD_TOKENS)
def test_bad_tokens_fail_with_unauthenticated_and_no_retries(page, prod, case):
    token = BAD_TOKENS[case](prod.tokens)
    set_fragment(page.driver, f"token={token}" if token else "")
    before = counters()
    outcome = run(page.driver, BAD_COLLECT.format(port=GRPC_WEB, user=USER), seconds=60)
    grown = settled(before, REFUSED_POSTS)
    print(f"{case}: {grown} requests reached Envoy")
    assert "SparkConnectGrpcException" in outcome["classes"], outcome
    assert outcome["status"] == "UNAUTHENTICATED", outcome
    assert REASONS[case] in outcome["message"].replace("_", " ").lower(), outcome["message"]
    assert token is None or token not in outcome["message"]
    assert grown["denied"] == REFUSED_POSTS, grown
    assert grown["upstream"] == 0, grown
    assert REFUSED_POSTS <= grown["total"] <= REFUSED_POSTS + PREFLIGHTS_AT_MOST, grown


# ---------------------------------------------------------------- Node


@pytest.fixture(scope="module")
def node_trusts_the_ca(prod):
    """Node reads NODE_EXTRA_CA_CERTS when it starts; pytest-pyodide starts it per test
    with this process's environment."""
    previous = os.environ.get("NODE_EXTRA_CA_CERTS")
    os.environ["NODE_EXTRA_CA_CERTS"] = str(prod.ca)
    yield
    if previous is None:
        del os.environ["NODE_EXTRA_CA_CERTS"]
    else:
        os.environ["NODE_EXTRA_CA_CERTS"] = previous


@run_in_pyodide(packages=["pyspark-web"])
def collect_in_pyodide(selenium, url):
    from pyspark.sql.connect.session import SparkSession

    spark = SparkSession.builder.remote(url).create()
    try:
        rows = [r.asDict() for r in spark.sql("SELECT 1 AS a, 'x' AS b").collect()]
        return {"rows": rows, "error": None}
    except Exception as error:
        code = error.getGrpcStatusCode() if hasattr(error, "getGrpcStatusCode") else None
        return {
            "rows": None,
            "error": type(error).__name__,
            "status": code.name if code is not None else None,
            "message": str(error),
        }


def node_url(token, user=USER):
    url = f"sc://127.0.0.1:{GRPC_WEB}/;transport=grpcweb;use_ssl=true;user_id={user}"
    return url + (f";token={token}" if token else "")


@pytest.mark.node_only  # Chromium: the tests above, from a page on the prod origin
def test_node_queries_with_a_token(prod, node_trusts_the_ca, selenium_jspi):
    result = collect_in_pyodide(selenium_jspi, node_url(prod.tokens.token(subject=USER)))
    assert result == {"rows": [{"a": 1, "b": "x"}], "error": None}


@pytest.mark.node_only  # Chromium: the tests above, from a page on the prod origin
@pytest.mark.parametrize("case", BAD_TOKENS)
def test_node_bad_tokens_fail_with_unauthenticated_and_no_retries(
    prod, node_trusts_the_ca, selenium_jspi, case
):
    before = counters()
    result = collect_in_pyodide(selenium_jspi, node_url(BAD_TOKENS[case](prod.tokens)))
    grown = settled(before, REFUSED_POSTS)
    print(f"node, {case}: {grown} requests reached Envoy")
    assert result["error"] == "SparkConnectGrpcException", result
    assert result["status"] == "UNAUTHENTICATED", result
    assert REASONS[case] in result["message"].replace("_", " ").lower(), result["message"]
    # No CORS outside a browser: exactly the three POSTs.
    assert grown == {"total": REFUSED_POSTS, "denied": REFUSED_POSTS, "upstream": 0}, grown


# ---------------------------------------------------------------- the demo notebook


def test_the_demo_notebook_runs_from_the_prod_site_with_a_fragment_token(prod_stack, tmp_path):
    """JupyterLite from `./build.sh up --prod`'s site: the notebook finds grpc-web on its
    page's host (8443 under https) and reads the token from the fragment, never printing
    or storing it."""
    tokens = prod_keys.TokenMaker.load(prod_stack / "jwt-key.pem", prod_stack / "envoy.yaml")
    token = tokens.token(subject="notebook-user", expires_in=1800)
    report_file = tmp_path / "report.json"
    report = run_demo_check(
        report_file,
        "--url",
        f"https://127.0.0.1:8444/lite/lab/index.html?path=demo.ipynb#token={token}",
        "--spki-pin",
        prod_keys.spki_pin(prod_stack / "tls/fullchain.pem"),
    )
    joined = "\n".join(cell["text"] for cell in report["cells"])
    assert "Connected to Spark 4.3.0 as notebook-user" in joined
    assert "demo_revenue" in joined
    assert token not in report_file.read_text()
    assert report["foreign_requests"] == []
