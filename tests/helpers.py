"""Paths and helpers shared by the test suites (imported as `helpers`)."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
BUILD = ROOT / "build"


def run_python(python, code, check=True):
    """Run code in another interpreter; return the completed process (text mode)."""
    result = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, timeout=300, cwd="/"
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{python} exited {result.returncode}\nstdout:\n{result.stdout}\n"
            f"stderr:\n{result.stderr}"
        )
    return result
