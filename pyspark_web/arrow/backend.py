"""The Arrow backend that PySpark's ``pyspark.sql.arrow_compat`` uses when pyarrow cannot
be imported, registered under the ``pyspark.sql.arrow_backends`` entry point group
(packaging/pyproject.toml). arrow_compat's docstring is the contract this module meets."""

from collections.abc import Sequence
from typing import Any

from pyspark_web.arrow import spark
from pyspark_web.arrow.reader import read_stream
from pyspark_web.arrow.table import Table
from pyspark_web.arrow.types import RecordBatch

__all__ = [
    "RecordBatch",
    "Table",
    "install_hint",
    "read_batches",
    "serialize_table",
    "spark_schema",
    "table_from_batches",
    "table_from_pylists",
]


def read_batches(data: bytes) -> list[RecordBatch]:
    return read_stream(data)[1]


def table_from_batches(batches: Sequence[RecordBatch]) -> Table:
    return Table.from_batches(batches)


def spark_schema(table: Table, prefer_timestamp_ntz: bool) -> Any:
    return spark.from_arrow_schema(table.schema, prefer_timestamp_ntz)


def table_from_pylists(
    columns: Sequence[list[Any]], schema: Any, prefers_large_types: bool, num_rows: int
) -> Table:
    return Table.from_pylists(
        columns, spark.to_arrow_schema(schema, "UTC", prefers_large_types), num_rows
    )


def serialize_table(table: Table, batches: Sequence[RecordBatch] | None = None) -> bytes:
    return table.serialize(batches)


def install_hint(packages: list[str]) -> str:
    # micropip installs pyspark-web from the Pyodide lockfile and drops its extras there, so
    # in Pyodide the packages themselves are named (the Pyodide distribution has both).
    return (
        "With pyspark-web: pip install 'pyspark-web[pandas]' (in Pyodide: "
        f"await micropip.install({packages!r}), from the Pyodide distribution)."
    )
