"""Arrow without pyarrow: a pure-Python IPC stream reader (``reader``, with
``compression``) and writer (``writer``) over one model of types, schemas and batches
(``types``), the FlatBuffers mapping of that model (``metadata`` over ``flatbuf``), a
small table over batches (``table``), and the mapping to Spark's types (``spark``).

PySpark uses this through ``pyspark.sql.arrow_compat`` (added by the patch "Route the
client's Arrow operations through one module", in every release line), which loads
``backend`` when pyarrow cannot be imported; with pyarrow, upstream's own path runs
unchanged.

``read_stream(data)`` parses an IPC stream; on malformed input (whatever a server or proxy
sends) its only error is ``ArrowError``, within the limits its docstring lists.
``write_stream(schema, batches)`` writes one.
"""

from pyspark_web.arrow.reader import read_stream
from pyspark_web.arrow.types import (
    Array,
    ArrowError,
    DataType,
    Field,
    MonthDayNano,
    RecordBatch,
    Schema,
)
from pyspark_web.arrow.writer import write_stream

__all__ = [
    "Array",
    "ArrowError",
    "DataType",
    "Field",
    "MonthDayNano",
    "RecordBatch",
    "Schema",
    "read_stream",
    "write_stream",
]
