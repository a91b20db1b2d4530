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

from burnguard.core.columnar import TAG_LIST
from burnguard.core.lineitem import SCHEMA

FORMATS = ("jsonl", "csv", "parquet")


def _tags_as_json(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """CSV's Tags cell: the map as a JSON object with sorted keys, empty for no tags."""
    tags = _combine(column)
    if _duplicate_keys(tags):
        return pa.array([json.dumps(d, ensure_ascii=False, sort_keys=True) if (d := _as_dict(v)) else None
                         for v in tags.to_pylist()], pa.string())
    parents = pc.list_parent_indices(tags)
    flat = pc.list_flatten(tags)
    order = pc.sort_indices(pa.table({"row": parents, "key": flat.field("key")}),
                            sort_keys=[("row", "ascending"), ("key", "ascending")])  # UTF-8 bytes: code point order
    objects = _json_objects(tags, flat.take(order))
    return pc.if_else(pc.equal(objects, "{}"), pa.scalar(None, pa.string()), objects)


def _combine(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One array; a Tags map as the list of key/value structs it is (Arrow's list kernels)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return pc.cast(arr, TAG_LIST) if pa.types.is_map(arr.type) else arr


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


def _as_dict(entries: list[dict[str, str | None]] | None) -> dict[str, str | None]:
    """A Tags row (key/value structs) as ``dict()`` of its pairs makes it: a repeated key keeps
    its first place and its last value."""
    return {e["key"]: e["value"] for e in entries or []}  # type: ignore[misc]


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


def _duplicate_keys(tags: pa.Array) -> bool:
    """Whether a row's map repeats a key (``dict()`` then keeps the last value: left to Python)."""
    flat = pc.list_flatten(tags)
    if len(flat) < 2:
        return False
    keys = pc.dictionary_encode(flat.field("key"))
    pairs = pc.list_parent_indices(tags).to_numpy().astype(np.int64) * (len(keys.dictionary) + 1) \
        + pc.fill_null(keys.indices, -1).to_numpy(zero_copy_only=False) + 1
    return bool(len(np.unique(pairs)) != len(pairs))


def _json_objects(tags: pa.Array, entries: pa.StructArray) -> pa.Array:
    """Each row's JSON object of ``entries`` (the map's entries, row by row, in the order to
    write), ``{}`` for a null or empty map; ``json.dumps`` separators."""
    members = pc.binary_join_element_wise(
        _json_strings(entries.field("key")), pc.fill_null(_json_strings(entries.field("value")), "null"), ": ")
    counts = pc.fill_null(pc.list_value_length(tags), 0).to_numpy(zero_copy_only=False)
    offsets = np.zeros(len(tags) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    grouped = pa.ListArray.from_arrays(pa.array(offsets), members)
    return pc.binary_join_element_wise("{", pc.binary_join(grouped, ", "), "}", "")


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
    elif pa.types.is_list(t):  # Tags
        if _duplicate_keys(col):
            return pa.array([json.dumps(_as_dict(v), ensure_ascii=False) for v in col.to_pylist()], pa.string())
        return _json_objects(col, pc.list_flatten(col))
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
