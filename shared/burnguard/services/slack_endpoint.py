"""The slash-command endpoint: one service behind thin HTTP adapters on every platform.

:meth:`SlashService.handle` takes what any HTTP front end has (method, headers, the **raw**
body bytes) and returns an :class:`HttpResponse`. In order:

1. method ``POST`` (else 405), ``Content-Type: application/x-www-form-urlencoded`` (else 415),
   body at most :data:`MAX_BODY` bytes (else 413);
2. the :class:`RequestVerifier` port checks Slack's signature and timestamp on the raw bytes
   and refuses replays (401; ``burnguard.adapters.slack.verify``). Responses never say which
   check failed (the detail is logged);
3. the form is parsed from the raw body (``ssl_check=1`` → 200, empty);
4. the command is answered (:class:`burnguard.services.commands.SlashCommands`).

**Slack waits 3 seconds.** Fast answers (queries, ``snooze``) are computed on a worker thread
and returned inline if ready within ``inline_budget`` (2 s by default); otherwise, and for
commands that call the clouds (``resume``), the request is acknowledged at once ("Working on
it…", ephemeral) and handed to the :class:`Deferrer` port, whose completion
(:meth:`SlashService.run_deferred`) posts the answer to the command's ``response_url``
through the :class:`Responder` port. A write is claimed once per Slack ``trigger_id``, so an
answer computed twice (the late inline one and the deferred one) acts once.

Deferrers live in ``burnguard.adapters.<cloud>.deferral``: ``ThreadDeferrer`` (local
``burnguard serve``: a background thread), ``LambdaSelfInvokeDeferrer`` (AWS: the function
invokes itself asynchronously), ``PubSubDeferrer`` (Google Cloud: a topic and a second function).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from burnguard.core.errors import BurnguardError
from burnguard.core.ledger import AuditEvent
from burnguard.core.policy import Policy
from burnguard.ports.ledger import Ledger
from burnguard.ports.notify import NotifyError
from burnguard.ports.slack import CommandRequest, DeferralError, Deferrer, RequestRejected, RequestVerifier, Responder
from burnguard.services.commands import SlashAnswer, SlashCommands

if TYPE_CHECKING:
    from burnguard.services.guardrail import GuardrailService, ResumeReport

log = logging.getLogger("burnguard.services.commands")

#: Slack's slash-command bodies are a few hundred bytes (the text is at most 4,000 characters).
MAX_BODY = 64 * 1024
FORM = "application/x-www-form-urlencoded"
WORKING = "Working on it… the answer will follow here."
GENERIC = {401: "unauthorized", 400: "bad request", 405: "method not allowed", 413: "payload too large",
           415: "unsupported media type"}


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_json(cls, payload: Mapping[str, Any], status: int = 200) -> HttpResponse:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})

    @classmethod
    def refused(cls, status: int) -> HttpResponse:
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if status == 405:
            headers["Allow"] = "POST"
        return cls(status, GENERIC.get(status, "error").encode(), headers)

    @property
    def mimetype(self) -> str:
        return self.headers.get("Content-Type", "text/plain").split(";")[0]

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def request_id(form: Mapping[str, str], body: bytes) -> str:
    """Slack's ``trigger_id`` (unique per invocation), else a digest of the signed body."""
    return form.get("trigger_id") or "body:" + hashlib.sha256(body).hexdigest()[:32]


class SlashService:
    """Verify, parse, answer within the 3 seconds, defer what is slow.

    ``guardrails`` builds the guardrail service that ``resume`` uses (its instance
    controllers hold cloud clients): it is called only when a resume is completed. ``clock``
    is the wall time (audit entries, snoozes); ``as_of`` the time questions are judged at,
    when it differs (the embedded mode: the end of the billing data).
    """

    def __init__(  # noqa: PLR0913 - a composition point: its ports, then keyword-only settings
            self, verifier: RequestVerifier, ledger: Ledger, policy: Policy,
            guardrails: Callable[[], GuardrailService] | None, *,
            deferrer: Deferrer, responder: Responder,
            clock: Callable[[], datetime] = lambda: datetime.now(UTC),
            as_of: Callable[[], datetime] | None = None, inline_budget: float = 2.0,
            max_body: int = MAX_BODY, executor: Executor | None = None):
        self.verifier = verifier
        self.ledger = ledger
        self.policy = policy
        self.guardrails = guardrails
        self.deferrer = deferrer
        self.responder = responder
        self.clock = clock
        self.as_of = as_of
        self.inline_budget = inline_budget
        self.max_body = max_body
        self.executor = executor or ThreadPoolExecutor(max_workers=4, thread_name_prefix="burnguard-slash")
        self.commands = SlashCommands(ledger, policy, self._resume if guardrails is not None else None)

    def _resume(self, guardrail: str, actor: str) -> ResumeReport:
        assert self.guardrails is not None
        return self.guardrails().resume(guardrail, actor)

    # -- the HTTP request -----------------------------------------------------------------
    def handle(self, body: bytes, headers: Mapping[str, str], method: str = "POST") -> HttpResponse:
        started = time.monotonic()
        headers = lower_headers(headers)
        try:
            form = self._admit(body, headers, method)
        except RequestRejected as exc:
            log.warning("slash command refused (%s): %s", exc.status, exc.reason)
            return HttpResponse.refused(exc.status)
        if form.get("ssl_check") == "1":
            return HttpResponse(200)
        user = form.get("user_id", "")
        if not user:
            log.warning("slash command refused (400): signed form without user_id")
            return HttpResponse.refused(400)
        request = CommandRequest(
            text=form.get("text", ""), user_id=user, at=self.clock(), request_id=request_id(form, body),
            command=form.get("command") or "/burnguard", channel_id=form.get("channel_id", ""),
            team_id=form.get("team_id", ""), user_name=form.get("user_name", ""),
            response_url=form.get("response_url", ""), as_of=self.as_of() if self.as_of is not None else None)
        return HttpResponse.of_json(self.answer(request, started).as_dict())

    def _admit(self, body: bytes, headers: Mapping[str, str], method: str) -> dict[str, str]:
        if method.upper() != "POST":
            raise RequestRejected(405, f"method {method[:10]!r}")
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != FORM:
            raise RequestRejected(415, f"content type {kind[:60]!r}")
        declared = headers.get("content-length", "").strip()
        size = max(len(body), int(declared) if declared.isdigit() else 0)
        if size > self.max_body:
            raise RequestRejected(413, f"body of {size} bytes")
        self.verifier.verify(body, headers)
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                              max_num_fields=64)
        except (UnicodeDecodeError, ValueError) as exc:
            raise RequestRejected(400, f"form body does not parse: {type(exc).__name__}") from None
        return {k: v[0] for k, v in fields.items()}

    def answer(self, request: CommandRequest, started: float | None = None) -> SlashAnswer:
        """The answer to send back now: the real one when ready in time, else the
        acknowledgement of a deferred completion."""
        started = time.monotonic() if started is None else started
        if self.commands.is_slow(request) and self.commands.resume is not None:
            settled = self.commands.precheck(request)
            return settled if settled is not None else self._defer(request)
        future = self.executor.submit(self.commands.complete, request)
        try:
            return future.result(timeout=max(0.0, started + self.inline_budget - time.monotonic()))
        except FutureTimeout:
            log.info("slash command %s not ready in %.1f s: deferred", request.request_id, self.inline_budget)
            return self._defer(request)
        except Exception:
            return self._failed(request)

    def _defer(self, request: CommandRequest) -> SlashAnswer:
        if not request.response_url:
            log.error("slash command %s cannot be deferred: no response_url", request.request_id)
            return SlashAnswer("Sorry: that takes longer than Slack waits, and this request has no response_url.")
        try:
            self.deferrer.defer(request, self.run_deferred)
        except BurnguardError as exc:
            log.error("slash command %s could not be deferred: %s", request.request_id, exc)
            self._audit(request, "failed", {"reason": f"could not be deferred: {exc}"})
            return SlashAnswer("Sorry: that command could not be started; nothing was done. Try again in a minute.")
        return SlashAnswer(WORKING)

    def _failed(self, request: CommandRequest) -> SlashAnswer:
        ref = secrets.token_hex(4)
        log.exception("slash command %s failed (ref %s)", request.request_id, ref)
        return SlashAnswer(f"Sorry, that failed on burnguard's side (ref {ref}); the operators can find it "
                           "in the logs.")

    # -- the deferred completion ------------------------------------------------------------
    def run_deferred(self, request: CommandRequest) -> None:
        """Complete ``request`` and post the answer to its ``response_url``. Never raises (a
        platform retry would repeat the work): failures are logged, and posted when possible."""
        try:
            answer = self.commands.complete(request)
        except Exception:
            answer = self._failed(request)
        payload = {**answer.as_dict(), "replace_original": False}
        try:
            self.responder.respond(request.response_url, payload)
        except NotifyError as exc:
            log.error("slash command %s: answer not delivered to response_url: %s", request.request_id, exc)
            self._audit(request, "failed", {"reason": f"answer not delivered: {exc}"})

    def _audit(self, request: CommandRequest, outcome: str, details: Mapping[str, object]) -> None:
        try:
            self.ledger.audit(AuditEvent(self.clock(), "command", request.user_id, outcome, None, None,
                                         {"text": request.text[:200], "request_id": request.request_id, **details}))
        except Exception:  # the audit must not turn a handled failure into an unhandled one
            log.exception("slash command %s: audit failed", request.request_id)

    def close(self) -> None:
        if isinstance(self.executor, ThreadPoolExecutor):
            self.executor.shutdown(wait=False, cancel_futures=True)


# -- deferral: what serverless deferrers ship, and a deferrer for deployments without one ------

#: Key of the self-invocation event that carries a deferred slash command (AWS).
DEFERRED_KEY = "burnguard_slash_deferred"
#: Attribute of the Pub/Sub message that carries one (Google Cloud).
PUBSUB_KIND = "slash-deferred"


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
