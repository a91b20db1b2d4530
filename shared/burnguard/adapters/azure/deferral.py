"""Slash commands finished later on Azure: the request goes on a Storage queue that the
``slack_deferred`` function (a queue trigger) consumes.

The Functions host's queue trigger expects base64 message text (``host.json``
``extensions.queues.messageEncoding`` defaults to ``base64``), so the JSON of the request is
sent base64-encoded whatever encode policy the client has. A message that fails five times is
moved by the host to ``<queue>-poison`` (the dead-letter queue).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from burnguard.ports.slack import CommandRequest, DeferralError

#: Actions the deferrer calls ("Storage Queue Data Message Sender" on the queue).
PERMISSIONS: tuple[str, ...] = (
    "Microsoft.Storage/storageAccounts/queueServices/queues/messages/add/action",
)


def encode_request(request: CommandRequest) -> str:
    return base64.b64encode(json.dumps(request.to_dict()).encode()).decode("ascii")


class StorageQueueDeferrer:
    """``queue`` is an ``azure.storage.queue.QueueClient`` without an encode policy (the text
    is encoded here). Waits for the queue to accept the message (tens of ms)."""

    def __init__(self, queue: Any, *, timeout: int = 2):
        self.queue = queue
        self.timeout = timeout

    def defer(self, request: CommandRequest, run: Callable[[CommandRequest], None]) -> None:
        try:
            self.queue.send_message(encode_request(request), timeout=self.timeout)
        except Exception as exc:  # azure.core.exceptions.AzureError, connection errors
            raise DeferralError(f"send to queue {getattr(self.queue, 'queue_name', '?')} failed: "
                                f"{type(exc).__name__}: {exc}") from None
