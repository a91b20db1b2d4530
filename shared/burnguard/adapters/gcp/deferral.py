"""Slash commands finished later on Google Cloud: published to a Pub/Sub topic that a second
function consumes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from burnguard.ports.slack import CommandRequest, DeferralError
from burnguard.services.slack_endpoint import PUBSUB_KIND


class PubSubDeferrer:
    """``publisher`` is a ``google.cloud.pubsub_v1.PublisherClient``; ``topic`` its full path
    (``projects/<p>/topics/<t>``). Waits for the publish to be acknowledged (tens of ms)."""

    def __init__(self, publisher: Any, topic: str, *, timeout: float = 1.5):
        self.publisher = publisher
        self.topic = topic
        self.timeout = timeout

    def defer(self, request: CommandRequest, run: Callable[[CommandRequest], None]) -> None:
        data = json.dumps(request.to_dict()).encode()
        try:
            self.publisher.publish(self.topic, data, kind=PUBSUB_KIND).result(timeout=self.timeout)
        except Exception as exc:  # the publisher raises google.api_core and concurrent.futures errors
            raise DeferralError(f"publish to {self.topic} failed: {type(exc).__name__}: {exc}") from None

