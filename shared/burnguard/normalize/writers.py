"""Write canonical line items as FOCUS-named JSON lines, CSV or Parquet.

``burnguard normalize --to parquet`` makes burnguard a FOCUS converter in its own right: the
columns carry FOCUS 1.2 names (and burnguard's ``x_`` columns), money keeps every digit as a
decimal (text in JSON/CSV, ``decimal128(36, 18)`` in Parquet), timestamps are ISO 8601 UTC.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from burnguard.core.lineitem import SCHEMA

FORMATS = ("jsonl", "csv", "parquet")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    raise TypeError(f"cannot serialize {type(value).__name__}")


def _tags_as_json(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return pa.array([json.dumps(dict(v), ensure_ascii=False, sort_keys=True) if v else None
                     for v in column.to_pylist()], pa.string())


class LineItemWriter:
    """A writer for one output file; call :meth:`write` per chunk, then :meth:`close`."""

    def __init__(self, fmt: str, sink: IO[bytes]):
        if fmt not in FORMATS:
            raise ValueError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")
        self.fmt = fmt
        self.sink = sink
        self._parquet: pq.ParquetWriter | None = None
        self._csv: pacsv.CSVWriter | None = None
        self.rows = 0

    def __enter__(self) -> LineItemWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def write(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        if self.fmt == "parquet":
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.sink, SCHEMA, compression="zstd")
            self._parquet.write_table(table.cast(SCHEMA))
        elif self.fmt == "csv":
            flat = self._flatten(table)
            if self._csv is None:
                self._csv = pacsv.CSVWriter(self.sink, flat.schema)
            self._csv.write_table(flat)
        else:
            for record in table.to_pylist():
                record["Tags"] = dict(record["Tags"]) if record["Tags"] else {}
                self.sink.write(json.dumps(record, default=_json_default, ensure_ascii=False).encode())
                self.sink.write(b"\n")

    @staticmethod
    def _flatten(table: pa.Table) -> pa.Table:
        """CSV cannot hold a map: Tags become JSON text; timestamps ISO 8601 with Z."""
        columns = []
        for name in table.column_names:
            col = table.column(name)
            if name == "Tags":
                col = _tags_as_json(col)
            elif pa.types.is_timestamp(col.type):
                col = pc.strftime(col, format="%Y-%m-%dT%H:%M:%SZ")
            columns.append(col)
        return pa.table(columns, names=table.column_names)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        if self._csv is not None:
            self._csv.close()
            self._csv = None
