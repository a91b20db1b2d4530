"""The tests' Pub/Sub reader (tests/pubsub_pull.py) on the emulator: everything held is read, past
one pull's 100 messages, without waiting for it; what is awaited arrives; nothing is left."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from google.cloud import pubsub_v1

from tests.pubsub_pull import pull_messages, pull_now, pull_received

pytestmark = pytest.mark.emulator


def test_everything_held_is_read_and_acknowledged(pubsub: Any) -> None:
    pub, sub = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    name = uuid.uuid4().hex[:10]
    topic, subscription = pub.topic_path(pubsub.project, f"t-{name}"), sub.subscription_path(pubsub.project, f"s-{name}")
    pub.create_topic(name=topic)
    sub.create_subscription(name=subscription, topic=topic)
    assert pull_now(sub, subscription) == []  # nothing held: answered at once, empty
    for future in [pub.publish(topic, str(i).encode(), n=str(i)) for i in range(150)]:
        future.result(timeout=30)
    got = pull_messages(sub, subscription)  # nothing awaited: what is held now, in pulls of 100
    assert sorted(int(m.attributes["n"]) for m in got) == list(range(150))
    assert pull_now(sub, subscription) == []  # acknowledged, not redelivered
    pub.publish(topic, b"late", n="late").result(timeout=30)
    [late] = pull_received(sub, subscription, expect=1)
    assert late.message.data == b"late"
    assert pull_received(sub, subscription, expect=1, deadline=0.5) == []  # a deadline, not a hang
    sub.close()
