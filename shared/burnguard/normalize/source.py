"""Byte streams in, record batches out: compression, container and header, all streaming.

A source is any readable binary file-like object (a local file, an S3 ``StreamingBody``, a GCS
or Blob download stream). Nothing here reads a whole file into memory:

* the first bytes are sniffed for gzip, zip, Parquet, JSON or CSV (never the name alone), and
  the head of the decompressed data is kept to read the header and the first record;
* gzip CSV and JSON are decoded by ISA-L on Arrow's read-ahead thread (Arrow's native gzip
  stream where ISA-L is not installed); Arrow's streaming readers then parse 1 MiB blocks,
  converting only the columns a format needs;
* Parquet needs random access: a non-seekable stream is spooled to a temporary file first
  (Lambda's /tmp, a Cloud Function's memory-backed /tmp), then read row group by row group;
* ZIP (legacy CUR's other compression) is also spooled, then its single member streamed.

Why Arrow's CSV reader and not polars' (issue 15, measured on a 1M-row, 131-column legacy CUR
of 1.0 GB uncompressed, 90 MB gzip; CPU seconds, as the shared 2-core machine made wall times
swing 2-3x):

* polars cannot say that a row has a wrong number of fields when only some columns are read:
  a short row is padded with nulls, a long row is cut (pola-rs/polars#28350, still so in
  polars 2.1), so a shifted row would be read as good data. Arrow stops on such a row, and the
  row handler then names and skips it;
* on the 38-39 columns a CUR plan reads, polars' streaming reader is not cheaper than Arrow's
  here: 2.9-3.1 CPU s against 2.4-2.7 (both with gzip), and its peak RSS is 321-327 MB
  against Arrow's 150-160 (the issue's budget is 256 MB). From a Python stream (an S3 body)
  polars reads the whole object into memory first (2 GB RSS here). DuckDB 2.0's reader
  (``strict_mode``) took 4.4 CPU s and 390-410 MB;
* polars' runtime library is 178 MB, more than what is left under Lambda's 250 MB unzipped
  limit next to pyarrow and numpy.

Where a CSV.gz's CPU goes (same file): ISA-L gunzip 0.65-0.7 s (on Arrow's read-ahead
thread); Arrow's parser 1.9-2.1 s, most of it tokenizing: it splits all 131 columns whatever
``include_columns`` says (converting 5 columns costs 2.2 s with gunzip, 39 columns 2.5 s),
so reading fewer columns saves little; the transform 0.9-1.1 s. Measured and kept:

* columns are read as strings: Arrow checks UTF-8 while it converts (about 0.15 s more in
  the parser) instead of a bytes-to-string cast per column in the transform (0.3 s, and the
  later passes then run on fewer, string chunks: the transform dropped from about 1.4 to
  1.1 CPU s). A cell that is not UTF-8 stops that pass (:func:`is_utf8_error`); the reader
  goes back to bytes from there and the transform names the cell;
* Parquet costs (DOUBLE) become exact decimals in numpy, not through text (see
  ``columnar._float_to_decimal``), and Parquet dictionary columns give their codes to the
  per-distinct-value transforms as read.

Retries (a row with a wrong field count, a row longer than a block, a cell not UTF-8) read
the file again from the start; a seekable stream is then shared by the passes, each reading
through its own :class:`SharedStream` view, because Arrow's reader of an abandoned pass may
still be reading ahead in its own thread (see ``MAX_CSV_BLOCK_SIZE`` for the rows this lost).

1 MiB parse blocks rather than 512 KiB (fewer, larger batches for the transform): on a 1M-row
CUR.gz 0.1-0.2 s and 0.2 CPU s less on 2 cores and on 1, for about 30 MB more peak RSS (220
against 190 MB). Measured and left out: ``use_threads`` in the CSV reader (0.2-0.3 CPU s
more, no faster); ``newlines_in_values=False`` (2% less, but a quoted newline would then look
like a row with a wrong field count); two transform threads for Parquet (GIL-bound: 15-20%
more CPU, no faster); transforming Parquet 50k rows a call (20% less CPU, but peak RSS 219 ->
335-360 MB); parsing timestamps once per distinct value (no cheaper than Arrow's ISO parser);
parsing record-aligned pieces of the text in two Arrow readers at once (``read_csv`` per piece:
0.5 CPU s more than the one streaming reader, wall no better); Arrow converting the costs to
decimals and the times to timestamps itself (0.1 CPU s more in the parser than the casts).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import shutil
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from burnguard.core.errors import InputError

try:  # ISA-L (python-isal): same output as zlib, about 3x faster, decoded off the GIL; optional.
    from isal import igzip as _isal
except ImportError:  # pragma: no cover - exercised where isal is not installed
    _isal = None  # type: ignore[assignment]

CSV_BLOCK_SIZE = 1 << 20
CSV_THREADS = False
JSON_BLOCK_SIZE = 1 << 22
HEAD_BYTES = 256 << 10
MAX_HEADER_BYTES = 16 << 20
RAW_CHUNK = 1 << 20
SPOOL_MEMORY = 8 << 20

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
PARQUET_MAGIC = b"PAR1"


class PrefixedStream(io.RawIOBase):
    """A stream that first returns ``prefix`` bytes, then the rest of ``inner``."""

    def __init__(self, prefix: bytes, inner: IO[bytes]):
        self._prefix = memoryview(prefix)
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return bytes(self._prefix) + self._inner.read()
        if self._prefix:
            k = min(size, len(self._prefix))
            out = bytes(self._prefix[:k])
            self._prefix = self._prefix[k:]
            return out
        return self._inner.read(size)


class _Guarded(io.RawIOBase):
    """Turns decompression failures into errors that name the file."""

    def __init__(self, inner: IO[bytes], name: str):
        self._inner = inner
        self._name = name
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        try:
            data = self._inner.read(-1 if size is None else size)
        except (EOFError, OSError, zlib.error) as exc:
            raise InputError(
                f"gzip stream is truncated or corrupt after {self.bytes_read:,} decompressed bytes ({exc})",
                file=self._name,
            ) from None
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._inner.close()
        super().close()


class SharedStream:
    """A seekable stream that the reader's passes over a file take turns on: each
    :meth:`new_pass` is a one-way view that reads at its own position, and the pass before it
    can read nothing more once the next one starts.

    Arrow's CSV and JSON streaming readers read their input ahead in a background thread
    (Arrow's I/O pool, up to 32 blocks ahead, whatever ``use_threads`` says). A pass that stops
    on an error leaves that thread reading on. When the reader rewound the one stream under it
    for its next pass, a late read of the abandoned pass (typically its end-of-file probe)
    could take the bytes the new pass was to read next: the new pass then saw the end of the
    file early, a cell was cut (at 261,931 characters in the case found: the head the new pass
    had read from memory) and the rows after it were lost without a word. A pass's view
    therefore reads under one lock with the others, seeks back to its own position when
    another view moved the stream, and once retired raises instead of reading (the abandoned
    reader gets an error nobody waits for). :meth:`new_pass` takes the lock, so it returns only
    after a read the old pass had already begun is over."""

    def __init__(self, stream: IO[bytes], name: str):
        self._stream = stream
        self._name = name
        self._start = stream.tell()
        self._lock = threading.Lock()
        self._current: _Pass | None = None
        self._owner: _Pass | None = None  # the view the stream's position is at the end of

    def new_pass(self) -> IO[bytes]:
        with self._lock:
            view = _Pass(self)
            if self._current is None:
                self._owner = view  # the stream is where the first pass starts: no seek
            self._current = view
            return view  # type: ignore[return-value]

    def _read(self, view: _Pass, size: int) -> bytes:
        with self._lock:
            if view is not self._current:
                raise OSError(f"{self._name}: read by a pass over the file that was abandoned")
            if self._owner is not view:
                self._stream.seek(self._start + view.position)
                self._owner = view
            data = _read_raw(self._stream, size)
            view.position += len(data)
            return data


class _Pass(io.RawIOBase):
    """One pass's view of a :class:`SharedStream`."""

    def __init__(self, shared: SharedStream):
        self._shared = shared
        self.position = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._shared._read(self, -1 if size is None else size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@dataclass
class Opened:
    """A sniffed source: its container, the head of its (decompressed) data, and how to
    stream all of it again from the start."""

    container: str  # "csv" | "jsonl" | "parquet"
    compression: str | None
    name: str
    head: bytes
    _native: Callable[[], pa.NativeFile] | None = None
    python_stream: IO[bytes] | None = None
    parquet: IO[bytes] | None = None
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def native(self) -> pa.NativeFile:
        """The whole decompressed data as an Arrow stream (Python sees compressed bytes only)."""
        if self._native is not None:
            return self._native()
        assert self.python_stream is not None
        return pa.PythonFile(self.python_stream, mode="r")

    def close(self) -> None:
        for c in self._closers:
            c()


def _read_raw(stream: IO[bytes], n: int) -> bytes:
    out = stream.read(n)
    return out if isinstance(out, bytes) else bytes(out or b"")


def _header_complete(text: bytes) -> bool:
    """True when ``text`` holds a whole first line (a newline outside quotes) and one more."""
    pos = -1
    while True:
        pos = text.find(b"\n", pos + 1)
        if pos == -1:
            return False
        if text[:pos].count(b'"') % 2 == 0:
            return text.find(b"\n", pos + 1) != -1 or len(text) > pos + 1 + HEAD_BYTES


def _gzip_head(raw: IO[bytes], name: str) -> tuple[bytes, bytes]:
    """Decompress just enough of a gzip stream to see its header; return (compressed bytes
    consumed, decompressed head)."""
    decoder = zlib.decompressobj(wbits=31)
    consumed = bytearray()
    head = bytearray()
    while len(head) < HEAD_BYTES or not _header_complete(bytes(head)):
        chunk = _read_raw(raw, 64 << 10)
        if not chunk:
            break
        consumed += chunk
        try:
            head += decoder.decompress(chunk)
        except zlib.error as exc:
            raise InputError(f"gzip stream is corrupt ({exc})", file=name) from None
        if decoder.eof:
            break
        if len(head) > MAX_HEADER_BYTES:
            break
    return bytes(consumed), bytes(head)


def _spool(stream: IO[bytes]) -> IO[bytes]:
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115 - closed by Opened.close
    shutil.copyfileobj(stream, spool, RAW_CHUNK)
    spool.seek(0)
    return spool


def _container(head: bytes, name: str) -> str:
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        raise InputError("file is UTF-16 encoded; billing exports are read as UTF-8 (re-export as UTF-8 CSV)",
                         file=name)
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not stripped:
        raise InputError("file is empty", file=name)
    return "jsonl" if stripped[:1] in (b"{", b"[") else "csv"


def open_source(stream: IO[bytes], name: str, path: str | Path | None = None) -> Opened:
    """Sniff compression and container from the first bytes.

    ``path``, when the source is a local file, lets Arrow read it natively from disk.
    """
    magic = _read_raw(stream, 4)
    if magic.startswith(GZIP_MAGIC):
        return _open_gzip(magic, stream, name, path)
    if magic.startswith(ZIP_MAGIC):
        return _open_zip(magic, stream, name)
    head = magic + _read_raw(stream, HEAD_BYTES)
    while not _header_complete(head) and len(head) < MAX_HEADER_BYTES:
        more = _read_raw(stream, RAW_CHUNK)
        if not more:
            break
        head += more
    container = _container(head, name)
    if container == "parquet":
        if path is not None:
            return Opened("parquet", None, name, head, parquet=open(path, "rb"))
        spooled = _spool(PrefixedStream(head, stream))  # type: ignore[arg-type]
        return Opened("parquet", None, name, head, parquet=spooled, _closers=[spooled.close])
    if path is not None:
        return Opened(container, None, name, head, lambda: pa.OSFile(str(path)))
    return Opened(container, None, name, head, python_stream=PrefixedStream(head, stream))  # type: ignore[arg-type]


def _open_gzip(magic: bytes, stream: IO[bytes], name: str, path: str | Path | None) -> Opened:
    consumed, head = _gzip_head(PrefixedStream(magic, stream), name)  # type: ignore[arg-type]
    container = _container(head, name)
    if container == "parquet":
        raise InputError("gzip-compressed Parquet is not a format any cloud exports", file=name)
    rest = PrefixedStream(consumed, stream)

    def native() -> pa.NativeFile:
        if _isal is not None:
            # ISA-L decodes where Arrow reads: on its read-ahead thread, beside the parser.
            # (isal's own decoder thread cost more: 0.1-0.2 s wall, 0.2 CPU s per 1M rows.)
            source: Any = str(path) if path is not None else rest
            decoded: IO[bytes] = _isal.open(source, "rb")  # type: ignore[no-untyped-call]
            return pa.PythonFile(_Guarded(decoded, name), mode="r")
        raw = pa.OSFile(str(path)) if path is not None else pa.PythonFile(rest, mode="r")
        return pa.CompressedInputStream(raw, "gzip")

    return Opened(container, "gzip", name, head, native)


def _open_zip(magic: bytes, stream: IO[bytes], name: str) -> Opened:
    spooled = _spool(PrefixedStream(magic, stream))  # type: ignore[arg-type]
    try:
        archive = zipfile.ZipFile(spooled)
        members = [m for m in archive.infolist() if not m.is_dir()]
    except zipfile.BadZipFile as exc:
        raise InputError(f"zip archive is corrupt ({exc})", file=name) from None
    if len(members) != 1:
        raise InputError(f"zip archive holds {len(members)} files; a CUR zip holds exactly one", file=name)
    member = archive.open(members[0])
    head = member.read(HEAD_BYTES)
    container = _container(head, name)
    return Opened(container, "zip", name, head, python_stream=PrefixedStream(head, member),  # type: ignore[arg-type]
                  _closers=[member.close, spooled.close])


def parse_csv_header(head: bytes, name: str) -> tuple[list[str], int | None]:
    """The header names, and the field count of the first data record when the head holds it
    (``None`` otherwise), so that a header longer than its rows can be noticed."""
    end = -1
    while True:
        end = head.find(b"\n", end + 1)
        if end == -1 or head[:end].count(b'"') % 2 == 0:
            break
    line = head if end == -1 else head[:end]
    if end == -1 and len(head) >= MAX_HEADER_BYTES:
        raise InputError(f"no end of the header line in the first {MAX_HEADER_BYTES:,} bytes", file=name)
    try:
        text = line.decode("utf-8").lstrip("\ufeff").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise InputError(f"header is not UTF-8 (byte {exc.start}); burnguard reads UTF-8 exports", file=name) from None
    if not text.strip():
        raise InputError("file has no header line", file=name)
    names = next(csv.reader([text]))
    first_fields = None
    if end != -1:
        rest = head[end + 1:]
        stop = rest.find(b"\n")
        if stop > 0:
            try:
                record = next(csv.reader([rest[:stop].decode("utf-8").rstrip("\r")]), None)
            except (UnicodeDecodeError, csv.Error):
                record = None
            first_fields = len(record) if record else None
    return names, first_fields


InvalidRowHook = Callable[[int, str, int, int], None]


def csv_batches(stream: pa.NativeFile, names: list[str], columns: list[str],
                on_invalid: InvalidRowHook | None = None, *,
                block_size: int = CSV_BLOCK_SIZE, text: bool = False) -> Iterator[pa.RecordBatch]:
    """Stream CSV record batches of ``columns``: strings with ``text`` (the parser checks
    UTF-8 as it converts, and stops on a bad cell: see :func:`is_utf8_error`), else bytes
    (UTF-8 is then checked per column, and a bad cell named).

    Without ``on_invalid`` a row with a wrong number of fields stops the reader (the fast
    path: Arrow parses slower with a row handler set); with it, such rows are reported and
    skipped.
    """

    def handler(row: Any) -> str:
        assert on_invalid is not None
        on_invalid(row.number - 1 if row.number is not None else -1, row.text, row.expected_columns, row.actual_columns)
        return "skip"

    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=block_size,
                                       use_threads=CSV_THREADS),
        parse_options=pacsv.ParseOptions(newlines_in_values=True,
                                         invalid_row_handler=handler if on_invalid is not None else None),
        convert_options=pacsv.ConvertOptions(
            include_columns=columns,
            column_types=dict.fromkeys(columns, pa.string() if text else pa.binary()),
            # Blanks and NULL become nulls in the parser: no pass over the data later.
            null_values=["", "NULL", "null"],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )
    yield from reader


def jsonl_batches(stream: pa.NativeFile, schema: pa.Schema | None) -> Iterator[pa.RecordBatch]:
    options = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore" if schema else "infer",
                                  newlines_in_values=False)
    reader = pajson.open_json(stream, read_options=pajson.ReadOptions(block_size=JSON_BLOCK_SIZE, use_threads=False),
                              parse_options=options)
    yield from reader


#: ``(record number, line text, reason, field or None)`` of a JSON line that cannot be read.
InvalidRecordHook = Callable[[int, str, str, str | None], None]
_JSON_COLUMN = re.compile(r"Column\(/([^)]*)\)")
_JSON_ROW = re.compile(r"\s+in row \d+")
_JSON_CHANGED = re.compile(r"changed from (\w+) to (\w+)")
_JSON_SCALE = re.compile(r"decimal\d+\(\d+, (\d+)\): (\S+) requires scale (\d+)")


def jsonl_batches_by_line(stream: pa.NativeFile, schema: pa.Schema, *, skip: int,
                          on_invalid: InvalidRecordHook) -> Iterator[pa.RecordBatch]:
    """The slow path of JSON lines, after Arrow refused a block: records are parsed in groups
    of lines with ``schema``; a group that fails is halved until each bad line stands alone,
    is reported (1-based record number, not counting blank lines) and skipped. The first
    ``skip`` records (already read by the fast path) are passed over."""
    options = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore",
                                  newlines_in_values=False)

    def parse(lines: list[bytes], first: int) -> Iterator[pa.RecordBatch]:
        data = b"\n".join(lines)
        try:
            table = pajson.read_json(pa.BufferReader(data), parse_options=options, read_options=pajson.ReadOptions(
                block_size=max(len(data) + 1, 1 << 16), use_threads=False))
        except pa.ArrowInvalid as exc:
            if len(lines) == 1:
                text = lines[0].decode("utf-8", "replace")
                reason, field_name = _json_failure(str(exc), text)
                on_invalid(first, text, reason, field_name)
                return
            half = len(lines) // 2
            yield from parse(lines[:half], first)
            yield from parse(lines[half:], first + half)
            return
        yield from table.cast(schema).to_batches()

    record = 0
    group: list[bytes] = []
    group_first = 0
    size = 0
    for line in _lines(stream):
        if not line.strip():
            continue
        record += 1
        if record <= skip:
            continue
        if not group:
            group_first = record
        group.append(line)
        size += len(line)
        if size >= JSON_BLOCK_SIZE:
            yield from parse(group, group_first)
            group, size = [], 0
    if group:
        yield from parse(group, group_first)


def _lines(stream: pa.NativeFile) -> Iterator[bytes]:
    rest = b""
    while True:
        chunk = stream.read(RAW_CHUNK)
        if not chunk:
            break
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def _json_failure(message: str, line: str) -> tuple[str, str | None]:
    """Arrow's reason without its in-block row number, and the field it names (a path such as
    ``labels.value``), or the field holding the value it quotes."""
    reason = _JSON_ROW.sub("", message.removeprefix("JSON parse error: ")).strip()
    m = _JSON_COLUMN.search(message)
    if m:
        parts = [p for p in m.group(1).split("/") if p and p != "[]"]
        changed = _JSON_CHANGED.search(reason)
        if changed:
            reason = f"a JSON {changed.group(2)} where a JSON {changed.group(1)} is expected"
        return reason, ".".join(parts) or None
    scale = _JSON_SCALE.search(message)
    if scale:
        kept, text, needed = scale.groups()
        reason = f"{text} has {needed} decimal places; the reader keeps up to {kept}"
        try:
            record = json.loads(line, parse_float=str, parse_int=str)
        except ValueError:
            return reason, None
        return reason, _path_of(record, text)
    return reason, None


def _path_of(value: Any, text: str, prefix: str = "") -> str | None:
    if isinstance(value, dict):
        for k, v in value.items():
            hit = _path_of(v, text, f"{prefix}.{k}" if prefix else str(k))
            if hit:
                return hit
    elif isinstance(value, list):
        for v in value:
            hit = _path_of(v, text, prefix)
            if hit:
                return hit
    elif isinstance(value, str) and value == text:
        return prefix
    return None


def parquet_file(stream: IO[bytes]) -> pq.ParquetFile:
    return pq.ParquetFile(stream)


#: The largest parse block a CSV is retried with when one row does not fit a block.
#: A flaw once noted here (a cell of about one parse block cut at 261,931 characters after a
#: row with a wrong field count, and the next row lost unnamed, in 4-5 of 30 runs) was not
#: about block sizes: each retry rewound the one seekable stream while the abandoned pass's
#: read-ahead thread (Arrow's) was still reading it, and a late read of that pass took the
#: next pass's bytes (261,931 = the 256 KiB head the next pass had, less the cell's row start).
#: Any retry on a seekable stream without a path could lose rows so, not only after a large
#: cell. Fixed by :class:`SharedStream`; tested with the late read made to happen every time
#: (``test_a_retry_reads_the_whole_file_though_the_abandoned_pass_reads_on``).
MAX_CSV_BLOCK_SIZE = 1 << 28


def is_row_too_large_error(exc: BaseException) -> bool:
    """Arrow's error for a row longer than a parse block ("straddling object straddles two
    block boundaries")."""
    return "straddl" in str(exc)


def is_column_count_error(exc: BaseException) -> bool:
    text = str(exc)
    return "Expected" in text and "columns" in text


def is_utf8_error(exc: BaseException) -> bool:
    """Arrow's error for a cell that is not UTF-8 when reading a column as strings."""
    return "invalid UTF8" in str(exc)
