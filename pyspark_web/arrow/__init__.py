"""Arrow without pyarrow: a pure-Python IPC stream reader and writer (``ipc``), a small
table over its batches (``table``), and the mapping to Spark's types (``spark``).

PySpark uses this through ``pyspark.sql.arrow_compat`` (patches/0008) when pyarrow
cannot be imported; with pyarrow, upstream's own path runs unchanged.

``read_stream(data)`` parses an IPC stream; on malformed input (whatever a server or proxy
sends) its only error is ``ArrowError``, within the limits its docstring lists.
"""

from pyspark_web.arrow.ipc import ArrowError, read_stream

__all__ = ["ArrowError", "read_stream"]
