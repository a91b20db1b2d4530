"""The ``guardrail`` Cloud Function on the shared topic, end to end on real parts: the Pub/Sub
emulator pushes to a local endpoint that hands each push to functions-framework's test client
as the CloudEvent Eventarc would send (binary mode, ``data`` = the push envelope); the ledger is
Firestore on its emulator. The oracle of "the right ledger" is a clean run: the same messages
applied once, in order, to a fresh ledger."""

from __future__ import annotations

import base64
import json
import random
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from google.cloud import firestore as gcf
from google.cloud import pubsub_v1

from burnguard.adapters.gcp.firestore import FirestoreLedger
from burnguard.adapters.gcp.pubsub import PubSubPublisher, PushConsumer
from burnguard.app import gcp
from burnguard.core.ledger import Scope, Window
from burnguard.core.messages import LINE_ITEMS, Message
from burnguard.ports.notify import Notification
from tests.deliveries import cur_table, delivery_ref, messages_for, write_cur
from tests.emulators import QuietHandler, http_server
from tests.functions.slash_events import FUNCTIONS
from tests.slack_helpers import POLICY

pytestmark = pytest.mark.emulator

SOURCE = str(FUNCTIONS / "gcp" / "main.py")
NOW = datetime(2024, 9, 30, 12, tzinfo=UTC)
SEPTEMBER = Window(date(2024, 9, 1), date(2024, 10, 1), ("2024-09",))


class Notes:
    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> None:
        self.sent.append(notification)


class FlakyLedger:
    """A real Firestore ledger whose ``add_chunk`` fails (a transient error, before any write)
    the first ``failures`` times it sees each chunk id of ``flaky`` — fault injection."""

    def __init__(self, inner: FirestoreLedger, flaky: set[str], failures: int = 2):
        self.inner = inner
        self.flaky = flaky
        self.failures = failures
        self.seen: dict[str, int] = {}
        self.stored: list[str] = []

    def add_chunk(self, chunk_id: str, *args: Any, **kwargs: Any) -> bool:
        self.seen[chunk_id] = self.seen.get(chunk_id, 0) + 1
        if chunk_id in self.flaky and self.seen[chunk_id] <= self.failures:
            raise ConnectionError(f"injected failure {self.seen[chunk_id]} of {chunk_id}")
        stored = self.inner.add_chunk(chunk_id, *args, **kwargs)
        if stored:
            self.stored.append(chunk_id)
        return stored

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def cur_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("cur")
    return [write_cur(cur_table(1200, 1, 10), d / "v1.csv"), write_cur(cur_table(1600, 1, 20, scale=1.07), d / "v2.csv")]


@pytest.fixture
def deliveries(cur_files: list[Path]) -> list[list[Message]]:
    refs = [delivery_ref(f"v{i + 1}", produced_at=datetime(2024, 9, 10 * (i + 1), tzinfo=UTC)) for i in range(2)]
    return [messages_for(ref, [p]) for ref, p in zip(refs, cur_files, strict=True)]


@pytest.fixture
def policy_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "policy.yaml").write_text(POLICY)
    return {"BURNGUARD_POLICY": str(tmp_path / "policy.yaml")}


def ledger_for(firestore: Any, prefix: str) -> FirestoreLedger:
    return FirestoreLedger(gcf.Client(project=firestore.project), prefix=prefix)


def fingerprint(ledger: Any) -> dict[str, Any]:
    return {
        "teams": {r.scope_value: r.amount for r in ledger.spend(Scope("team"), SEPTEMBER)},
        "daily": ledger.daily(Scope("team", "ml-research"), SEPTEMBER),
        "hourly": ledger.gpu_hourly(Scope("team"), datetime(2024, 9, 1, tzinfo=UTC)),
        "top": ledger.top_resources(Scope("team", "ml-research"), SEPTEMBER, limit=20),
        "services": ledger.by_service(Scope("project"), SEPTEMBER),
        "counted": sorted(d.delivery.version for d in ledger.deliveries() if d.counted),
        "statuses": sorted((d.delivery.version, d.status) for d in ledger.deliveries(include_superseded=True)),
        "latest": ledger.latest_data(),
    }


def clean_run(firestore: Any, policy_env: dict[str, str], messages: Sequence[Message]) -> dict[str, Any]:
    ledger = ledger_for(firestore, "clean_")
    consumer = gcp.build_guardrail(policy_env, ledger=ledger, controllers={}, notifier=Notes(),
                                   dead_letter=lambda ms: pytest.fail(f"clean run dead-lettered {ms}"),
                                   clock=lambda: NOW)
    for m in messages:
        assert consumer(push_envelope(m)).status == "applied"
    return fingerprint(ledger)


def push_envelope(m: Message, attempt: int | None = None) -> dict[str, Any]:
    envelope: dict[str, Any] = {"message": {"data": base64.b64encode(m.data).decode(), "attributes": m.attributes,
                                            "messageId": uuid.uuid4().hex, "publishTime": "2024-09-30T12:00:00Z"},
                                "subscription": "projects/burnguard-test/subscriptions/guardrail"}
    if attempt is not None:
        envelope["deliveryAttempt"] = attempt
    return envelope


def function_client() -> Any:
    return functions_framework.create_app(target="guardrail", source=SOURCE, signature_type="cloudevent").test_client()


def post_cloudevent(client: Any, envelope: dict[str, Any], topic: str = "projects/p/topics/shared") -> Any:
    """What Eventarc sends a Pub/Sub-triggered function: a binary-mode CloudEvent."""
    headers = {"ce-id": uuid.uuid4().hex, "ce-specversion": "1.0",
               "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
               "ce-source": f"//pubsub.googleapis.com/{topic}", "Content-Type": "application/json"}
    return client.post("/", data=json.dumps(envelope), headers=headers)


@pytest.fixture
def use_consumer(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[PushConsumer]]:
    holder: list[PushConsumer] = []
    monkeypatch.setattr(gcp, "guardrail_runtime", lambda: holder[0])
    yield holder


def test_every_message_ten_times_shuffled_gives_the_ledger_of_a_clean_run(
        firestore: Any, policy_env: dict[str, str], deliveries: list[list[Message]],
        use_consumer: list[PushConsumer]) -> None:
    messages = [m for batch in deliveries for m in batch]
    expected = clean_run(firestore, policy_env, messages)
    ledger = ledger_for(firestore, "chaos_")
    use_consumer.append(gcp.build_guardrail(policy_env, ledger=ledger, controllers={}, notifier=Notes(),
                                            dead_letter=lambda ms: pytest.fail("dead-lettered"), clock=lambda: NOW))
    chaos = messages * 10
    random.Random(7).shuffle(chaos)
    client = function_client()
    for m in chaos:
        assert post_cloudevent(client, push_envelope(m)).status_code == 200
    assert fingerprint(ledger) == expected
    assert expected["counted"] == ["v2"] and expected["teams"]
    switches = [e for e in ledger.audit_log(limit=1000) if e.kind == "delivery" and e.outcome == "ok"]
    assert len(switches) <= 2  # each delivery switched in at most once, whatever the replays


def test_a_transient_failure_is_retried_and_answered_500_then_dead_lettered_at_the_last_attempt(
        firestore: Any, policy_env: dict[str, str], deliveries: list[list[Message]],
        use_consumer: list[PushConsumer]) -> None:
    chunk = next(m for m in deliveries[0] if m.kind == LINE_ITEMS)
    flaky = FlakyLedger(ledger_for(firestore, "flaky_"), {chunk.message_id}, failures=99)
    dead: list[Message] = []
    use_consumer.append(gcp.build_guardrail({**policy_env, "BURNGUARD_MAX_DELIVERY_ATTEMPTS": "5"},
                                            ledger=flaky, controllers={}, notifier=Notes(),  # type: ignore[arg-type]
                                            dead_letter=dead.extend, clock=lambda: NOW))
    client = function_client()
    for attempt in (1, 2, 3, 4):
        assert post_cloudevent(client, push_envelope(chunk, attempt)).status_code == 500  # Pub/Sub retries
    assert dead == []
    assert post_cloudevent(client, push_envelope(chunk, 5)).status_code == 200  # acknowledged: dead-lettered
    [buried] = dead
    assert buried.data == chunk.data and buried.message_id == chunk.message_id
    assert buried.attributes["reason"].startswith("failed 5 deliveries, the last with ConnectionError: injected")


# -- through the Pub/Sub emulator ------------------------------------------------------------------
def make_bridge(client: Any, lock: threading.Lock, statuses: list[int]) -> type[BaseHTTPRequestHandler]:
    """The push endpoint: hands each push body to the function as Eventarc would (CloudEvent)."""

    class Bridge(QuietHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                status = post_cloudevent(client, body).status_code
                statuses.append(status)
            self.send_response(204 if status == 200 else status)
            self.end_headers()

    return Bridge


def topics(pubsub: Any) -> tuple[pubsub_v1.PublisherClient, pubsub_v1.SubscriberClient, str, str, str]:
    pub, sub = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    name = uuid.uuid4().hex[:10]
    shared, dead = pub.topic_path(pubsub.project, f"shared-{name}"), pub.topic_path(pubsub.project, f"dead-{name}")
    pub.create_topic(name=shared)
    pub.create_topic(name=dead)
    dead_sub = sub.subscription_path(pubsub.project, f"dead-{name}")
    sub.create_subscription(name=dead_sub, topic=dead)
    return pub, sub, shared, dead, dead_sub


def push_subscription(sub: pubsub_v1.SubscriberClient, pubsub: Any, topic: str, dead: str, endpoint: str) -> str:
    name = sub.subscription_path(pubsub.project, f"push-{uuid.uuid4().hex[:10]}")
    sub.create_subscription(request={
        "name": name, "topic": topic, "push_config": {"push_endpoint": endpoint},
        "ack_deadline_seconds": 30,
        "retry_policy": {"minimum_backoff": {"seconds": 1}, "maximum_backoff": {"seconds": 2}},
        "dead_letter_policy": {"dead_letter_topic": dead, "max_delivery_attempts": 5},
    })
    return name


def wait_for(condition: Any, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_through_the_emulator_a_message_failing_twice_is_applied_once(
        pubsub: Any, firestore: Any, policy_env: dict[str, str], deliveries: list[list[Message]],
        use_consumer: list[PushConsumer]) -> None:
    messages = deliveries[0]
    expected = clean_run(firestore, policy_env, messages)
    chunk = next(m for m in messages if m.kind == LINE_ITEMS)
    chunk_id = chunk.message_id
    flaky = FlakyLedger(ledger_for(firestore, "pushed_"), {chunk_id}, failures=2)
    pub, sub, shared, dead, _dead_sub = topics(pubsub)
    use_consumer.append(gcp.build_guardrail(policy_env, ledger=flaky, controllers={},  # type: ignore[arg-type]
                                            notifier=Notes(), dead_letter=PubSubPublisher(pub, dead),
                                            clock=lambda: NOW))
    statuses: list[int] = []
    with http_server(make_bridge(function_client(), threading.Lock(), statuses)) as url:
        push_subscription(sub, pubsub, shared, dead, url + "/push")
        PubSubPublisher(pub, shared)(messages)
        wait_for(lambda: [d.status for d in flaky.deliveries()] == ["complete"], "the delivery to complete")
        wait_for(lambda: statuses.count(200) >= len(messages), "every message acknowledged")
    assert flaky.seen[chunk_id] >= 3 and statuses.count(500) >= 2
    assert flaky.stored.count(chunk_id) == 1
    assert fingerprint(flaky) == expected


def test_through_the_emulator_a_poison_message_reaches_the_dead_letter_topic_with_its_reason(
        pubsub: Any, firestore: Any, policy_env: dict[str, str], use_consumer: list[PushConsumer]) -> None:
    pub, sub, shared, dead, dead_sub = topics(pubsub)
    use_consumer.append(gcp.build_guardrail(policy_env, ledger=ledger_for(firestore, "poison_"), controllers={},
                                            notifier=Notes(), dead_letter=PubSubPublisher(pub, dead),
                                            clock=lambda: NOW))
    poison = Message({"kind": LINE_ITEMS, "message_id": "poison-1", "delivery_id": "d1", "schema": "1"},
                     b"not an arrow stream")
    statuses: list[int] = []
    with http_server(make_bridge(function_client(), threading.Lock(), statuses)) as url:
        push_subscription(sub, pubsub, shared, dead, url + "/push")
        PubSubPublisher(pub, shared)([poison])
        got: list[Any] = []

        def pulled() -> bool:
            resp = sub.pull(request={"subscription": dead_sub, "max_messages": 10},
                            timeout=5)
            got.extend(r.message for r in resp.received_messages)
            return bool(got)

        wait_for(pulled, "the dead-lettered message")
    [message] = got
    assert message.data == poison.data
    assert message.attributes["message_id"] == "poison-1"
    assert message.attributes["reason"]
    assert "line-items payload is not an Arrow IPC stream" in message.attributes["reason"]
    assert message.attributes["dead_letter_source"].endswith("/subscriptions/" + message.attributes[
        "dead_letter_source"].rsplit("/", 1)[-1])
    assert statuses == [200]  # acknowledged at once: a malformed message is never retried


def test_a_raw_push_keeps_its_delivery_attempt(tmp_path: Path, policy_env: dict[str, str],
                                               deliveries: list[list[Message]],
                                               use_consumer: list[PushConsumer]) -> None:
    """Deployed as an HTTP function behind burnguard's own push subscription (the infra
    module's way, for the dead-letter policy), the body is the raw push: its deliveryAttempt
    still counts. (SQLite ledger here: the attempt logic is the subject.)"""
    from burnguard.adapters.local.ledger import SqliteLedger

    chunk = next(m for m in deliveries[0] if m.kind == LINE_ITEMS)
    flaky = FlakyLedger(SqliteLedger(tmp_path / "l.sqlite"), {chunk.message_id}, failures=99)  # type: ignore[arg-type]
    dead: list[Message] = []
    use_consumer.append(gcp.build_guardrail(policy_env, ledger=flaky, controllers={},  # type: ignore[arg-type]
                                            notifier=Notes(), dead_letter=dead.extend, clock=lambda: NOW))
    app = functions_framework.create_app(target="guardrail", source=SOURCE, signature_type="http").test_client()
    assert app.post("/", json=push_envelope(chunk, 2)).status_code == 500
    assert app.post("/", json=push_envelope(chunk, 5)).status_code == 200
    [buried] = dead
    assert buried.attributes["delivery_attempt"] == "5"
    assert buried.attributes["dead_letter_source"] == "projects/burnguard-test/subscriptions/guardrail"


def test_through_the_emulator_a_message_failing_every_time_reaches_the_dead_letter_topic(
        pubsub: Any, firestore: Any, policy_env: dict[str, str], deliveries: list[list[Message]],
        use_consumer: list[PushConsumer]) -> None:
    """Retried with the subscription's backoff, then forwarded by its dead-letter policy after
    ``max_delivery_attempts``. (The emulator's push body has no ``deliveryAttempt``, so this is
    the backstop path; real Pub/Sub sends it, and the function then dead-letters the message
    itself with the last error: test_a_transient_failure_is_retried_… and test_a_raw_push_….)"""
    chunk = next(m for m in deliveries[0] if m.kind == LINE_ITEMS)
    flaky = FlakyLedger(ledger_for(firestore, "doomed_"), {chunk.message_id}, failures=10_000)
    pub, sub, shared, dead, dead_sub = topics(pubsub)
    use_consumer.append(gcp.build_guardrail({**policy_env, "BURNGUARD_MAX_DELIVERY_ATTEMPTS": "5"}, ledger=flaky,
                                            controllers={}, notifier=Notes(),  # type: ignore[arg-type]
                                            dead_letter=PubSubPublisher(pub, dead), clock=lambda: NOW))
    statuses: list[int] = []
    got: list[Any] = []
    with http_server(make_bridge(function_client(), threading.Lock(), statuses)) as url:
        push_subscription(sub, pubsub, shared, dead, url + "/push")
        PubSubPublisher(pub, shared)([chunk])

        def pulled() -> bool:
            resp = sub.pull(request={"subscription": dead_sub, "max_messages": 10}, timeout=5)
            got.extend(r.message for r in resp.received_messages)
            return bool(got)

        wait_for(pulled, "the dead-lettered message")
    [message] = got
    assert message.attributes["message_id"] == chunk.message_id and message.data == chunk.data
    assert message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert statuses == [500] * 5 and flaky.seen[chunk.message_id] == 5
    assert flaky.stored == [] and flaky.deliveries() == []  # nothing of it was committed
