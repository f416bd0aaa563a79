"""Past one machine: a Spark standalone cluster (a master and 2 workers, tools/cluster.py),
a Spark Connect server submitted to it (stack.spark_command with the cluster's --master),
and deploy/envoy.dev.yaml rendered in front of it as `./build.sh up --upstream` renders it;
then the differential suite through the stock native client and through pyspark-web, which
must agree case by case, on queries that ran on the workers' executors.

Self-contained: every process is started here, on ports of its own, with its state (PID
records, logs, warehouse, Derby metastore, the workers' directories) in a temporary run
directory, and stopped at the end. The dev stack is never touched.
"""

import json
import re
import subprocess
import time
import urllib.request

import pytest
import servers
from helpers import (
    ROOT,
    STOCK_CLIENT,
    assert_same,
    case_names,
    ensure_venv,
    run_differential,
    run_python,
    stack_venv,
    tool,
)

cluster = tool("cluster")
stack = cluster.stack  # the module cluster.py uses: one copy of its helpers

HOST = "127.0.0.1"
PINS = ROOT / "tests/requirements-native.txt"
TZ = "Europe/Berlin"
CASE_NAMES = case_names()
# Apart from the dev stack's, up --prod's and the other tests' ports.
SPEC = cluster.Spec(
    workers=2, cores=1, memory="1g", port=17077, ui_port=18180, worker_ui_port=18181
)
CONNECT_PORT = 15012
PORTS = servers.Ports(connect=CONNECT_PORT, grpc_web=18081, static=18000, admin=19911)
GRPC_WEB = f"http://{HOST}:{PORTS.grpc_web}"
APP_NAME = "pyspark-web Spark Connect"  # stack.spark_command's --name

# Run through both clients beside cases.py: where the queries ran.
CLUSTER_CASES = """
CASES = []


def case(function):
    CASES.append(function)
    return function


@case
def master(spark):
    return spark.conf.get("spark.master")


@case
def four_partitions(spark):
    ids = spark.range(0, 100000, 1, 4).selectExpr("spark_partition_id() AS partition")
    return ids.groupBy("partition").count().orderBy("partition")
"""


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    venv = stack_venv()
    [spark_home] = (venv / "lib").glob("python3.*/site-packages/pyspark")
    return stack.Paths(
        tmp_path_factory.mktemp("cluster-run"),
        spark_home=spark_home,
        envoy=venv / "bin/envoy",
        envoy_config=ROOT / "deploy/envoy.dev.yaml",
        python=venv / "bin/python",
    )


@pytest.fixture(scope="module")
def timings():
    found = {}
    yield found
    print("\n" + ", ".join(f"{what} {seconds:.1f} s" for what, seconds in found.items()))


@pytest.fixture(scope="module")
def front(paths, timings):
    """Master + 2 workers, Spark Connect on the master, Envoy (grpc-web) in front."""
    stack.check_ports_free([CONNECT_PORT, PORTS.grpc_web, PORTS.static, PORTS.admin, 18181, 18182])
    try:
        timings["cluster up"] = cluster.start(paths, SPEC)
        # Its own gRPC port; warehouse, Derby and scratch space in the temporary run dir.
        command = stack.spark_command(
            paths,
            cluster.connect_args(
                SPEC, ["--conf", f"spark.connect.grpc.binding.port={CONNECT_PORT}"]
            ),
        )
        pid = stack.start(paths, "spark", command, stack.SPARK_CLASS, stack.spark_env(paths))
        timings["Connect up"] = stack.wait_for(
            "Spark Connect",
            lambda: stack.port_open(HOST, CONNECT_PORT),
            stack.SPARK_READY_TIMEOUT,
            lambda: stack.alive(pid),
            paths.log("spark"),
        )
        servers.start_envoy(paths, (HOST, CONNECT_PORT), PORTS)
        yield paths
    finally:
        began = time.monotonic()
        for part in ("envoy", "spark"):
            stack.stop(paths, part)
        cluster.stop(paths)
        timings["teardown"] = time.monotonic() - began


@pytest.fixture(scope="module")
def results(front, wheel, timings, tmp_path_factory):
    """Stock native client over gRPC, pyspark-web over grpc-web: cases.py and the cluster
    cases, each client in its own process."""
    out = tmp_path_factory.mktemp("cluster-results")
    (out / "cluster_cases.py").write_text(CLUSTER_CASES)
    stock = ensure_venv("venv-stock", [STOCK_CLIENT], PINS)
    web = ensure_venv("venv-web", [f"{wheel}[pandas]"], PINS, reinstall=[wheel])
    code = "import importlib.util as u; print(u.find_spec('grpc') is None)"
    assert run_python(web, code).stdout.strip() == "True", "venv-web must not have grpcio"
    found = {}
    for label, python, url in (
        ("native", stock, f"sc://{HOST}:{CONNECT_PORT}"),
        ("web", web, GRPC_WEB),
    ):
        began = time.monotonic()
        found[label] = run_differential(python, url, out / f"{label}.json", TZ)
        found[label].update(
            run_differential(
                python, url, out / f"{label}-cluster.json", TZ, out / "cluster_cases.py"
            )
        )
        timings[f"{label} suite"] = time.monotonic() - began
    return found["native"], found["web"]


def get_json(port):
    with urllib.request.urlopen(f"http://{HOST}:{port}/json/", timeout=10) as response:
        return json.loads(response.read())


def test_the_master_reports_two_workers(front):
    state = cluster.master_state(SPEC)
    workers = cluster.alive_workers(state)
    assert state["url"] == SPEC.url and len(workers) == 2
    assert {(w["host"], w["cores"], w["memory"]) for w in workers} == {(HOST, 1, 1024)}
    assert sorted(w["webuiaddress"] for w in workers) == [
        f"http://{HOST}:18181",
        f"http://{HOST}:18182",
    ]


@pytest.mark.parametrize("name", CASE_NAMES + ["master", "four_partitions"])
def test_same_result(results, name):
    native, web = results
    assert_same(name, native, web, "pyspark-web")


def test_the_queries_ran_on_the_workers(results, front):
    native, web = results
    for client in (native, web):
        assert client["master"] == {"value": {"str": SPEC.url}}
        rows = [row["Row"]["values"] for row in client["four_partitions"]["rows"]["list"]]
        assert rows == [[{"int": p}, {"int": 25000}] for p in range(4)]
    # The Connect server is the cluster's one application, holding both workers' cores.
    [app] = cluster.master_state(SPEC)["activeapps"]
    assert (app["name"], app["cores"]) == (APP_NAME, 2)
    for index in (1, 2):
        # Each worker runs one executor of it, and that executor ran tasks.
        [executor] = get_json(18180 + index)["executors"]
        assert executor["appid"] == app["id"]
        stderr = front.run / f"work/worker-{index}/{app['id']}/{executor['id']}/stderr"
        assert "Finished task" in stderr.read_text(), f"worker-{index}'s executor ran no task"


def listening(pids):
    """(local address, pid) of every TCP socket in LISTEN state owned by pids."""
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        for pid in map(int, re.findall(r"pid=(\d+)", line)):
            if pid in pids:
                found.append((line.split()[3], pid))
    return found


def test_everything_listens_on_loopback_only(results, front):
    pgids = [stack.read_pid(front, part) for part in ["envoy", "spark", *SPEC.parts()]]
    assert None not in pgids
    pids = {pid for pgid in pgids for pid in stack.group_members(pgid)}
    sockets = listening(pids)
    # master 2, workers 2 each, Connect (gRPC, driver RPC, block manager) 3, executors 1+
    # each, Envoy 3 (each listener may be bound once per worker thread).
    assert len({address for address, _ in sockets}) >= 14, sockets
    elsewhere = [
        (address, pid)
        for address, pid in sockets
        if not address.startswith((f"{HOST}:", f"[::ffff:{HOST}]:"))
    ]
    assert not elsewhere, f"listening beyond loopback: {elsewhere}"


def test_status_shows_the_master_and_each_worker(results, front):
    healthy, rows = cluster.status(front)
    others = [
        f"  {part:<7} pid {pid}, {stack.rss_mib(pid):.0f} MiB RSS"
        for part, pid in ((part, stack.read_pid(front, part)) for part in ("spark", "envoy"))
    ]
    print("\n" + "\n".join(rows + others))
    assert healthy
    assert rows[0].startswith("  master  running (pid ") and "2/2 workers alive" in rows[0]
    assert f"app {APP_NAME} (2 cores)" in rows[0]
    for index, row in enumerate(rows[1:], 1):
        assert row.startswith(f"  worker-{index} running (pid ")
        assert "ALIVE at 127.0.0.1:" in row and "1 cores (1 used), 1024 MiB (1024 used)" in row
        assert re.search(r"executors \d+ MiB", row), row
