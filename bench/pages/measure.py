"""The measurements of bench/bench_browser.py that run inside a client: sent as source to
Pyodide (page or worker) by bench_browser.py, imported by bench/native_client.py on CPython.
The same code on both sides, so the two clients do exactly the same work."""

import threading
import time
from collections import Counter

SMALL_QUERY = "SELECT 1"
BULK_ROWS = 1_000_000

# Requests sent, by gRPC method, since the last start_counting().
requests: Counter = Counter()
_lock = threading.Lock()  # the native client releases executions from a thread pool


def _count(method: str) -> None:
    with _lock:
        requests[method] += 1


def connect(url: str):
    from pyspark.sql import SparkSession

    return SparkSession.builder.remote(url).getOrCreate()


def small_query_ms(spark, runs: int, warmups: int) -> list[float]:
    """Each of ``runs`` small collects, in ms, after ``warmups`` untimed ones."""
    for _ in range(warmups):
        spark.sql(SMALL_QUERY).collect()
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        spark.sql(SMALL_QUERY).collect()
        times.append((time.perf_counter() - began) * 1000)
    return times


def bulk_collect_ms(spark) -> float:
    """One range(1e6) (id, string) collect, in ms; the rows are checked after the clock."""
    began = time.perf_counter()
    rows = spark.range(BULK_ROWS).selectExpr("id", "cast(id as string) AS s").collect()
    elapsed = (time.perf_counter() - began) * 1000
    total = sum(row.id for row in rows)
    expected = (BULK_ROWS, BULK_ROWS * (BULK_ROWS - 1) // 2, str(BULK_ROWS - 1))
    if (len(rows), total, rows[-1].s) != expected:
        raise AssertionError(f"bulk collect: {(len(rows), total, rows[-1].s)} != {expected}")
    return elapsed


def collect_small(spark, times: int) -> None:
    for _ in range(times):
        spark.sql(SMALL_QUERY).collect()


def start_counting() -> None:
    with _lock:
        requests.clear()


def counts_per(collects: int) -> dict[str, float]:
    with _lock:
        return {method: n / collects for method, n in sorted(requests.items())}


def count_web_requests() -> None:
    """Count what pyspark-web sends, by method (the URL's last segment). It sends in two
    ways: Transport.post (a call that waits for its response) and post_in_background
    (ReleaseExecute, not waited for), which pyspark_web.channel calls by its own name."""
    from pyspark_web import channel, transport

    if getattr(transport.Transport.post, "counted", False):
        return

    def counted(send, url_position):
        def send_and_count(*args, **kwargs):
            url = kwargs.get("url") or args[url_position]
            _count(url.rsplit("/", 1)[-1])
            return send(*args, **kwargs)

        send_and_count.counted = True
        return send_and_count

    transport.Transport.post = counted(transport.Transport.post, 1)  # args[0] is self
    channel.post_in_background = counted(channel.post_in_background, 0)


class _CountedCall:
    """A stub's multicallable that counts its calls (the client only calls them)."""

    def __init__(self, method: str, call) -> None:
        self._method, self._call = method, call

    def __call__(self, *args, **kwargs):
        _count(self._method)
        return self._call(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._call, name)


def count_native_requests() -> None:
    """Count the native client's RPCs by method: every stub made from now on wraps its
    multicallables. Call before the session is created."""
    from pyspark.sql.connect.proto import base_pb2_grpc

    stub = base_pb2_grpc.SparkConnectServiceStub
    original = stub.__init__

    def init(self, channel):
        original(self, channel)
        for method, call in list(vars(self).items()):
            setattr(self, method, _CountedCall(method, call))

    stub.__init__ = init


def blocking_mode() -> str | None:
    """How pyspark-web blocks on HTTP here ("jspi", "worker-sync-xhr", ...)."""
    from pyspark_web import transport

    return transport.blocking_mode()
