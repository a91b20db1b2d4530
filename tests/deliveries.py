"""Build realistic deliveries for tests: CUR files of a month-to-date, normalized and turned
into the queue messages ingestion would publish."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from burnguard.core.messages import DeliveryRef, Message
from burnguard.services.ingest import SourceFile, ingest_delivery
from tests.bench.gen_cur import csv_lines, generate_table


def cur_table(rows: int, seed: int, through_day: int, period: str = "2024-09", scale: float = 1.0) -> pa.Table:
    """Month-to-date CUR rows up to ``through_day`` (monthly fees and tax included)."""
    table = generate_table(rows, seed, period=period)
    day = pc.cast(pc.utf8_slice_codeunits(table.column("lineItem/UsageStartDate"), 8, 10), pa.int32())
    table = table.filter(pc.less_equal(day, through_day))
    if scale != 1.0:
        cost = np.array([float(x) for x in table.column("lineItem/UnblendedCost").to_pylist()]) * scale
        table = table.set_column(table.column_names.index("lineItem/UnblendedCost"), "lineItem/UnblendedCost",
                                 pa.array(np.char.mod("%.10f", cost)))
    return table


def write_cur(table: pa.Table, path: Path) -> Path:
    path.write_bytes((",".join(table.column_names) + "\n").encode() + csv_lines(table))
    return path


def delivery_ref(version: str, *, source: str = "aws-cur|123456789012|reports/cur", period: str = "2024-09",
                 produced_at: datetime | None = None) -> DeliveryRef:
    from burnguard.core.messages import stable_id

    return DeliveryRef(delivery_id=f"aws-{period}-{stable_id(source, period, version)}", provider="aws",
                       source=source, billing_period=period, version=version,
                       produced_at=produced_at or datetime(2024, 9, 1, tzinfo=UTC))


def messages_for(ref: DeliveryRef, paths: list[Path], chunk_rows: int = 400) -> list[Message]:
    out: list[Message] = []
    files = [SourceFile(p.name, (lambda p=p: open(p, "rb")), str(p)) for p in paths]  # noqa: SIM115
    ingest_delivery(ref, files, out.extend, chunk_rows=chunk_rows)
    return out
