"""Benchmark data shared by the benchmarks: generated CUR files and a ledger of three months.

Cached in ``.bench-data/`` (ignored by git): ``cur-<rows>-<period>.csv.gz`` and
``ledger-3x<rows>.sqlite`` (July, August and September 2024, one delivery of ``rows`` line items
each, built straight from the normalized chunks, written atomically).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).parents[2]
DATA = ROOT / ".bench-data"
PERIODS = ("2024-07", "2024-08", "2024-09")


def cur_file(rows: int, period: str) -> Path:
    path = DATA / f"cur-{rows}-{period}.csv.gz"
    if not path.exists():
        DATA.mkdir(exist_ok=True)
        t = time.perf_counter()
        tmp = path.with_name(path.name + ".tmp.gz")
        subprocess.run([sys.executable, "-m", "tests.bench.gen_cur", "--rows", str(rows), "--period", period,
                        "--out", str(tmp)], cwd=ROOT, check=True)
        tmp.replace(path)
        print(f"generated {path.name} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return path


def ledger_file(rows: int) -> Path:
    """The cached ledger of three monthly deliveries of ``rows`` line items."""
    target = DATA / f"ledger-3x{rows}.sqlite"
    if target.exists():
        return target
    from burnguard.adapters.local.ledger import SqliteLedger
    from burnguard.app.runtime import tune_arrow
    from burnguard.core.messages import DeliveryRef, stable_id
    from burnguard.services.ingest import SourceFile, ingest_delivery
    from burnguard.services.record import record_message

    tune_arrow()
    files = [cur_file(rows, p) for p in PERIODS]
    with tempfile.NamedTemporaryFile(dir=DATA, suffix=".sqlite.tmp", delete=False) as handle:
        tmp = Path(handle.name)
    ledger = SqliteLedger(tmp)
    now = datetime(2024, 10, 2, tzinfo=UTC)
    for period, path in zip(PERIODS, files, strict=True):
        t = time.perf_counter()
        ref = DeliveryRef(delivery_id=stable_id("bench", period, str(rows)), provider="aws",
                          source="aws-cur|123456789012|bench|cur", billing_period=period, version="1", produced_at=now)
        ingest_delivery(ref, [SourceFile(path.name, lambda path=path: open(path, "rb"), str(path))],  # noqa: SIM115
                        lambda messages: [record_message(ledger, m, now) for m in messages])
        assert any(d.counted and d.delivery.delivery_id == ref.delivery_id for d in ledger.deliveries()), period
        print(f"ledger: {period} ({rows:,} rows) built in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    ledger.close()
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    tmp.replace(target)
    return target
