"""Spark Connect servers of the tests' own, apart from the dev stack: a server (of any
Spark release up can run, with any workers' Python) and deploy/envoy.dev.yaml in front of
it, rendered as `./build.sh up` renders it but moved to ports of the test's. Every process
is started with tools/stack.py's helpers, recorded in a run directory of its own, and
stopped at the end; the dev stack is never touched.
"""

import contextlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from helpers import BUILD, ROOT, tool

stack = tool("stack")
HOST = stack.HOST


@dataclass(frozen=True)
class Ports:
    """A server's ports: Spark Connect's gRPC, and Envoy's grpc-web, static host and admin."""

    connect: int
    grpc_web: int
    static: int
    admin: int

    def envoy_moves(self):
        return {
            stack.GRPC_WEB_PORT: self.grpc_web,
            stack.STATIC_PORT: self.static,
            stack.ADMIN_PORT: self.admin,
        }


@dataclass(frozen=True)
class Server:
    release: str
    native: str  # sc:// URL of the gRPC port
    grpc_web: str  # http:// URL of Envoy's grpc-web listener
    paths: object  # stack.Paths: run directory, logs


def moved(value, ports):
    """A config with its ports (listeners, admin, and the Host names and patterns that name
    them) moved: ``ports`` maps the dev stack's port to the test's."""
    if isinstance(value, dict):
        return {
            key: ports.get(item, item) if key == "port_value" else moved(item, ports)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [moved(item, ports) for item in value]
    if isinstance(value, str):
        for old, new in ports.items():
            value = value.replace(f":{old}", f":{new}")
    return value


def render_envoy(paths, upstream, ports):
    """What `up --upstream HOST:PORT` runs (stack.render_envoy_config), on ``ports``."""
    import yaml

    config = yaml.safe_load(stack.render_envoy_config(paths, upstream).read_text())
    rendered = paths.run / "envoy.yaml"
    rendered.write_text(yaml.safe_dump(moved(config, ports.envoy_moves()), sort_keys=False))
    return rendered


def spark_venv(release, python_version=None):
    """build/venv-stack-X.Y[-spark-RELEASE]: the venv `./build.sh up --spark RELEASE` makes
    (same name, requirements and stamp), made here when it is missing; its python."""
    version = python_version or "{}.{}".format(*sys.version_info[:2])
    name = stack.stack_venv_name(version, release)
    requirements = ROOT / "deploy/requirements.txt"
    if release != stack.SPARK_VERSION:
        requirements = BUILD / f"requirements-spark-{release}.txt"
        requirements.write_text(stack.spark_requirements(release))
    base = sys.executable
    if python_version:
        from helpers import pyenv_python

        base = str(pyenv_python(python_version))
    subprocess.run(
        [base, str(ROOT / "tools/ensure_venv.py"), str(BUILD / name), "-r", str(requirements)],
        check=True,
    )
    return BUILD / name / "bin/python"


def start_envoy(paths, upstream, ports):
    config = render_envoy(paths, upstream, ports)
    command = [str(paths.envoy), "-c", str(config), "--disable-hot-restart"]
    pid = stack.start(paths, "envoy", command + ["--log-level", "warn"], str(config))
    stack.wait_for(
        "Envoy",
        lambda: stack.envoy_ready(ports.admin),
        stack.ENVOY_READY_TIMEOUT,
        lambda: stack.alive(pid),
        paths.log("envoy"),
    )
    # As `up` checks: through Envoy, Spark itself answers (not Envoy's UNAVAILABLE).
    url = f"http://{HOST}:{ports.grpc_web}"
    status, message = stack.grpc_web_probe(url)
    assert status not in (None, "14"), f"grpc-web does not reach Spark: {status} {message}"
    return url


@contextlib.contextmanager
def connect_server(run_dir: Path, release, ports: Ports, python_version=None, spark_args=()):
    """Spark Connect ``release`` (local[2]) with its workers on the venv's Python, and
    Envoy in front; stopped on exit."""
    python = spark_venv(release, python_version)
    [spark_home] = python.parent.parent.glob("lib/python3.*/site-packages/pyspark")
    paths = stack.Paths(
        run_dir,
        spark_home=spark_home,
        envoy=python.parent / "envoy",
        envoy_config=ROOT / "deploy/envoy.dev.yaml",
        python=python,
    )
    stack.check_ports_free([ports.connect, ports.grpc_web, ports.static, ports.admin])
    try:
        command = stack.spark_command(
            paths, ["--conf", f"spark.connect.grpc.binding.port={ports.connect}", *spark_args]
        )
        pid = stack.start(paths, "spark", command, stack.SPARK_CLASS, stack.spark_env(paths))
        stack.wait_for(
            f"Spark Connect {release}",
            lambda: stack.port_open(HOST, ports.connect),
            stack.SPARK_READY_TIMEOUT,
            lambda: stack.alive(pid),
            paths.log("spark"),
        )
        grpc_web = start_envoy(paths, (HOST, ports.connect), ports)
        yield Server(release, f"sc://{HOST}:{ports.connect}", grpc_web, paths)
    finally:
        for part in ("envoy", "spark"):
            stack.stop(paths, part)
