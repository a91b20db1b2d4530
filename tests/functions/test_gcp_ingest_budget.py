"""The ``ingest`` and ``budget`` Cloud Functions through functions-framework's test client, on
real parts: the billing extract sits in the GCS emulator (gcp-storage-emulator) as a scheduled
BigQuery ``EXPORT DATA`` run writes it (data parts, then the manifest), and the messages go to
the Pub/Sub emulator, from which the test pulls them. Expected totals are computed from the raw
export rows with the standard library, not by burnguard."""

from __future__ import annotations

import gzip
import io
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import functions_framework
import pyarrow.parquet as pq
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import pubsub_v1, storage

from burnguard.adapters.gcp.gcs import GcsStore
from burnguard.adapters.gcp.pubsub import PubSubPublisher
from burnguard.app import gcp
from burnguard.core.messages import BUDGET_ALERT, DELIVERY_SUMMARY, LINE_ITEMS, DeliverySummary, Message
from tests.functions.slash_events import FUNCTIONS
from tests.pubsub_pull import pull_messages, pull_received

pytestmark = pytest.mark.emulator

ROOT = Path(__file__).parents[2]
SOURCE = str(FUNCTIONS / "gcp" / "main.py")
RUN = "bigquery-export/01D4EE-079462-DFD6EC/2024-09/20240921T060000Z"
LOCAL_RUN = ROOT / "events/exports/gcp/acme-finops-billing" / RUN
SAMPLES = ROOT / "events/samples/gcp"
BUDGET_EVENTS = ROOT / "events/budget"


def raw_totals() -> tuple[int, Decimal, Decimal]:
    """Rows, sum of ``cost`` and of ``cost + credits`` of the sample export (json lines)."""
    rows, billed, effective = 0, Decimal(0), Decimal(0)
    for line in gzip.decompress((LOCAL_RUN / "part-000000000000.json.gz").read_bytes()).splitlines():
        row = json.loads(line, parse_float=Decimal)
        cost = Decimal(row["cost"])
        rows += 1
        billed += cost
        effective += cost + sum((Decimal(c["amount"]) for c in row.get("credits") or []), Decimal(0))
    return rows, billed, effective


def storage_event(bucket: str, blob: storage.Blob) -> dict[str, Any]:
    """What Eventarc sends for ``google.cloud.storage.object.v1.finalized`` (binary mode)."""
    return {"headers": {"ce-id": uuid.uuid4().hex, "ce-specversion": "1.0",
                        "ce-type": "google.cloud.storage.object.v1.finalized",
                        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
                        "ce-subject": f"objects/{blob.name}", "Content-Type": "application/json"},
            "data": {"bucket": bucket, "name": blob.name, "generation": str(blob.generation), "size": str(blob.size),
                     "etag": blob.etag, "contentType": blob.content_type, "metageneration": "1",
                     "timeCreated": "2024-09-21T06:04:10.000Z", "updated": "2024-09-21T06:04:10.000Z"}}


def post(target: str, event: dict[str, Any]) -> Any:
    app = functions_framework.create_app(target=target, source=SOURCE, signature_type="cloudevent").test_client()
    return app.post("/", data=json.dumps(event["data"]), headers=event["headers"])


def pull_all(sub: pubsub_v1.SubscriberClient, subscription: str, expect: int = 0) -> list[Message]:
    """What the emulator holds (after waiting for ``expect`` messages), one per message id."""
    return list({m.message_id: m for m in pull_messages(sub, subscription, expect)}.values())


@pytest.fixture
def queue(pubsub: Any) -> tuple[pubsub_v1.PublisherClient, pubsub_v1.SubscriberClient, str, str]:
    pub, sub = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    name = uuid.uuid4().hex[:10]
    topic = pub.topic_path(pubsub.project, f"shared-{name}")
    subscription = sub.subscription_path(pubsub.project, f"guardrail-{name}")
    pub.create_topic(name=topic)
    sub.create_subscription(name=subscription, topic=topic)
    return pub, sub, topic, subscription


@pytest.fixture
def bucket(gcs: Any) -> storage.Bucket:
    client = storage.Client(project=gcs.project, credentials=AnonymousCredentials())
    return client.create_bucket(f"billing-{uuid.uuid4().hex[:8]}")


def upload_run(bucket: storage.Bucket, parts: dict[str, bytes], manifest: dict[str, Any]) -> dict[str, storage.Blob]:
    """As the export job does: the data parts first, the manifest last."""
    blobs = {}
    for name, data in parts.items():
        blob = bucket.blob(f"{RUN}/{name}")
        blob.upload_from_string(data)
        blobs[name] = blob
    blob = bucket.blob(f"{RUN}/manifest.json")
    blob.upload_from_string(json.dumps(manifest), content_type="application/json")
    blobs["manifest.json"] = blob
    for b in blobs.values():
        b.reload()
    return blobs


@pytest.fixture
def functions_on_emulators(monkeypatch: pytest.MonkeyPatch, bucket: storage.Bucket, queue: Any) -> None:
    pub, _sub, topic, _subscription = queue
    monkeypatch.setattr(gcp, "ingest_runtime", lambda: (GcsStore(bucket.client, chunk_size=256 * 1024),
                                                        PubSubPublisher(pub, topic)))
    monkeypatch.setattr(gcp, "budget_runtime", lambda: PubSubPublisher(pub, topic))


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_the_manifest_brings_the_whole_run_onto_the_queue(fmt: str, bucket: storage.Bucket, queue: Any,
                                                          functions_on_emulators: None) -> None:
    _pub, sub, _topic, subscription = queue
    manifest = json.loads((LOCAL_RUN / "manifest.json").read_text())
    if fmt == "json":
        parts = {"part-000000000000.json.gz": (LOCAL_RUN / "part-000000000000.json.gz").read_bytes()}
    else:
        # The same rows as the export job's Parquet (two shards, as a wildcard URI writes them).
        table = pq.read_table(SAMPLES / "billing-export-202409.parquet")
        parts = {}
        for i, piece in enumerate([table.slice(0, 300), table.slice(300)]):
            sink = io.BytesIO()
            pq.write_table(piece, sink)
            parts[f"part-00000000000{i}.parquet"] = sink.getvalue()
        manifest = {**manifest, "format": "parquet",
                    "files": [{"name": "part-000000000000.parquet", "rows": 300},
                              {"name": "part-000000000001.parquet", "rows": 272}]}
    blobs = upload_run(bucket, parts, manifest)
    first_part = next(iter(parts))
    skipped = post("ingest", storage_event(bucket.name, blobs[first_part]))
    assert skipped.status_code == 200
    assert pull_all(sub, subscription) == []  # a data part waits for its manifest
    response = post("ingest", storage_event(bucket.name, blobs["manifest.json"]))
    assert response.status_code == 200
    messages = pull_all(sub, subscription, expect=2)
    [summary_msg] = [m for m in messages if m.kind == DELIVERY_SUMMARY]
    chunks = [m for m in messages if m.kind == LINE_ITEMS]
    summary = DeliverySummary.model_validate_json(summary_msg.data)
    rows, billed, effective = raw_totals()
    assert summary.totals.rows == rows == 572 and summary.expected_rows == 572
    assert summary.totals.billed["USD"] == billed
    assert summary.totals.effective["USD"] == effective
    assert sorted(m.message_id for m in chunks) == sorted(summary.chunk_ids)
    assert {m.attributes["delivery_id"] for m in messages} == {summary.delivery.delivery_id}


def test_a_bad_manifest_is_reported_in_one_line_and_acknowledged(bucket: storage.Bucket, queue: Any,
                                                                 functions_on_emulators: None,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _pub, sub, _topic, subscription = queue
    manifest = json.loads((LOCAL_RUN / "manifest.json").read_text())
    blobs = upload_run(bucket, {}, {**manifest, "totalRows": 999})
    response = post("ingest", storage_event(bucket.name, blobs["manifest.json"]))
    assert response.status_code == 200  # not retried: it can never succeed
    [line] = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    assert line["severity"] == "ERROR" and "totalRows 999" in line["message"] and "manifest.json" in line["message"]
    assert pull_all(sub, subscription) == []


def budget_cloudevent(path: Path) -> dict[str, Any]:
    event = json.loads(path.read_text())
    headers = {f"ce-{k}": str(v) for k, v in event.items() if k not in ("data", "datacontenttype")}
    headers["Content-Type"] = "application/json"
    return {"headers": headers, "data": event["data"]}


def test_budget_notifications_become_one_alert_per_state(queue: Any, functions_on_emulators: None) -> None:
    """The same state re-sent (a crossing re-sent with a higher cost; a periodic update without
    a threshold, many times a day) keeps its alert id; a new threshold is a new id."""
    _pub, sub, _topic, subscription = queue
    sent = ["threshold-50", "threshold-50.resent", "no-threshold", "no-threshold", "threshold-80"]
    for name in sent:
        assert post("budget", budget_cloudevent(BUDGET_EVENTS / f"gcp-budget.{name}.cloudevent.CONSTRUCTED.json")
                    ).status_code == 200
    received = pull_received(sub, subscription, expect=len(sent))
    ids = [r.message.attributes["message_id"] for r in received]
    assert all(r.message.attributes["kind"] == BUDGET_ALERT for r in received)
    assert len(ids) == len(sent)  # every notification is published (the guardrail deduplicates)
    assert len(set(ids)) == 3  # …as three alerts: the 50 % crossing, the state, the 80 % crossing
