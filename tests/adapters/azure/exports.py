"""Azure Cost Management export runs for the tests, built from the sample runs in
``events/exports/azure`` (the same rows, re-cut into parts and containers), and the oracle:
totals computed from the raw CSV text with ``Decimal`` (never by burnguard)."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "events" / "exports" / "azure" / "billing-exports"
EXPORT_DIR = "cost-management/burnguard-actual-daily/20240901-20240930"
FIRST_RUN = "1c6f2e8a-4b3d-4f5e-9a7c-0d2b4e6f8a13"  # Sept 1–15, 63 rows, submitted 2024-09-16
RESTATED_RUN = "8e3a5c7d-1f2b-4d6e-8a9c-5b7d9f1e3a24"  # Sept 1–20, 86 rows, submitted 2024-09-21
COST = "costInBillingCurrency"


@dataclass(frozen=True)
class Run:
    """Blobs of one run (name → bytes), the manifest last; the oracle's expectations."""

    blobs: dict[str, bytes]
    manifest: str
    rows: int
    billed: dict[str, Decimal]

    @property
    def parts(self) -> list[str]:
        return [k for k in self.blobs if k != self.manifest]


def sample_run(run_id: str) -> Run:
    folder = SAMPLES / EXPORT_DIR / run_id
    blobs = {f"{EXPORT_DIR}/{run_id}/{p.name}": p.read_bytes() for p in sorted(folder.iterdir())}
    manifest = f"{EXPORT_DIR}/{run_id}/manifest.json"
    blobs[manifest] = blobs.pop(manifest)  # uploaded last, as Cost Management does
    rows, billed = oracle([b for k, b in blobs.items() if k != manifest])
    return Run(blobs, manifest, rows, billed)


def oracle(csv_texts: Sequence[bytes], cost: str = COST,
           currency: str = "billingCurrency") -> tuple[int, dict[str, Decimal]]:
    """Rows and exact cost per billing currency, read from CSV text with the csv module."""
    rows = 0
    billed: dict[str, Decimal] = {}
    for data in csv_texts:
        for rec in csv.DictReader(io.StringIO(data.decode("utf-8-sig"))):
            rows += 1
            billed[rec[currency]] = billed.get(rec[currency], Decimal(0)) + Decimal(rec[cost])
    return rows, billed


FOCUS_SAMPLE = ROOT / "tests" / "fixtures" / "public" / "focus-sample-data" / "focus_sample.subset.csv"


def focus_run(run_id: str) -> Run:
    """A FocusCost export run: the FOCUS sample data (FinOps Foundation) as one gzip CSV part."""
    text = FOCUS_SAMPLE.read_bytes()
    export = "burnguard-focus-daily"
    folder = f"cost-management/{export}/20240901-20240930/{run_id}"
    part = f"{folder}/part_0_0001.csv.gz"
    rows, billed = oracle([text], cost="BilledCost", currency="BillingCurrency")
    source = json.loads((SAMPLES / EXPORT_DIR / RESTATED_RUN / "manifest.json").read_text())
    config = source["exportConfig"]
    config.update(type="FocusCost", exportName=export,
                  resourceId=config["resourceId"].replace("burnguard-actual-daily", export))
    source["runInfo"]["runId"] = run_id
    source.update(blobCount=1, dataRowCount=rows, blobs=[{"blobName": part, "dataRowCount": rows}])
    manifest = f"{folder}/manifest.json"
    return Run({part: gzip.compress(text, mtime=0), manifest: json.dumps(source).encode()}, manifest, rows, billed)


def partitioned_run(run_id: str, *, kind: str = "ActualCost", source_run: str = RESTATED_RUN,
                    export: str = "burnguard-actual-daily") -> Run:
    """The rows of a sample run re-cut into three parts: plain CSV, gzip CSV and Parquet (the
    formats and the partitioning Cost Management writes), with a manifest listing them."""
    src = (SAMPLES / EXPORT_DIR / source_run / "part_0_0001.csv").read_bytes()
    header, *lines = src.decode("utf-8").splitlines(keepends=True)
    third = len(lines) // 3
    cuts = [lines[:third], lines[third:2 * third], lines[2 * third:]]
    texts = [(header + "".join(c)).encode() for c in cuts]
    folder = f"cost-management/{export}/20240901-20240930/{run_id}"
    parts = {
        f"{folder}/part_0_0001.csv": texts[0],
        f"{folder}/part_1_0001.csv.gz": gzip.compress(texts[1], mtime=0),
        f"{folder}/part_2_0001.parquet": _parquet(texts[2]),
    }
    rows, billed = oracle(texts)
    source = json.loads((SAMPLES / EXPORT_DIR / source_run / "manifest.json").read_text())
    source["exportConfig"]["type"] = kind
    source["exportConfig"]["exportName"] = export
    source["exportConfig"]["resourceId"] = source["exportConfig"]["resourceId"].replace(
        "burnguard-actual-daily", export)
    source["runInfo"]["runId"] = run_id
    source["blobCount"] = len(parts)
    source["dataRowCount"] = rows
    source["blobs"] = [{"blobName": k, "byteCount": len(v), "dataRowCount": len(c)}
                       for (k, v), c in zip(parts.items(), cuts, strict=True)]
    manifest = f"{folder}/manifest.json"
    return Run({**parts, manifest: json.dumps(source, indent=2).encode()}, manifest, rows, billed)


def _parquet(text: bytes) -> bytes:
    table: pa.Table = pacsv.read_csv(io.BytesIO(text))
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()
