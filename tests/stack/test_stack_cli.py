"""./build.sh up / status against the running stack: idempotent, clear about ports."""

import json
import subprocess

import pytest
from conftest import stack_venv
from helpers import BUILD, BUILD_SH, ROOT

pytestmark = pytest.mark.usefixtures("stack")


def pids():
    return {
        part: json.loads((BUILD / "run" / f"{part}.pid").read_text())["pid"]
        for part in ("spark", "envoy")
    }


def test_status_reports_every_part():
    result = subprocess.run([BUILD_SH, "status"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(
        line.strip().startswith("spark") and "running" in line and "15002 listening" in line
        for line in lines
    )
    assert any(
        line.strip().startswith("envoy") and "running" in line and "admin ready" in line
        for line in lines
    )
    assert any("grpc-web -> Spark: answers" in line for line in lines)
    # The workers' Python, as the interpreter itself reports it, and where it lives.
    [python] = [line for line in lines if line.strip().startswith("python")]
    assert "workers run Python 3." in python and str(stack_venv() / "bin/python") in python


def test_up_twice_is_harmless():
    before = pids()
    result = subprocess.run([BUILD_SH, "up"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "http://127.0.0.1:8081" in result.stdout
    assert pids() == before


def test_taken_port_gets_a_clear_message(tmp_path):
    # A second stack (its own run directory) finds the first one's ports taken.
    venv = stack_venv()
    site = subprocess.run(
        [
            str(venv / "bin/python"),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    result = subprocess.run(
        [
            str(BUILD / "venv/bin/python"),
            str(ROOT / "tools/stack.py"),
            "up",
            "--run-dir",
            str(tmp_path),
            "--spark-home",
            f"{site}/pyspark",
            "--envoy",
            str(venv / "bin/envoy"),
            "--workers-python",
            str(venv / "bin/python"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert (
        "error: 127.0.0.1:15002 already in use by a process this stack did not start"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_unknown_command_fails_with_usage():
    result = subprocess.run([BUILD_SH, "upp"], capture_output=True, text=True)
    assert result.returncode != 0
    assert "usage: ./build.sh" in result.stderr and "unknown command 'upp'" in result.stderr
