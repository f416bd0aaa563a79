"""Bring the server side up and down: Spark Connect behind Envoy, on 127.0.0.1.

    python tools/stack.py python [--python X.Y] [--spark VERSION]
    python tools/stack.py requirements --spark VERSION
    python tools/stack.py up --spark-home DIR --envoy FILE --workers-python FILE
                             [--upstream HOST:PORT] [--prod] [SPARK-SUBMIT OPTIONS ...]
                             [--workers N [--worker-cores C] [--worker-memory M]]
    python tools/stack.py status
    python tools/stack.py down

``./build.sh up|status|down`` call this with the paths of its virtualenvs; ``python``
tells build.sh which interpreter and Spark release to make the stack's venv from
(``up --python X.Y --spark VERSION``), ``requirements`` what to install in it.
Every process is started in a session of its own and recorded in
``build/run/<part>.pid`` with its start time; ``down`` stops exactly those process groups,
after checking that each PID is still the process that was started (same start time, and
its command line names what was started), so a PID the system has handed to another
process since is never reported or stopped. Logs, the rendered Envoy config, the Spark
warehouse and the Hive (Derby) metastore all live under ``build/run/``.

``up --prod`` also runs deploy/envoy.prod.yaml beside the dev stack, on loopback ports of
its own (PROD_PORTS), in front of the same Spark: its keys, certificate and rendered config
(tools/prod_keys.py), PID record and log live under ``build/prod/``.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
SPARK_PORT = 15002
GRPC_WEB_PORT = 8081
STATIC_PORT = 8000
ADMIN_PORT = 9901
LUA_FILTER = "envoy.filters.http.lua"  # the static host's stamp paths: its metadata key
# `up --prod`: beside the dev ports above and the prod tests' (18443, 18444, 19901;
# the browser tests' 18463, 18464, 19921).
PROD_PORTS = {"grpc_web": 8443, "static": 8444, "admin": 9902}
# The pages that may call the prod grpc-web listener: its own site, by either name the
# certificate has.
PROD_ORIGINS = [f"https://{name}:{PROD_PORTS['static']}" for name in (HOST, "localhost")]
PROBE_SUBJECT = "stack-status-probe"  # sub and user_id of status's probe through prod
SPARK_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
SPARK_READY_TIMEOUT = 180  # seconds; the JVM and the Connect plugin take ~12 s here
ENVOY_READY_TIMEOUT = 30
MIN_PYTHON = (3, 11)  # Requires-Python of the pyspark that deploy/requirements.txt pins


def server_version(requirements: Path = ROOT / "deploy/requirements.txt") -> str:
    """The version of pyspark (Spark) that the stack runs, as deploy/requirements.txt pins it."""
    for line in requirements.read_text().splitlines():
        match = re.match(r"pyspark(?:\[[^]]*\])?==([^\s;]+)", line)
        if match:
            return match[1]
    raise ValueError(f"{requirements} pins no pyspark==VERSION")


SPARK_VERSION = server_version()
# The Spark Connect servers that `up --spark` runs: the newest patch release of each line
# (README, "Release lines"), the default being deploy/requirements.txt's. Another release
# gets a venv of its own, build/venv-stack-X.Y-spark-VERSION, with the same pins but pyspark.
SPARK_RELEASES = ("4.0.5", "4.1.4", "4.2.1", SPARK_VERSION)


def spark_release(wanted: str | None) -> str:
    """The pinned release of ``--spark`` (a release, or its line X.Y); the default for None."""
    if wanted is None:
        return SPARK_VERSION
    for release in SPARK_RELEASES:
        if wanted in (release, release.rsplit(".", 1)[0]):
            return release
    raise StackError(
        f"--spark {wanted}: the Spark Connect servers up can run are "
        f"{', '.join(SPARK_RELEASES)} (or their lines, e.g. --spark 4.1)"
    )


def spark_requirements(release: str) -> str:
    """deploy/requirements.txt with pyspark pinned at ``release``."""
    text = (ROOT / "deploy/requirements.txt").read_text()
    pinned, count = re.subn(
        r"^(pyspark(?:\[[^]]*\])?)==\S+", rf"\g<1>=={release}", text, count=1, flags=re.M
    )
    assert count == 1, "deploy/requirements.txt pins no pyspark"
    return pinned


def stack_venv_name(python_version: str, release: str) -> str:
    """The stack venv's name under build/: one per workers' Python and Spark release."""
    suffix = "" if release == SPARK_VERSION else f"-spark-{release}"
    return f"venv-stack-{python_version}{suffix}"


def spark_home_version(spark_home: Path) -> str | None:
    """The Spark release of a pyspark installation (its version.py)."""
    try:
        text = (spark_home / "version.py").read_text()
    except OSError:
        return None
    # pyspark's version.py reads: __version__: str = '4.3.0' (either quote is taken).
    match = re.search(r"""__version__[^=]*=\s*["']([^"']+)["']""", text)
    return match[1] if match else None


class StackError(Exception):
    """A failure with a message that says what to do."""


@dataclass
class Paths:
    run: Path
    # What up starts; status, down and stop need only the run directory.
    spark_home: Path | None = None
    envoy: Path | None = None
    envoy_config: Path | None = None
    python: Path | None = None  # what Spark's Python workers run: the stack venv's python
    prod: Path | None = None  # up --prod's directory (build/prod); None: no prod Envoy here

    def pid_file(self, part: str) -> Path:
        return self.run / f"{part}.pid"

    def log(self, part: str) -> Path:
        return self.run / f"{part}.log"


# ---------------------------------------------------------------- processes


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def parse_stat(text: str) -> tuple[str, int, int]:
    """(state, process group, start time) from the text of /proc/PID/stat.

    Field 2, the command name, is in parentheses and may itself contain spaces and
    parentheses (a program may call itself "x) (y z"), so the fields after it are counted
    from the last ')'. Start time is field 22: clock ticks after boot.
    """
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[2]), int(fields[19])


def stat(pid: int) -> tuple[str, int, int] | None:
    try:
        return parse_stat(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, IndexError, ValueError):
        return None


def start_time(pid: int) -> int | None:
    """When the process started (clock ticks after boot); with the PID, it names one
    process for the life of the machine, where the PID alone is reused."""
    fields = stat(pid)
    return fields[2] if fields else None


def check_pid(paths: Paths, part: str) -> tuple[int | None, str | None]:
    """(PID, None) when the recorded process of a part still runs; else (None, why not),
    the reason only where the user should hear it.

    Ours means: the PID is alive, its start time is the recorded one, and its command line
    (never an empty one: kernel threads have none) names what was started. A record
    without a start time, from before they were kept, proves nothing and is not trusted.
    """
    pid_file = paths.pid_file(part)
    try:
        record = json.loads(pid_file.read_text())
        pid = int(record["pid"])
        marker = str(record["marker"])
    except FileNotFoundError:
        return None, None
    except (ValueError, KeyError, TypeError):
        return None, f"{pid_file} is not a PID record; not stopping anything it names"
    if pid <= 1 or not alive(pid):
        return None, None
    recorded = record.get("start_time")
    if not isinstance(recorded, int):
        return None, (
            f"{pid_file} predates start-time tracking; not stopping or reporting PID {pid}, "
            f"which may be another process by now (if `ps -o pid,lstart,args -p {pid}` shows "
            f"this stack's {part}, stop it with `kill -TERM -{pid}`)"
        )
    if start_time(pid) != recorded:
        return None, None  # the PID was handed to another process since
    # The start time settles whose PID it is; the command line is a second guard. It reads
    # empty for a kernel thread, always, and for an instant while a process execs (the
    # spark-submit script execs java): an empty one is read again, never taken as a match.
    for _ in range(10):
        try:
            cmdline = (
                Path(f"/proc/{pid}/cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode(errors="replace")
            )
        except OSError:
            return None, None
        if cmdline:
            break
        time.sleep(0.05)
    if not marker or marker not in cmdline:
        return None, None
    return pid, None


def read_pid(paths: Paths, part: str) -> int | None:
    """The recorded PID of a part, if that process still runs what we started."""
    return check_pid(paths, part)[0]


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    fields = stat(pid)
    return fields is not None and fields[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """The living processes of a process group (a zombie has exited already)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = stat(int(entry.name))
        if fields and fields[1] == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def rss_mib(pgid: int) -> float:
    total_kib = 0
    for pid in group_members(pgid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            pass
    return total_kib / 1024


def start(paths: Paths, part: str, command: list[str], marker: str, env=None) -> int:
    log = paths.log(part).open("ab")
    process = subprocess.Popen(
        command,
        cwd=paths.run,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        # Its own session and process group: down stops the whole group (spark-submit
        # runs java under a shell script), and nothing is tied to this terminal.
        start_new_session=True,
    )
    # Popen returns once the command runs (exec succeeded), and exec keeps the start time.
    record = {"pid": process.pid, "marker": marker, "start_time": start_time(process.pid)}
    paths.pid_file(part).write_text(json.dumps(record))
    return process.pid


def stop(paths: Paths, part: str) -> bool:
    """Stop a part's process group if the recorded process is still ours. Any other
    record (stale, or not to be trusted: see check_pid) is dropped, and nothing is
    signalled."""
    pid = read_pid(paths, part)
    paths_pid = paths.pid_file(part)
    if pid is None:
        paths_pid.unlink(missing_ok=True)
        return False
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while group_members(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not group_members(pid):
            break
    paths_pid.unlink(missing_ok=True)
    return True


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


# ---------------------------------------------------------------- readiness


def grpc_web_probe(
    base: str = f"http://{HOST}:{GRPC_WEB_PORT}",
    message: bytes = b"",
    headers: dict | None = None,
    context=None,
) -> tuple[str | None, str]:
    """POST an AnalyzePlan (empty by default) through Envoy; return (grpc-status,
    grpc-message).

    Spark rejects the request, which has no session id, with its own status (not
    UNAVAILABLE), which proves the whole path: Envoy's grpc_web filter, the route, h2c to
    Spark, and Spark itself. Envoy answers UNAVAILABLE (14) when it cannot reach Spark.
    """
    request = urllib.request.Request(
        f"{base}/spark.connect.SparkConnectService/AnalyzePlan",
        data=b"\x00" + len(message).to_bytes(4, "big") + message,
        headers={
            "content-type": "application/grpc-web+proto",
            "x-grpc-web": "1",
            **(headers or {}),
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            status = response.headers.get("grpc-status")
            message = response.headers.get("grpc-message", "")
            body = response.read()
    except urllib.error.HTTPError as error:
        # A refusal by Envoy itself (401 from jwt_authn) still says why in its headers.
        return error.headers.get("grpc-status"), error.headers.get("grpc-message", "")
    except (urllib.error.URLError, OSError) as error:
        return None, str(error)
    if status is None:
        # Status in the trailer frame (0x80) at the end of the body.
        index = body.rfind(b"\x80")
        trailer = body[index + 5 :].decode(errors="replace") if index >= 0 else ""
        fields = dict(line.split(":", 1) for line in trailer.split("\r\n") if ":" in line)
        status = fields.get("grpc-status", "").strip() or None
        message = fields.get("grpc-message", "").strip()
    return status, urllib.parse.unquote(message)


def prod_probe(paths: Paths) -> tuple[str | None, str]:
    """grpc_web_probe through the prod Envoy, over TLS with the generated CA, with a token
    from the generated key whose sub is the request's user_id: so jwt_authn and the
    identity check pass, and the answer is Spark's."""
    import ssl

    prod_keys = load_prod_keys()
    token = prod_keys.TokenMaker.load(paths.prod / "jwt-key.pem", paths.prod / "envoy.yaml").token(
        subject=PROBE_SUBJECT, expires_in=60
    )
    user_id = PROBE_SUBJECT.encode()
    # AnalyzePlanRequest{user_context (2): UserContext{user_id (1)}}, encoded by hand: the
    # tools' venv has no protobuf.
    user_context = b"\x0a" + bytes([len(user_id)]) + user_id
    return grpc_web_probe(
        f"https://{HOST}:{PROD_PORTS['grpc_web']}",
        b"\x12" + bytes([len(user_context)]) + user_context,
        {"authorization": f"Bearer {token}"},
        ssl.create_default_context(cafile=str(paths.prod / "ca.pem")),
    )


def load_cluster():
    """tools/cluster.py (up --workers: a standalone cluster on 127.0.0.1). It imports this
    module as `stack`, so this one is registered under that name first: one StackError."""
    sys.modules.setdefault("stack", sys.modules[__name__])
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        import cluster
    finally:
        sys.path.pop(0)
    return cluster


def load_prod_keys():
    """tools/prod_keys.py, imported only for the prod Envoy: it needs cryptography, which
    status and down of the dev stack do without."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        import prod_keys
    finally:
        sys.path.pop(0)
    return prod_keys


def envoy_ready(port: int = ADMIN_PORT) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/ready", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_for(what: str, check, timeout: float, pid_alive, log: Path) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        if not pid_alive():
            raise StackError(f"{what} exited while starting; last lines of {log}:\n{tail(log)}")
        time.sleep(0.25)
    raise StackError(f"{what} was not ready after {timeout:.0f} s; see {log}:\n{tail(log)}")


# ---------------------------------------------------------------- the workers' Python


def version_of(interpreter: str) -> tuple[str, str] | None:
    """(X.Y, sys.executable) of an interpreter, or None when it does not run."""
    try:
        out = subprocess.run(
            [
                interpreter,
                "-c",
                "import sys; print('%d.%d' % sys.version_info[:2], sys.executable)",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.split(maxsplit=1)
    except OSError:
        return None
    return (out[0], out[1].strip()) if len(out) == 2 else None


def find_pythons(
    pyenv: Path | None = None,
) -> tuple[str | None, dict[str, str]]:
    """The default version and every usable X.Y -> interpreter: the machine's python3
    (TEST_PYTHON when build.sh was given one) first, then pyenv's pythonX.Y."""
    if pyenv is None:
        pyenv = Path.home() / ".pyenv/versions"
    default_python = os.environ.get("TEST_PYTHON") or "python3"
    default = version_of(shutil.which(default_python) or default_python)
    found = {default[0]: default[1]} if default else {}
    for candidate in sorted(pyenv.glob("*/bin/python*")):
        match = re.fullmatch(r"python(\d+\.\d+)", candidate.name)
        if match and match[1] not in found and os.access(candidate, os.X_OK):
            found[match[1]] = str(candidate)
    return (default[0] if default else None), found


def usable(version: str) -> bool:
    return tuple(int(part) for part in version.split(".")) >= MIN_PYTHON


def choose_python(
    wanted: str | None, default: str | None, found: dict[str, str], running: dict | None = None
) -> tuple[str, str]:
    """(X.Y, interpreter) for the stack's venv: the one asked for, else the running
    stack's (so a bare `up` leaves it be), else the default. A stack that runs with
    another Python must be stopped first: Spark cannot change its workers' Python."""
    version = wanted or (running and running["version"]) or default
    listing = (
        ", ".join(
            f"{v}{' (default)' if v == default else ''} {path}"
            for v, path in sorted(
                found.items(), key=lambda item: tuple(map(int, item[0].split(".")))
            )
            if usable(v)
        )
        or "none"
    )
    need = ".".join(map(str, MIN_PYTHON))
    if version is None or not re.fullmatch(r"\d+\.\d+", version):
        raise StackError(
            f"--python takes a version X.Y, e.g. --python 3.13; Pythons found: {listing}"
        )
    if not usable(version):
        raise StackError(
            f"pyspark {SPARK_VERSION} needs Python {need} or newer, not {version}; "
            f"Pythons found: {listing}"
        )
    if version not in found:
        raise StackError(f"no Python {version} on this machine; Pythons found: {listing}")
    if running and version != running["version"]:
        raise StackError(
            f"the stack is up with Python {running['version']}; run ./build.sh down first, "
            f"then ./build.sh up --python {version}"
        )
    return version, found[version]


def running_python(paths: Paths) -> dict | None:
    """What `up` recorded about the workers' Python, while the local Spark runs."""
    try:
        record = json.loads((paths.run / "python.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return record if read_pid(paths, "spark") else None


# ---------------------------------------------------------------- the parts


def java_major() -> int:
    java = Path(os.environ["JAVA_HOME"]) / "bin/java" if "JAVA_HOME" in os.environ else "java"
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True).stderr
    except FileNotFoundError as error:
        raise StackError(
            f"java not found; Spark {SPARK_VERSION} needs Java 17 or 21 "
            "(apt-get install openjdk-17-jre-headless)"
        ) from error
    version = out.split('"')[1] if '"' in out else "0"
    return int(version.split(".")[0])


def render_envoy_config(paths: Paths, upstream: tuple[str, int]) -> Path:
    """deploy/envoy.dev.yaml with the upstream and the absolute dist/ path filled in."""
    config = yaml.safe_load(paths.envoy_config.read_text())
    for cluster in config["static_resources"]["clusters"]:
        if cluster["name"] == "spark_connect":
            address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
            socket_address = address["endpoint"]["address"]["socket_address"]
            socket_address["address"], socket_address["port_value"] = upstream
    for listener in config["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            manager = chain["filters"][0]["typed_config"]
            for http_filter in manager.get("http_filters", []):
                if http_filter["name"] == "envoy.filters.http.file_server":
                    for mapping in http_filter["typed_config"]["path_mappings"]:
                        mapping["file_path_prefix"] = str(ROOT / mapping["file_path_prefix"])
            # The build stamps that the static host's Lua filter makes its ETags of.
            for host in manager.get("route_config", {}).get("virtual_hosts", []):
                lua = host.get("metadata", {}).get("filter_metadata", {}).get(LUA_FILTER, {})
                for key, value in lua.items():
                    lua[key] = str(ROOT / value)
    rendered = paths.run / "envoy.yaml"
    rendered.write_text(
        "# Rendered by tools/stack.py from deploy/envoy.dev.yaml; do not edit.\n"
        + yaml.safe_dump(config, sort_keys=False)
    )
    return rendered


def spark_command(paths: Paths, spark_args: list[str]) -> list[str]:
    """spark-submit for the Connect server: local[2] unless --master is given, loopback
    only, no UI, state under the run directory, Python workers on the stack venv's
    python; spark_args come last and so win."""
    submit = paths.spark_home / "bin/spark-submit"
    command = [str(submit), "--class", SPARK_CLASS, "--name", "pyspark-web Spark Connect"]
    if "--master" not in spark_args:
        command += ["--master", "local[2]"]
    for key, value in (
        ("spark.connect.grpc.binding.address", HOST),
        ("spark.connect.grpc.binding.port", str(SPARK_PORT)),
        ("spark.ui.enabled", "false"),
        ("spark.driver.host", HOST),
        ("spark.driver.bindAddress", HOST),
        ("spark.sql.warehouse.dir", str(paths.run / "warehouse")),
        ("spark.local.dir", str(paths.run / "tmp")),
        # A Hive catalog in an embedded Derby database, run/metastore_db, so tables outlive
        # a restart (the in-memory catalog forgot them while their directories stayed, and
        # the next saveAsTable failed with LOCATION_ALREADY_EXISTS). The name is relative
        # to derby.system.home: Derby 10.16 creates a database given by absolute path but
        # fails to boot it again (NullPointerException in RawStore.setupEncryptionEngines).
        ("spark.sql.catalogImplementation", "hive"),
        (
            "spark.hadoop.javax.jdo.option.ConnectionURL",
            "jdbc:derby:;databaseName=metastore_db;create=true",
        ),
        ("spark.driver.extraJavaOptions", f"-Dderby.system.home={paths.run}"),
        # Executors (a cluster's too) start workers with this python; the Connect server
        # itself reads PYSPARK_PYTHON from its environment (spark_env).
        ("spark.pyspark.python", str(paths.python)),
        ("spark.pyspark.driver.python", str(paths.python)),
        ("spark.executorEnv.PYSPARK_PYTHON", str(paths.python)),
    ):
        command += ["--conf", f"{key}={value}"]
    return command + spark_args


def spark_env(paths: Paths) -> dict[str, str]:
    # Spark Connect gives each Python UDF the server's PYSPARK_PYTHON; unset, the workers
    # ran the bare machine python3, without pyarrow, and every Arrow UDF failed.
    return dict(
        os.environ,
        SPARK_HOME=str(paths.spark_home),
        SPARK_LOCAL_IP=HOST,
        PYSPARK_PYTHON=str(paths.python),
        PYSPARK_DRIVER_PYTHON=str(paths.python),
    )


def set_aside_orphaned_warehouse(paths: Paths) -> None:
    """A warehouse without a metastore was written by the in-memory catalog of earlier
    stacks: no catalog knows its tables, and their directories would block saveAsTable."""
    warehouse = paths.run / "warehouse"
    if (
        not (paths.run / "metastore_db").exists()
        and warehouse.is_dir()
        and any(warehouse.iterdir())
    ):
        aside = paths.run / f"warehouse.orphaned-{time.strftime('%Y%m%d-%H%M%S')}"
        warehouse.rename(aside)
        print(f"==> spark: {warehouse} had no metastore; moved it to {aside}", file=sys.stderr)


def start_spark(paths: Paths, spark_args: list[str]) -> float:
    major = java_major()
    if major < 17:
        raise StackError(
            f"Spark {SPARK_VERSION} needs Java 17 or newer, found Java {major}; set JAVA_HOME"
        )
    command = spark_command(paths, spark_args)
    if not Path(command[0]).is_file():
        raise StackError(
            f"{command[0]} is missing; run ./build.sh up (it installs pyspark=={SPARK_VERSION})"
        )
    set_aside_orphaned_warehouse(paths)
    pid = start(paths, "spark", command, SPARK_CLASS, spark_env(paths))
    return wait_for(
        "Spark Connect",
        lambda: port_open(HOST, SPARK_PORT),
        SPARK_READY_TIMEOUT,
        lambda: alive(pid),
        paths.log("spark"),
    )


def start_envoy(paths: Paths, upstream: tuple[str, int]) -> float:
    config = render_envoy_config(paths, upstream)
    command = [str(paths.envoy), "-c", str(config), "--disable-hot-restart", "--log-level", "warn"]
    pid = start(paths, "envoy", command, str(config))
    return wait_for(
        "Envoy",
        envoy_ready,
        ENVOY_READY_TIMEOUT,
        lambda: alive(pid),
        paths.log("envoy"),
    )


def prod_paths(paths: Paths) -> Paths:
    """The prod Envoy's own record: build/prod/envoy.pid and envoy.log."""
    return Paths(paths.prod, envoy=paths.envoy)


def start_prod_envoy(paths: Paths, upstream: tuple[str, int]) -> float:
    """deploy/envoy.prod.yaml on PROD_PORTS in front of upstream, with the files of
    tools/prod_keys.py under build/prod (made once, kept while the certificate is good)."""
    prod_keys = load_prod_keys()
    prod_keys.ensure_files(paths.prod, paths.python)
    config = paths.prod / "envoy.yaml"
    config.write_text(
        prod_keys.render_config(
            paths.prod, ports=PROD_PORTS, upstream=upstream, origins=PROD_ORIGINS
        )
    )
    command = [str(paths.envoy), "-c", str(config), "--disable-hot-restart", "--log-level", "warn"]
    prod = prod_paths(paths)
    pid = start(prod, "envoy", command, str(config))
    return wait_for(
        "Envoy (prod)",
        lambda: envoy_ready(PROD_PORTS["admin"]),
        ENVOY_READY_TIMEOUT,
        lambda: alive(pid),
        prod.log("envoy"),
    )


def check_ports_free(ports: list[int]) -> None:
    taken = [port for port in ports if port_open(HOST, port)]
    if taken:
        listing = ", ".join(f"{HOST}:{port}" for port in taken)
        raise StackError(
            f"{listing} already in use by a process this stack did not start; stop it "
            f"(e.g. `ss -ltnp 'sport = :{taken[0]}'` shows which) and run ./build.sh up again"
        )


def parse_upstream(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise StackError(
            f"--upstream {value!r} is not HOST:PORT, e.g. --upstream spark.internal:15002"
        )
    return host, int(port)


def upstream_of(paths: Paths) -> tuple[str, int] | None:
    try:
        recorded = json.loads((paths.run / "upstream.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return (recorded[0], int(recorded[1])) if recorded else None


def endpoints(upstream: tuple[str, int] | None, prod: bool = False) -> str:
    spark = (
        f"external {upstream[0]}:{upstream[1]}"
        if upstream
        else f"sc://{HOST}:{SPARK_PORT}  (native gRPC; what Envoy forwards to)"
    )
    return "\n".join(
        [
            f"  Spark Connect  {spark}",
            f'  grpc-web       http://{HOST}:{GRPC_WEB_PORT}  -> SparkSession.builder.remote("http://{HOST}:{GRPC_WEB_PORT}")',
            f"  static host    http://{HOST}:{STATIC_PORT}/  (dist/)",
            f"  Envoy admin    http://{HOST}:{ADMIN_PORT}/",
            "  logs           build/run/*.log",
        ]
        + (
            [
                f"  prod grpc-web  https://{HOST}:{PROD_PORTS['grpc_web']}  (CA build/prod/ca.pem;"
                " JWT: ./build.sh prod-token; user_id=its sub)",
                f"  prod site      https://{HOST}:{PROD_PORTS['static']}/  (dist/; the allowed "
                f"CORS origin) -> https://{HOST}:{PROD_PORTS['static']}/lite/lab/index.html"
                "?path=demo.ipynb#token=JWT",
                f"  prod admin     http://{HOST}:{PROD_PORTS['admin']}/",
                "  prod logs      build/prod/envoy.log",
            ]
            if prod
            else []
        )
    )


# ---------------------------------------------------------------- commands


def cmd_python(paths: Paths, wanted: str | None, spark: str | None = None) -> int:
    """Print "VENV RELEASE INTERPRETER": the stack venv's name under build/, the Spark
    release it holds and the Python to make it from. A bare up keeps what runs."""
    running = running_python(paths)
    version, interpreter = choose_python(wanted, *find_pythons(), running)
    running_release = running and running.get("spark")
    release = spark_release(spark or running_release or None)
    if running_release and release != running_release:
        raise StackError(
            f"the stack is up with Spark {running_release}; run ./build.sh down first, "
            f"then ./build.sh up --spark {release}"
        )
    print(stack_venv_name(version, release), release, interpreter)
    return 0


def cmd_up(
    paths: Paths,
    upstream_arg: str | None,
    spark_args: list[str],
    prod: bool = False,
    workers=None,  # tools/cluster.py's Spec of up --workers N
) -> int:
    paths.run.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    upstream = parse_upstream(upstream_arg) if upstream_arg else None
    recorded = upstream_of(paths)
    (spark_pid, spark_note), (envoy_pid, envoy_note) = (
        check_pid(paths, "spark"),
        check_pid(paths, "envoy"),
    )
    for part, note in (("spark", spark_note), ("envoy", envoy_note)):
        if note:
            print(f"==> {part}: {note}", file=sys.stderr)
    if (spark_pid or envoy_pid) and recorded != upstream:
        raise StackError("the stack is already up with another upstream; run ./build.sh down first")
    running = running_python(paths)
    if running and running["python"] != str(paths.python):
        raise StackError(
            f"the stack is up with the workers' Python {running['python']}; "
            "run ./build.sh down first"
        )
    (paths.run / "upstream.json").write_text(json.dumps(upstream))
    # The cluster asked for, or the one that runs: started (or kept), and Spark put on it.
    spark_args = load_cluster().up(paths, workers, spark_args, upstream, bool(spark_pid))

    if upstream is None:
        if spark_pid is None:
            check_ports_free([SPARK_PORT])
            version = version_of(str(paths.python))
            if version is None:
                raise StackError(
                    f"{paths.python} does not run; run ./build.sh up to make the stack venv"
                )
            release = spark_home_version(paths.spark_home)
            (paths.run / "python.json").write_text(
                json.dumps({"version": version[0], "python": str(paths.python), "spark": release})
            )
            print(
                f"==> spark: starting Spark Connect {release} on {HOST}:{SPARK_PORT} "
                f"(Python workers: {version[0]}, {paths.python})",
                file=sys.stderr,
            )
            seconds = start_spark(paths, spark_args)
            print(f"==> spark: listening after {seconds:.1f} s", file=sys.stderr)
        elif spark_args:
            print("==> spark: already running; the extra options were not applied", file=sys.stderr)
        target = (HOST, SPARK_PORT)
    else:
        if spark_args:
            raise StackError("Spark options apply to the local server only, not with --upstream")
        target = upstream

    if envoy_pid is None:
        check_ports_free([GRPC_WEB_PORT, STATIC_PORT, ADMIN_PORT])
        print(
            f"==> envoy: starting ({GRPC_WEB_PORT} grpc-web, {STATIC_PORT} static)", file=sys.stderr
        )
        start_envoy(paths, target)

    # End to end: a grpc-web call through Envoy must get an answer from Spark.
    status, message = None, ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, message = grpc_web_probe()
        if status is not None and status != "14":
            break
        time.sleep(0.5)
    else:
        raise StackError(
            f"Envoy is up but Spark Connect at {target[0]}:{target[1]} does not answer through it "
            f"(grpc-status {status}: {message}); see build/run/*.log"
        )
    if prod:
        up_prod(paths, target)
    print(f"==> ready after {time.monotonic() - began:.1f} s", file=sys.stderr)
    print(
        endpoints(upstream, prod=prod or bool(paths.prod and read_pid(prod_paths(paths), "envoy")))
    )
    return 0


def up_prod(paths: Paths, target: tuple[str, int]) -> None:
    pid, note = check_pid(prod_paths(paths), "envoy")
    if note:
        print(f"==> envoy-prod: {note}", file=sys.stderr)
    if pid is None:
        check_ports_free(list(PROD_PORTS.values()))
        print(
            f"==> envoy-prod: starting deploy/envoy.prod.yaml ({PROD_PORTS['grpc_web']} grpc-web, "
            f"{PROD_PORTS['static']} site, TLS and JWT; keys in build/prod)",
            file=sys.stderr,
        )
        start_prod_envoy(paths, target)
    status, message = prod_probe(paths)
    if status is None or status in ("14", "16", "7"):
        raise StackError(
            f"the prod Envoy is up but a request with a valid token does not reach Spark "
            f"(grpc-status {status}: {message}); see build/prod/envoy.log"
        )


def cmd_status(paths: Paths) -> int:
    upstream = upstream_of(paths)
    healthy = True
    rows = []
    if upstream is None:
        pid, note = check_pid(paths, "spark")
        listening = port_open(HOST, SPARK_PORT)
        healthy &= bool(pid) and listening
        workers = running_python(paths)
        release = f"Spark {workers.get('spark') or 'unknown'}, " if workers else ""
        state = f"running ({release}pid {pid}, {rss_mib(pid):.0f} MiB RSS)" if pid else "stopped"
        rows.append(
            f"  spark   {state}; {HOST}:{SPARK_PORT} {'listening' if listening else 'closed'}"
        )
        if note:
            rows.append(f"          {note}")
        if workers:
            # Ask the interpreter itself: the version it reports is what UDFs must match.
            full = (
                subprocess.run(
                    [workers["python"], "-c", "import platform; print(platform.python_version())"],
                    capture_output=True,
                    text=True,
                ).stdout.strip()
                or "DOES NOT RUN"
            )
            rows.append(f"  python  workers run Python {full}: {workers['python']}")
        cluster_healthy, cluster_rows = load_cluster().status(paths)  # none: (True, [])
        healthy &= cluster_healthy
        rows += cluster_rows
    else:
        reachable = port_open(*upstream, timeout=2)
        healthy &= reachable
        rows.append(
            f"  spark   external {upstream[0]}:{upstream[1]} "
            f"{'reachable' if reachable else 'UNREACHABLE'}"
        )
    pid, note = check_pid(paths, "envoy")
    ready = envoy_ready()
    healthy &= bool(pid) and ready
    state = f"running (pid {pid}, {rss_mib(pid):.0f} MiB RSS)" if pid else "stopped"
    rows.append(f"  envoy   {state}; admin {'ready' if ready else 'not ready'}")
    if note:
        rows.append(f"          {note}")
    status, message = grpc_web_probe() if pid else (None, "Envoy is not running")
    through = status is not None and status != "14"
    healthy &= through
    rows.append(
        f"  path    grpc-web -> Spark: {'answers' if through else 'DOWN'} "
        f"(probe grpc-status {status}{': ' + message[:80] if message and not through else ''})"
    )
    # The prod Envoy (up --prod) only when it runs: without it the dev stack is whole.
    prod_pid, prod_note = check_pid(prod_paths(paths), "envoy") if paths.prod else (None, None)
    if prod_note:
        rows.append(f"  prod    {prod_note}")
    if prod_pid:
        ready = envoy_ready(PROD_PORTS["admin"])
        status, message = prod_probe(paths)
        through = status is not None and status not in ("14", "16", "7")
        healthy &= ready and through
        rows.append(
            f"  prod    envoy running (pid {prod_pid}, {rss_mib(prod_pid):.0f} MiB RSS); "
            f"admin {'ready' if ready else 'not ready'}; "
            f"https://{HOST}:{PROD_PORTS['grpc_web']} with a token -> Spark: "
            f"{'answers' if through else 'DOWN'} (probe grpc-status {status}"
            f"{': ' + message[:80] if message and not through else ''})"
        )
    print("\n".join(rows))
    if healthy:
        print(endpoints(upstream, prod=bool(prod_pid)))
    return 0 if healthy else 3


def cmd_down(paths: Paths) -> int:
    parts = [("envoy-prod", prod_paths(paths), "envoy")] if paths.prod else []
    for label, where, part in parts + [("envoy", paths, "envoy"), ("spark", paths, "spark")]:
        note = check_pid(where, part)[1]
        if note:
            print(f"==> {label}: {note}", file=sys.stderr)
        stopped = stop(where, part)
        print(
            f"==> {label}: {'stopped' if stopped else 'left alone' if note else 'not running'}",
            file=sys.stderr,
        )
    load_cluster().down(paths)  # after Spark, whose executors it runs
    (paths.run / "upstream.json").unlink(missing_ok=True)
    (paths.run / "python.json").unlink(missing_ok=True)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="./build.sh", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["python", "requirements", "up", "down", "status"])
    parser.add_argument("--run-dir", type=Path, default=ROOT / "build/run")
    parser.add_argument(
        "--prod-dir",
        type=Path,
        help="up --prod's keys, config, PID and log (build/prod; RUN-DIR/prod with --run-dir, "
        "so that down of another run directory never stops this one's)",
    )
    parser.add_argument(
        "--prod",
        action="store_true",
        help="also run deploy/envoy.prod.yaml (TLS, JWT) on loopback ports of its own (up)",
    )
    parser.add_argument("--python", help="X.Y: the Python to make the stack's venv from (python)")
    parser.add_argument(
        "--spark",
        help=f"the Spark Connect release (python, requirements): {', '.join(SPARK_RELEASES)}",
    )
    parser.add_argument("--spark-home", type=Path, help="pyspark in the stack venv (up)")
    parser.add_argument("--envoy", type=Path, help="envoy in the stack venv (up)")
    parser.add_argument("--workers-python", type=Path, help="the stack venv's python (up)")
    parser.add_argument("--envoy-config", type=Path, default=ROOT / "deploy/envoy.dev.yaml")
    load_cluster().add_arguments(parser)  # --workers N, --worker-cores, --worker-memory
    parser.add_argument(
        "--upstream",
        default=os.environ.get("PYSPARK_WEB_UPSTREAM") or None,
        help="HOST:PORT of an existing Spark Connect server; no local Spark is started",
    )
    args, spark_args = parser.parse_known_args(argv)
    if args.command == "up" and not (args.spark_home and args.envoy and args.workers_python):
        parser.error("up needs --spark-home, --envoy and --workers-python")
    # Absolute: the processes run with the run directory as their working directory. The
    # workers' python is not resolved: a venv's bin/python is a link to its base Python.
    paths = Paths(
        *(
            p and p.resolve()
            for p in (args.run_dir, args.spark_home, args.envoy, args.envoy_config)
        ),
        args.workers_python and args.workers_python.absolute(),
        (
            args.prod_dir
            or (
                ROOT / "build/prod" if args.run_dir == ROOT / "build/run" else args.run_dir / "prod"
            )
        ).resolve(),
    )
    try:
        if args.command == "python":
            return cmd_python(paths, args.python, args.spark)
        if args.command == "requirements":
            print(spark_requirements(spark_release(args.spark)), end="")
            return 0
        if args.command == "up":
            workers = load_cluster().spec_of(args)
            return cmd_up(paths, args.upstream, spark_args, prod=args.prod, workers=workers)
        if spark_args:
            parser.error(f"unexpected arguments: {' '.join(spark_args)}")
        return cmd_status(paths) if args.command == "status" else cmd_down(paths)
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
