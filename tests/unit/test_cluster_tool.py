"""tools/cluster.py without a cluster: the daemons' commands, the Connect server's options,
and what `up`, `status` and `down` do when there is nothing to start or stop."""

import argparse

import pytest
from helpers import ROOT, tool

cluster = tool("cluster")
stack = cluster.stack


@pytest.fixture
def paths(tmp_path):
    return stack.Paths(
        tmp_path,
        spark_home=tmp_path / "pyspark",
        envoy_config=ROOT / "deploy/envoy.dev.yaml",
        python=tmp_path / "venv-stack-3.11/bin/python",
    )


def confs(command):
    return dict(command[i + 1].split("=", 1) for i, arg in enumerate(command) if arg == "--conf")


def test_connect_runs_on_the_master_with_one_executor_per_worker(paths):
    spec = cluster.Spec(workers=3, cores=2, memory="512m", port=17077)
    command = stack.spark_command(
        paths, cluster.connect_args(spec, ["--conf", "spark.executor.memory=256m"])
    )
    assert command.count("--master") == 1
    assert command[command.index("--master") + 1] == "spark://127.0.0.1:17077"
    conf = confs(command)
    assert conf["spark.executor.cores"] == "2"
    assert conf["spark.driver.host"] == "127.0.0.1"
    # The user's options come last, and spark-submit keeps the last of a key.
    assert [c for c in command if c.startswith("spark.executor.memory=")][-1].endswith("256m")
    with pytest.raises(stack.StackError, match="drop --master"):
        cluster.connect_args(spec, ["--master", "local[4]"])


def test_daemons_listen_on_loopback_with_their_own_directories(paths):
    spec = cluster.Spec(workers=2, port=17077, ui_port=18180, worker_ui_port=18181)
    master = cluster.master_command(paths, spec)
    assert master[0] == str(paths.spark_home / "bin/spark-class")
    assert master[1:] == [cluster.MASTER_CLASS] + (
        "--host 127.0.0.1 --port 17077 --webui-port 18180".split()
    )
    assert cluster.master_marker(spec) in " ".join(master)
    for index, part in enumerate(spec.parts()[1:], 1):
        worker = cluster.worker_command(paths, spec, part)
        assert worker[worker.index("--host") + 1] == "127.0.0.1"
        assert worker[worker.index("--webui-port") + 1] == str(18180 + index)
        assert worker[worker.index("--work-dir") + 1] == str(paths.run / "work" / part)
        assert worker[-1] == "spark://127.0.0.1:17077"
    env = cluster.cluster_env(paths, spec)
    assert env["SPARK_LOCAL_IP"] == env["SPARK_MASTER_HOST"] == "127.0.0.1"
    assert "-Dspark.master.rest.enabled=false" in env["SPARK_MASTER_OPTS"]
    assert env["SPARK_LOCAL_DIRS"].startswith(str(paths.run))


def test_arguments_leave_spark_submit_options_alone():
    parser = argparse.ArgumentParser()
    cluster.add_arguments(parser)
    args, rest = parser.parse_known_args(
        ["--workers", "2", "--worker-memory", "2g", "--conf", "spark.x=1"]
    )
    assert cluster.spec_of(args) == cluster.Spec(workers=2, cores=1, memory="2g")
    assert rest == ["--conf", "spark.x=1"]
    assert cluster.spec_of(parser.parse_args([])) is None
    with pytest.raises(stack.StackError):
        cluster.spec_of(parser.parse_args(["--workers", "0"]))


def test_nothing_asked_nothing_running(paths):
    assert cluster.up(paths, None, ["--conf", "a=b"], None, False) == ["--conf", "a=b"]
    assert cluster.status(paths) == (True, [])
    assert cluster.stop(paths) == []
    with pytest.raises(stack.StackError, match="--upstream"):
        cluster.up(paths, cluster.Spec(workers=2), [], ("spark.internal", 15002), False)
    # A record left by a cluster that is gone is dropped, not obeyed.
    (paths.run / cluster.RECORD).write_text('{"workers": 2}')
    assert cluster.up(paths, None, [], None, False) == []
    assert not (paths.run / cluster.RECORD).exists()
