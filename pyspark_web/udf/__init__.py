"""Python functions for Spark workers on another Python version than the client's.

The patched Connect client (the patch "Let a plug-in serialize Python functions for the
server's workers") hands every UDF, UDTF and data source it sends to
``serialize``, registered under the ``pyspark.sql.connect.function_serializers`` entry point.
When the workers run the client's own ``major.minor``, the command is upstream's cloudpickle
bytes, unchanged. Otherwise it is a portable pickle (``pickler.py``): source text and
captured state, rebuilt on the workers with nothing but the standard library.
"""

from typing import Any

from pyspark_web.udf.source import FunctionNotPortable
from pyspark_web.udf.workers import ENVIRONMENT_VARIABLE, set_worker_python, worker_python

__all__ = [
    "ENVIRONMENT_VARIABLE",
    "FunctionNotPortable",
    "serialize",
    "set_worker_python",
    "worker_python",
]


def serialize(client: Any, obj: Any, python_ver: str) -> tuple[bytes, str]:
    """The command bytes for ``obj`` and the Python version to declare with them."""
    worker = worker_python(client)
    if worker == python_ver:
        from pyspark.serializers import CloudPickleSerializer

        return CloudPickleSerializer().dumps(obj), python_ver
    from pyspark_web.udf.pickler import dumps

    return dumps(obj, worker), worker
