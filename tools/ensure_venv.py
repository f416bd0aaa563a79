"""Make a virtualenv with pinned requirements, or leave it be while nothing has changed.

    PYTHON tools/ensure_venv.py VENV [-r FILE]... [-c FILE]... [PACKAGE]...
                                [--reinstall WHEEL]... [--say TEXT]

The venv is made from PYTHON, the interpreter that runs this script (a venv's python
counts as its base interpreter): pip at PIP_VERSION, then one ``pip install`` of the
requirement files, the packages and the constraint files. VENV/.stamp records a hash of
the contents of those files followed by the package specs; while it matches and
VENV/bin/python is still PYTHON's interpreter, the venv is left as it is. The wheels given
with --reinstall are installed again (``--force-reinstall --no-deps``) on every call, so
the venv always has the freshly built ones.

build.sh makes its venvs (build/venv, venv-test, venv-lite, venv-stack-X.Y) with this
script, and tests/helpers.py those of the test suites (venv-stock, venv-web, ...).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

# pip itself, installed first into every venv: a pip that knows the packages' metadata.
PIP_VERSION = "26.3"


def stamp_of(files: list, packages: list) -> str:
    """sha256 of the files' contents, then one line per package spec; 16 hex digits.

    Without packages it is `cat FILES | sha256sum | cut -c1-16`, what build.sh has always
    written, so an existing venv stays valid."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(Path(file).read_bytes())
    for package in packages:
        digest.update(f"{package}\n".encode())
    return digest.hexdigest()[:16]


def base_interpreter() -> str:
    """The interpreter that a venv made by this Python links to, symlinks resolved."""
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def up_to_date(venv: Path, stamp: str) -> bool:
    python = venv / "bin/python"
    try:
        recorded = (venv / ".stamp").read_text().strip()
    except OSError:
        return False
    return recorded == stamp and python.exists() and os.path.realpath(python) == base_interpreter()


def run(command: list) -> None:
    print("+ " + shlex.join(map(str, command)), file=sys.stderr, flush=True)
    subprocess.run(list(map(str, command)), check=True)


def ensure(venv, requirements=(), constraints=(), packages=(), reinstall=(), say=None) -> Path:
    """Make or keep ``venv`` (see the module's docstring); its python."""
    venv = Path(venv).absolute()
    files = [*requirements, *constraints]
    packages = [str(package) for package in packages]
    stamp = stamp_of(files, packages)
    pip = [venv / "bin/python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if not up_to_date(venv, stamp):
        print(
            f"==> {say or f'venv: {venv.name} ({base_interpreter()})'}", file=sys.stderr, flush=True
        )
        shutil.rmtree(venv, ignore_errors=True)
        run([sys.executable, "-m", "venv", venv])
        run(pip + [f"pip=={PIP_VERSION}"])
        args = [arg for file in requirements for arg in ("-r", file)] + packages
        run(pip + args + [arg for file in constraints for arg in ("-c", file)])
        (venv / ".stamp").write_text(stamp + "\n")
    if reinstall:
        run(pip + ["--force-reinstall", "--no-deps", *reinstall])
    return venv / "bin/python"


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("venv", type=Path)
    parser.add_argument("packages", nargs="*", help="requirement specs, e.g. a wheel with extras")
    parser.add_argument("-r", dest="requirements", action="append", default=[], metavar="FILE")
    parser.add_argument("-c", dest="constraints", action="append", default=[], metavar="FILE")
    parser.add_argument("--reinstall", action="append", default=[], metavar="WHEEL")
    parser.add_argument("--say", help="what to report when the venv is (re)made")
    args = parser.parse_intermixed_args(argv)
    try:
        ensure(
            args.venv, args.requirements, args.constraints, args.packages, args.reinstall, args.say
        )
    except subprocess.CalledProcessError as error:
        print(
            f"error: {shlex.join(map(str, error.cmd))} exited {error.returncode}; "
            f"{args.venv} is left without its stamp and is made again on the next run",
            file=sys.stderr,
        )
        return 1
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
