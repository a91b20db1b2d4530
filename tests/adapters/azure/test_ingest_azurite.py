"""The ingest function end to end on real parts: export runs uploaded to Azurite, the Event
Grid trigger called as the host calls it (the function object of ``function_app.py`` with the
binding's own ``EventGridEvent`` / ``CloudEvent``), the run streamed from Azurite and published
to the Pub/Sub emulator; what arrives reconciles to the cent with the files (the oracle reads
the raw CSV text with ``Decimal``). A restated run replaces the first in the ledger."""

from __future__ import annotations

import base64
import gzip
import json
import logging
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.storage.blob import BlobServiceClient
from google.cloud import pubsub_v1

from burnguard.adapters.azure.eventgrid import BLOB_CREATED
from burnguard.adapters.local.ledger import SqliteLedger
from burnguard.adapters.local.notifier import ConsoleNotifier
from burnguard.app import azure as azure_app
from burnguard.core.messages import DELIVERY_SUMMARY, LINE_ITEMS, Message, decode_chunk, decode_summary
from burnguard.core.policy import load_policy
from burnguard.services.guardrail import GuardrailService
from tests.adapters.azure.events import event_json, host_event
from tests.adapters.azure.exports import (
    FIRST_RUN,
    RESTATED_RUN,
    ROOT,
    Run,
    focus_run,
    partitioned_run,
    sample_run,
)
from tests.functions.slash_events import load
from tests.pubsub_pull import pull_now, pull_received

pytestmark = pytest.mark.emulator

ingest = load("azure", "function_app.py").ingest.build().get_user_function()
CENT = Decimal("0.01")


class World:
    def __init__(self, azure_storage: Any, pubsub: Any, monkeypatch: pytest.MonkeyPatch):
        name = uuid.uuid4().hex[:10]
        self.blob_endpoint = azure_storage.blob_endpoint
        self.service = BlobServiceClient.from_connection_string(azure_storage.connection_string)
        self.container = f"exports-{name}"
        self.service.create_container(self.container)
        self.publisher, self.subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        self.topic = self.publisher.topic_path(pubsub.project, f"q-{name}")
        self.subscription = self.subscriber.subscription_path(pubsub.project, f"s-{name}")
        self.publisher.create_topic(name=self.topic)
        self.subscriber.create_subscription(name=self.subscription, topic=self.topic)
        monkeypatch.setenv(azure_app.TOPIC, self.topic)
        monkeypatch.setenv(azure_app.EXPORT_STORAGE, azure_storage.connection_string)
        monkeypatch.delenv(azure_app.WIF_CONFIG, raising=False)
        azure_app.ingest_endpoint.cache_clear()
        self.events = 0

    def upload(self, key: str, data: bytes) -> None:
        self.service.get_blob_client(self.container, key).upload_blob(data, overwrite=True)

    def fire(self, key: str, size: int, schema: str = "eventgrid") -> None:
        self.events += 1
        ingest(host_event(event_json(schema, self.blob_endpoint, self.container, key, size, n=self.events)))

    def deliver(self, run: Run, schema: str = "eventgrid") -> None:
        """Upload the run as Cost Management does (parts, then the manifest), with an event per blob."""
        for key, data in run.blobs.items():
            self.upload(key, data)
            self.fire(key, len(data), schema)

    def pull(self, expect_summaries: int) -> list[Message]:
        """What reached the queue, after waiting (under a deadline) for ``expect_summaries`` summaries."""
        received = pull_received(self.subscriber, self.subscription, until=lambda got: sum(
            r.message.attributes.get("kind") == DELIVERY_SUMMARY for r in got) >= expect_summaries)
        return list({r.message.attributes["message_id"]: Message(dict(r.message.attributes), r.message.data)
                     for r in received}.values())


@pytest.fixture
def world(azure_storage: Any, pubsub: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield World(azure_storage, pubsub, monkeypatch)
    azure_app.ingest_endpoint.cache_clear()


def reconcile(messages: list[Message], run: Run) -> None:
    """Chunks and the closing summary against the oracle, to the cent, per currency."""
    [summary] = [decode_summary(m) for m in messages if m.kind == DELIVERY_SUMMARY]
    chunks = [decode_chunk(m) for m in messages if m.kind == LINE_ITEMS]
    assert summary.totals.rows == run.rows == sum(c.table.num_rows for c in chunks)
    assert summary.expected_rows == run.rows
    assert sorted(c.chunk_id for c in chunks) == sorted(summary.chunk_ids)
    chunk_billed: dict[str, Decimal] = {}
    for c in chunks:
        for cur, amount in c.declared.billed.items():
            chunk_billed[cur] = chunk_billed.get(cur, Decimal(0)) + amount
    for totals in (summary.totals.billed, chunk_billed):
        assert {k: v.quantize(CENT) for k, v in totals.items()} == {k: v.quantize(CENT) for k, v in run.billed.items()}


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
def test_a_partitioned_run_in_three_formats_reconciles_to_the_cent(world: World, schema: str) -> None:
    run = partitioned_run("5d0c9b1e-7a2f-4c3d-9e8b-1f2a3b4c5d6e")
    world.deliver(run, schema)
    messages = world.pull(1)
    reconcile(messages, run)
    [summary] = [decode_summary(m) for m in messages if m.kind == DELIVERY_SUMMARY]
    assert {f.key for f in summary.files} == set(run.parts)
    assert {f.format for f in summary.files} == {"azure-mca-actual"}


def test_an_amortized_run_is_ingested_with_its_basis(world: World) -> None:
    run = partitioned_run("6e1d0c2f-8b3a-4d4e-8f9c-2a3b4c5d6e7f", kind="AmortizedCost",
                          export="burnguard-amortized-daily")
    world.deliver(run)
    messages = world.pull(1)
    reconcile(messages, run)
    [summary] = [decode_summary(m) for m in messages if m.kind == DELIVERY_SUMMARY]
    assert "amortized" in {f.format.rsplit("-", 1)[-1] for f in summary.files if f.format}


def test_a_focus_run_is_ingested(world: World) -> None:
    run = focus_run("9b4a3f5c-1e6d-4a7b-8c2d-5e6f7a8b9c0d")
    world.deliver(run, "cloudevents")
    messages = world.pull(1)
    reconcile(messages, run)
    [summary] = [decode_summary(m) for m in messages if m.kind == DELIVERY_SUMMARY]
    assert all(f.format and "focus" in f.format for f in summary.files)


def test_a_restated_run_replaces_the_first(world: World, tmp_path: Path) -> None:
    first, restated = sample_run(FIRST_RUN), sample_run(RESTATED_RUN)
    world.deliver(first)
    world.deliver(restated, "cloudevents")
    messages = world.pull(2)
    by_run: dict[str, list[Message]] = {}
    for m in messages:
        by_run.setdefault(m.attributes["delivery_id"], []).append(m)
    assert len(by_run) == 2
    runs = {decode_summary(next(m for m in ms if m.kind == DELIVERY_SUMMARY)).delivery.version: ms
            for ms in by_run.values()}
    reconcile(runs[FIRST_RUN], first)
    reconcile(runs[RESTATED_RUN], restated)

    # The guardrail's ledger (SQLite) counts the restated run only, whatever the arrival order.
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    service = GuardrailService(load_policy(ROOT / "events" / "policies" / "minimal.yaml"), ledger, ConsoleNotifier(),
                               {}, as_of=lambda: datetime(2024, 9, 21, tzinfo=UTC))
    for m in runs[RESTATED_RUN] + runs[FIRST_RUN]:
        service.handle(m)
    statuses = {s.delivery.version: s for s in ledger.deliveries(include_superseded=True)}
    assert statuses[RESTATED_RUN].counted and statuses[RESTATED_RUN].rows == restated.rows
    assert not statuses[FIRST_RUN].counted
    ledger.close()


def test_blobs_outside_a_known_export_are_ignored_with_a_log_line(world: World,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "burnguard.azure")
    world.upload("notes/readme.txt", b"hello")
    world.fire("notes/readme.txt", 5)
    run = partitioned_run("7f2e1d3a-9c4b-4e5f-a0b1-3c4d5e6f7a8b")
    part = run.parts[0]
    world.upload(part, run.blobs[part])
    world.fire(part, len(run.blobs[part]))  # a part alone waits for its manifest
    lines = [r.getMessage() for r in caplog.records if r.name == "burnguard.azure"]
    assert any("notes/readme.txt ignored" in line for line in lines)
    assert any(part in line and "ignored" in line and "manifest" in line for line in lines)
    assert pull_now(world.subscriber, world.subscription) == []


@pytest.mark.parametrize("damage", ["missing", "truncated-gzip"])
def test_a_run_with_a_bad_part_never_counts_and_the_reason_is_dead_lettered(
        world: World, damage: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"dead-{uuid.uuid4().hex[:10]}"
    world.service.create_container(dead)
    monkeypatch.setenv(azure_app.DEAD_LETTER_CONTAINER, dead)
    azure_app.ingest_endpoint.cache_clear()
    run = partitioned_run("8a3f2e4b-0d5c-4f6a-b1c2-4d5e6f7a8b9c")
    gz = next(k for k in run.parts if k.endswith(".gz"))
    for key, data in run.blobs.items():
        if key == gz:
            if damage == "missing":
                continue
            data = gzip.compress(b"x" * 5000)[:-20]
        world.upload(key, data)
    with pytest.raises(azure_app.IngestFailed, match=re.escape(gz)):
        world.fire(run.manifest, len(run.blobs[run.manifest]))
    assert any("not counted" in r.getMessage() for r in caplog.records)
    messages = world.pull(0)
    assert not [m for m in messages if m.kind == DELIVERY_SUMMARY]  # the run never completes
    [record] = list(world.service.get_container_client(dead).list_blobs())
    assert record.name == f"burnguard/831e1650-001e-001b-66ab-{world.events:012d}.json"
    body = json.loads(world.service.get_blob_client(dead, record.name).download_blob().readall())
    assert gz in body["reason"] and ("not found" in body["reason"]) == (damage == "missing")
    assert body["blob"] == f"{world.container}/{run.manifest}" and body["event"]["type"] == BLOB_CREATED


DOCS = sorted((ROOT / "tests" / "fixtures" / "public" / "azure-docs").glob("eventgrid-blobcreated.*.json"))


@pytest.mark.parametrize("sample", DOCS, ids=[p.name for p in DOCS])
def test_each_documented_sample_event_is_handled(world: World, sample: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """Microsoft's sample events name no export (``new-file.txt``; an ADLS ``CreateFile`` of an
    empty file): each is ignored with a log line, nothing is read or published."""
    caplog.set_level(logging.INFO, "burnguard.azure")
    [body] = json.loads(sample.read_text())
    ingest(host_event(body))
    [line] = [r.getMessage() for r in caplog.records if r.name == "burnguard.azure"]
    assert "new-file.txt ignored" in line
    assert ("CreateFile" in line) == ("adls" in sample.name)
    assert world.pull(0) == []


ingest_queue = load("azure", "function_app.py").ingest_queue.build().get_user_function()


def test_events_delivered_through_a_storage_queue(world: World, azure_storage: Any) -> None:
    """Event Grid's storage-queue destination (the infra's ``blob_events`` trigger): the event
    JSON as a queue message on Azurite, handed to ``ingest_queue`` as the host does."""
    from azure.storage.queue import QueueClient, TextBase64EncodePolicy

    name = f"blob-created-{uuid.uuid4().hex[:8]}"
    sender = QueueClient.from_connection_string(azure_storage.connection_string, name,
                                                message_encode_policy=TextBase64EncodePolicy())
    sender.create_queue()
    run = partitioned_run("0c5b4a6d-2f7e-4b8c-9d0e-6f7a8b9c0d1e")
    for key, data in run.blobs.items():
        world.upload(key, data)
        sender.send_message(json.dumps(event_json("eventgrid", world.blob_endpoint, world.container, key, len(data))))
    reader = QueueClient.from_connection_string(azure_storage.connection_string, name)
    received = list(reader.receive_messages(max_messages=10))
    assert len(received) == len(run.blobs)
    for m in received:
        body = base64.b64decode(m.content)  # the host's default messageEncoding (base64)
        ingest_queue(func.QueueMessage(id=m.id, body=body))
    reconcile(world.pull(1), run)


def test_a_queue_that_refuses_fails_the_event_for_a_retry(world: World, pubsub: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from burnguard.ports.objects import PublishError

    monkeypatch.setenv(azure_app.TOPIC, f"projects/{pubsub.project}/topics/missing-{uuid.uuid4().hex[:8]}")
    azure_app.ingest_endpoint.cache_clear()
    run = sample_run(FIRST_RUN)
    for key, data in run.blobs.items():
        world.upload(key, data)
    with pytest.raises(PublishError, match="missing-"):
        world.fire(run.manifest, len(run.blobs[run.manifest]))


def test_the_function_app_declares_every_azure_function() -> None:
    app = load("azure", "function_app.py").app
    triggers = {f.get_function_name(): json.loads(f.get_function_json())["bindings"][0]["type"]
                for f in app.get_functions()}
    assert triggers == {"ingest": "eventGridTrigger", "ingest_queue": "queueTrigger", "budget": "httpTrigger",
                        "slack_command": "httpTrigger", "slack_deferred": "queueTrigger"}
