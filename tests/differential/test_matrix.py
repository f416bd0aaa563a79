"""The compatibility matrix: each release line of pyspark-web against Spark Connect servers
of several releases, compared with the stock client of the same line on the same server.

For a line L (pyspark-web built on pyspark-client L.x) and a server release S:
- native: the stock pyspark-client of line L with grpcio, pyarrow and pandas
  (build/venv-stock-L), over gRPC;
- web: pyspark-web of line L from dist/, WITHOUT grpcio, numpy, pandas or pyarrow
  (build/venv-web-bare-L; the setting of a page in the browser), over grpc-web through Envoy.
The differential suite (cases.py) must give identical results, case by case.

Spark Connect promises only older client -> newer server, so the pairs are:
- supported: every line on its own line's server and on every newer one;
- observed: a newer line on an older server (README, "Release lines", records what happens;
  the two clients must still agree, since pyspark-web must fail as the stock client fails).
CI runs each line on its own server and 4.0 on the newest (the dev stack); the rest is
marked matrix_full and runs with `./build.sh test --matrix`.

Servers other than the dev stack's are started here (tests/servers.py), one at a time, on
ports of their own.
"""

import contextlib
import json
import time

import pytest
from helpers import (
    BUILD,
    DIST,
    ROOT,
    assert_same,
    case_names,
    ensure_venv,
    release_lines,
    run_differential,
    run_python,
)
from servers import HOST, Ports, Server, connect_server
from servers import stack as tools_stack

pytestmark = pytest.mark.usefixtures("stack")

PINS = ROOT / "tests/requirements-native.txt"
TZ = "Europe/Berlin"
CASE_NAMES = case_names()
LINES = release_lines()  # {"4.2": ("4.2.0.post1", "4.2.0"), ...}, newest first
RELEASES = tools_stack.SPARK_RELEASES  # the servers, oldest first; the last is the dev stack's
DEV_STACK = tools_stack.SPARK_VERSION
DEV_GRPC_WEB = f"http://{HOST}:{tools_stack.GRPC_WEB_PORT}"
# Ports per release, apart from the dev stack's, the cluster test's and up --prod's.
PORTS = {
    release: Ports(connect=15040 + i, grpc_web=18140 + i, static=18040 + i, admin=19940 + i)
    for i, release in enumerate(RELEASES)
}


def line_of(release):
    return ".".join(release.split(".")[:2])


def key(version):
    return tuple(int(part) for part in version.split("."))


def pairs():
    """Every (line, server release), grouped by server so each starts once."""
    found = []
    for release in RELEASES:
        for line in LINES:
            supported = key(line) <= key(line_of(release))
            in_ci = line == line_of(release) or (
                line == min(LINES, key=key) and release == DEV_STACK
            )
            marks = [] if in_ci else [pytest.mark.matrix_full]
            kind = "supported" if supported else "observed"
            found.append(
                pytest.param((line, release), id=f"{line}-on-{release}-{kind}", marks=marks)
            )
    return found


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """A function: the running server of a release, started on first use. Besides the dev
    stack, one runs at a time (the pairs come grouped by release)."""
    running = {}
    exits = contextlib.ExitStack()

    def get(release):
        nonlocal exits
        if release == DEV_STACK:
            return Server(release, f"sc://{HOST}:{tools_stack.SPARK_PORT}", DEV_GRPC_WEB, None)
        if release not in running:
            exits.close()
            running.clear()
            exits = contextlib.ExitStack()
            run_dir = tmp_path_factory.mktemp(f"spark-{release}")
            began = time.monotonic()
            running[release] = exits.enter_context(connect_server(run_dir, release, PORTS[release]))
            print(f"\nSpark Connect {release} up in {time.monotonic() - began:.1f} s")
        return running[release]

    yield get
    exits.close()


def client_venvs(line):
    """(stock, web): the stock pyspark-client of the line with grpcio, pyarrow and pandas;
    pyspark-web of the line alone (no grpcio, numpy, pandas or pyarrow)."""
    version, upstream = LINES[line]
    wheel = DIST / f"pyspark_web-{version}-py3-none-any.whl"
    assert wheel.is_file(), f"{wheel.name} is missing from dist/; run ./build.sh"
    newest = line == next(iter(LINES))
    # The newest line's are the venvs of the other differential suites.
    stock = ensure_venv(
        "venv-stock" if newest else f"venv-stock-{line}", [f"pyspark-client=={upstream}"], PINS
    )
    web = ensure_venv(
        "venv-web-bare" if newest else f"venv-web-bare-{line}", [wheel], PINS, reinstall=[wheel]
    )
    heavy = ["grpc", "numpy", "pandas", "pyarrow"]
    code = f"import importlib.util as u; print([m for m in {heavy!r} if u.find_spec(m)])"
    assert run_python(web, code).stdout.strip() == "[]", f"{web} has packages it must not have"
    return stock, web


@pytest.fixture(scope="module")
def results(pair, servers, tmp_path_factory):
    line, release = pair
    server = servers(release)
    stock, web = client_venvs(line)
    out = tmp_path_factory.mktemp(f"matrix-{line}-on-{release}")
    began = time.monotonic()
    native = run_differential(stock, server.native, out / "native.json", TZ)
    grpcweb = run_differential(web, server.grpc_web, out / "web.json", TZ)
    seconds = time.monotonic() - began
    # For the README's table: how many cases each client got an error for.
    summary = {
        "line": line,
        "server": release,
        "cases": len(native),
        "errors": sorted(name for name, result in native.items() if "error" in result),
        "identical": sum(native[name] == grpcweb.get(name) for name in native),
        "seconds": round(seconds, 1),
    }
    record = BUILD / "matrix" / f"{line}-on-{release}.json"
    record.parent.mkdir(exist_ok=True)
    record.write_text(json.dumps(summary, indent=1) + "\n")
    print(
        f"\n{line} on {release}: {summary['identical']}/{summary['cases']} identical, "
        f"{len(summary['errors'])} errors, {seconds:.1f} s"
    )
    return native, grpcweb


def pytest_generate_tests(metafunc):
    if "pair" in metafunc.fixturenames:
        metafunc.parametrize("pair", pairs(), scope="module")


def test_every_line_has_its_own_server():
    """A line without a server of its own could not be tested: the releases up runs cover
    every line of pyspark-web."""
    assert set(LINES) <= {line_of(release) for release in RELEASES}


@pytest.mark.parametrize("name", CASE_NAMES)
def test_same_result(results, name):
    native, web = results
    assert_same(name, native, web, "pyspark-web")
