"""Slack request verification: signature on the raw body, timestamp window, replays.

:class:`SlackRequestVerifier` implements the :class:`~burnguard.services.slack_endpoint.RequestVerifier`
port with ``slack_sdk.signature.SignatureVerifier`` (HMAC-SHA256 of ``v0:<ts>:<raw body>``,
compared in constant time). Every failure raises ``RequestRejected(401, detail)``: the
detail goes to the log, the HTTP answer is a bare "unauthorized" whatever the cause (missing
headers, a timestamp that is not a number, older or newer than 5 minutes, a wrong signature,
a replay), so a prober learns nothing about which check it failed.

**Replays.** A signature is valid for the 5 minutes either side of its timestamp; within that
window the same signed request could be sent again. The verifier remembers every signature it
accepted until its timestamp leaves the window, and refuses it the second time (401 too:
409 would tell a replayer that the signature was good). :class:`TtlReplayCache` is a small,
bounded in-memory cache: **one per process**, so a deployment with several instances (Lambda
concurrency, Cloud Functions/Run instances, Azure scale-out) only catches replays that land on
the same instance. :class:`LedgerReplayGuard` closes that gap with the ledger's ``announce()``
(one atomic insert-if-absent shared by every instance; one row per accepted request, never
pruned: fine at slash-command rates). Slack itself never re-sends a slash command.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from slack_sdk.signature import SignatureVerifier

from burnguard.ports.ledger import OnceOnly
from burnguard.ports.slack import ReplayGuard, RequestRejected

#: Slack's window: a request whose timestamp is further than this from now is refused.
MAX_AGE = 300


class TtlReplayCache:
    """Signatures seen, each kept until its expiry; at most ``max_entries`` (the oldest go
    first when full: at 10,000 that needs over 30 accepted commands a second to matter)."""

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.time):
        self.max_entries = max_entries
        self.clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_use(self, key: str, expires_at: float) -> bool:
        now = self.clock()
        with self._lock:
            while self._seen and next(iter(self._seen.values())) <= now:
                self._seen.popitem(last=False)
            expiry = self._seen.get(key)
            if expiry is not None and expiry > now:
                return False
            self._seen[key] = expires_at
            self._seen.move_to_end(key)
            while len(self._seen) > self.max_entries:
                self._seen.popitem(last=False)
            return True

    def __len__(self) -> int:
        return len(self._seen)


class LedgerReplayGuard:
    """Replay protection shared by every instance, through ``Ledger.announce`` (atomic)."""

    def __init__(self, ledger: OnceOnly, clock: Callable[[], float] = time.time):
        self.ledger = ledger
        self.clock = clock

    def first_use(self, key: str, expires_at: float) -> bool:
        return self.ledger.announce(f"slack-signature|{key}", datetime.fromtimestamp(self.clock(), UTC),
                                    {"expires_at": int(expires_at)})


class _Clock:
    """slack_sdk's clock interface (``now()``) over a plain function."""

    def __init__(self, now: Callable[[], float]):
        self._now = now

    def now(self) -> float:
        return self._now()


class SlackRequestVerifier:
    """The :class:`~burnguard.services.slack_endpoint.RequestVerifier` of Slack requests."""

    def __init__(self, signing_secret: str, *, clock: Callable[[], float] = time.time,
                 replay: ReplayGuard | None = None, max_age: int = MAX_AGE):
        self.clock = clock
        self.max_age = max_age
        self.replay = replay if replay is not None else TtlReplayCache(clock=clock)
        self._verifier = SignatureVerifier(signing_secret, clock=_Clock(clock))  # type: ignore[arg-type]

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        names = {k.lower(): v for k, v in headers.items()}
        timestamp = names.get("x-slack-request-timestamp", "").strip()
        signature = names.get("x-slack-signature", "").strip()
        if not timestamp or not signature:
            raise RequestRejected(401, "missing X-Slack-Request-Timestamp or X-Slack-Signature")
        if not timestamp.isdigit() or len(timestamp) > 12:
            raise RequestRejected(401, "X-Slack-Request-Timestamp is not a Unix time")
        skew = self.clock() - int(timestamp)
        if abs(skew) > self.max_age:
            raise RequestRejected(401, f"timestamp {'older' if skew > 0 else 'newer'} than {self.max_age} s "
                                       f"({int(skew)} s)")
        try:
            valid = self._verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
        except UnicodeDecodeError:
            raise RequestRejected(401, "body is not UTF-8 (cannot be a Slack request)") from None
        if not valid:
            raise RequestRejected(401, "signature mismatch")
        if not self.replay.first_use(signature, int(timestamp) + self.max_age + 1):
            raise RequestRejected(401, "replayed request (signature already used)")
