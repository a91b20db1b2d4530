"""Reading a subscription of the Pub/Sub emulator in tests, without a fixed wait.

The functions under test publish synchronously (``PubSubPublisher`` waits for every publish
future), so when a handler has returned, what it published is already held by the emulator. An
empty long pull on the emulator blocks about 2 s before answering; two of those to decide "that
was everything" cost ~4 s per test. Here a *pending* read (fewer than ``expect`` messages so far)
uses the long pull, which answers as soon as a message arrives, under a deadline; the final "is
there anything more" read asks the emulator to answer at once (``return_immediately``), which
is exact on the emulator since the messages are already there.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

from google.api_core.exceptions import DeadlineExceeded

from burnguard.core.messages import Message

DEADLINE = 30.0  # seconds to wait for ``expect`` messages before giving up (a failing test, not a slow one)


def pull_now(subscriber: Any, subscription: str, max_messages: int = 100) -> list[Any]:
    """One pull answered at once (held messages, or none) and acknowledged."""
    with warnings.catch_warnings():
        # Deprecated for the real service (it may answer empty while messages exist); on the
        # emulator, which holds published messages in memory, it answers with what is held.
        warnings.simplefilter("ignore", DeprecationWarning)
        resp = subscriber.pull(request={"subscription": subscription, "max_messages": max_messages,
                                        "return_immediately": True}, timeout=10)
    return _ack(subscriber, subscription, list(resp.received_messages))


def _pull_wait(subscriber: Any, subscription: str, max_messages: int) -> list[Any]:
    try:
        resp = subscriber.pull(request={"subscription": subscription, "max_messages": max_messages}, timeout=3)
    except DeadlineExceeded:
        return []
    return _ack(subscriber, subscription, list(resp.received_messages))


def _ack(subscriber: Any, subscription: str, received: list[Any]) -> list[Any]:
    if received:
        subscriber.acknowledge(request={"subscription": subscription, "ack_ids": [r.ack_id for r in received]})
    return received


def pull_received(subscriber: Any, subscription: str, expect: int = 0, *, deadline: float = DEADLINE,
                  until: Callable[[list[Any]], bool] | None = None) -> list[Any]:
    """Every received message (acknowledged), in arrival order: waits (long pulls, bounded by
    ``deadline``) while fewer than ``expect`` arrived (or until ``until(received)``), then reads
    until the emulator holds nothing more."""
    got: list[Any] = []
    done = until or (lambda received: len(received) >= expect)
    end = time.monotonic() + deadline
    while not done(got) and time.monotonic() < end:
        got += _pull_wait(subscriber, subscription, 100)
    while batch := pull_now(subscriber, subscription):
        got += batch
    return got


def pull_messages(subscriber: Any, subscription: str, expect: int = 0, *, deadline: float = DEADLINE) -> list[Message]:
    """``pull_received`` as burnguard ``Message``s."""
    return [Message(dict(r.message.attributes), r.message.data)
            for r in pull_received(subscriber, subscription, expect, deadline=deadline)]
