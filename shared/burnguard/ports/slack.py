"""Slack-facing ports of the slash-command endpoint: request verification, replay guard, deferral, response_url."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

from burnguard.core.errors import BurnguardError, InputError
from burnguard.core.timeparse import require_utc

DEFAULT_COMMAND = "/burnguard"


@dataclass(frozen=True)
class CommandRequest:
    """One slash-command invocation, as verified and parsed from Slack's form body.

    ``at`` is when burnguard received it (UTC wall time: audit entries, snoozes); ``as_of`` the
    time questions are judged at ("this month", guardrail status), when it differs (the
    embedded mode judges sample data at its end); ``request_id`` identifies the invocation
    (Slack's ``trigger_id``), so a write is carried out once per invocation. It is plain data
    (:meth:`to_dict`) so a deferred completion can travel through a queue or an async invoke.
    """

    text: str
    user_id: str
    at: datetime
    request_id: str
    command: str = DEFAULT_COMMAND
    channel_id: str = ""
    team_id: str = ""
    user_name: str = ""
    response_url: str = ""
    as_of: datetime | None = None

    def __post_init__(self) -> None:
        require_utc(self.at)
        if self.as_of is not None:
            require_utc(self.as_of)

    @property
    def judged_at(self) -> datetime:
        return self.as_of if self.as_of is not None else self.at

    def to_dict(self) -> dict[str, str]:
        out = {k: v for k, v in asdict(self).items() if k not in ("at", "as_of")}
        out["at"] = self.at.isoformat()
        if self.as_of is not None:
            out["as_of"] = self.as_of.isoformat()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CommandRequest:
        try:
            values = {k: str(data[k]) for k in ("text", "user_id", "request_id")}
            at = require_utc(datetime.fromisoformat(str(data["at"])))
            as_of = require_utc(datetime.fromisoformat(str(data["as_of"]))) if data.get("as_of") else None
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(f"not a deferred slash command: {exc}") from None
        extra = {k: str(data.get(k) or "") for k in ("channel_id", "team_id", "user_name", "response_url")}
        return cls(at=at, as_of=as_of, command=str(data.get("command") or DEFAULT_COMMAND), **values, **extra)



class RequestRejected(BurnguardError):
    """A request refused before it is answered: ``status`` is the HTTP status, the message is
    the detail for the log (never sent back)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class RequestVerifier(Protocol):
    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Accept the request or raise :class:`RequestRejected` (401): signature on the raw
        body, timestamp within 5 minutes, not a replay. ``headers`` have lower-case names."""
        ...


class Deferrer(Protocol):
    def defer(self, request: CommandRequest, run: Callable[[CommandRequest], None]) -> None:
        """Have ``request`` completed later, off the 3-second path: call ``run(request)`` on
        another thread (in-process deferrers), or ship ``request.to_dict()`` to another
        invocation that calls :meth:`SlashService.run_deferred` (serverless ones). Raise
        :class:`~burnguard.core.errors.BurnguardError` when it cannot be handed over."""
        ...


class Responder(Protocol):
    def respond(self, response_url: str, payload: Mapping[str, Any]) -> None:
        """POST ``payload`` to a command's ``response_url``; raise :class:`NotifyError`."""
        ...



class ReplayGuard(Protocol):
    def first_use(self, key: str, expires_at: float) -> bool:
        """Record ``key`` until ``expires_at`` (epoch seconds); ``False`` if already there."""
        ...


class DeferralError(BurnguardError):
    """The request could not be handed over (nothing was done)."""

