"""Deferrers: finishing a slash command after the 3-second acknowledgement.

The :class:`~burnguard.services.slash.Deferrer` port hands a verified
:class:`~burnguard.slash.CommandRequest` to something that completes it later
(:meth:`SlashService.run_deferred`: compute the answer, POST it to ``response_url``).

* :class:`ThreadDeferrer` — local ``burnguard serve``: a background thread of the same
  process. Right for a long-running server; wrong for serverless, where the platform freezes
  or throttles the instance once the response is sent (Slack Bolt's FaaS adapters say the same).
* :class:`LambdaSelfInvokeDeferrer` — AWS Lambda: the function invokes **itself**
  asynchronously (``InvocationType="Event"``) with ``{"burnguard_slash_deferred": <request>}``.
  Only IAM principals allowed ``lambda:InvokeFunction`` can send such an event (a Function
  URL event always has its fixed shape, the body is never the event), so the handler may
  trust it. The role needs ``lambda:InvokeFunction`` on its own ARN. Lambda retries a failed
  async invocation up to twice; ``run_deferred`` never raises and writes are claimed per
  ``trigger_id``, so a retry never acts twice.
* :class:`PubSubDeferrer` — Google Cloud (the control plane of the architecture): publish the
  request on a Pub/Sub topic; a second function, triggered by that topic
  (``functions/gcp/main.py: slack_deferred``), calls ``run_deferred``. Cloud Functions
  (2nd gen) give no CPU after the response, so a thread would not do.
* **Azure** (not implemented: no Azure queue client in this project yet): the same shape as
  Google Cloud with a Storage queue: send ``request.to_dict()`` as a message
  (``azure.storage.queue.QueueClient.send_message``, or a ``@app.queue_output`` binding of the
  HTTP function), and a ``@app.queue_trigger`` function calling ``run_deferred``. Until then the
  Azure bootstrap uses :class:`UnavailableDeferrer`, and slow commands answer that they cannot
  run from Slack on that deployment (queries still answer inline).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ...errors import BurnguardError
from ...slash import CommandRequest

#: Key of the self-invocation event that carries a deferred slash command (AWS).
DEFERRED_KEY = "burnguard_slash_deferred"
#: Attribute of the Pub/Sub message that carries one (Google Cloud).
PUBSUB_KIND = "slash-deferred"


class DeferralError(BurnguardError):
    """The request could not be handed over (nothing was done)."""


class ThreadDeferrer:
    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def defer(self, request: CommandRequest, run: Callable[[CommandRequest], None]) -> None:
        thread = threading.Thread(target=run, args=(request,), daemon=True,
                                  name=f"burnguard-slash-{request.request_id[:12]}")
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the deferred completions started so far (tests, shutdown)."""
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(timeout)


class LambdaSelfInvokeDeferrer:
    """``client`` is a boto3 Lambda client; ``function_name`` the function's own name or ARN."""

    def __init__(self, client: Any, function_name: str):
        self.client = client
        self.function_name = function_name

    def defer(self, request: CommandRequest, run: Callable[[CommandRequest], None]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        payload = json.dumps({DEFERRED_KEY: request.to_dict()}).encode()
        try:
            response = self.client.invoke(FunctionName=self.function_name, InvocationType="Event", Payload=payload)
        except (BotoCoreError, ClientError) as exc:
            raise DeferralError(f"lambda:Invoke of {self.function_name} failed: {exc}") from None
        if response.get("StatusCode") != 202:
            raise DeferralError(f"lambda:Invoke of {self.function_name} answered {response.get('StatusCode')}")


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


class UnavailableDeferrer:
    """For a deployment without a deferral path: slow commands are refused with a clear answer."""

    def __init__(self, why: str):
        self.why = why

    def defer(self, request: CommandRequest, run: Callable[[CommandRequest], None]) -> None:
        raise DeferralError(self.why)


def deferred_request(event: Mapping[str, Any]) -> CommandRequest | None:
    """The deferred request an AWS self-invocation event carries (``None`` for any other event)."""
    job = event.get(DEFERRED_KEY) if isinstance(event, Mapping) else None
    return CommandRequest.from_dict(job) if isinstance(job, Mapping) else None


def pubsub_request(data: bytes | str) -> CommandRequest:
    """The deferred request of a Pub/Sub message body (the JSON :class:`PubSubDeferrer` sent)."""
    try:
        job = json.loads(data)
    except ValueError as exc:
        raise DeferralError(f"deferred slash command is not JSON: {exc}") from None
    if not isinstance(job, Mapping):
        raise DeferralError("deferred slash command is not a JSON object")
    return CommandRequest.from_dict(job)
