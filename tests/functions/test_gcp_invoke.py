"""``burnguard invoke gcp ingest|budget|guardrail|slack EVENT.json`` on the sample events of
``events/gcp``: with nothing configured, on the embedded queue and ledger of ``--home``; with
``BURNGUARD_LEDGER`` and the dead-letter topic set, on the Firestore and Pub/Sub emulators."""

from __future__ import annotations

import base64
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from google.cloud import pubsub_v1

from burnguard.adapters.local.queue import SqliteQueue
from burnguard.app.cli import main
from tests.functions.test_gcp_ingest_budget import raw_totals

ROOT = Path(__file__).parents[2]
EVENTS = ROOT / "events" / "gcp"
BUDGET = ROOT / "events" / "budget"


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["invoke", "gcp", *args]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def push_file(tmp: Path, attributes: dict[str, str], data: bytes) -> str:
    path = tmp / f"push-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps({"specversion": "1.0", "id": "1", "source": "//pubsub.googleapis.com/x",
                                "type": "google.cloud.pubsub.topic.v1.messagePublished",
                                "data": {"message": {"data": base64.b64encode(data).decode(),
                                                     "attributes": attributes},
                                         "subscription": "projects/p/subscriptions/s"}}))
    return str(path)


def test_embedded_ingest_guardrail_and_slack(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the local buckets are events/exports/gcp/<bucket>
    for name in ("BURNGUARD_TOPIC", "BURNGUARD_LEDGER", "BURNGUARD_POLICY"):
        monkeypatch.delenv(name, raising=False)
    home = str(tmp_path / "home")
    skipped = invoke(capsys, "ingest", str(EVENTS / "storage.part-finalized.cloudevent.json"), "--home", home)
    assert skipped["action"] == "skipped" and skipped["published"] == []
    ingested = invoke(capsys, "ingest", str(EVENTS / "storage.manifest-finalized.cloudevent.json"), "--home", home)
    rows, _billed, effective = raw_totals()
    assert ingested["action"] == "ingested" and ingested["rows"] == rows
    assert ingested["effective"] == {"USD": str(effective.quantize(Decimal("1e-18")))}
    queue = SqliteQueue(Path(home) / "queue.sqlite")
    received = queue.pull(100)
    queue.close()
    assert sorted(r.message.kind for r in received) == ["delivery-summary", "line-items"]
    outcomes = [invoke(capsys, "guardrail", push_file(tmp_path, r.message.attributes, r.message.data), "--home", home)
                for r in received]
    assert all(o["status"] == "applied" for o in outcomes)
    assert [o["completion"]["switched"] for o in outcomes if o["kind"] == "delivery-summary"] in ([True], [False])
    assert any(o["completion"]["status"] == "complete" and o["completion"]["switched"] for o in outcomes)
    answer = invoke(capsys, "slack", str(EVENTS / "slack.spend.json"), "--home", home)
    assert "no spend recorded" not in answer["answer"]["text"] and "USD" in answer["answer"]["text"]
    poison = invoke(capsys, "guardrail", str(EVENTS / "guardrail.poison.cloudevent.json"), "--home", home)
    assert poison["status"] == "dead-lettered" and "Arrow IPC" in poison["dead_letter"][0]["reason"]
    budget = invoke(capsys, "budget", str(BUDGET / "gcp-budget.threshold-80.cloudevent.CONSTRUCTED.json"),
                    "--home", home)
    assert budget["published"][0]["kind"] == "budget-alert"



@pytest.mark.emulator
def test_configured_guardrail_uses_firestore_and_the_dead_letter_topic(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, firestore: Any,
        pubsub: Any) -> None:
    pub, sub = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    name = uuid.uuid4().hex[:10]
    dead = pub.topic_path(pubsub.project, f"dead-{name}")
    pub.create_topic(name=dead)
    dead_sub = sub.subscription_path(pubsub.project, f"dead-{name}")
    sub.create_subscription(name=dead_sub, topic=dead)
    monkeypatch.setenv("BURNGUARD_LEDGER", f"firestore://projects/{firestore.project}/databases/(default)")
    monkeypatch.setenv("BURNGUARD_POLICY", str(ROOT / "events" / "policies" / "demo.yaml"))
    monkeypatch.setenv("BURNGUARD_DEAD_LETTER_TOPIC", dead)
    monkeypatch.delenv("BURNGUARD_GCP_PROJECTS", raising=False)
    alert = invoke(capsys, "guardrail", str(EVENTS / "guardrail.budget-alert.cloudevent.json"))
    assert alert["status"] == "applied" and alert["kind"] == "budget-alert"
    poison = invoke(capsys, "guardrail", str(EVENTS / "guardrail.poison.cloudevent.json"))
    assert poison["status"] == "dead-lettered"
    resp = sub.pull(request={"subscription": dead_sub, "max_messages": 10}, timeout=10)
    [got] = resp.received_messages
    assert got.message.attributes["message_id"] == "poison-0001" and "Arrow IPC" in got.message.attributes["reason"]
