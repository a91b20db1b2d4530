"""The shared queue on Google Cloud Pub/Sub: the publisher every cloud's ingest and budget
functions use (AWS and Azure through workload identity federation), and the decoding of the
push deliveries the guardrail function receives.

Pub/Sub assigns its own message ids and may deliver a message more than once; burnguard's
deterministic id travels as the ``message_id`` attribute (with ``kind`` and, for deliveries,
``delivery_id``), so consumers deduplicate on it (ARCHITECTURE.md rule 2). A message is at most
10 MB; :data:`MAX_MESSAGE_BYTES` keeps a margin for attributes, and a larger one is refused
before anything of the batch is sent.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from burnguard.core.errors import InputError
from burnguard.core.messages import Message
from burnguard.ports.objects import PublishError

#: Pub/Sub's limit is 10 MB per message (data plus attributes); keep 64 KiB for attributes.
MAX_MESSAGE_BYTES = 10_000_000 - 65_536
#: Actions the publisher calls (least privilege: ``roles/pubsub.publisher`` on the topic).
PERMISSIONS = ("pubsub.topics.publish",)


class PubSubPublisher:
    """:data:`~burnguard.ports.objects.Publish` on a Pub/Sub topic.

    ``client`` is a ``google.cloud.pubsub_v1.PublisherClient`` (its own batching settings apply:
    the client groups messages into publish requests); ``topic`` the full path
    ``projects/<p>/topics/<t>``. A call returns once every message of the batch is acknowledged
    by Pub/Sub, or raises :class:`PublishError` naming the first that failed; publishing the
    same batch again is harmless (consumers deduplicate on ``message_id``).
    """

    def __init__(self, client: Any, topic: str, *, timeout: float = 60.0):
        self.client = client
        self.topic = topic
        self.timeout = timeout
        self.published = 0
        self.bytes = 0

    def __call__(self, messages: Sequence[Message]) -> None:
        for m in messages:
            if len(m.data) > MAX_MESSAGE_BYTES:
                raise PublishError(f"message {m.message_id} is {len(m.data):,} bytes; Pub/Sub takes at most "
                                   f"{MAX_MESSAGE_BYTES:,}")
        futures: list[tuple[Message, Future[str]]] = [
            (m, self.client.publish(self.topic, m.data, **m.attributes)) for m in messages]
        for m, future in futures:
            try:
                future.result(timeout=self.timeout)
            except Exception as exc:  # google.api_core errors, timeouts
                raise PublishError(f"publish of {m.message_id} to {self.topic} failed: "
                                   f"{type(exc).__name__}: {exc}") from None
            self.published += 1
            self.bytes += len(m.data)


def message_from_push(envelope: Mapping[str, Any]) -> Message:
    """The :class:`Message` inside a Pub/Sub push body or a CloudEvent's ``data``
    (``{"message": {"data": <base64>, "attributes": {...}}, "subscription": ...}``)."""
    raw = envelope.get("message") if isinstance(envelope, Mapping) else None
    if not isinstance(raw, Mapping):
        raise InputError("not a Pub/Sub push delivery: no 'message' object", field="message")
    attributes = raw.get("attributes") or {}
    if not isinstance(attributes, Mapping):
        raise InputError("Pub/Sub message attributes are not an object", field="message.attributes")
    try:
        data = base64.b64decode(raw.get("data") or b"", validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise InputError("Pub/Sub message data is not base64", field="message.data") from None
    return Message({str(k): str(v) for k, v in attributes.items()}, data)


#: the attribute a dead-lettered message carries its reason in (one line, at most 1024 characters)
REASON = "reason"
DEFAULT_MAX_ATTEMPTS = 5


@dataclass
class PushOutcome:
    """What :class:`PushConsumer` did with one push delivery (the function acks by returning)."""

    status: str  # applied | dead-lettered
    message_id: str
    reason: str = ""
    result: Any = None


class PushConsumer:
    """The guardrail's consumption of a push subscription (Eventarc CloudEvent or plain push).

    A message is acknowledged (the call returns) only after ``handle`` returned, that is after
    the ledger commit. ``handle`` raising :class:`InputError` means the message can never be
    applied: it is published to ``dead_letter`` with its reason (attribute ``reason``) and
    acknowledged. Anything else raised is transient: it propagates (the function answers 500)
    and Pub/Sub redelivers with the subscription's exponential backoff, until the delivery
    attempt (``deliveryAttempt`` of the envelope, present when the subscription has a
    dead-letter policy) reaches ``max_attempts``: then the message is dead-lettered with the
    last error as its reason, rather than by Pub/Sub's own forwarding, which would drop it.
    No ordering is assumed: ``handle`` is idempotent by ``message_id``.
    """

    def __init__(self, handle: Callable[[Message], Any], dead_letter: Callable[[Sequence[Message]], None], *,
                 max_attempts: int = DEFAULT_MAX_ATTEMPTS, log: Callable[[str], None] | None = None):
        self.handle = handle
        self.dead_letter = dead_letter
        self.max_attempts = max_attempts
        self.log = log or (lambda line: None)

    def __call__(self, envelope: Mapping[str, Any]) -> PushOutcome:
        attempt = _attempt(envelope)
        subscription = str(envelope.get("subscription", "")) if isinstance(envelope, Mapping) else ""
        try:
            message = message_from_push(envelope)
        except InputError as exc:
            raw = json.dumps(envelope, default=str, sort_keys=True).encode() if isinstance(envelope, Mapping) else b""
            return self._bury(Message({}, raw), str(exc), subscription, attempt)
        try:
            result = self.handle(message)
        except InputError as exc:
            return self._bury(message, str(exc), subscription, attempt)
        except Exception as exc:
            if attempt is not None and attempt >= self.max_attempts:
                return self._bury(message, f"failed {attempt} deliveries, the last with {type(exc).__name__}: {exc}",
                                  subscription, attempt)
            self.log(f"message {message.message_id or '?'} (attempt {attempt or '?'}) will be retried: "
                     f"{type(exc).__name__}: {exc}")
            raise
        return PushOutcome("applied", message.message_id, result=result)

    def _bury(self, message: Message, reason: str, subscription: str, attempt: int | None) -> PushOutcome:
        reason = " ".join(reason.split())[:1024]
        attributes = {**message.attributes, REASON: reason, "dead_letter_source": subscription,
                      "delivery_attempt": str(attempt or 1)}
        self.dead_letter([Message(attributes, message.data)])  # raises PublishError: then retried
        self.log(f"message {message.message_id or '?'} dead-lettered: {reason}")
        return PushOutcome("dead-lettered", message.message_id, reason)


def _attempt(envelope: Any) -> int | None:
    if not isinstance(envelope, Mapping):
        return None
    raw = envelope.get("deliveryAttempt")
    if raw is None and isinstance(envelope.get("message"), Mapping):
        raw = envelope["message"].get("deliveryAttempt")
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None
