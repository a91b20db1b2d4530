"""What every export family shares: the header, the error log, the format and plan contract."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from burnguard.core.columnar import (
    NULL_TEXTS,
    BadValue,
    as_string,
    blank_to_null,
    decode_utf8,
    distinct_apply,
    to_decimal,
    to_np,
    to_timestamp,
)
from burnguard.core.errors import InputError, MissingColumnError
from burnguard.core.lineitem import FIELDS, SCHEMA
from burnguard.core.money import ISO_4217, currency_problem

_LOCALIZED = re.compile(r"^.*\(([A-Za-z0-9_/ .:-]+)\)\s*$")


def english_name(name: str) -> str:
    """Azure's localized headers carry the English name in parentheses:
    ``Abonnement-GUID (SubscriptionGuid)`` → ``SubscriptionGuid``."""
    m = _LOCALIZED.match(name)
    return m.group(1).strip() if m else name.strip()


class Header:
    """A file's own column names, resolved by name (never by position).

    ``names`` are the names the reader uses: the file's, with a UTF-8 BOM removed and
    duplicates made unique (``Cost``, ``Cost#2``). Lookups are case-insensitive and see through
    localized names.
    """

    def __init__(self, names: Sequence[str]):
        cleaned = [n.lstrip("\ufeff") for n in names]
        self.original = cleaned
        self.names: list[str] = []
        counts: dict[str, int] = {}
        for n in cleaned:
            counts[n] = counts.get(n, 0) + 1
            self.names.append(n if counts[n] == 1 else f"{n}#{counts[n]}")
        self._by_key: dict[str, str] = {}
        for n in self.names:
            for key in (n.casefold(), english_name(n).casefold()):
                self._by_key.setdefault(key, n)

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def get(self, *candidates: str) -> str | None:
        """The file's name of the first candidate present, or ``None``."""
        for c in candidates:
            hit = self._by_key.get(c.casefold())
            if hit is not None:
                return hit
        return None

    def require(self, what: str, *candidates: str, file: str | None = None) -> str:
        hit = self.get(*candidates)
        if hit is None:
            raise MissingColumnError(
                f"missing required column {what} (looked for: {', '.join(candidates)})", file=file, field=what
            )
        return hit

    def count(self, *names: str) -> int:
        return sum(1 for n in names if self.get(n) is not None)


@dataclass
class ReadContext:
    """Per-file state of one normalization: where errors go, and the file's settings."""

    file: str
    strict: bool = False
    default_currency: str | None = None
    #: ``actual`` / ``amortized`` for Azure cost exports when a manifest says so.
    cost_basis: str | None = None
    max_kept_errors: int = 100
    errors: list[InputError] = field(default_factory=list)
    error_count: int = 0
    skipped_rows: int = 0
    #: Per-file decisions taken once (e.g. day-first dates), keyed by column.
    decisions: dict[str, object] = field(default_factory=dict)
    #: File-level notes that cost nothing but a reader should know (shown in the summary).
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def error(self, err: InputError) -> None:
        """Record one error; in strict mode it stops the run."""
        if self.strict:
            raise err
        self.error_count += 1
        if len(self.errors) < self.max_kept_errors:
            self.errors.append(err)

    def bad_values(self, bad: Iterable[BadValue], rows: np.ndarray, column: str) -> None:
        for b in bad:
            self.error(InputError(f"{b.text!r}: {b.reason}" if b.text not in b.reason else b.reason,
                                  file=self.file, row=int(rows[b.index]), field=column))


class Batch:
    """One slice of a file being normalized: its columns by file name and record numbers."""

    def __init__(self, table: pa.Table, rows: np.ndarray, ctx: ReadContext, *, blanks_are_null: bool = False,
                 clean: Iterable[str] = ()):
        self.table = table
        self.rows = rows
        self.ctx = ctx
        self.drop = np.zeros(table.num_rows, dtype=bool)
        #: CSV batches come with blanks and NULL already null (the parser did it).
        self.blanks_are_null = blanks_are_null
        self._text_cache: dict[str, pa.Array] = {}
        #: columns whose blanks are already null (``clean``: done ahead, see :func:`text_ahead`)
        self._clean: set[str] = set(clean)
        #: dictionary columns the transform read as text, and those it read otherwise (codes,
        #: raw values): the first only can be decoded ahead, in the reader's thread
        self.dictionary_text: set[str] = set()
        self.dictionary_other: set[str] = set()
        #: the table's column names (``Table.column_names`` builds a new list at each call)
        self._names = frozenset(table.column_names)

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def raw(self, name: str | None) -> pa.Array | pa.ChunkedArray | None:
        if name is not None and name in self._names and pa.types.is_dictionary(self.table.schema.field(name).type):
            self.dictionary_other.add(name)
        return self._raw(name)

    def _raw(self, name: str | None) -> pa.Array | pa.ChunkedArray | None:
        if name is None or name not in self._names:
            return None
        column = self.table.column(name)
        if pa.types.is_dictionary(column.type):
            # Parquet string columns are read dictionary-encoded (see Normalizer): decoded here,
            # with a take of the dictionary (about half the CPU of Arrow's dictionary cast).
            column = decode_dictionary(column)
        arr, bad = decode_utf8(column)
        self.report(bad, name)
        return arr

    def _clean_dictionary(self, name: str) -> None:
        """Blanks and ``NULL`` to null in a dictionary column's (few) distinct values, before
        it is decoded: one pass over the dictionary instead of one over the rows."""
        column = self.table.column(name)
        if not pa.types.is_dictionary(column.type) or not pa.types.is_string(column.type.value_type):
            return
        dictionaries = [c.dictionary for c in column.chunks]
        cleaned = [_blank_to_null_dictionary(d) for d in dictionaries]
        if any(c is not d for c, d in zip(cleaned, dictionaries, strict=True)):
            chunks = [pa.DictionaryArray.from_arrays(c.indices, d) for c, d in zip(column.chunks, cleaned, strict=True)]
            column = pa.chunked_array(chunks, type=column.type)
            self.table = self.table.set_column(self.table.column_names.index(name), name, column)
        self._clean.add(name)

    def report(self, bad: list[BadValue], name: str, drop: bool = True) -> None:
        """Record bad values found by a converter (``drop`` removes their rows)."""
        if bad:
            self.ctx.bad_values(bad, self.rows, name)
            if drop:
                for b in bad:
                    self.drop[b.index] = True

    def text(self, name: str | None, *, nulls: bool = True) -> pa.Array:
        """A string column with blanks (and ``NULL``) as null; all-null when absent."""
        if name is not None and name in self._text_cache:
            return self._text_cache[name]
        if name is not None and name in self._names and pa.types.is_dictionary(self.table.schema.field(name).type):
            (self.dictionary_text if nulls else self.dictionary_other).add(name)
        if nulls and not self.blanks_are_null and name is not None and name in self._names:
            self._clean_dictionary(name)
        arr = self._raw(name)
        if arr is None:
            return pa.nulls(len(self), pa.string())
        s = as_string(arr)
        if nulls and not self.blanks_are_null and name not in self._clean:
            s = blank_to_null(s)
        if name is not None:
            self._text_cache[name] = s
        return s

    def distinct(self, name: str | None) -> Distinct:
        """:meth:`text` as a :class:`Distinct`; a dictionary column (Parquet) is used as read."""
        if name is not None and name in self._names:
            column = self.table.column(name)
            if pa.types.is_dictionary(column.type) and pa.types.is_string(column.type.value_type):
                self.dictionary_other.add(name)
                if not self.blanks_are_null and name not in self._clean:
                    self._clean_dictionary(name)
                return Distinct(self.table.column(name))
        return Distinct(self.text(name))

    def money(self, name: str | None, *, required: bool = False, label: str | None = None) -> pa.Array:
        """A money column; ``required`` makes an empty cell a bad row."""
        arr = self.raw(name)
        if arr is None:
            return pa.nulls(len(self), SCHEMA.field("BilledCost").type)
        values, bad = to_decimal(arr)
        assert name is not None
        self.report(bad, name)
        if required:
            self.require_present(values, name, label or name)
        return values

    def money_where(self, name: str | None, where: np.ndarray) -> pa.Array:
        """:meth:`money` of the rows ``where`` holds only, in row order: for a column that only
        some line item types use (a Savings Plan's or a reservation's costs), whose other cells
        are neither converted nor judged."""
        index = np.flatnonzero(where)
        arr = self.raw(name)
        if arr is None:
            return pa.nulls(len(index), SCHEMA.field("BilledCost").type)
        values, bad = to_decimal(arr.take(pa.array(index)))
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        assert name is not None
        self.report([BadValue(int(index[b.index]), b.text, b.reason) for b in bad], name)
        return values

    def timestamp(self, name: str | None, *, required: bool = False) -> pa.Array:
        arr = self.raw(name)
        if arr is None:
            return pa.nulls(len(self), SCHEMA.field("ChargePeriodStart").type)
        assert name is not None
        day_first = self._day_first(name, arr)
        values, bad = to_timestamp(arr, day_first=day_first)
        self.report(bad, name)
        if required:
            self.require_present(values, name, name)
        return values

    def _day_first(self, name: str, arr: pa.Array) -> bool:
        from burnguard.core.timeparse import slash_order

        key = f"day_first:{name}"
        if key not in self.ctx.decisions and (pa.types.is_string(arr.type) or pa.types.is_binary(arr.type)):
            distinct = pc.unique(arr).drop_null().to_pylist()
            sample = [v if isinstance(v, str) else v.decode("utf-8", "replace") for v in distinct]
            slashed = [v for v in sample[:1000] if "/" in v]
            self.ctx.decisions[key] = slash_order(slashed) if slashed else False
        return bool(self.ctx.decisions.get(key, False))

    def require_present(self, values: pa.Array, name: str, label: str) -> None:
        missing = np.flatnonzero(to_np(pc.is_null(values)) & ~self.drop)
        for i in missing:
            self.ctx.error(InputError(f"{label} is empty", file=self.ctx.file, row=int(self.rows[i]), field=name))
            self.drop[i] = True

    def flag(self, mask: np.ndarray, column: str, reason: str) -> None:
        """Mark rows bad for a reason computed by the plan (e.g. a missing effective cost)."""
        for i in np.flatnonzero(mask & ~self.drop):
            self.ctx.error(InputError(reason, file=self.ctx.file, row=int(self.rows[i]), field=column))
            self.drop[i] = True

    def assemble(self, columns: dict[str, pa.Array | pa.Scalar | str | None]) -> pa.Table:
        """Build the canonical table from ``columns`` (missing ones are null), dropping bad rows."""
        n = len(self)
        self._check_currency(columns)
        arrays: list[pa.Array] = []
        for f in FIELDS:
            value = columns.get(f.name)
            if f.name == "x_SourceFile":
                value = self.ctx.file
            if f.name == "x_SourceRow":
                value = pa.array(self.rows, pa.int64())
            if value is None:
                arrays.append(pa.nulls(n, f.type))
            elif isinstance(value, (pa.Array, pa.ChunkedArray)):
                arrays.append(value if value.type == f.type else pc.cast(value, f.type))
            else:
                scalar = value if isinstance(value, pa.Scalar) else pa.scalar(value, f.type)
                arrays.append(pa.repeat(scalar, n))
        table = pa.Table.from_arrays(arrays, schema=SCHEMA)
        if self.drop.any():
            self.ctx.skipped_rows += int(self.drop.sum())
            table = table.filter(pa.array(~self.drop))
        return table


    def _check_currency(self, columns: dict[str, pa.Array | pa.Scalar | str | None]) -> None:
        """Currency codes are ISO 4217: surrounding blanks are trimmed, anything else (``XYZ``,
        ``usd``) is a row error naming the field, never a bucket of its own."""
        value = columns.get("BillingCurrency")
        if value is None:
            return
        if isinstance(value, (pa.Array, pa.ChunkedArray)) and pa.types.is_string(value.type) \
                and all(v is None or v in ISO_4217 for v in pc.unique(value).to_pylist()):
            return  # the common case: every code already a trimmed ISO 4217 code (one hash pass)
        if isinstance(value, (str, pa.Scalar)):
            value = pa.repeat(value if isinstance(value, pa.Scalar) else pa.scalar(value, pa.string()), len(self))
        trimmed = pc.utf8_trim_whitespace(pc.cast(value, pa.string()))
        columns["BillingCurrency"] = trimmed
        known = pc.fill_null(pc.is_in(trimmed, value_set=pa.array(sorted(ISO_4217), pa.string())), True)
        if pc.all(known).as_py():
            return
        unknown = ~to_np(known)
        texts = np.array(pc.fill_null(pc.cast(value, pa.string()), "").to_pylist(), dtype=object)
        # Name the file's own currency column (``lineItem/CurrencyCode``, ``BillingCurrencyCode``...).
        source = next((c for c in self.table.column_names if "cost" not in c.casefold()
                       and c.casefold().endswith(("currency", "currencycode"))), "BillingCurrency")
        for text in sorted(set(texts[unknown].tolist())):
            self.flag(unknown & (texts == text), source, currency_problem(text) or "")


#: Dictionaries up to this size are checked for blanks in Python (a few microseconds) rather
#: than with Arrow kernels (five calls of about 10 µs each, per column and chunk).
_SMALL_DICTIONARY = 256


def _blank_to_null_dictionary(dictionary: pa.Array) -> pa.Array:
    """:func:`blank_to_null` of a dictionary's values (the same array when none is blank)."""
    if len(dictionary) > _SMALL_DICTIONARY:
        return blank_to_null(dictionary)
    values = dictionary.to_pylist()
    if not any(v in _NULL_TEXT_SET for v in values):
        return dictionary
    return pa.array([None if v in _NULL_TEXT_SET else v for v in values], dictionary.type)


_NULL_TEXT_SET = frozenset(NULL_TEXTS.to_pylist())


def text_ahead(batch: pa.RecordBatch, names: Iterable[str]) -> pa.RecordBatch:
    """``batch`` with its dictionary columns ``names`` decoded, blanks and ``NULL`` made null
    first (in the dictionary): what :meth:`Batch.text` would do, done in the reader's thread
    for the columns a transform reads as text only (a :class:`Batch` is then told they are
    ``clean``)."""
    schema = batch.schema
    for name in names:
        i = schema.get_field_index(name)
        if i < 0 or not pa.types.is_dictionary(schema.field(i).type) \
                or not pa.types.is_string(schema.field(i).type.value_type):
            continue
        column = batch.column(i)
        values = _blank_to_null_dictionary(column.dictionary).take(column.indices)
        batch = batch.set_column(i, pa.field(name, values.type), values)
        schema = batch.schema
    return batch


def decode_dictionary(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A dictionary-encoded column as its plain values (one ``take`` per chunk)."""
    if isinstance(column, pa.ChunkedArray):
        chunks = [c.dictionary.take(c.indices) for c in column.chunks]
        return chunks[0] if len(chunks) == 1 else pa.chunked_array(chunks, column.type.value_type)
    return column.dictionary.take(column.indices)


class Plan(ABC):
    """How one file of a known format maps onto line items."""

    #: e.g. ``aws-cur``, ``focus-1.2``, ``azure-ea-actual``
    variant: str
    #: the file's column names to read (from :class:`Header`)
    columns: list[str]

    @abstractmethod
    def transform(self, batch: Batch) -> pa.Table:
        """Map one batch of raw columns to the canonical schema (bad rows dropped)."""


class Format(ABC):
    """One family of billing exports, recognized from a header."""

    name: str
    description: str

    @abstractmethod
    def score(self, header: Header) -> int:
        """How surely ``header`` is this format: 0 for not at all."""

    @abstractmethod
    def plan(self, header: Header, ctx: ReadContext) -> Plan:
        """Resolve the columns; raises :class:`MissingColumnError` for a column it needs."""


def constant(value: str | None, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, pa.string()), n)


def coalesce(*arrays: pa.Array | pa.ChunkedArray | None) -> pa.Array | pa.ChunkedArray:
    present = [a for a in arrays if a is not None]
    return pc.coalesce(*present) if len(present) > 1 else present[0]


class Distinct:
    """A low-cardinality string column (line item types, usage types, instance types) as its
    distinct values and one code per row: columns derived from it are computed once per
    distinct value and spread back with one ``take``, and comparisons compare codes."""

    def __init__(self, arr: pa.Array | pa.ChunkedArray):
        if isinstance(arr, pa.ChunkedArray):
            if pa.types.is_dictionary(arr.type) and arr.num_chunks > 1:
                arr = arr.unify_dictionaries()
            arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
        # A dictionary column (Parquet strings) is already encoded: no hashing of the rows.
        encoded = arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(arr)
        self.array = arr
        self.values: list[str | None] = encoded.dictionary.to_pylist()
        codes = encoded.indices
        if encoded.dictionary.null_count:  # blanks turned null in the dictionary: null codes
            blank = pa.array([j for j, v in enumerate(self.values) if v is None], codes.type)
            codes = pc.if_else(pc.is_in(codes, value_set=blank), pa.scalar(None, codes.type), codes)
        #: integer codes into :attr:`values`, null where the column is null
        self.codes: pa.Array = codes
        self._np: np.ndarray | None = None

    def np_codes(self) -> np.ndarray:
        """The codes as numpy, ``-1`` for null."""
        if self._np is None:
            self._np = pc.fill_null(self.codes, -1).to_numpy(zero_copy_only=False)
        return self._np

    def map(self, func: Callable[[str], object], out_type: pa.DataType) -> pa.Array:
        """``func`` of each distinct (non-null) value, spread to the rows; null stays null."""
        return pa.array([func(v) if v is not None else None for v in self.values], out_type).take(self.codes)

    def lookup(self, mapping: dict[str, str], default: str | None = None) -> pa.Array:
        """:func:`lookup` on the distinct values (case-insensitive; null and unknown get ``default``)."""
        folded = {k.casefold(): v for k, v in mapping.items()}
        out = pa.array([folded.get(v.casefold(), default) if v is not None else default for v in self.values],
                       pa.string()).take(self.codes)
        return pc.fill_null(out, default) if default is not None else out

    def equals(self, value: str) -> np.ndarray:
        """Rows whose value is exactly ``value`` (null rows are not)."""
        codes = [j for j, v in enumerate(self.values) if v == value]  # a read dictionary may repeat
        if not codes:
            return np.zeros(len(self.array), dtype=bool)
        if len(codes) == 1:
            out: np.ndarray = self.np_codes() == codes[0]
            return out
        return np.isin(self.np_codes(), codes)


def lookup(arr: pa.Array | pa.ChunkedArray, mapping: dict[str, str],
           default: str | None = None) -> pa.Array | pa.ChunkedArray:
    """Map string values through ``mapping`` (case-insensitive), once per distinct value."""
    folded = {k.casefold(): v for k, v in mapping.items()}
    out = distinct_apply(arr, lambda values: pa.array(
        [folded.get(v.casefold(), default) if v is not None else default for v in values], pa.string()))
    if default is not None:
        out = pc.fill_null(out, default)
    return out
