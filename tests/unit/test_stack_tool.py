"""tools/stack.py without the stack: commands, config rendering, arguments, whose PIDs are whose."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers import ROOT, tool

stack = tool("stack")


@pytest.fixture
def paths(tmp_path):
    return stack.Paths(
        tmp_path,
        tmp_path / "spark",
        tmp_path / "envoy",
        ROOT / "deploy/envoy.dev.yaml",
        tmp_path / "venv-stack-3.13/bin/python",
    )


def confs(command):
    return dict(command[i + 1].split("=", 1) for i, arg in enumerate(command) if arg == "--conf")


def test_spark_defaults_to_local_2_on_loopback(paths):
    command = stack.spark_command(paths, [])
    assert command[command.index("--master") + 1] == "local[2]"
    conf = confs(command)
    assert conf["spark.connect.grpc.binding.address"] == "127.0.0.1"
    assert conf["spark.connect.grpc.binding.port"] == "15002"
    assert conf["spark.ui.enabled"] == "false"
    assert conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert conf["spark.sql.warehouse.dir"].startswith(str(paths.run))


def test_spark_options_pass_through(paths):
    command = stack.spark_command(
        paths, ["--master", "local[4]", "--conf", "spark.sql.shuffle.partitions=3"]
    )
    assert command.count("--master") == 1
    assert command[command.index("--master") + 1] == "local[4]"
    assert confs(command)["spark.sql.shuffle.partitions"] == "3"


def test_envoy_config_points_at_upstream_and_dist(paths):
    rendered = yaml.safe_load(stack.render_envoy_config(paths, ("spark.internal", 443)).read_text())
    [cluster] = rendered["static_resources"]["clusters"]
    address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    assert address["socket_address"] == {"address": "spark.internal", "port_value": 443}
    text = json.dumps(rendered)
    assert f'"file_path_prefix": "{ROOT / "dist"}"' in text
    # The static host's ETags: Envoy runs from build/run, so the stamps' paths are absolute.
    [static] = [h for h in rendered["static_resources"]["listeners"] if h["name"] == "static"]
    [host] = static["filter_chains"][0]["filters"][0]["typed_config"]["route_config"][
        "virtual_hosts"
    ]
    stamps = host["metadata"]["filter_metadata"]["envoy.filters.http.lua"]
    assert stamps == {
        "stamp": str(ROOT / "dist/.stamp"),
        "lite_stamp": str(ROOT / "dist/lite/.stamp"),
    }
    # Everything else is the committed config, unchanged.
    original = yaml.safe_load((ROOT / "deploy/envoy.dev.yaml").read_text())
    assert (
        rendered["static_resources"]["listeners"][0] == original["static_resources"]["listeners"][0]
    )


@pytest.mark.parametrize(
    "value", ["spark", "spark:", ":15002", "spark:0", "spark:99999", "spark:http"]
)
def test_bad_upstream_is_refused_with_an_example(value):
    with pytest.raises(stack.StackError, match="HOST:PORT"):
        stack.parse_upstream(value)


def test_upstream_parses():
    assert stack.parse_upstream("spark.internal:15002") == ("spark.internal", 15002)


def test_workers_run_the_stack_venvs_python(paths):
    python = str(paths.python)
    conf = confs(stack.spark_command(paths, []))
    assert conf["spark.pyspark.python"] == python
    assert conf["spark.executorEnv.PYSPARK_PYTHON"] == python
    # Spark Connect takes a UDF's python from the server's environment.
    env = stack.spark_env(paths)
    assert env["PYSPARK_PYTHON"] == env["PYSPARK_DRIVER_PYTHON"] == python


def test_catalog_is_hive_in_derby_under_the_run_directory(paths):
    conf = confs(stack.spark_command(paths, []))
    assert conf["spark.sql.catalogImplementation"] == "hive"
    assert conf["spark.sql.warehouse.dir"] == str(paths.run / "warehouse")
    # Relative to derby.system.home: an absolute databaseName does not boot a second time.
    assert (
        conf["spark.hadoop.javax.jdo.option.ConnectionURL"]
        == "jdbc:derby:;databaseName=metastore_db;create=true"
    )
    assert f"-Dderby.system.home={paths.run}" in conf["spark.driver.extraJavaOptions"].split()


def test_warehouse_without_metastore_is_set_aside(paths):
    (paths.run / "warehouse/demo_revenue").mkdir(parents=True)
    stack.set_aside_orphaned_warehouse(paths)
    assert not (paths.run / "warehouse").exists()
    [aside] = paths.run.glob("warehouse.orphaned-*")
    assert (aside / "demo_revenue").is_dir()
    # With a metastore, the warehouse is the catalog's and stays.
    (paths.run / "warehouse/t").mkdir(parents=True)
    (paths.run / "metastore_db").mkdir()
    stack.set_aside_orphaned_warehouse(paths)
    assert (paths.run / "warehouse/t").is_dir()


FOUND = {
    "3.11": "/usr/bin/python3",
    "3.10": "/p/3.10/bin/python3.10",
    "3.13": "/p/3.13/bin/python3.13",
}


def test_python_defaults_to_python3_and_takes_a_version():
    assert stack.choose_python(None, "3.11", FOUND) == ("3.11", "/usr/bin/python3")
    assert stack.choose_python("3.13", "3.11", FOUND) == ("3.13", "/p/3.13/bin/python3.13")


@pytest.mark.parametrize(
    "wanted, message",
    [
        ("3.12", "no Python 3.12 on this machine"),
        ("3.10", rf"pyspark {re.escape(stack.SPARK_VERSION)} needs Python 3.11 or newer, not 3.10"),
        ("python3.13", "--python takes a version X.Y"),
    ],
)
def test_unknown_python_lists_those_found(wanted, message):
    with pytest.raises(stack.StackError, match=message) as error:
        stack.choose_python(wanted, "3.11", FOUND)
    assert "Pythons found: 3.11 (default) /usr/bin/python3, 3.13 /p/3.13/bin/python3.13" in str(
        error.value
    )


def test_running_stack_keeps_its_python_and_refuses_another():
    running = {"version": "3.13", "python": "/build/venv-stack-3.13/bin/python"}
    # A bare `up` (CI, the tests' restarts) leaves the running stack's Python be.
    assert stack.choose_python(None, "3.11", FOUND, running)[0] == "3.13"
    assert stack.choose_python("3.13", "3.11", FOUND, running)[0] == "3.13"
    with pytest.raises(stack.StackError, match=r"up with Python 3.13; run ./build.sh down first"):
        stack.choose_python("3.11", "3.11", FOUND, running)


def test_find_pythons_reads_pyenv(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_PYTHON", sys.executable)
    for name in ("3.13.0/bin/python3.13", "3.13.0/bin/python3.13-config", "3.12.1/bin/python3.12"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
        (tmp_path / name).chmod(0o755)
    default, found = stack.find_pythons(tmp_path)
    here = "{}.{}".format(*sys.version_info[:2])
    assert default == here and found[here] == sys.executable  # python3 wins for its version
    assert found["3.12"] == str(tmp_path / "3.12.1/bin/python3.12")
    assert all(not path.endswith("-config") for path in found.values())


# ---------------------------------------------------------- whose PID is it (issue 11, finding 14)
#
# A PID alone names a process only while it lives: once it exits the number is handed out
# again. `down` kills process groups and `status` reports them, so the stack must
# recognise its own processes by PID *and* start time, never by a substring of a command
# line (an empty one, a kernel thread's, matched everything).


def stat_start_time(pid):
    """Field 22 of /proc/PID/stat, read here independently of tools/stack.py."""
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19])


@pytest.fixture
def sleeper():
    """A `sleep` in a session of its own (so a wrong killpg could not reach pytest)."""
    processes = []

    def spawn(command=("sleep", "120")):
        process = subprocess.Popen(list(command), start_new_session=True)
        processes.append(process)
        return process

    yield spawn
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def record(paths, part, **fields):
    paths.pid_file(part).write_text(json.dumps(fields))


def test_recorded_pid_with_another_start_time_is_not_ours_and_not_killed(paths, sleeper):
    # As after a reboot or a long uptime: the recorded PID now belongs to another process
    # that happens to match the marker.
    process = sleeper()
    record(
        paths, "spark", pid=process.pid, marker="sleep", start_time=stat_start_time(process.pid) + 1
    )
    assert stack.read_pid(paths, "spark") is None
    assert stack.stop(paths, "spark") is False
    time.sleep(0.3)
    assert process.poll() is None, "down killed a process the stack did not start"


def test_pid_file_without_start_time_is_not_trusted(paths, sleeper, capsys):
    # Written by tools/stack.py before start times were recorded: nothing proves the PID
    # is still ours, so down leaves it and says so.
    process = sleeper()
    record(paths, "envoy", pid=process.pid, marker="sleep")
    assert stack.read_pid(paths, "envoy") is None
    assert stack.cmd_down(paths) == 0
    time.sleep(0.3)
    assert process.poll() is None, "down killed a process the stack did not start"
    err = capsys.readouterr().err
    assert (
        "predates start-time tracking" in err
        and f"not stopping or reporting PID {process.pid}" in err
    )
    assert "envoy: left alone" in err


def kernel_thread():
    """A live PID with an empty command line: kthreadd (PID 2) on most Linux machines."""
    candidates = ["2"] + sorted(
        (p.name for p in Path("/proc").iterdir() if p.name.isdigit()), key=int
    )
    for pid in candidates:
        try:
            if (
                Path(f"/proc/{pid}/cmdline").read_bytes() == b""
                and stat_start_time(pid) is not None
            ):
                state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    return int(pid)
        except OSError:
            continue
    pytest.skip("no process with an empty command line is visible here")


def test_empty_command_line_is_never_ours(paths, monkeypatch, capsys):
    # `status` once called kthreadd "envoy": its command line is empty, and an empty one
    # was accepted. Even with its true start time on record, it is not ours.
    pid = kernel_thread()
    for fields in ({"marker": "envoy"}, {"marker": "envoy", "start_time": stat_start_time(pid)}):
        record(paths, "envoy", pid=pid, **fields)
        assert stack.read_pid(paths, "envoy") is None
    # And status says so (no network: the dev stack may or may not run on this machine).
    monkeypatch.setattr(stack, "envoy_ready", lambda: False)
    monkeypatch.setattr(stack, "port_open", lambda *args, **kwargs: False)
    (paths.run / "upstream.json").write_text(json.dumps(["spark.internal", 15002]))
    assert stack.cmd_status(paths) == 3
    [row] = [
        line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("envoy")
    ]
    assert "stopped" in row and f"pid {pid}" not in row


def test_what_the_stack_starts_is_recognised_and_stopped(paths):
    pid = stack.start(paths, "spark", ["sleep", "120"], "sleep")
    try:
        saved = json.loads(paths.pid_file("spark").read_text())
        assert saved["pid"] == pid and saved["start_time"] == stat_start_time(pid)
        assert stack.read_pid(paths, "spark") == pid
        assert stack.stop(paths, "spark") is True
        assert not stack.alive(pid)
        assert not paths.pid_file("spark").exists()
    finally:
        if stack.alive(pid):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)  # started by this process: reap it


def test_a_process_named_with_spaces_and_parentheses_is_still_recognised(paths, tmp_path):
    # The command name (field 2 of /proc/PID/stat) is in parentheses and may hold spaces
    # and parentheses itself; the fields after it are found from the last ')'.
    odd = tmp_path / "x) (y z"
    shutil.copy("/bin/sleep", odd)
    pid = stack.start(paths, "envoy", [str(odd), "120"], str(odd))
    try:
        assert Path(f"/proc/{pid}/stat").read_text().startswith(f"{pid} (x) (y z) ")
        assert stack.read_pid(paths, "envoy") == pid
        assert stack.stop(paths, "envoy") is True
    finally:
        if stack.alive(pid):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)  # started by this process: reap it


def test_start_time_parses_a_hostile_command_name():
    line = "4242 (a) 1 2 (b) ) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1 2 3\n"
    assert stack.parse_stat(line) == ("S", 4242, 987654)


def test_stop_needs_only_the_run_directory(tmp_path):
    # restart_envoy (tests/helpers.py) stops the stack's Envoy this way, with every check of stop.
    paths = stack.Paths(tmp_path)
    pid = stack.start(paths, "envoy", ["sleep", "120"], "sleep")
    try:
        assert stack.stop(stack.Paths(tmp_path), "envoy") is True
        assert not stack.alive(pid) and not paths.pid_file("envoy").exists()
        assert stack.stop(stack.Paths(tmp_path), "envoy") is False
    finally:
        if stack.alive(pid):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)  # started by this process: reap it


def test_spark_version_is_the_deploy_pin(tmp_path):
    pins = (ROOT / "deploy/requirements.txt").read_text()
    assert f"\npyspark[connect,sql]=={stack.SPARK_VERSION}\n" in pins
    (tmp_path / "requirements.txt").write_text(
        "pyspark-client==1.0\n# pyspark==0.1\nenvoy-server==1.40.0\n"
    )
    with pytest.raises(ValueError, match="pins no pyspark==VERSION"):
        stack.server_version(tmp_path / "requirements.txt")
    (tmp_path / "requirements.txt").write_text("pyspark==9.8.7 ; python_version >= '3.11'\n")
    assert stack.server_version(tmp_path / "requirements.txt") == "9.8.7"


def test_down_stops_the_prod_envoy_too_and_status_shows_it(tmp_path, monkeypatch, capsys):
    # up --prod records its Envoy under the prod directory; status reports it (when it
    # runs) and down stops it with the same checks as the others.
    paths = stack.Paths(tmp_path / "run", prod=tmp_path / "prod")
    paths.run.mkdir()
    paths.prod.mkdir()
    prod = stack.prod_paths(paths)
    pid = stack.start(prod, "envoy", ["sleep", "120"], "sleep")
    try:
        monkeypatch.setattr(stack, "envoy_ready", lambda port=None: True)
        monkeypatch.setattr(stack, "port_open", lambda *args, **kwargs: False)
        monkeypatch.setattr(stack, "prod_probe", lambda paths: ("3", "no session id"))
        (paths.run / "upstream.json").write_text(json.dumps(["spark.internal", 15002]))
        stack.cmd_status(paths)
        [row] = [line for line in capsys.readouterr().out.splitlines() if "prod " in line]
        assert f"envoy running (pid {pid}" in row and "-> Spark: answers" in row
        assert stack.cmd_down(paths) == 0
        assert "envoy-prod: stopped" in capsys.readouterr().err
        assert not stack.alive(pid) and not prod.pid_file("envoy").exists()
    finally:
        if stack.alive(pid):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)  # started by this process: reap it


def test_a_stack_in_another_run_directory_has_its_own_prod_directory(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(stack, "cmd_down", lambda paths: seen.setdefault("paths", paths) and 0)
    stack.main(["down", "--run-dir", str(tmp_path)])
    assert seen["paths"].prod == (tmp_path / "prod").resolve()
    assert stack.PROD_PORTS == {"grpc_web": 8443, "static": 8444, "admin": 9902}
    taken = {8081, 8000, 9901, 18443, 18444, 19901, 18463, 18464, 19921}
    assert not taken & set(stack.PROD_PORTS.values())


@pytest.mark.parametrize("line", ["__version__: str = '4.3.0'", '__version__ = "4.0.5"'])
def test_the_spark_release_is_read_from_pysparks_version_file(tmp_path, line):
    (tmp_path / "version.py").write_text(f"# license\n{line}\n")
    assert stack.spark_home_version(tmp_path) == re.search(r"\d+\.\d+\.\d+", line)[0]
    assert stack.spark_home_version(tmp_path / "missing") is None
