"""Which Python version the server's Python workers run, learned once per session.

Spark Connect has no RPC that tells it. What every Spark worker does tell is the version it
runs, when it refuses a function declared for another one (worker_util.check_python_version,
before it unpickles anything). So the probe is one ExecutePlan of a one-row query with a UDF
declared for Python "0.0": the refusal names the workers' version. That costs one round trip
(and the start of a Python worker on the server) the first time a session serializes a
function; the answer is cached per client. An explicit version skips the probe:
``PYSPARK_WEB_WORKER_PYTHON=3.11`` in the environment, or ``set_worker_python(spark, "3.11")``.
"""

import os
import re
import weakref
from typing import Any

ENVIRONMENT_VARIABLE = "PYSPARK_WEB_WORKER_PYTHON"
_VERSION = re.compile(r"^3\.\d{1,2}$")
_REFUSAL = re.compile(r"Python in worker has different version:? (\d+\.\d+)")
_PROBE_VERSION = "0.0"  # never a real Python: every worker refuses it and names its own
_SQL_BATCHED_UDF = 100

_learned: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()
_explicit: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()


def _checked(version: str, origin: str) -> str:
    if not isinstance(version, str) or not _VERSION.match(version):
        raise ValueError(f"{origin} must be a Python version like '3.11', not {version!r}")
    return version


def _client(spark_or_client: Any) -> Any:
    return getattr(spark_or_client, "client", spark_or_client)


def set_worker_python(spark: Any, version: str | None) -> None:
    """Declare the workers' Python version for a session (no probe), or None to forget it."""
    client = _client(spark)
    if version is None:
        _explicit.pop(client, None)
        _learned.pop(client, None)
    else:
        _explicit[client] = _checked(version, "The workers' Python version")


def worker_python(spark: Any) -> str:
    """The ``major.minor`` of the session's workers: declared, cached, or probed now."""
    client = _client(spark)
    if client in _explicit:
        return _explicit[client]
    from_environment = os.environ.get(ENVIRONMENT_VARIABLE)
    if from_environment:
        return _checked(from_environment.strip(), ENVIRONMENT_VARIABLE)
    if client not in _learned:
        _learned[client] = _probe(client)
    return _learned[client]


def _probe_request(client: Any) -> Any:
    from pyspark.sql.connect.types import pyspark_types_to_proto_types
    from pyspark.sql.types import StringType

    request = client._execute_plan_request_with_metadata()
    project = request.plan.root.project
    project.input.range.start, project.input.range.end, project.input.range.step = 0, 1, 1
    function = project.expressions.add().common_inline_user_defined_function
    function.function_name = "pyspark_web_worker_python"
    function.deterministic = True
    udf = function.python_udf
    udf.output_type.CopyFrom(pyspark_types_to_proto_types(StringType()))
    udf.eval_type = _SQL_BATCHED_UDF
    udf.command = b""
    udf.python_ver = _PROBE_VERSION
    return request


def _probe(client: Any) -> str:
    from pyspark.sql.connect.grpc_compat import grpc

    request = _probe_request(client)
    refusal = ""
    try:
        for attempt in client._retrying():
            with attempt:
                for _ in client._stub.ExecutePlan(request, metadata=client._builder.metadata()):
                    pass
    except grpc.RpcError as error:
        refusal = str(error.details() or "")
    found = _REFUSAL.search(refusal)
    if found is None:
        detail = (
            f"the server answered: {refusal[:300]!r}"
            if refusal
            else "the probe UDF was not refused"
        )
        raise RuntimeError(
            "pyspark-web could not learn which Python version the Spark workers run "
            f"({detail}). Declare it: set the environment variable {ENVIRONMENT_VARIABLE}=3.11 "
            "(the workers' major.minor), or call pyspark_web.udf.set_worker_python(spark, '3.11')."
        )
    return found.group(1)
