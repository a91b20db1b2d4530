"""The S3 store on moto's server: a streaming, seekable reader (ranged GETs), the ETag pinned
across re-reads; Data Exports deliveries (CUR 2.0 in Parquet, FOCUS in CSV.gz) with
URL-encoded ``BILLING_PERIOD%3D`` keys through the ingest handler to the Pub/Sub emulator.
Oracles are computed here from the raw data (pyarrow tables built in the test, csv)."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from burnguard.adapters.aws.s3 import S3RangeReader, S3Store, TransientStoreError
from burnguard.app import aws as bootstrap
from burnguard.core.errors import InputError
from burnguard.core.messages import decode_summary
from tests.functions.aws_helpers import LambdaContext, Topic, s3_notification
from tests.functions.slash_events import load
from tests.helpers import cents, dec
from tests.unit.normalize.test_aws_cur2 import table as cur2_table

pytestmark = pytest.mark.emulator
ROOT = Path(__file__).resolve().parents[3]
BUCKET = "billing-bucket"


def test_the_reader_streams_and_seeks_with_ranged_gets(aws: Any) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    body = bytes(range(256)) * 40_000  # 10 MB
    s3.put_object(Bucket=BUCKET, Key="big.bin", Body=body)
    raw = S3RangeReader(s3, BUCKET, "big.bin")
    assert raw.seekable() and raw.size == len(body)
    stream = io.BufferedReader(raw, buffer_size=1 << 16)
    assert stream.read(1000) == body[:1000]
    stream.seek(5_000_000)
    assert stream.read(10) == body[5_000_000:5_000_010]
    stream.seek(0)
    assert stream.read() == body
    assert raw.requests == 3  # the first GET, then one ranged GET per seek
    stream.close()


def test_an_object_replaced_while_read_fails_clearly(aws: Any) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="part.csv.gz", Body=b"a" * 3_000_000)
    stream = S3Store(s3).open(BUCKET, "part.csv.gz")
    stream.read(2_500_000)  # past the reader's buffer: the seek below is a new GET
    s3.put_object(Bucket=BUCKET, Key="part.csv.gz", Body=b"b" * 3_000_000)
    with pytest.raises(InputError, match="replaced while it was read"):
        stream.seek(0)
        stream.read()


def test_a_missing_object_is_transient(aws: Any) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    with pytest.raises(TransientStoreError, match="no such object"):
        S3Store(s3).open(BUCKET, "not-yet.csv.gz")
    assert S3Store(s3).local_path(BUCKET, "x") is None


@pytest.fixture
def world(aws: Any, pubsub: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    topic = Topic(pubsub.project)
    monkeypatch.setenv("BURNGUARD_TOPIC", topic.path)
    bootstrap.ingest_app.cache_clear()
    yield {"s3": s3, "topic": topic}
    bootstrap.ingest_app.cache_clear()
    topic.close()


def _data_exports(s3: Any, export: str, files: dict[str, bytes]) -> str:
    execution = "0d2f6c1e-5b3a-4c7d-9e8f-1a2b3c4d5e6f"
    data = f"exports/{export}/data/BILLING_PERIOD=2024-09/{execution}"
    for name, blob in files.items():
        s3.put_object(Bucket=BUCKET, Key=f"{data}/{name}", Body=blob)
    manifest = {"executionId": execution, "exportArn": f"arn:aws:bcm-data-exports:us-east-1:111122223333:export/{export}",
                "dataFiles": [f"s3://{BUCKET}/{data}/{name}" for name in files],
                "billingPeriod": {"start": "2024-09-01T00:00:00.000Z", "end": "2024-10-01T00:00:00.000Z"}}
    key = f"exports/{export}/metadata/BILLING_PERIOD=2024-09/{execution}/{export}-Manifest.json"
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(manifest).encode())
    return key


def _summary(world: dict[str, Any]) -> Any:
    [summary] = [decode_summary(m) for m in world["topic"].drain() if m.attributes["kind"] == "delivery-summary"]
    return summary


def test_cur2_parquet_from_data_exports_with_an_encoded_key(world: dict[str, Any]) -> None:
    base = cur2_table()
    parts = {}
    expected = Decimal(0)
    for i in range(2):
        t = pa.concat_tables([base] * 50)
        sink = io.BytesIO()
        pq.write_table(t, sink, row_group_size=64)
        parts[f"gpu-cur-0000{i + 1}.snappy.parquet"] = sink.getvalue()
        expected += sum((v for v in t.column("line_item_unblended_cost").to_pylist()), Decimal(0))
    key = _data_exports(world["s3"], "gpu-cur", parts)
    event = s3_notification(BUCKET, key)
    assert "BILLING_PERIOD%3D2024-09" in event["Records"][0]["s3"]["object"]["key"]
    load("aws", "ingest.py").lambda_handler(event, LambdaContext())
    summary = _summary(world)
    assert summary.delivery.billing_period == "2024-09" and len(summary.files) == 2
    assert summary.files[0].format == "aws-cur2"
    # One row of four carries a 2000-character tag value: a bad row, skipped and counted.
    assert summary.totals.rows == 2 * 50 * 3 and sum(f.rows_skipped for f in summary.files) == 100
    skipped = 2 * 50 * Decimal("1.006")
    assert cents(summary.totals.billed["USD"]) == cents(expected - skipped)


def test_focus_csv_gz_from_data_exports(world: dict[str, Any]) -> None:
    path = ROOT / "tests/fixtures/public/focus-sample-data/focus_sample.subset.csv"
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    expected: dict[str, Decimal] = {}
    for r in rows:
        expected[r["BillingCurrency"]] = expected.get(r["BillingCurrency"], Decimal(0)) + dec(r["BilledCost"])
    key = _data_exports(world["s3"], "focus-gpu", {"focus-gpu-00001.csv.gz": gzip.compress(path.read_bytes(), mtime=0)})
    load("aws", "ingest.py").lambda_handler(s3_notification(BUCKET, key), LambdaContext())
    summary = _summary(world)
    assert summary.files[0].format and "focus" in summary.files[0].format
    assert summary.totals.rows == len(rows) - summary.files[0].rows_skipped
    assert {c: cents(v) for c, v in summary.totals.billed.items()} == {c: cents(v) for c, v in expected.items()}


@pytest.mark.parametrize("gz", [False, True])
def test_a_cur_with_a_short_row_read_from_s3_loses_no_row(aws: Any, gz: bool) -> None:
    # The short row makes the reader read the object again from the start, through a new
    # SharedStream view of the same body (one more ranged GET, none per read): every good row
    # counts once and the short row is named (oracle: the raw text). The race this guards
    # against is made to happen every time in tests/unit/normalize/test_malformed.py.
    from burnguard.normalize import Normalizer

    header = "identity/LineItemId,lineItem/LineItemType,lineItem/UsageStartDate,lineItem/UnblendedCost,lineItem/CurrencyCode,resourceTags/user:team"
    rows = ["a,Usage,2024-09-01T00:00:00Z,1.5,USD,ml", "short,row"]
    rows += [f"c{i},Usage,2024-09-01T02:00:00Z,{i}.25,USD,team{i % 3}" for i in range(20_000)]
    text = header + "\n" + "\n".join(rows) + "\n"
    records = [line.split(",") for line in text.splitlines()[1:]]
    good = [i for i, r in enumerate(records, start=1) if len(r) == 6]
    expected_cost = sum(Decimal(r[3]) for r in records if len(r) == 6)
    key = "cur.csv.gz" if gz else "cur.csv"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(text.encode(), 1) if gz else text.encode())
    stream = S3Store(s3).open(BUCKET, key)
    n = Normalizer(stream, key)
    table = n.read_all()
    assert stream.raw.requests == 2  # type: ignore[attr-defined]
    stream.close()
    assert table.column("x_SourceRow").to_pylist() == good
    assert sum(table.column("BilledCost").to_pylist()) == expected_cost
    assert [(e.file, e.row) for e in n.stats.errors] == [(key, 2)]
