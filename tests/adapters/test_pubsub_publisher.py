"""The Pub/Sub publisher against the official emulator: what is published arrives whole, with
burnguard's deterministic id and kind as attributes; the push envelope decodes back."""

from __future__ import annotations

import base64
import uuid

import pytest
from google.cloud import pubsub_v1

from burnguard.adapters.gcp.pubsub import MAX_MESSAGE_BYTES, PubSubPublisher, message_from_push
from burnguard.core.errors import InputError
from burnguard.core.messages import Message
from burnguard.ports.objects import PublishError
from tests.pubsub_pull import pull_now

pytestmark = pytest.mark.emulator


def _topic(pubsub) -> tuple[pubsub_v1.PublisherClient, pubsub_v1.SubscriberClient, str, str]:
    pub, sub = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    name = uuid.uuid4().hex[:10]
    topic = pub.topic_path(pubsub.project, f"q-{name}")
    subscription = sub.subscription_path(pubsub.project, f"s-{name}")
    pub.create_topic(name=topic)
    sub.create_subscription(name=subscription, topic=topic)
    return pub, sub, topic, subscription


def test_published_messages_arrive_with_their_ids(pubsub) -> None:
    pub, sub, topic, subscription = _topic(pubsub)
    sent = [Message({"kind": "line-items", "message_id": f"m{i}", "delivery_id": "d1"}, bytes([i]) * (i + 1))
            for i in range(5)]
    publisher = PubSubPublisher(pub, topic)
    publisher(sent)
    got: dict[str, Message] = {}
    for _ in range(20):
        resp = sub.pull(request={"subscription": subscription, "max_messages": 10}, timeout=5)
        for r in resp.received_messages:
            got[r.message.attributes["message_id"]] = Message(dict(r.message.attributes), r.message.data)
        if len(got) == len(sent):
            break
    assert {m.message_id: m for m in sent} == got
    assert publisher.published == 5 and publisher.bytes == sum(len(m.data) for m in sent)


def test_oversized_message_refused_before_anything_is_sent(pubsub) -> None:
    pub, sub, topic, subscription = _topic(pubsub)
    with pytest.raises(PublishError, match="big"):
        PubSubPublisher(pub, topic)([Message({"message_id": "ok"}, b"x"),
                                     Message({"message_id": "big"}, b"x" * (MAX_MESSAGE_BYTES + 1))])
    assert pull_now(sub, subscription) == []


def test_publish_to_missing_topic_names_it(pubsub) -> None:
    topic = f"projects/{pubsub.project}/topics/missing-{uuid.uuid4().hex[:6]}"
    with pytest.raises(PublishError, match="missing-"):
        PubSubPublisher(pubsub_v1.PublisherClient(), topic, timeout=10)([Message({"message_id": "a"}, b"1")])


def test_push_envelope_decodes() -> None:
    env = {"message": {"data": base64.b64encode(b"payload").decode(), "attributes": {"kind": "budget-alert",
                                                                                    "message_id": "x"}},
           "subscription": "projects/p/subscriptions/s"}
    m = message_from_push(env)
    assert (m.kind, m.message_id, m.data) == ("budget-alert", "x", b"payload")
    with pytest.raises(InputError, match=r"message\.data"):
        message_from_push({"message": {"data": "***", "attributes": {}}})
    with pytest.raises(InputError, match="no 'message'"):
        message_from_push({"subscription": "s"})
