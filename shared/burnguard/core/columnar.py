"""Vectorized conversions on Arrow arrays, with per-row error reporting.

Each converter returns the converted array and a list of :class:`BadValue` (row index within
the array, the offending text, the reason). Fast paths are Arrow kernels; a slow path in
Python runs only on the values Arrow refuses, so a clean batch never leaves C++. Converters
accept what each container gives: strings from CSV, numbers from Parquet or JSON, native
timestamps from Parquet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from burnguard.core.lineitem import MONEY, TAGS, TIMESTAMP, wide_money
from burnguard.core.money import NUMBER_PATTERN, NumberError, parse_decimal
from burnguard.core.tags import TagError
from burnguard.core.timeparse import TimestampError, parse_timestamp

NULL_TEXTS = pa.array(["", "NULL", "null"])


@dataclass(frozen=True, slots=True)
class BadValue:
    index: int
    text: str
    reason: str


def as_string(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Any scalar column as a string array (binary is decoded as UTF-8 by the caller)."""
    if pa.types.is_string(arr.type):
        return arr
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.string())
    return pc.cast(arr, pa.string())


def to_np(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A (boolean or numeric) Arrow array as numpy, whatever its chunking."""
    out: np.ndarray = _combine(arr).to_numpy(zero_copy_only=False)
    return out


def distinct_apply(arr: pa.Array | pa.ChunkedArray,
                   results: Callable[[list[Any]], pa.Array]) -> pa.Array | pa.ChunkedArray:
    """Compute ``results`` once over the distinct values of ``arr`` and spread them back."""
    uniques = pc.unique(arr)
    mapped = results(uniques.to_pylist())
    return mapped.take(pc.index_in(arr, value_set=uniques))


def _combine(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        return arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr


def decode_utf8(arr: pa.Array | pa.ChunkedArray) -> tuple[pa.Array | pa.ChunkedArray, list[BadValue]]:
    """Binary → string, naming the rows whose bytes are not UTF-8 (they become null)."""
    if not pa.types.is_binary(arr.type):
        return arr, []
    try:
        return pc.cast(arr, pa.string()), []
    except pa.ArrowInvalid:
        arr = _combine(arr)
        bad: list[BadValue] = []
        values: list[str | None] = []
        for i, raw in enumerate(arr.to_pylist()):
            if raw is None:
                values.append(None)
                continue
            try:
                values.append(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                bad.append(BadValue(i, repr(raw[max(0, exc.start - 10): exc.end + 10]),
                                    f"bytes are not UTF-8 at position {exc.start}; burnguard reads UTF-8 exports"))
                values.append(None)
        return pa.array(values, pa.string()), bad


def blank_to_null(arr: pa.Array | pa.ChunkedArray, null_texts: pa.Array = NULL_TEXTS) -> pa.Array | pa.ChunkedArray:
    """Strings: ``""`` (and ``NULL``/``null`` by default) become null."""
    if not pa.types.is_string(arr.type):
        return arr
    if null_texts is NULL_TEXTS:
        # Most columns hold none of them: lengths (from the offsets) rule that out cheaply.
        lengths = pc.binary_length(arr)
        if not pc.any(pc.or_(pc.equal(lengths, 0), pc.equal(lengths, 4))).as_py():
            return arr
    return pc.if_else(pc.is_in(arr, value_set=null_texts), pa.scalar(None, arr.type), arr)


def to_decimal(arr: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, list[BadValue]]:
    """Money or quantity column → ``decimal128(36, 18)``; blanks and ``NULL`` become null.

    Floats (Parquet DOUBLE, JSON numbers) are read through their shortest decimal text, the
    value the exporter meant, never through binary float arithmetic.
    """
    t = arr.type
    if pa.types.is_decimal(t):
        return (arr if t == MONEY else _rescale(arr)), []
    if pa.types.is_integer(t):
        return pc.cast(arr, MONEY), []
    if pa.types.is_null(t):
        return pa.nulls(len(arr), MONEY), []
    if pa.types.is_floating(t):
        return _float_to_decimal(arr)
    arr = as_string(arr)
    try:
        return pc.cast(arr, MONEY), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    cleaned = _combine(blank_to_null(pc.utf8_trim_whitespace(arr)))
    # Valid numbers with more than 18 fractional digits (Azure writes 15 significant digits
    # in scientific notation) fail Arrow's safe cast. Arrow's unsafe cast truncates them at
    # 1e-18, the scalar parser's rule too, but is not trusted blindly: a value whose decimal
    # disagrees with its float reading (an overflow, or Arrow's rescaling of tiny values) goes
    # to the scalar parser, as does any invalid text. Only those values are read in Python.
    suspect = np.ones(len(cleaned), dtype=bool)
    unsafe = pa.nulls(len(cleaned), MONEY)
    valid = pc.fill_null(pc.match_substring_regex(cleaned, NUMBER_PATTERN), False)
    if pc.any(valid).as_py():
        numbers = pc.if_else(valid, cleaned, pa.scalar(None, pa.string()))
        try:
            unsafe = pc.cast(numbers, MONEY, safe=False)
            approx = pc.cast(numbers, pa.float64())
            back = pc.cast(unsafe, pa.float64())
            tolerance = pc.add(pc.multiply(pc.abs(approx), 1e-12), 1e-18)
            close = pc.less_equal(pc.abs(pc.subtract(back, approx)), tolerance)
            same_sign = pc.or_(pc.equal(back, 0.0), pc.equal(pc.sign(back), pc.sign(approx)))
            toward_zero = pc.less_equal(pc.abs(back), pc.multiply(pc.abs(approx), 1 + 1e-12))
            trusted = pc.and_(pc.and_(close, same_sign), toward_zero)
            suspect = ~to_np(pc.fill_null(trusted, False))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    suspect &= to_np(pc.is_valid(cleaned))
    if not suspect.any():
        return unsafe, []
    bad: list[BadValue] = []
    texts = cleaned.to_pylist()
    fixed: dict[int, Decimal | None] = {}
    for index in np.flatnonzero(suspect).tolist():
        try:
            fixed[index] = parse_decimal(texts[index])
        except NumberError as exc:
            bad.append(BadValue(index, str(texts[index]), str(exc)))
            fixed[index] = None
    values = unsafe.to_pylist()
    for i, value in fixed.items():
        values[i] = value
    return pa.array(values, MONEY), bad


#: Floats below this magnitude, with at most ``FLOAT_FAST_PLACES`` decimals, are exact from numpy.
FLOAT_FAST_LIMIT = 1e5
FLOAT_FAST_PLACES = 10


def _float_to_decimal(arr: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, list[BadValue]]:
    """Float64 costs (Parquet DOUBLE) → their shortest decimal text's value, without text for
    most of them.

    For ``|x| < 1e5``, ``m = rint(x * 1e10)`` is ``d * 1e10`` whenever the shortest decimal ``d``
    of ``x`` has at most 10 decimals (the product's rounding error is below 0.25), and
    ``m / 1e10 == x`` (IEEE division is correctly rounded) says that ``m * 1e-10`` reads back
    as ``x``. Below 1e5 a float's spacing is under 1e-10, so only one multiple of 1e-10 reads
    back as ``x``: it is ``d``. Other values (more decimals, larger, NaN, infinity) take
    the text path: Arrow's shortest text, then the decimal cast.
    """
    arr = _combine(arr)
    if arr.type != pa.float64():
        return to_decimal(pc.cast(arr, pa.string()))
    n = len(arr)
    x = arr.to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore", over="ignore"):
        m = np.rint(x * 10.0**FLOAT_FAST_PLACES)
        fast = (np.abs(x) < FLOAT_FAST_LIMIT) & (m / 10.0**FLOAT_FAST_PLACES == x)
    valid = to_np(pc.is_valid(arr)) if arr.null_count else None
    slow = ~fast if valid is None else valid & ~fast
    units = np.where(fast, m, 0.0).astype(np.int64)
    bitmap = pc.is_valid(arr).buffers()[1] if arr.null_count else None
    values = pa.Array.from_buffers(MONEY, n, [bitmap, pa.py_buffer(_scaled_units(units))])
    if not slow.any():
        return values, []
    where = np.flatnonzero(slow)
    exact, bad_slow = to_decimal(pc.cast(arr.take(pa.array(where)), pa.string()))
    bad = [BadValue(int(where[b.index]), b.text, b.reason) for b in bad_slow]
    mask = np.zeros(n, dtype=bool)
    mask[where] = True
    return pc.replace_with_mask(values, pa.array(mask), exact), bad


#: ``10 ** (MONEY.scale - FLOAT_FAST_PLACES)``: from units of 1e-10 to the money type's units.
_UNIT_STEP = np.uint64(10 ** (MONEY.scale - FLOAT_FAST_PLACES))
_LOW_32 = np.uint64(0xFFFFFFFF)
_32 = np.uint64(32)


def _scaled_units(units: np.ndarray) -> np.ndarray:
    """``units * 10**8`` (int64 counts of 1e-10, ``|units| < 2**50``) as the little-endian
    128-bit two's complement words of :data:`MONEY` (scale 18): built in numpy instead of a
    decimal rescaling cast (about half the CPU). ``|units| * 10**8`` is split at bit 32: the
    low part's product is below 2**59, the high part's below 2**45, so the 128-bit sum and its
    carry are exact in unsigned 64-bit words; negatives are then negated in two's complement."""
    assert MONEY.scale - FLOAT_FAST_PLACES == 8 and FLOAT_FAST_LIMIT * 10.0**FLOAT_FAST_PLACES < 2.0**50
    negative = units < 0
    magnitude = np.abs(units).view(np.uint64)
    high = (magnitude >> _32) * _UNIT_STEP
    low = (magnitude & _LOW_32) * _UNIT_STEP
    with np.errstate(over="ignore"):
        lo = (high << _32) + low  # wraps modulo 2**64; the carry is the wrap
        hi = (high >> _32) + (lo < low).astype(np.uint64)
        words = np.empty((len(units), 2), dtype=np.uint64)
        words[:, 0] = np.where(negative, ~lo + np.uint64(1), lo)
        words[:, 1] = np.where(negative, ~hi + (lo == 0).astype(np.uint64), hi)
    return words


def _rescale(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    try:
        return pc.cast(arr, MONEY)
    except pa.ArrowInvalid:
        return pa.array([parse_decimal(str(v)) if v is not None else None for v in arr.to_pylist()], MONEY)


@lru_cache(maxsize=65536)
def _ts_cached(text: str, day_first: bool) -> datetime | None:
    return parse_timestamp(text, day_first=day_first)


def to_timestamp(arr: pa.Array | pa.ChunkedArray, *, day_first: bool = False) -> tuple[pa.Array, list[BadValue]]:
    """Timestamp column → UTC seconds. Strings are parsed once per distinct value (billing
    periods and hours repeat across thousands of rows), with the scalar parser that knows
    every export's format."""
    t = arr.type
    if pa.types.is_timestamp(t):
        # Naive timestamps are UTC: one cast keeps the instants (no time zone database lookup).
        return pc.cast(arr, TIMESTAMP, safe=False), []
    if pa.types.is_date(t):
        return pc.cast(pc.cast(arr, pa.timestamp("s")), TIMESTAMP), []
    if pa.types.is_null(t):
        return pa.nulls(len(arr), TIMESTAMP), []
    arr = as_string(arr)
    fast = _iso_timestamps(arr)
    if fast is not None:
        return fast, []
    return _parse_distinct_timestamps(_combine(arr), day_first)


def _iso_timestamps(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray | None:
    """ISO 8601 with Z or an offset, or naive ISO: Arrow's own parser, no hashing (``None``
    when any value is in another format)."""
    for fast in (pa.timestamp("ms", tz="UTC"), pa.timestamp("ms")):
        try:
            parsed_fast = pc.cast(arr, fast)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if fast.tz is None:
            parsed_fast = pc.assume_timezone(parsed_fast, "UTC")
        return pc.cast(parsed_fast, TIMESTAMP, safe=False)
    return None


def _parse_distinct_timestamps(arr: pa.Array, day_first: bool) -> tuple[pa.Array, list[BadValue]]:
    """The scalar parser once per distinct string; the bad ones reported on every row."""
    encoded = pc.dictionary_encode(arr)
    dictionary = encoded.dictionary.to_pylist()
    parsed: list[datetime | None] = []
    failed: dict[int, str] = {}
    for j, text in enumerate(dictionary):
        try:
            parsed.append(_ts_cached(text, day_first))
        except TimestampError as exc:
            parsed.append(None)
            failed[j] = str(exc)
    values = pa.array(parsed, TIMESTAMP)
    result = values.take(encoded.indices)
    bad: list[BadValue] = []
    if failed:
        idx = encoded.indices.to_numpy(zero_copy_only=False)
        for j, reason in failed.items():
            for i in np.flatnonzero(idx == j):
                bad.append(BadValue(int(i), dictionary[j], reason))
        bad.sort(key=lambda b: b.index)
    return result, bad


def map_distinct(arr: pa.Array | pa.ChunkedArray, func: Callable[[Any], Any],
                 out_type: pa.DataType) -> tuple[pa.Array | pa.ChunkedArray, list[BadValue]]:
    """Apply a Python function once per distinct value (instance types, tag JSON, SKU text).

    ``func`` may raise ``ValueError`` for a bad value: its rows are reported and become null.
    """
    if len(arr) == 0:
        return pa.array([], out_type), []
    uniques = pc.unique(arr)
    distinct = uniques.to_pylist()
    results: list[Any] = []
    failed: dict[int, str] = {}
    for j, value in enumerate(distinct):
        try:
            results.append(func(value))
        except (ValueError, TagError) as exc:
            results.append(None)
            failed[j] = str(exc)
    codes = pc.index_in(arr, value_set=uniques)
    mapped = pa.array(results, out_type).take(codes)
    bad: list[BadValue] = []
    if failed:
        idx = to_np(pc.fill_null(codes, -1))
        for j, reason in failed.items():
            for i in np.flatnonzero(idx == j):
                bad.append(BadValue(int(i), str(distinct[j])[:200], reason))
        bad.sort(key=lambda b: b.index)
    return mapped, bad


def tags_from_columns(columns: Sequence[tuple[str, pa.Array | pa.ChunkedArray]], length: int, *,
                      blanks_are_null: bool = False) -> tuple[pa.Array, list[BadValue]]:
    """Build the ``Tags`` map from one string column per tag key (AWS CUR ``resourceTags/*``).

    ``columns`` holds ``(normalized key, values)``; empty or null cells mean "no such tag".
    Entirely columnar and sort-free: the present cells are found per column, laid out row by
    row with one ``take``, and the map offsets are the running count of cells per row. Keys
    that normalize to the same name keep the first non-empty value, as the rule says.
    """
    from burnguard.core.tags import MAX_VALUE_LENGTH

    names = [key for key, _ in columns]
    k = len(columns)
    empty = pa.MapArray.from_arrays(pa.array(np.zeros(length + 1, dtype=np.int32)), pa.array([], pa.string()),
                                    pa.array([], pa.string()), type=TAGS)
    if k == 0 or length == 0:
        return empty, []
    # Left chunked (a CSV chunk is ~20 parser batches): the one concatenation below is the only copy.
    arrays = [as_string(col) for _, col in columns]
    masks: list[np.ndarray] = []
    for arr in arrays:
        if arr.null_count == len(arr):
            masks.append(np.zeros(length, dtype=bool))
        elif blanks_are_null:
            masks.append(to_np(pc.is_valid(arr)))
        else:
            masks.append(to_np(pc.fill_null(pc.not_equal(pc.binary_length(arr), 0), False)))
    present = np.stack(masks, axis=1)  # (rows, keys), row-major: cells in row order
    first_of: dict[str, int] = {}
    for j, key in enumerate(names):
        if key in first_of:  # a later spelling of the same key: only where no earlier one is set
            earlier = [i for i in range(j) if names[i] == key]
            present[:, j] &= ~present[:, earlier].any(axis=1)
        first_of.setdefault(key, j)
    cells = np.flatnonzero(present.ravel())
    if len(cells) == 0:
        return empty, []
    rows = cells // k
    cols = cells - rows * k
    stacked = pa.concat_arrays([chunk for arr in arrays
                                for chunk in (arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr])])
    values = pc.utf8_trim_whitespace(stacked.take(pa.array(cols * length + rows)))
    keys = pa.array(names, pa.string()).take(pa.array(cols))
    bad: list[BadValue] = []
    # Bytes bound characters: the character count is needed only past the limit in bytes.
    if pc.max(pc.binary_length(values)).as_py() > MAX_VALUE_LENGTH:
        lengths = pc.utf8_length(values).to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(lengths > MAX_VALUE_LENGTH):
            key = names[int(cols[i])]
            bad.append(BadValue(int(rows[i]), f"{key}=<{int(lengths[i])} characters>",
                                f"value of tag {key!r} is {int(lengths[i])} characters (limit {MAX_VALUE_LENGTH})"))
    offsets = np.zeros(length + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=length), out=offsets[1:])
    return pa.MapArray.from_arrays(pa.array(offsets), keys, values, type=TAGS), bad


def tags_from_dicts(dicts: Sequence[dict[str, str] | None]) -> pa.Array:
    """Build the ``Tags`` map from per-distinct-value dicts (already normalized)."""
    return pa.array([list(d.items()) if d else [] for d in dicts], TAGS)


def dec_add(a: pa.Array, b: pa.Array) -> pa.Array:
    """Sum of two money arrays, cast back to the money type (overflow is an error)."""
    return pc.cast(pc.add(a, b), MONEY)


def dec_sub(a: pa.Array, b: pa.Array) -> pa.Array:
    return pc.cast(pc.subtract(a, b), MONEY)


def dec_zero() -> pa.Scalar:
    return pa.scalar(Decimal(0), MONEY)


TAG_LIST = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))


def tag_entries(tags: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Explode a ``Tags`` map column: (row index, key, value) per entry, slices respected."""
    as_list = pc.cast(_combine(tags), TAG_LIST)
    flat = pc.list_flatten(as_list)
    return pc.list_parent_indices(as_list), flat.field("key"), flat.field("value")


def tag_counts(tags: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Number of tags per row (0 for none)."""
    return to_np(pc.fill_null(pc.list_value_length(pc.cast(_combine(tags), TAG_LIST)), 0))


def map_tag_rows(tags: pa.Array | pa.ChunkedArray,
                 func: Callable[[list[tuple[str, str]]], dict[str, str]]) -> tuple[pa.Array, list[BadValue]]:
    """Normalize a map column (Parquet ``map<string, string>`` tags) once per distinct map:
    ``func`` gets a row's (key, value) pairs and returns the normalized tags, or raises
    :class:`~burnguard.core.tags.TagError` (that row is then reported)."""
    tags = _combine(tags)
    n = len(tags)
    _parents, keys, values = tag_entries(tags)
    pairs = pc.binary_join_element_wise(keys, pc.fill_null(values, ""), "\x1f")
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(tag_counts(tags), out=offsets[1:])
    per_row = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), pairs), "\x1e")

    def normalize(text: str | None) -> list[dict[str, str]]:
        entries = [tuple(item.split("\x1f", 1)) for item in text.split("\x1e")] if text else []
        return [{"key": k, "value": v} for k, v in func(entries).items()]  # type: ignore[arg-type]

    values_out, bad = map_distinct(per_row, normalize, TAG_LIST)
    readable = [BadValue(b.index, b.text.replace("\x1e", ", ").replace("\x1f", "=")[:120], b.reason) for b in bad]
    return tag_list_to_map(values_out), readable


def tag_list_to_map(entries: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``list<struct<key, value>>`` → the ``Tags`` map (Arrow has no cast for it); null → empty."""
    entries = _combine(entries)
    offsets = np.asarray(entries.offsets, dtype=np.int64)
    flat = entries.flatten()
    return pa.MapArray.from_arrays(pa.array((offsets - offsets[0]).astype(np.int32)), flat.field("key"),
                                   flat.field("value"), type=TAGS)


@dataclass(frozen=True, slots=True)
class CurrencySums:
    """Rows and exact cost sums of a line item table for one ``BillingCurrency``."""

    currency: str
    rows: int
    billed: Decimal
    effective: Decimal


def currency_sums(table: pa.Table) -> list[CurrencySums]:
    """One Arrow group-by of a line item table per ``BillingCurrency`` (sums are exact)."""
    if table.num_rows == 0:
        return []
    # Widened before summing: decimal128 sums wrap silently past 38 digits (20-digit costs, VND).
    money = pa.table({"BillingCurrency": table.column("BillingCurrency"),
                      "BilledCost": wide_money(table.column("BilledCost")),
                      "EffectiveCost": wide_money(table.column("EffectiveCost"))})
    grouped = money.group_by("BillingCurrency").aggregate(
        [([], "count_all"), ("BilledCost", "sum"), ("EffectiveCost", "sum")]
    )
    columns = (grouped.column(n).to_pylist() for n in
               ("BillingCurrency", "count_all", "BilledCost_sum", "EffectiveCost_sum"))
    return [CurrencySums(cur, rows, billed or Decimal(0), effective or Decimal(0))
            for cur, rows, billed, effective in zip(*columns, strict=True)]
