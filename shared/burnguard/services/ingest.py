"""Ingest one export delivery: normalize every file as a stream, publish line item chunks and
the closing summary on the queue (ARCHITECTURE.md: ingest function, rules 1 and 2)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import pyarrow as pa

from burnguard.core.messages import (
    MAX_CHUNK_ROWS,
    DeliveryRef,
    DeliverySummary,
    FileSummary,
    Message,
    Totals,
    add_totals,
    encode_chunk,
    encode_summary,
    totals_of,
)
from burnguard.normalize import Normalizer
from burnguard.ports.objects import Opener, Publish

#: Messages are published in groups of this many, or of this many bytes (one round trip each).
PUBLISH_BATCH = 16
PUBLISH_BYTES = 16 << 20


@dataclass(frozen=True)
class SourceFile:
    """One file of a delivery: its key (as in the manifest) and how to open it as a stream.

    ``path`` is set for local files (Arrow then reads them natively, and can re-read them to
    report malformed rows); ``open`` serves any stream (S3 body, GCS or Blob download)."""

    key: str
    open: Opener
    path: str | None = None


def _rechunk(batches: Iterable[pa.Table], rows: int) -> Iterator[pa.Table]:
    """Tables of exactly ``rows`` rows (the last one shorter) from the normalizer's batches,
    whose size is set for the normalizer's memory, not for messages."""
    held: list[pa.Table] = []
    count = 0
    for batch in batches:
        held.append(batch)
        count += batch.num_rows
        while count >= rows:
            joined = pa.concat_tables(held)
            yield joined.slice(0, rows)
            rest = joined.slice(rows)
            held, count = ([rest] if rest.num_rows else []), rest.num_rows
    if count:
        yield pa.concat_tables(held)


@dataclass
class IngestReport:
    summary: DeliverySummary
    messages: int


def ingest_delivery(  # noqa: PLR0913 - three inputs, the rest keyword-only options with defaults
    delivery: DeliveryRef,
    files: Iterable[SourceFile],
    publish: Publish,
    *,
    chunk_rows: int = MAX_CHUNK_ROWS // 2,
    default_currency: str | None = None,
    cost_basis: str | None = None,
    expected_rows: int | None = None,
    on_progress: Callable[[str, int], None] | None = None,
    compression: str | None = "zstd",
) -> IngestReport:
    """Normalize and publish a whole delivery; returns its closing summary.

    A file that cannot be read at all (truncated gzip, unknown format) raises
    :class:`~burnguard.core.errors.InputError`: its delivery then never completes, and the caller
    dead-letters the trigger with that reason. Bad rows are skipped, counted and named in the
    summary, as they are by ``burnguard normalize``.
    """
    summaries: list[FileSummary] = []
    total = Totals(rows=0)
    pending: list[Message] = []
    pending_bytes = 0
    count = 0

    def flush() -> None:
        nonlocal pending, pending_bytes, count
        if pending:
            publish(pending)
            count += len(pending)
            pending, pending_bytes = [], 0

    for source in files:
        stream = source.open()
        try:
            normalizer = Normalizer(stream, source.key, default_currency=default_currency, cost_basis=cost_basis,
                                    path=source.path)
            file_totals = Totals(rows=0)
            index = 0
            for table in _rechunk(normalizer.batches(), chunk_rows):
                totals = totals_of(table)
                pending.append(encode_chunk(delivery, source.key, index, table, totals=totals,
                                            compression=compression))
                pending_bytes += len(pending[-1].data)
                file_totals = add_totals(file_totals, totals)
                index += 1
                if on_progress is not None:
                    on_progress(source.key, table.num_rows)
                if len(pending) >= PUBLISH_BATCH or pending_bytes >= PUBLISH_BYTES:
                    flush()
        finally:
            stream.close()
        stats = normalizer.stats
        summaries.append(FileSummary(
            key=source.key, format=stats.variant, chunks=index, totals=file_totals, rows_read=stats.rows_read,
            rows_skipped=stats.rows_skipped, errors=[e.as_dict() for e in stats.errors[:20]],
        ))
        total = add_totals(total, file_totals)
    summary = DeliverySummary(delivery=delivery, files=summaries, totals=total, expected_rows=expected_rows)
    pending.append(encode_summary(summary))
    flush()
    return IngestReport(summary, count)
