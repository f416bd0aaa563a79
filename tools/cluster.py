"""A Spark standalone cluster on 127.0.0.1: a master and N workers, from the pyspark that
the stack runs (its ``bin/spark-class`` and jars), for Spark Connect to run against.

    python tools/cluster.py up --spark-home DIR --workers-python FILE [--workers N]
                               [--cores C] [--memory M] [--port P] [--ui-port U] [--run-dir DIR]
    python tools/cluster.py status [--run-dir DIR]
    python tools/cluster.py down [--run-dir DIR]

``./build.sh up --workers N`` reaches it through tools/stack.py (``add_arguments``,
``up``, ``status``, ``down`` here). Each daemon is one part of the stack's run directory
(build/run): ``master.pid``/``master.log``, ``worker-I.pid``/``worker-I.log``, started and
stopped with tools/stack.py's process functions (a session and process group each, PID
records checked by start time). The cluster's shape is ``cluster.json`` there; the
workers' directories (executors' logs, their scratch space) are under ``work/``.

Everything listens on 127.0.0.1 only: the master (RPC and web UI), the workers (RPC and
web UI, on ports they pick unless ``--worker-ui-port``), the executors they launch (they
inherit SPARK_LOCAL_IP). The master's REST submission server, on by default in Spark 4
and unauthenticated, is turned off.
"""

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

# tools/ holds scripts, not a package. When stack.py is the running script, it registers
# itself as "stack" before importing this module (its load_cluster), so both share one
# module: one StackError, which its main() catches.
sys.path.insert(0, str(Path(__file__).resolve().parent))
try:
    import stack
finally:
    sys.path.pop(0)

HOST = stack.HOST
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
READY_TIMEOUT = 120  # seconds; a master or worker JVM starts in about 5-8 s here
RECORD = "cluster.json"


@dataclass(frozen=True)
class Spec:
    """The cluster's shape. Each worker offers ``cores`` and ``memory`` to executors."""

    workers: int
    cores: int = 1
    memory: str = "1g"
    port: int = 7077
    ui_port: int = 8080  # the master's web UI, whose /json/ says which workers are alive
    worker_ui_port: int = 0  # the first worker's UI, the next ones count up; 0: any free port
    # The daemons' heap: they only keep books (Spark's default is 1g each).
    daemon_memory: str = "512m"

    @property
    def url(self) -> str:
        return f"spark://{HOST}:{self.port}"

    def describe(self) -> str:
        return f"{self.workers} workers x {self.cores} cores, {self.memory}, master {self.url}"

    def parts(self) -> list[str]:
        return ["master"] + [f"worker-{i}" for i in range(1, self.workers + 1)]


def recorded_spec(paths: stack.Paths) -> Spec | None:
    try:
        return Spec(**json.loads((paths.run / RECORD).read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


# ---------------------------------------------------------------- commands of the daemons


def work_dir(paths: stack.Paths, part: str) -> Path:
    return paths.run / "work" / part


def cluster_env(paths: stack.Paths, spec: Spec) -> dict[str, str]:
    """The stack's Spark environment (SPARK_HOME, SPARK_LOCAL_IP=127.0.0.1, the workers'
    Python), plus what spark-class reads for the daemons."""
    return dict(
        stack.spark_env(paths),
        SPARK_MASTER_HOST=HOST,
        SPARK_DAEMON_MEMORY=spec.daemon_memory,
        # The REST server (port 6066, fixed) accepts jobs from anyone who reaches it.
        SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false",
        # Executors' shuffle and spill files: under the run directory, not /tmp.
        SPARK_LOCAL_DIRS=str(paths.run / "work" / "local"),
    )


def spark_class(paths: stack.Paths) -> str:
    return str(paths.spark_home / "bin/spark-class")


def master_marker(spec: Spec) -> str:
    # In the command line of spark-class and of the java it execs into.
    return f"{MASTER_CLASS} --host {HOST} --port {spec.port}"


def master_command(paths: stack.Paths, spec: Spec) -> list[str]:
    return [
        spark_class(paths),
        *master_marker(spec).split(),
        "--webui-port",
        str(spec.ui_port),
    ]


def worker_command(paths: stack.Paths, spec: Spec, part: str) -> list[str]:
    index = int(part.rsplit("-", 1)[1])
    ui_port = spec.worker_ui_port + index - 1 if spec.worker_ui_port else 0
    return [
        spark_class(paths),
        WORKER_CLASS,
        "--host",
        HOST,
        "--cores",
        str(spec.cores),
        "--memory",
        spec.memory,
        "--webui-port",
        str(ui_port),
        # The marker: a worker is known by its directory.
        "--work-dir",
        str(work_dir(paths, part)),
        spec.url,
    ]


def connect_args(spec: Spec, spark_args: list[str]) -> list[str]:
    """spark-submit options that put the Connect server (stack.spark_command) on this
    cluster: one executor per worker, sized to fit it (Spark's default executor of 1g
    would never start on a smaller worker, and the job would wait for ever)."""
    if "--master" in spark_args:
        raise stack.StackError("--workers runs Spark Connect on the local cluster; drop --master")
    return [
        "--master",
        spec.url,
        "--conf",
        f"spark.executor.cores={spec.cores}",
        "--conf",
        f"spark.executor.memory={spec.memory}",
        *spark_args,
    ]


# ---------------------------------------------------------------- state


def master_state(spec: Spec) -> dict | None:
    """The master's JSON (its web UI's /json/): workers, their state, cores and memory,
    and the applications."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{spec.ui_port}/json/", timeout=5) as r:
            return json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def alive_workers(state: dict | None) -> list[dict]:
    return [w for w in (state or {}).get("workers", []) if w.get("state") == "ALIVE"]


def logged_port(paths: stack.Paths, part: str, service: str) -> int | None:
    """The port a daemon's log last says it bound a service to (logs are appended to)."""
    try:
        text = paths.log(part).read_text(errors="replace")
    except FileNotFoundError:
        return None
    found = re.findall(rf"Successfully started service '{service}' on port (\d+)", text)
    return int(found[-1]) if found else None


def vm_rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# ---------------------------------------------------------------- start and stop


def start(paths: stack.Paths, spec: Spec) -> float:
    """Start the master and the workers that do not run; return once the master reports
    ``spec.workers`` alive workers. Seconds taken."""
    began = time.monotonic()
    major = stack.java_major()
    if major < 17:
        raise stack.StackError(f"Spark needs Java 17 or newer, found Java {major}; set JAVA_HOME")
    if not Path(spark_class(paths)).is_file():
        raise stack.StackError(f"{spark_class(paths)} is missing; run ./build.sh up")
    paths.run.mkdir(parents=True, exist_ok=True)
    env = cluster_env(paths, spec)
    master = stack.read_pid(paths, "master")
    if master is None:
        stack.check_ports_free([spec.port, spec.ui_port])
        (paths.run / RECORD).write_text(json.dumps(asdict(spec)))
        master = stack.start(paths, "master", master_command(paths, spec), master_marker(spec), env)
    elif (recorded := recorded_spec(paths)) != spec:
        shape = recorded.describe() if recorded else f"unrecorded, see {paths.run / RECORD}"
        raise stack.StackError(f"a cluster runs here as {shape}; run ./build.sh down first")
    stack.wait_for(
        "Spark master",
        lambda: (master_state(spec) or {}).get("status") == "ALIVE",
        READY_TIMEOUT,
        lambda: stack.alive(master),
        paths.log("master"),
    )
    workers = {}
    for part in spec.parts()[1:]:
        workers[part] = stack.read_pid(paths, part) or stack.start(
            paths, part, worker_command(paths, spec, part), str(work_dir(paths, part)), env
        )
    deadline = time.monotonic() + READY_TIMEOUT
    while len(alive_workers(master_state(spec))) < spec.workers:
        for part, pid in [("master", master), *workers.items()]:
            if not stack.alive(pid):
                log = paths.log(part)
                raise stack.StackError(
                    f"Spark {part} exited while starting; last lines of {log}:\n{stack.tail(log)}"
                )
        if time.monotonic() > deadline:
            raise stack.StackError(
                f"the master did not report {spec.workers} alive workers after "
                f"{READY_TIMEOUT} s; see {paths.run}/worker-*.log"
            )
        time.sleep(0.25)
    return time.monotonic() - began


def stop(paths: stack.Paths) -> list[tuple[str, bool, str | None]]:
    """Stop the workers (their executors are in their process groups), then the master:
    (part, stopped, note) for each part recorded."""
    recorded = {p.stem for p in paths.run.glob("worker-*.pid")}
    spec = recorded_spec(paths)
    if not (recorded or spec or paths.pid_file("master").exists()):
        return []
    parts = sorted(recorded | set(spec.parts()[1:] if spec else [])) + ["master"]
    done = []
    for part in parts:
        note = stack.check_pid(paths, part)[1]
        done.append((part, stack.stop(paths, part), note))
    (paths.run / RECORD).unlink(missing_ok=True)
    return done


# ---------------------------------------------------------------- report


def status(paths: stack.Paths) -> tuple[bool, list[str]]:
    """(healthy, rows): the master and each worker, with PID, RSS and what the master
    says of it. No cluster recorded: (True, [])."""
    spec = recorded_spec(paths)
    if spec is None:
        return True, []
    state = master_state(spec)
    alive = alive_workers(state)
    pid, note = stack.check_pid(paths, "master")
    healthy = bool(pid) and len(alive) >= spec.workers
    running = f"running (pid {pid}, {stack.rss_mib(pid):.0f} MiB RSS)" if pid else "stopped"
    apps = ", ".join(
        f"{app['name']} ({app['cores']} cores)" for app in (state or {}).get("activeapps", [])
    )
    rows = [
        f"  master  {running}; {spec.url}, UI http://{HOST}:{spec.ui_port}/, "
        f"{len(alive)}/{spec.workers} workers alive"
        + (f"; app {apps}" if apps else "")
        + ("" if state else " (master does not answer)")
    ]
    if note:
        rows.append(f"          {note}")
    by_port = {w["port"]: w for w in alive if w.get("host") == HOST}
    for part in spec.parts()[1:]:
        pid, note = stack.check_pid(paths, part)
        worker = by_port.get(logged_port(paths, part, "sparkWorker")) if pid else None
        healthy &= worker is not None
        if pid:
            own = vm_rss_mib(pid)
            running = f"running (pid {pid}, {own:.0f} MiB RSS"
            executors = stack.rss_mib(pid) - own  # the executors it launched, same group
            running += f", executors {executors:.0f} MiB)" if executors >= 1 else ")"
        else:
            running = "stopped"
        if worker:
            seen = (
                f"ALIVE at {HOST}:{worker['port']}, {worker['cores']} cores "
                f"({worker['coresused']} used), {worker['memory']} MiB "
                f"({worker['memoryused']} used), UI {worker['webuiaddress']}"
            )
        else:
            seen = "NOT REGISTERED with the master"
        rows.append(f"  {part:<7} {running}; {seen}")
        if note:
            rows.append(f"          {note}")
    return healthy, rows


# ---------------------------------------------------------------- tools/stack.py's hooks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=int,
        help="up: start a standalone cluster on 127.0.0.1 (a master on 7077, UI 8080, and N "
        "workers) and run Spark Connect against it instead of local[2]",
    )
    parser.add_argument("--worker-cores", type=int, default=1, help="cores of each worker (up)")
    parser.add_argument("--worker-memory", default="1g", help="memory of each worker (up)")


def spec_of(args: argparse.Namespace) -> Spec | None:
    if args.workers is None:
        return None
    if args.workers < 1 or args.worker_cores < 1:
        raise stack.StackError("--workers and --worker-cores take a number of 1 or more")
    return Spec(args.workers, args.worker_cores, args.worker_memory)


def up(
    paths: stack.Paths,
    spec: Spec | None,
    spark_args: list[str],
    upstream: tuple[str, int] | None,
    spark_running: bool,
) -> list[str]:
    """Start (or keep) the cluster that ``up`` asks for, or that runs already (a bare
    ``up`` keeps it); return spark_args with the options that put a Spark Connect server
    about to start on it."""
    if upstream:
        if spec:
            raise stack.StackError("--workers starts a local cluster; --upstream starts nothing")
        return spark_args
    recorded = recorded_spec(paths) if stack.read_pid(paths, "master") else None
    if recorded is None:
        (paths.run / RECORD).unlink(missing_ok=True)  # left by a cluster that is gone
    wanted = spec or recorded
    if wanted is None:
        return spark_args
    if spark_running and recorded is None:
        raise stack.StackError("Spark Connect runs without a cluster; run ./build.sh down first")
    if recorded and wanted != recorded:
        raise stack.StackError(
            f"the cluster runs as {recorded.describe()}; run ./build.sh down first"
        )
    print(f"==> cluster: {wanted.describe()} (UI http://{HOST}:{wanted.ui_port}/)", file=sys.stderr)
    seconds = start(paths, wanted)
    print(f"==> cluster: {wanted.workers} workers alive after {seconds:.1f} s", file=sys.stderr)
    return spark_args if spark_running else connect_args(wanted, spark_args)


def down(paths: stack.Paths) -> None:
    for part, stopped, note in stop(paths):
        if note:
            print(f"==> {part}: {note}", file=sys.stderr)
        print(
            f"==> {part}: {'stopped' if stopped else 'left alone' if note else 'not running'}",
            file=sys.stderr,
        )


# ---------------------------------------------------------------- by hand


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tools/cluster.py", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "status", "down"])
    parser.add_argument("--run-dir", type=Path, default=stack.ROOT / "build/run")
    parser.add_argument("--spark-home", type=Path, help="pyspark in the stack venv (up)")
    parser.add_argument("--workers-python", type=Path, help="executors' python (up)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cores", type=int, default=1)
    parser.add_argument("--memory", default="1g")
    parser.add_argument("--port", type=int, default=7077)
    parser.add_argument("--ui-port", type=int, default=8080)
    parser.add_argument("--worker-ui-port", type=int, default=0)
    args = parser.parse_args(argv)
    paths = stack.Paths(
        args.run_dir.resolve(),
        spark_home=args.spark_home and args.spark_home.resolve(),
        python=args.workers_python and args.workers_python.absolute(),
    )
    try:
        if args.command == "up":
            if not (args.spark_home and args.workers_python):
                parser.error("up needs --spark-home and --workers-python")
            spec = Spec(
                args.workers, args.cores, args.memory, args.port, args.ui_port, args.worker_ui_port
            )
            print(f"==> cluster: ready after {start(paths, spec):.1f} s", file=sys.stderr)
            print(spec.url)
            return 0
        if args.command == "down":
            down(paths)
            return 0
        healthy, rows = status(paths)
        print("\n".join(rows) or "  no cluster")
        return 0 if healthy else 3
    except stack.StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
