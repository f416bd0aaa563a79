"""A read-only table over decoded record batches: what the Connect client uses of
pyarrow.Table (``columns``, ``num_rows``, ``schema``, ``to_pylist`` of a column,
``table[i][j].as_py()``, ``to_batches``), and nothing more."""

from collections.abc import Iterator, Sequence
from typing import Any

from pyspark_web.arrow.reader import read_stream
from pyspark_web.arrow.types import Array, ArrowError, DataType, RecordBatch, Schema
from pyspark_web.arrow.writer import write_stream


class Column:
    """One column across batches (like pyarrow.ChunkedArray)."""

    def __init__(self, data_type: DataType, chunks: Sequence[Array]) -> None:
        self.type = data_type
        self.chunks = list(chunks)
        self._values: list[Any] | None = None

    def to_pylist(self) -> list[Any]:
        if len(self.chunks) == 1:
            return list(self.chunks[0].values)
        return [value for chunk in self.chunks for value in chunk.values]

    def __getitem__(self, index: int) -> "Scalar":
        # pyarrow's column[i].as_py(), which the Connect catalog uses.
        if self._values is None:
            self._values = self.to_pylist()
        return Scalar(self._values[index])

    def __len__(self) -> int:
        return sum(chunk.length for chunk in self.chunks)

    @property
    def nbytes(self) -> int:
        return sum(chunk.nbytes for chunk in self.chunks)


class Scalar:
    """One value, with pyarrow's Scalar.as_py(); a list value also iterates, indexes and
    has a length, as pyarrow's ListScalar (approxQuantile reads ``table[0][0]`` so)."""

    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    def as_py(self) -> Any:
        return self._value

    def _items(self) -> list:
        if not isinstance(self._value, list):
            raise TypeError(f"'{type(self).__name__}' of a non-list value is not a sequence")
        return self._value

    def __iter__(self) -> Iterator["Scalar"]:
        return (Scalar(item) for item in self._items())

    def __len__(self) -> int:
        return len(self._items())

    def __getitem__(self, index: int) -> "Scalar":
        return Scalar(self._items()[index])


class Table:
    def __init__(self, schema: Schema, batches: Sequence[RecordBatch]) -> None:
        self.schema = schema
        self.batches = list(batches)
        self._columns: list[Column] | None = None

    @classmethod
    def from_batches(cls, batches: Sequence[RecordBatch], schema: Schema | None = None) -> "Table":
        if schema is None:
            if not batches:
                raise ArrowError("a table from no batches needs a schema")
            schema = batches[0].schema
        return cls(schema, batches)

    @classmethod
    def from_pylists(
        cls, columns: Sequence[Sequence[Any]], schema: Schema, num_rows: int | None = None
    ) -> "Table":
        """A one-batch table from Python values per column (the writer's input)."""
        rows = len(columns[0]) if columns else (num_rows or 0)
        arrays = [
            Array(f.type, rows, list(values), _estimate_nbytes(values))
            for f, values in zip(schema.fields, columns)
        ]
        return cls(schema, [RecordBatch(schema, rows, arrays)])

    @classmethod
    def read_stream(cls, data: bytes) -> "Table":
        schema, batches = read_stream(data)
        return cls(schema, batches)

    @property
    def num_rows(self) -> int:
        return sum(batch.num_rows for batch in self.batches)

    @property
    def num_columns(self) -> int:
        return len(self.schema.fields)

    @property
    def column_names(self) -> list[str]:
        return self.schema.names

    @property
    def columns(self) -> list[Column]:
        if self._columns is None:
            self._columns = [
                Column(f.type, [batch.columns[i] for batch in self.batches])
                for i, f in enumerate(self.schema.fields)
            ]
        return self._columns

    def __getitem__(self, index: int) -> Column:
        return self.columns[index]

    def column(self, key: Any) -> Column:
        return self.columns[self.column_names.index(key) if isinstance(key, str) else key]

    @property
    def nbytes(self) -> int:
        return sum(batch.nbytes for batch in self.batches)

    @property
    def shape(self) -> tuple:
        return (self.num_rows, self.num_columns)

    def to_batches(self, max_chunksize: int | None = None) -> list[RecordBatch]:
        if not max_chunksize:
            return list(self.batches)
        out = []
        for batch in self.batches:
            for start in range(0, batch.num_rows, max_chunksize):
                stop = min(start + max_chunksize, batch.num_rows)
                arrays = [
                    Array(
                        a.type,
                        stop - start,
                        a.values[start:stop],
                        a.nbytes * (stop - start) // max(batch.num_rows, 1),
                    )
                    for a in batch.columns
                ]
                out.append(RecordBatch(batch.schema, stop - start, arrays))
        return out

    def serialize(self, batches: Sequence[RecordBatch] | None = None) -> bytes:
        """An IPC stream of this table (or of some of its batches)."""
        chosen = self.batches if batches is None else batches
        return write_stream(
            self.schema, [([a.values for a in b.columns], b.num_rows) for b in chosen]
        )


def _estimate_nbytes(values: Sequence[Any]) -> int:
    """Roughly what Arrow would take for these values (PySpark uses it to decide when to
    cache and chunk large local relations)."""
    total = (len(values) + 7) // 8
    for value in values:
        if isinstance(value, (str, bytes, bytearray)):
            total += len(value) + 4
        elif isinstance(value, (list, tuple, dict)):
            total += 4 + _estimate_nbytes(
                list(value.values()) if isinstance(value, dict) else value
            )
        else:
            total += 8
    return total
