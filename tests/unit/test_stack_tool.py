"""tools/stack.py without starting anything: commands, config rendering, arguments."""

import importlib.util
import json

import pytest
import yaml

from helpers import ROOT

spec = importlib.util.spec_from_file_location("stack", ROOT / "tools/stack.py")
stack = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stack)


@pytest.fixture
def paths(tmp_path):
    return stack.Paths(tmp_path, tmp_path / "spark", tmp_path / "envoy", ROOT / "deploy/envoy.dev.yaml")


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
    command = stack.spark_command(paths, ["--master", "local[4]", "--conf", "spark.sql.shuffle.partitions=3"])
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
    # Everything else is the committed config, unchanged.
    original = yaml.safe_load((ROOT / "deploy/envoy.dev.yaml").read_text())
    assert rendered["static_resources"]["listeners"][0] == original["static_resources"]["listeners"][0]


@pytest.mark.parametrize("value", ["spark", "spark:", ":15002", "spark:0", "spark:99999", "spark:http"])
def test_bad_upstream_is_refused_with_an_example(value):
    with pytest.raises(stack.StackError, match="HOST:PORT"):
        stack.parse_upstream(value)


def test_upstream_parses():
    assert stack.parse_upstream("spark.internal:15002") == ("spark.internal", 15002)
