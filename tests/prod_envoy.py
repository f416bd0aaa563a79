"""A production Envoy for the tests (imported as `prod_envoy` by tests/stack and
tests/browser): deploy/envoy.prod.yaml rendered by tools/prod_keys.py onto loopback test
ports, with a certificate, keys and a descriptor set generated into a temporary
directory, in front of the dev stack's Spark. `./build.sh up --prod` does the same under
build/prod, on ports of its own.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from helpers import stack_venv, tool

prod_keys = tool("prod_keys")

ENVOY = stack_venv() / "bin/envoy"  # the same Envoy in every stack venv
# Apart from the dev stack's (8081, 8000, 9901) and up --prod's (8443, 8444, 9902); the
# browser tests' own, so that the two suites may run at once.
PORTS = {"grpc_web": 18443, "static": 18444, "admin": 19901}
BROWSER_PORTS = {"grpc_web": 18463, "static": 18464, "admin": 19921}
SPARK = ("127.0.0.1", 15002)
ALLOWED_ORIGIN = "https://notebooks.example.com"


def make_etc(etc: Path, tokens) -> Path:
    """What the config reads under /etc/pyspark-web/, made in etc; returns the CA file."""
    ca = prod_keys.write_certificate(etc)
    (etc / "jwks.json").write_text(json.dumps(tokens.jwks()))
    prod_keys.write_descriptor_set(etc / "spark_connect.pb", stack_venv() / "bin/python")
    return ca


def render(etc: Path, origins=(ALLOWED_ORIGIN,), upstream=SPARK, ports=PORTS, **options) -> str:
    return prod_keys.render_config(
        etc, ports=ports, upstream=upstream, origins=list(origins), **options
    )


def run_envoy(config: Path, log: Path, ports=PORTS):
    # Another Envoy on these ports would answer the readiness check below for this one,
    # which then exits unseen.
    for port in ports.values():
        with socket.socket() as probe:
            taken = probe.connect_ex(("127.0.0.1", port)) == 0
        assert not taken, f"127.0.0.1:{port} is taken (another test run's Envoy?)"
    process = subprocess.Popen(
        [str(ENVOY), "-c", str(config), "--disable-hot-restart", "--log-level", "warn"],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, f"Envoy exited: {log.read_text()[-2000:]}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports['admin']}/ready", timeout=1) as r:
                if r.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    stop_envoy(process)
    raise AssertionError(f"Envoy (prod config) not ready: {log.read_text()[-2000:]}")


def stop_envoy(process):
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


def stat(name: str, ports=PORTS) -> int:
    """One counter of the test Envoy's admin interface (0 while it has not been used)."""
    pattern = "^" + re.escape(name) + "$"
    url = f"http://127.0.0.1:{ports['admin']}/stats?filter={urllib.parse.quote(pattern)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode().strip()
    return int(text.split(":")[1]) if text else 0


def upstream_requests() -> int:
    """Requests Envoy has sent to Spark so far (its cluster counter)."""
    return stat("cluster.spark_connect.upstream_rq_total")
