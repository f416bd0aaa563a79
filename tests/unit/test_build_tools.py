"""build.sh's commands, and tools/assemble_dist.py, tools/pyodide_root.py and
tools/ensure_venv.py on small inputs."""

import json
import os
import re
import subprocess
import sys
import zipfile

import pytest
from helpers import BUILD_SH, ROOT, tool

assemble_dist = tool("assemble_dist")
pyodide_root = tool("pyodide_root")
ensure_venv = tool("ensure_venv")
CORE = ROOT / "node_modules/pyodide"


def make_wheel(path, name, version, requires, files):
    wheel = path / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    info = f"{name.replace('-', '_')}-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
        archive.writestr(f"{info}/METADATA", meta)
        for file in files:
            archive.writestr(file, "")
    return wheel


def test_wheel_entry_evaluates_markers_for_pyodide(tmp_path):
    wheel = make_wheel(
        tmp_path,
        "demo-pkg",
        "1.0",
        [
            "alpha>=1",
            'colorama; sys_platform == "win32"',
            'tomli; python_version < "3.11"',
            'beta; sys_platform == "emscripten"',
            'gamma; extra == "dev"',
        ],
        ["demo_pkg/__init__.py", "demo_extra.py"],
    )
    env = assemble_dist.pyodide_environment({"python": "3.14.2"})
    entry = assemble_dist.wheel_entry(wheel, env)
    assert entry["name"] == "demo-pkg" and entry["version"] == "1.0"
    assert entry["depends"] == ["alpha", "beta"]
    assert entry["imports"] == ["demo_extra", "demo_pkg"]


def test_official_base_url_comes_from_pyodide_mjs(tmp_path):
    url = assemble_dist.official_base_url(CORE, "314.0.7")
    assert url.startswith("https://") and url.endswith("/v314.0.7/full/")
    (tmp_path / "pyodide.mjs").write_text("no default URL here")
    with pytest.raises(SystemExit, match="no default package URL"):
        assemble_dist.official_base_url(tmp_path, "314.0.7")


def test_unknown_dependency_stops_assembly(tmp_path):
    wheel = make_wheel(tmp_path, "lonely", "1.0", ["does-not-exist-anywhere"], ["lonely.py"])
    with pytest.raises(SystemExit, match="lonely -> does-not-exist-anywhere"):
        assemble_dist.assemble(CORE, tmp_path / "dist", [wheel])


def test_a_wheel_replaces_the_official_entry_unless_it_is_kept(tmp_path):
    official = json.loads((CORE / "pyodide-lock.json").read_text())["packages"]["protobuf"]
    base = assemble_dist.official_base_url(CORE, "314.0.7")
    wheel = make_wheel(tmp_path, "protobuf", "7.34.1", [], ["google/protobuf/__init__.py"])

    assemble_dist.assemble(CORE, tmp_path / "ours", [wheel])
    ours = json.loads((tmp_path / "ours/pyodide-lock.json").read_text())["packages"]["protobuf"]
    assert ours["file_name"] == wheel.name and (tmp_path / "ours" / wheel.name).is_file()

    assemble_dist.assemble(CORE, tmp_path / "kept", [wheel], frozenset({"protobuf"}))
    kept = json.loads((tmp_path / "kept/pyodide-lock.json").read_text())["packages"]["protobuf"]
    assert kept["file_name"] == base + official["file_name"]
    assert kept["sha256"] == official["sha256"] and "wasm32" in kept["file_name"]
    assert not (tmp_path / "kept" / wheel.name).exists()


def test_the_newest_of_several_versions_takes_the_lock_entry(tmp_path):
    """pyspark-web's release lines: every wheel goes to dist/ and its simple index, the
    newest version (by version, not by order given) into the lockfile."""
    wheels = [
        make_wheel(tmp_path, "urllib3", version, [], ["urllib3/__init__.py"])
        for version in ("2.10.0", "2.9.1.post1", "2.2.0")
    ]
    assemble_dist.assemble(CORE, tmp_path / "dist", wheels)
    dist = tmp_path / "dist"
    entry = json.loads((dist / "pyodide-lock.json").read_text())["packages"]["urllib3"]
    assert entry["version"] == "2.10.0" and entry["file_name"] == wheels[0].name
    assert sorted(p.name for p in dist.glob("*.whl")) == sorted(w.name for w in wheels)
    page = json.loads((dist / "simple/urllib3/index.json").read_text())
    assert [f["filename"] for f in page["files"]] == [w.name for w in reversed(wheels)]
    assert [f["url"] for f in page["files"]] == [f"../../{w.name}" for w in reversed(wheels)]
    assert "requires-python" not in page["files"][0]  # the wheel declares none
    html = (dist / "simple/urllib3/index.html").read_text()
    assert html.count('<a href="../../urllib3-') == 3 and "data-requires-python" not in html
    root = json.loads((dist / "simple/index.json").read_text())
    assert root == {"meta": {"api-version": "1.0"}, "projects": [{"name": "urllib3"}]}


def test_keeping_an_official_entry_that_does_not_exist_stops_assembly(tmp_path):
    with pytest.raises(SystemExit, match="--official no-such-package: not in Pyodide's lockfile"):
        assemble_dist.assemble(CORE, tmp_path / "dist", [], frozenset({"no-such-package"}))


def test_offline_root_reports_the_npm_release(tmp_path):
    pyodide_root.write_root(CORE, tmp_path / "root")
    out = subprocess.run(
        ["make", "-s", "-f", str(tmp_path / "root/Makefile.envs"), ".output_vars"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYODIDE_ROOT": str(tmp_path / "root")},
    ).stdout
    values = dict(line.split("=", 1) for line in out.splitlines())
    lock_info = json.loads((CORE / "pyodide-lock.json").read_text())["info"]
    assert values["PYVERSION"] == lock_info["python"]
    assert values["PYODIDE_ABI_VERSION"] == lock_info["abi_version"]
    assert (
        "emscripten_" + values["PYODIDE_EMSCRIPTEN_VERSION"].replace(".", "_")
        == lock_info["platform"]
    )
    assert values["PYODIDE_VERSION"] == "314.0.7"
    sysconfig = (
        tmp_path / "root/cpython/installs" / f"python-{values['PYVERSION']}" / "sysconfigdata"
    )
    assert (sysconfig / f"{pyodide_root.SYSCONFIG_NAME}.py").stat().st_size > 1000


# ---------------------------------------------------------------- build.sh


def build_sh(*args, env=None):
    return subprocess.run(
        [BUILD_SH, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def help_text():
    result = build_sh("help")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return result.stdout


def listed():
    """(commands, steps) as `./build.sh help` lists them."""
    commands, steps_part = help_text().split("\nSteps of", 1)
    names = re.findall(r"^  ([a-z][a-z-]*)(?: |$)", commands, re.MULTILINE)
    return names, steps_part.splitlines()[-1].split()


def bash_array(name):
    match = re.search(rf"^{name}=\(([^)]*)\)", (ROOT / "build.sh").read_text(), re.MULTILINE)
    return match[1].split()


def test_help_goes_to_stdout():
    # `./build.sh help | less` shows it; a wrong command still gets it on stderr.
    assert help_text().startswith("usage: ./build.sh")
    wrong = build_sh("no-such-command")
    assert wrong.returncode != 0 and wrong.stdout == ""
    assert (
        wrong.stderr.startswith("usage: ./build.sh")
        and "unknown command 'no-such-command'" in wrong.stderr
    )


def test_every_command_and_step_of_help_is_dispatched():
    commands, steps = listed()
    assert {"build", "setup", "test", "up", "status", "down", "demo", "help"} <= set(commands)
    assert steps == bash_array("STEPS") and "lite" in steps
    for name in commands + steps:
        # The same lookup main runs by, stopped before the command runs.
        result = build_sh(name, env={"BUILD_SH_DISPATCH_ONLY": "1"})
        assert result.returncode == 0, (
            f"./build.sh {name} is listed by help but not dispatched: {result.stderr}"
        )
        expected = f"step_{name}" if name in steps else f"cmd_{name.replace('-', '_')}"
        assert result.stdout.strip() == expected
    # And the lookup does fail for what is not a command.
    for name in ("no-such-command", "stackenv", "testenv", "ensure_venv", "usage"):
        result = build_sh(name, env={"BUILD_SH_DISPATCH_ONLY": "1"})
        assert result.returncode != 0 and "unknown command" in result.stderr, name


def test_every_command_function_is_listed_by_help():
    defined = re.findall(r"^cmd_(\w+)\(\)", (ROOT / "build.sh").read_text(), re.MULTILINE)
    assert sorted(name.replace("_", "-") for name in defined) == sorted(listed()[0])


def test_setup_text_lists_what_setup_installs():
    packages = [entry.split(":")[0] for entry in bash_array("SYSTEM_PACKAGES")]
    assert {
        "chromium",
        "chromium-driver",
        "patch",
        "make",
        "git",
        "openjdk-17-jre-headless",
    } <= set(packages)
    setup = help_text().split("  setup ", 1)[1].split("\n  test ", 1)[0]
    assert re.findall(r"[a-z][\w-]*", setup.split("need:", 1)[1].split(";", 1)[0]) == packages


def test_test_names_what_is_missing_and_installs_nothing(tmp_path):
    # A machine without the Debian tools: `test` stops before building, names each one and
    # points at setup; it never runs apt-get itself.
    (tmp_path / "dirname").symlink_to(
        subprocess.run(
            ["sh", "-c", "command -v dirname"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    (tmp_path / "apt-get").write_text(f"#!/bin/sh\ntouch {tmp_path}/apt-get-ran\n")
    (tmp_path / "apt-get").chmod(0o755)
    result = subprocess.run(
        ["/bin/bash", BUILD_SH, "test"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": str(tmp_path), "HOME": str(tmp_path)},
    )
    assert result.returncode != 0
    for package, command in (entry.split(":") for entry in bash_array("SYSTEM_PACKAGES")):
        assert f"  {package} (no {command} command)" in result.stderr
    assert "Run ./build.sh setup (as root)" in result.stderr and "Node.js >= " in result.stderr
    assert not (tmp_path / "apt-get-ran").exists()
    assert "==>" not in result.stderr  # no step started


# ---------------------------------------------------------------- tools/ensure_venv.py


def test_venv_stamp_is_build_shs_inputs_hash(tmp_path):
    # Without package specs the stamp is what build.sh has always written, so the venvs it
    # made before tools/ensure_venv.py are still up to date.
    files = [ROOT / "tests/requirements.txt", ROOT / "tools/constraints.txt"]
    shell = subprocess.run(
        ["sh", "-c", 'cat "$@" | sha256sum | cut -c1-16', "-", *map(str, files)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert ensure_venv.stamp_of(files, []) == shell
    assert ensure_venv.stamp_of(files, ["x==1"]) != shell


def fake_venv(path, stamp, python):
    (path / "bin").mkdir(parents=True)
    (path / "bin/python").symlink_to(python)
    (path / ".stamp").write_text(stamp + "\n")
    return path


def test_venv_is_kept_while_its_stamp_and_interpreter_match(tmp_path, monkeypatch):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("demo==1.0\n")
    stamp = ensure_venv.stamp_of([requirements], [])
    venv = fake_venv(tmp_path / "venv", stamp, ensure_venv.base_interpreter())
    ran = []
    monkeypatch.setattr(ensure_venv, "run", ran.append)
    assert ensure_venv.ensure(venv, [requirements]) == venv / "bin/python"
    assert ran == []
    ensure_venv.ensure(venv, [requirements], reinstall=["/w/pkg.whl"])
    assert ran == [
        [
            venv / "bin/python",
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--force-reinstall",
            "--no-deps",
            "/w/pkg.whl",
        ]
    ]
    # Changed pins, or another base interpreter: made again.
    assert ensure_venv.up_to_date(venv, stamp)
    requirements.write_text("demo==2.0\n")
    assert not ensure_venv.up_to_date(venv, ensure_venv.stamp_of([requirements], []))
    other = fake_venv(tmp_path / "other", stamp, "/bin/sh")
    assert not ensure_venv.up_to_date(other, stamp)


def test_venv_is_made_with_pinned_pip_then_one_install(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(ensure_venv, "run", ran.append)
    monkeypatch.setattr(ensure_venv.shutil, "rmtree", lambda *args, **kwargs: None)
    venv = tmp_path / "venv"
    venv.mkdir()
    (tmp_path / "r.txt").write_text("a==1\n")
    (tmp_path / "c.txt").write_text("b==2\n")
    ensure_venv.ensure(venv, [tmp_path / "r.txt"], [tmp_path / "c.txt"], ["w.whl[x]"], say="made")
    pip = [venv / "bin/python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    assert ran == [
        [sys.executable, "-m", "venv", venv],
        pip + [f"pip=={ensure_venv.PIP_VERSION}"],
        pip + ["-r", tmp_path / "r.txt", "w.whl[x]", "-c", tmp_path / "c.txt"],
    ]
    assert (venv / ".stamp").read_text() == ensure_venv.stamp_of(
        [tmp_path / "r.txt", tmp_path / "c.txt"], ["w.whl[x]"]
    ) + "\n"
