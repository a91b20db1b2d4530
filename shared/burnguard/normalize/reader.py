"""Normalize one export file: sniff, detect the format from the header, stream line items."""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from burnguard.core.errors import InputError, UnknownFormatError
from burnguard.core.lineitem import SCHEMA
from burnguard.normalize.base import Batch, Format, Header, Plan, ReadContext, text_ahead
from burnguard.normalize.source import (
    CSV_BLOCK_SIZE,
    MAX_CSV_BLOCK_SIZE,
    Opened,
    SharedStream,
    csv_batches,
    is_column_count_error,
    is_row_too_large_error,
    is_utf8_error,
    jsonl_batches,
    jsonl_batches_by_line,
    open_source,
    parse_csv_header,
)

#: Rows per output chunk of CSV and JSON lines: the unit of work of the transform.
CHUNK_ROWS = 10_000
#: Rows per output chunk of Parquet. Its transform costs about 3 ms a call whatever the size
#: (Arrow and Python overhead per column; the rows come in a few large batches), so 20,000
#: rows rather than 10,000 save about 0.15 CPU s per 1M rows. CSV batches come from the parser
#: about 1,000 rows at a time whatever the chunk, so larger CSV chunks cost memory for no CPU
#: (measured: 4.14 against 4.21 CPU s per 1M rows, 197 against 227 MB peak RSS).
PARQUET_CHUNK_ROWS = 20_000
#: Transform chunks (``chunk_rows`` raw rows each) parsed ahead of the transform, beside the
#: one the parser is building: one is enough to keep both cores busy.
PREFETCH = 1


def use_lean_allocator() -> str:
    """Arrow's memory pool for normalizing: jemalloc where this pyarrow has it, unless the
    process chose one (``ARROW_DEFAULT_MEMORY_POOL``). Returns the pool's name.

    pyarrow's default pool, mimalloc, keeps the memory of freed chunks (the parser thread
    allocates what the transform thread frees): on a 1M-row CUR its peak RSS grew by about
    1.8 KB per row of ``chunk_rows`` against 0.9 KB with jemalloc, at the same CPU, and on
    CSV.gz at 10,000 rows a chunk it peaked at 244 MB against 197 MB (glibc's malloc was
    worse still on CSV: 374 MB). Buffers keep the pool they came from, so switching while
    arrays exist is safe; it is done once, for the whole process."""
    pool = pa.default_memory_pool()
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL") or pool.backend_name != "mimalloc":
        return str(pool.backend_name)
    try:
        lean = pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc (macOS, Windows wheels)
        return str(pool.backend_name)
    pa.set_memory_pool(lean)
    return str(lean.backend_name)


#: cgroup v2's CPU limit of this process's group (``max 100000`` when unlimited).
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
#: Lambda gives a function one vCPU's worth of time up to this memory size (MB), more above.
LAMBDA_ONE_VCPU_MB = 1769


def usable_cpus() -> int:
    """How many CPUs this process can keep busy: its CPU affinity (``taskset``), a cgroup CPU
    quota (containers, Cloud Run), and Lambda's memory size (Lambda shows two vCPUs but gives a
    function below 1,769 MB the time of one)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max" and int(period) > 0:
            cpus = min(cpus, max(1, round(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    memory = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    if memory.isdigit() and int(memory) < LAMBDA_ONE_VCPU_MB:
        cpus = 1
    return max(1, cpus)


def registry() -> list[Format]:
    from burnguard.normalize.aws import AwsCurFormat
    from burnguard.normalize.azure import AzureCostFormat
    from burnguard.normalize.focus import FocusFormat
    from burnguard.normalize.gcp import GcpBillingFormat

    return [AwsCurFormat(), FocusFormat(), GcpBillingFormat(), AzureCostFormat()]


def detect(header: Header, file: str | None = None) -> Format:
    """The format whose signature columns the header holds; a clear error otherwise."""
    formats = registry()
    scored = sorted(((f.score(header), i, f) for i, f in enumerate(formats)), key=lambda t: (-t[0], t[1]))
    best_score, _, best = scored[0]
    if best_score <= 0:
        seen = ", ".join(header.original[:12]) + (", ..." if len(header) > 12 else "")
        known = "; ".join(f"{f.name} ({f.description})" for f in formats)
        raise UnknownFormatError(
            f"not a billing export burnguard knows. Saw {len(header)} columns: {seen}. Known formats: {known}",
            file=file,
        )
    return best


@dataclass
class FileStats:
    file: str
    format: str | None = None
    variant: str | None = None
    container: str | None = None
    compression: str | None = None
    rows_read: int = 0
    rows_normalized: int = 0
    errors: list[InputError] = field(default_factory=list)
    error_count: int = 0
    rows_skipped: int = 0
    warnings: list[str] = field(default_factory=list)


class Normalizer:
    """Normalize one file-like byte stream; iterate :meth:`batches` for canonical chunks.

    ``strict`` stops at the first bad row (raising :class:`InputError`); otherwise bad rows
    are skipped, counted and kept in :attr:`stats` with file, row and field.
    """

    def __init__(
        self,
        stream: IO[bytes],
        name: str,
        *,
        strict: bool = False,
        default_currency: str | None = None,
        cost_basis: str | None = None,
        chunk_rows: int | None = None,
        path: str | Path | None = None,
        parallel: bool | None = None,
    ):
        use_lean_allocator()
        #: parse in a background thread while the caller transforms (see :meth:`_prefetched`);
        #: by default when the process has more than one CPU (:func:`usable_cpus`)
        self.parallel = usable_cpus() > 1 if parallel is None else parallel
        self.name = name
        self.ctx = ReadContext(file=name, strict=strict, default_currency=default_currency, cost_basis=cost_basis)
        self.chunk_rows = chunk_rows or CHUNK_ROWS
        self.stats = FileStats(file=name)
        first, self._reopen = self._reopener(stream, name, path)
        self._opened: Opened = open_source(first, name, path)
        self.stats.container = self._opened.container
        self.stats.compression = self._opened.compression
        if chunk_rows is None and self._opened.container == "parquet":
            self.chunk_rows = PARQUET_CHUNK_ROWS
        self._invalid: list[int] = []
        #: Parquet dictionary columns decoded as they are read (learned: see _transform)
        self._text_ahead: frozenset[str] = frozenset()
        self._setup()

    @staticmethod
    def _reopener(stream: IO[bytes], name: str,
                  path: str | Path | None) -> tuple[IO[bytes], Callable[[], Opened] | None]:
        """The stream the first pass reads, and how to read the source again from the start
        when it can be (a path, a seekable stream); ``None`` for a one-way stream.

        A seekable stream is read through a :class:`SharedStream` view per pass: the passes
        share one stream, and an abandoned pass's late reads (Arrow reads ahead in its own
        thread) must not move it under the next pass."""
        if path is not None:
            def from_path() -> Opened:
                with open(path, "rb") as again:
                    return open_source(again, name, path)
            return stream, from_path
        try:
            seekable = stream.seekable()
        except (AttributeError, ValueError):
            seekable = False
        if not seekable:
            return stream, None
        shared = SharedStream(stream, name)

        def from_start() -> Opened:
            return open_source(shared.new_pass(), name)
        return shared.new_pass(), from_start

    @classmethod
    def from_path(cls, path: str | Path, **kwargs: object) -> Normalizer:
        p = Path(path)
        name = str(kwargs.pop("name", None) or p.name)
        with open(p, "rb") as sniff:
            return cls(sniff, name, path=p, **kwargs)  # type: ignore[arg-type]

    # -- setup: header, format, plan ---------------------------------------------------------
    def _setup(self) -> None:
        o = self._opened
        if o.container == "csv":
            names, first_fields = parse_csv_header(o.head, self.name)
            if first_fields is not None and first_fields < len(names):
                # Rows shorter than the header (a column name with no data): read the rows as
                # they are and say which header names have no values.
                self.ctx.warn(f"header has {len(names)} columns but rows have {first_fields}; "
                              f"columns without values: {', '.join(names[first_fields:][:10])}")
                names = names[:first_fields]
            self.header = Header(names)
        elif o.container == "parquet":
            try:
                self._pq = pq.ParquetFile(o.parquet)
            except (pa.ArrowInvalid, OSError) as exc:
                raise InputError(f"Parquet file cannot be read ({exc})", file=self.name) from None
            self.header = Header(self._pq.schema_arrow.names)
        else:
            first = self._first_json_record(o.head)
            self.header = Header(list(first.keys()))
        self.format = detect(self.header, self.name)
        self.plan: Plan = self.format.plan(self.header, self.ctx)
        if o.container == "parquet":
            # String columns are read dictionary-encoded, as Parquet stores them: reading is
            # about twice as fast, and blanks are found in the dictionary (see Batch.text).
            schema = self._pq.schema_arrow
            strings = [c for c in self.plan.columns if c in schema.names
                       and (pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type))]
            if strings:
                self._pq = pq.ParquetFile(o.parquet, read_dictionary=strings)
        self.stats.format = self.format.name
        self.stats.variant = self.plan.variant

    def _first_json_record(self, head: bytes) -> dict[str, object]:
        line = head.split(b"\n", 1)[0].lstrip(b"\xef\xbb\xbf")
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"first line is not a JSON object ({exc})", file=self.name, row=1) from None
        if not isinstance(record, dict):
            raise InputError("JSON lines must hold one object per line", file=self.name, row=1)
        return record

    # -- streaming ---------------------------------------------------------------------------
    def _raw_batches(self) -> Iterator[pa.RecordBatch]:
        o = self._opened
        if o.container == "csv":
            yield from self._csv_raw_batches()
        elif o.container == "parquet":
            for batch in self._pq.iter_batches(batch_size=self.chunk_rows, columns=self.plan.columns):
                yield text_ahead(batch, self._text_ahead) if self._text_ahead else batch
        else:
            yield from self._jsonl_raw_batches()

    def _jsonl_raw_batches(self) -> Iterator[pa.RecordBatch]:
        """Fast path first; with an explicit schema (the plan's ``json_schema``), if Arrow
        refuses a block (a line that is not JSON, a value of the wrong type), read the file
        again line by line from there: the bad lines are reported and skipped."""
        schema = getattr(self.plan, "json_schema", None)
        yielded = 0
        try:
            for raw in jsonl_batches(self._opened.native(), schema):
                yielded += raw.num_rows
                yield raw
            return
        except pa.ArrowInvalid:
            if schema is None or self._reopen is None:
                raise
        self._opened.close()
        self._opened = self._reopen()
        yield from jsonl_batches_by_line(self._opened.native(), schema, skip=yielded, on_invalid=self._on_invalid_json)

    def _csv_raw_batches(self) -> Iterator[pa.RecordBatch]:
        """Fast path first; if a row has a wrong number of fields, read the file again with
        a row handler (slower) that reports and skips such rows; if a row is longer than a
        parse block (a huge cell), read it again with larger blocks (the row is then read and
        judged like any other); if a cell is not UTF-8, read it again as bytes (the transform
        names the cell). Each retry resumes where the previous pass was.

        Columns are read as strings first: Arrow checks UTF-8 while it converts, which costs
        less than a separate bytes-to-string pass (measured on a 1M-row CUR: 0.15 CPU s in
        the parser against 0.3 s in the transform)."""
        yielded = 0
        handler: Callable[[int, str, int, int], None] | None = None
        block = CSV_BLOCK_SIZE
        text = self._reopen is not None  # a one-way stream is read as bytes: it cannot go back
        while True:
            skip = yielded
            try:
                for raw in csv_batches(self._opened.native(), self.header.names, self.plan.columns, handler,
                                       block_size=block, text=text):
                    if skip:
                        if raw.num_rows <= skip:
                            skip -= raw.num_rows
                            continue
                        raw = raw.slice(skip)
                        skip = 0
                    yielded += raw.num_rows
                    yield raw
                return
            except pa.ArrowInvalid as exc:
                if self._reopen is None:
                    raise
                if is_column_count_error(exc) and handler is None:
                    handler = self._on_invalid
                elif is_utf8_error(exc) and text:
                    text = False  # bytes from here on: the bad cells are named and their rows skipped
                elif is_row_too_large_error(exc) and block < MAX_CSV_BLOCK_SIZE:
                    block = min(block * 8, MAX_CSV_BLOCK_SIZE)
                else:
                    raise
            self._opened.close()
            self._opened = self._reopen()

    def _on_invalid(self, row: int, text: str, expected: int, actual: int) -> None:
        seen: set[int] = self.__dict__.setdefault("_invalid_seen", set())
        if row in seen:
            return  # reported by an earlier pass over the file
        seen.add(row)
        self._invalid.append(row)
        self.stats.rows_read += 1
        self.ctx.skipped_rows += 1
        self.ctx.error(InputError(
            f"has {actual} fields where the header has {expected}: {text[:120]!r}",
            file=self.name, row=row if row > 0 else None,
        ))

    def _on_invalid_json(self, row: int, text: str, reason: str, field: str | None) -> None:
        self._invalid.append(row)
        self.stats.rows_read += 1
        self.ctx.skipped_rows += 1
        self.ctx.error(InputError(f"record cannot be read ({reason}): {text[:120]!r}",
                                  file=self.name, row=row, field=field))

    def _record_numbers(self, start: int, n: int) -> np.ndarray:
        """1-based record numbers of ``n`` good rows after ``start`` good rows, skipping the
        numbers of the rows the CSV parser rejected."""
        rows = np.arange(start + 1, start + n + 1, dtype=np.int64)
        for bad in sorted(self._invalid):
            if bad <= 0:
                continue
            rows[rows >= bad] += 1
        return rows

    def _chunks(self) -> Iterator[list[pa.RecordBatch]]:
        """Raw batches grouped into transform chunks of at least ``chunk_rows`` rows."""
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        for raw in self._raw_batches():
            if raw.num_rows == 0:
                continue
            if pending and raw.schema != pending[0].schema:  # strings, then bytes after a retry
                yield pending
                pending, pending_rows = [], 0
            pending.append(raw)
            pending_rows += raw.num_rows
            if pending_rows >= self.chunk_rows:
                yield pending
                pending, pending_rows = [], 0
        if pending:
            yield pending

    def _prefetched(self) -> Iterator[list[pa.RecordBatch]]:
        """Parse in a background thread while the caller transforms: Arrow's parser and
        kernels release the GIL, so decoding, parsing and normalizing use both cores.

        The hand-over unit is a whole transform chunk, so the parser keeps going while a
        chunk is transformed. With raw parser blocks (about 500 rows) as the unit, the queue
        was full after two blocks and the parser waited out each 10k-row transform: on a 1M-row
        CUR.gz, 3.5 s and 1.2 cores used, against 2.2-2.5 s and 1.7 cores now (2 cores).

        With one CPU (:attr:`parallel` false) the thread only adds switches between parser and
        transform: parsing and transforming in turn took 3.6-3.7 s against 3.85-3.95 s."""
        if not self.parallel:
            yield from self._chunks()
            return
        q: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=PREFETCH)
        stop = threading.Event()

        def produce() -> None:
            try:
                for chunk in self._chunks():
                    while not stop.is_set():
                        try:
                            q.put(("chunk", chunk), timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                q.put(("end", None))
            except BaseException as exc:  # handed to the consumer, raised there
                q.put(("error", exc))

        worker = threading.Thread(target=produce, name=f"parse:{self.name}", daemon=True)
        worker.start()
        try:
            while True:
                kind, item = q.get()
                if kind == "chunk":
                    assert isinstance(item, list)
                    yield item
                elif kind == "error":
                    assert isinstance(item, BaseException)
                    raise item
                else:
                    return
        finally:
            stop.set()
            worker.join(timeout=5)

    def batches(self) -> Iterator[pa.Table]:
        """Canonical line items, ``chunk_rows`` at a time (the last chunk may be smaller)."""
        done = 0
        try:
            for chunk in self._prefetched():
                rows = sum(raw.num_rows for raw in chunk)
                table = self._transform(chunk, done)
                del chunk  # the raw rows are not kept while the caller holds the line items
                done += rows
                yield table
        except (pa.ArrowInvalid, OSError, EOFError) as exc:
            raise InputError(self._describe_failure(exc, done), file=self.name) from None
        finally:
            self._opened.close()
            self.stats.rows_read += done
            self.stats.errors = self.ctx.errors
            self.stats.error_count = self.ctx.error_count
            self.stats.rows_skipped = self.ctx.skipped_rows
            self.stats.warnings = self.ctx.warnings

    def _describe_failure(self, exc: BaseException, done: int) -> str:
        text = str(exc)
        if "gzip" in text.lower() or "truncated" in text.lower() or isinstance(exc, EOFError):
            kind = self._opened.compression or "compressed"
            return f"{kind} stream is truncated or corrupt after row {done:,} ({text})"
        return f"cannot be parsed after row {done:,} ({text})"

    def _transform(self, raws: list[pa.RecordBatch], done: int) -> pa.Table:
        table = pa.Table.from_batches(raws)
        rows = self._record_numbers(done, table.num_rows)
        batch = Batch(table, rows, self.ctx, blanks_are_null=self._opened.container == "csv",
                      clean=[n for n in self._text_ahead if n in table.column_names
                             and not pa.types.is_dictionary(table.schema.field(n).type)])
        out = self.plan.transform(batch)
        if done == 0 and self._opened.container == "parquet":
            # Learned from the first chunk: the dictionary columns this plan reads as text only
            # are decoded in the reader's thread from now on (see text_ahead).
            self._text_ahead = frozenset(batch.dictionary_text - batch.dictionary_other)
        self.stats.rows_normalized += out.num_rows
        return out

    def read_all(self) -> pa.Table:
        """All line items of the file in one table (for small files and tests)."""
        tables = list(self.batches())
        return pa.concat_tables(tables) if tables else SCHEMA.empty_table()
