"""SQS for the AWS functions: part jobs of big deliveries, and the dead-letter queue that
receives an event with the reason it could not be used."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

#: Actions these adapters call.
PERMISSIONS: tuple[str, ...] = ("sqs:SendMessage",)

_BATCH = 10  # SendMessageBatch takes at most 10 entries


class SqsPartQueue:
    """Sends part jobs (``{"burnguard_part": job}``) to ``queue_url``; the ingest Lambda is the
    queue's consumer (event source mapping, batch size 1: one part per invocation)."""

    def __init__(self, client: Any, queue_url: str):
        self.client = client
        self.queue_url = queue_url

    def __call__(self, jobs: Sequence[Mapping[str, Any]]) -> None:
        from burnguard.adapters.aws.events import PART_JOB_KEY

        for start in range(0, len(jobs), _BATCH):
            entries = [{"Id": str(i), "MessageBody": json.dumps({PART_JOB_KEY: dict(job)}, sort_keys=True)}
                       for i, job in enumerate(jobs[start:start + _BATCH], start)]
            response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            failed = response.get("Failed") or []
            if failed:
                raise RuntimeError(f"SQS refused {len(failed)} part job(s): {failed[0].get('Message')}")


class SqsDeadLetter:
    """Puts ``{"reason", "function", "event"}`` on the dead-letter queue ``queue_url``."""

    def __init__(self, client: Any, queue_url: str, function: str):
        self.client = client
        self.queue_url = queue_url
        self.function = function

    def __call__(self, event: Any, reason: str) -> None:
        body = json.dumps({"reason": reason, "function": self.function, "event": event}, default=str)
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=body[:250_000],
                                 MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:1000]}})
