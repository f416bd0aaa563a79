"""A read-only table over decoded record batches: what the Connect client uses of
pyarrow.Table (``columns``, ``num_rows``, ``schema``, ``to_pylist`` of a column,
``table[i][j].as_py()``, ``to_batches``), and nothing more."""

from typing import Any, List, Optional, Sequence

from pyspark_web.arrow import ipc


class Column:
    """One column across batches (like pyarrow.ChunkedArray)."""

    def __init__(self, data_type: ipc.DataType, chunks: Sequence[ipc.Array]) -> None:
        self.type = data_type
        self.chunks = list(chunks)
        self._values: Optional[List[Any]] = None

    def to_pylist(self) -> List[Any]:
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
    """One value, with pyarrow's Scalar.as_py()."""

    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    def as_py(self) -> Any:
        return self._value


class Table:
    def __init__(self, schema: ipc.Schema, batches: Sequence[ipc.RecordBatch]) -> None:
        self.schema = schema
        self.batches = list(batches)
        self._columns: Optional[List[Column]] = None

    @classmethod
    def from_batches(cls, batches: Sequence[ipc.RecordBatch], schema: Optional[ipc.Schema] = None) -> "Table":
        if schema is None:
            if not batches:
                raise ipc.ArrowError("a table from no batches needs a schema")
            schema = batches[0].schema
        return cls(schema, batches)

    @classmethod
    def from_pylists(cls, columns: Sequence[Sequence[Any]], schema: ipc.Schema, num_rows: Optional[int] = None) -> "Table":
        """A one-batch table from Python values per column (the writer's input)."""
        rows = len(columns[0]) if columns else (num_rows or 0)
        arrays = [ipc.Array(f.type, rows, list(values), _estimate_nbytes(values)) for f, values in zip(schema.fields, columns)]
        return cls(schema, [ipc.RecordBatch(schema, rows, arrays)])

    @classmethod
    def read_stream(cls, data: bytes) -> "Table":
        schema, batches = ipc.read_stream(data)
        return cls(schema, batches)

    @property
    def num_rows(self) -> int:
        return sum(batch.num_rows for batch in self.batches)

    @property
    def num_columns(self) -> int:
        return len(self.schema.fields)

    @property
    def column_names(self) -> List[str]:
        return self.schema.names

    @property
    def columns(self) -> List[Column]:
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

    def to_batches(self, max_chunksize: Optional[int] = None) -> List[ipc.RecordBatch]:
        if not max_chunksize:
            return list(self.batches)
        out = []
        for batch in self.batches:
            for start in range(0, batch.num_rows, max_chunksize):
                stop = min(start + max_chunksize, batch.num_rows)
                arrays = [
                    ipc.Array(a.type, stop - start, a.values[start:stop], a.nbytes * (stop - start) // max(batch.num_rows, 1))
                    for a in batch.columns
                ]
                out.append(ipc.RecordBatch(batch.schema, stop - start, arrays))
        return out

    def serialize(self, batches: Optional[Sequence[ipc.RecordBatch]] = None) -> bytes:
        """An IPC stream of this table (or of some of its batches)."""
        chosen = self.batches if batches is None else batches
        return ipc.write_stream(self.schema, [([a.values for a in b.columns], b.num_rows) for b in chosen])


def _estimate_nbytes(values: Sequence[Any]) -> int:
    """Roughly what Arrow would take for these values (PySpark uses it to decide when to
    cache and chunk large local relations)."""
    total = (len(values) + 7) // 8
    for value in values:
        if isinstance(value, (str, bytes, bytearray)):
            total += len(value) + 4
        elif isinstance(value, (list, tuple, dict)):
            total += 4 + _estimate_nbytes(list(value.values()) if isinstance(value, dict) else value)
        else:
            total += 8
    return total
