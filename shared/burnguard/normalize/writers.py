"""Write canonical line items as FOCUS-named JSON lines, CSV or Parquet.

``burnguard normalize --to parquet`` makes burnguard a FOCUS converter in its own right: the
columns carry FOCUS 1.2 names (and burnguard's ``x_`` columns), money keeps every digit as a
decimal (text in JSON/CSV, ``decimal128(36, 18)`` in Parquet), timestamps are ISO 8601 UTC.
"""

from __future__ import annotations

import json
from decimal import Decimal
from types import TracebackType
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from burnguard.core.columnar import tag_counts, tag_entries
from burnguard.core.lineitem import SCHEMA

FORMATS = ("jsonl", "csv", "parquet")


def _tags_as_json(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """CSV's Tags cell: the map as a JSON object with sorted keys, empty for no tags."""
    objects = _tags_json(column, sort_keys=True)
    return pc.if_else(pc.equal(objects, "{}"), pa.scalar(None, pa.string()), objects)


def _tags_json(tags: pa.ChunkedArray | pa.Array, *, sort_keys: bool) -> pa.Array:
    """Each row's Tags as ``json.dumps(dict(tags), ensure_ascii=False, sort_keys=...)`` writes it
    (``{}`` for none), built from the map's entries; a row whose map repeats a key (``dict()``
    keeps the last value) is left to Python."""
    parents, keys, values = tag_entries(tags)
    if _duplicate_keys(parents, keys):
        return pa.array([json.dumps(dict(v or []), ensure_ascii=False, sort_keys=sort_keys)
                         for v in tags.to_pylist()], pa.string())
    if sort_keys:  # UTF-8 bytes sort as code points do, as Python sorts str
        order = pc.sort_indices(pa.table({"row": parents, "key": keys}),
                                sort_keys=[("row", "ascending"), ("key", "ascending")])
        keys, values = keys.take(order), values.take(order)
    members = pc.binary_join_element_wise(_json_strings(keys), pc.fill_null(_json_strings(values), "null"), ": ")
    offsets = np.zeros(len(tags) + 1, dtype=np.int32)
    np.cumsum(tag_counts(tags), out=offsets[1:])
    grouped = pa.ListArray.from_arrays(pa.array(offsets), members)
    return pc.binary_join_element_wise("{", pc.binary_join(grouped, ", "), "}", "")


def _duplicate_keys(parents: pa.Array, keys: pa.Array) -> bool:
    """Whether a row repeats a key among the entries of a Tags column (their rows, their keys)."""
    if len(keys) < 2:
        return False
    codes = pc.dictionary_encode(keys)
    pairs = parents.to_numpy().astype(np.int64) * (len(codes.dictionary) + 1) \
        + pc.fill_null(codes.indices, -1).to_numpy(zero_copy_only=False) + 1
    return bool(len(np.unique(pairs)) != len(pairs))


def _combine(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


#: What ``json.dumps(..., ensure_ascii=False)`` escapes besides ``"`` and ``\``.
_CONTROL = "[\x00-\x1f]"


def _json_strings(values: pa.Array) -> pa.Array:
    """JSON string literals of a string array, as ``json.dumps(v, ensure_ascii=False)`` writes
    them (nulls stay null). Most columns hold nothing to escape: one pass over their bytes says
    so. Otherwise quotes and backslashes are escaped in bulk, and the rare value holding a
    control character is written by ``json.dumps`` itself."""
    quote = '"'
    if not _escapable(values):
        return pc.binary_join_element_wise(quote, values, quote, "")
    escaped = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), quote, "\\" + quote)
    quoted = pc.binary_join_element_wise(quote, escaped, quote, "")
    control = pc.fill_null(pc.match_substring_regex(values, _CONTROL), False)
    if not pc.any(control).as_py():
        return quoted
    texts = values.to_pylist()
    fixed = pa.array([json.dumps(t, ensure_ascii=False) if c else None
                      for t, c in zip(texts, control.to_pylist(), strict=True)], pa.string())
    return pc.if_else(control, fixed, quoted)


def _escapable(values: pa.Array) -> bool:
    """Whether any value of a string array holds a byte JSON escapes: a quote, a backslash or
    a control character (UTF-8 continuation bytes are all above 0x7f)."""
    if len(values) == 0:
        return False
    _, offsets, data = values.buffers()
    if data is None:
        return False
    bounds = np.frombuffer(offsets, dtype=np.int32)[values.offset: values.offset + len(values) + 1]
    text = np.frombuffer(data, dtype=np.uint8)[int(bounds[0]): int(bounds[-1])]
    return bool(((text < 0x20) | (text == 0x22) | (text == 0x5C)).any())


def _plain_decimals(values: pa.Array) -> pa.Array:
    """Each decimal as ``format(value.normalize(), "f")`` writes it (``0.0416``, ``100``, ``0``).
    Arrow's text has every decimal place (``0.041600000000000000``): the trailing zeros go. It
    writes zero and values below 1e-6 in scientific notation (``0E-18``, ``4.00000000E-10``):
    zero is ``0``, the others (rare) are formatted in Python, from Arrow's text as it is (its
    exponent may end in a zero)."""
    raw = pc.cast(values, pa.string())
    text = pc.ascii_rtrim(pc.ascii_rtrim(raw, characters="0"), characters=".")
    scientific = pc.fill_null(pc.match_substring(raw, "E"), False)
    if not pc.any(scientific).as_py():
        return text
    zero = pc.fill_null(pc.starts_with(raw, "0E"), False)
    rare = pc.and_(scientific, pc.invert(zero))
    if pc.any(rare).as_py():
        fixed = pa.array([format(Decimal(t).normalize(), "f") if r else None
                          for t, r in zip(raw.to_pylist(), rare.to_pylist(), strict=True)], pa.string())
        text = pc.if_else(rare, fixed, text)
    return pc.if_else(zero, "0", text)


def _iso_utc(values: pa.Array) -> pa.Array:
    """UTC timestamps as ``%Y-%m-%dT%H:%M:%S`` (the ``Z`` is the caller's): Arrow's text of the
    same instants without a time zone, ``T`` for the space (``strftime`` costs 40x more)."""
    naive = pc.cast(values, pa.timestamp(values.type.unit))
    return pc.replace_substring(pc.cast(naive, pa.string()), " ", "T", max_replacements=1)


def _json_values(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One column's JSON values as text, as ``json.dumps`` writes them (decimals as strings in
    plain notation, timestamps as ISO 8601 UTC strings, Tags as an object)."""
    col = _combine(column)
    t = col.type
    if pa.types.is_string(t):
        out = _json_strings(col)
    elif pa.types.is_decimal(t):
        out = pc.binary_join_element_wise('"', _plain_decimals(col), '"', "")
    elif pa.types.is_timestamp(t):
        out = pc.binary_join_element_wise('"', _iso_utc(col), 'Z"', "")
    elif pa.types.is_integer(t):
        out = pc.cast(col, pa.string())
    elif pa.types.is_map(t):  # Tags
        return _tags_json(col, sort_keys=False)
    else:  # pragma: no cover - the canonical schema has no other type
        raise TypeError(f"cannot write {t} as JSON")
    return pc.fill_null(out, "null")


def _jsonl(table: pa.Table) -> memoryview:
    """The table as JSON lines, byte for byte what ``json.dumps(record, ensure_ascii=False)``
    of each row (Tags as a dict) writes, built a column at a time."""
    parts: list[pa.Array | str] = []
    for i, name in enumerate(table.column_names):
        parts.append(("{" if i == 0 else ", ") + json.dumps(name) + ": ")
        parts.append(_json_values(table.column(name)))
    parts.append("}\n")
    lines = pc.binary_join_element_wise(*parts, "")
    _, offsets, data = lines.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int32)[lines.offset: lines.offset + len(lines) + 1]
    return memoryview(data.slice(int(bounds[0]), int(bounds[-1] - bounds[0])))


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
        elif table.num_rows:
            self.sink.write(_jsonl(table))

    @staticmethod
    def _flatten(table: pa.Table) -> pa.Table:
        """CSV cannot hold a map: Tags become JSON text; timestamps ISO 8601 with Z."""
        columns = []
        for name in table.column_names:
            col = table.column(name)
            if name == "Tags":
                col = _tags_as_json(col)
            elif pa.types.is_timestamp(col.type):
                col = pc.binary_join_element_wise(_iso_utc(_combine(col)), "Z", "")
            columns.append(col)
        return pa.table(columns, names=table.column_names)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        if self._csv is not None:
            self._csv.close()
            self._csv = None
