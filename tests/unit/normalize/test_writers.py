"""``burnguard normalize --to jsonl|csv``: the line items written a column at a time are, byte
for byte, what Python's ``json`` and ``csv`` write for the same rows (the oracles below never
call burnguard's writer): escapes, control characters, non-ASCII, decimals in plain notation
(zero, tiny, negative, 36 digits), timestamps, tags (none, empty, repeated keys)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa

from burnguard.core.lineitem import SCHEMA
from burnguard.normalize.writers import LineItemWriter

N = 10
STRINGS = ['a"b', "c\\d", "new\nline", "tab\there", "ctl\x01x\x1f", "ünïcode ✓ \u2028 \x7f", "", None,
           "emoji 🎉", 'all "\\ \x08\x0c\r']
MONEY = [Decimal("0.0416"), Decimal("100"), Decimal("0"), Decimal("-2.61"),
         Decimal("123456789012345678.123456789012345678"), Decimal("-0.000000000000000001"), None,
         Decimal("1E-7"), Decimal("4E-10"), Decimal("-2.5E-10")]  # Arrow: 4.00000000E-10
TIMES = [datetime(2024, 9, 1, h, 7, 5, tzinfo=UTC) for h in range(N - 2)] + [None, datetime(9999, 12, 31, tzinfo=UTC)]
ROWS = [1, -2, 0, 2**62, None, 5, 6, 7, 8, 9]
TAGS: list[list[tuple[str, str | None]] | None] = [
    [("b", "2"), ("a", "1")], None, [], [('k"q', "v\\w"), ("ctl", "x\x02y")], [("ü", "✓"), ("A", "z")],
    [("x", None)], [("e", "")], [("z", "last"), ("m", "mid")], [("dup", "1"), ("other", "o"), ("dup", "2")],
    [("team", "ml")]]


def table() -> pa.Table:
    columns = {f.name: pa.nulls(N, f.type) for f in SCHEMA}
    columns["ProviderName"] = pa.array(STRINGS, pa.string())
    columns["ResourceId"] = pa.array(["i-0123"] * N, pa.string())  # nothing to escape in this one
    columns["BilledCost"] = pa.array(MONEY, SCHEMA.field("BilledCost").type)
    columns["ChargePeriodStart"] = pa.array(TIMES, SCHEMA.field("ChargePeriodStart").type)
    columns["x_SourceRow"] = pa.array(ROWS, pa.int64())
    columns["Tags"] = pa.array(TAGS, SCHEMA.field("Tags").type)
    return pa.table(columns, schema=SCHEMA)


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _cell(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _plain(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def _write(fmt: str, t: pa.Table) -> bytes:
    sink = io.BytesIO()
    with LineItemWriter(fmt, sink) as writer:
        writer.write(t.slice(0, 4))  # two chunks, the second one sliced
        writer.write(t.slice(4))
    return sink.getvalue()


def test_jsonl_is_what_json_dumps_writes() -> None:
    want = b""
    for record in table().to_pylist():
        record = {k: _cell(v) for k, v in record.items()}
        record["Tags"] = dict(record["Tags"]) if record["Tags"] else {}  # dict(): a repeated key's last value
        want += json.dumps(record, ensure_ascii=False).encode() + b"\n"
    assert _write("jsonl", table()) == want
    lines = _write("jsonl", table()).decode().split("\n")  # not splitlines(): U+2028 is in a value
    assert json.loads(lines[4])["BilledCost"] == "123456789012345678.123456789012345678"
    assert json.loads(lines[7])["BilledCost"] == "0.0000001" and json.loads(lines[2])["BilledCost"] == "0"
    assert json.loads(lines[8])["BilledCost"] == "0.0000000004" and json.loads(lines[9])["BilledCost"] == "-0.00000000025"
    assert json.loads(lines[8])["Tags"] == {"dup": "2", "other": "o"}


def test_csv_is_what_the_csv_module_reads_back() -> None:
    rows = list(csv.reader(io.StringIO(_write("csv", table()).decode(), newline="")))
    header, body = rows[0], rows[1:]
    assert header == SCHEMA.names and len(body) == N
    for got, record in zip(body, table().to_pylist(), strict=True):
        cells = dict(zip(header, got, strict=True))
        assert cells["ProviderName"] == (record["ProviderName"] or "")
        tags = dict(record["Tags"]) if record["Tags"] else {}
        assert cells["Tags"] == (json.dumps(tags, ensure_ascii=False, sort_keys=True) if tags else "")
        start = record["ChargePeriodStart"]
        assert cells["ChargePeriodStart"] == (start.strftime("%Y-%m-%dT%H:%M:%SZ") if start else "")
        assert cells["x_SourceRow"] == ("" if record["x_SourceRow"] is None else str(record["x_SourceRow"]))
        billed = record["BilledCost"]
        assert (Decimal(cells["BilledCost"]) if cells["BilledCost"] else None) == billed
