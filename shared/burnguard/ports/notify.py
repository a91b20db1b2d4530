"""Notifiers: deliver messages to people (Slack, the console)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from burnguard.core.errors import BurnguardError


class NotifyError(BurnguardError):
    """A notification could not be delivered (after the notifier's own retries)."""


@dataclass(frozen=True)
class Notification:
    """A message for people: plain text always, Slack Block Kit blocks when rendered."""

    channel: str | None
    text: str
    blocks: Sequence[Mapping[str, Any]] = ()
    kind: str = "info"  # threshold | forecast | burn-rate | native-budget | stop | failure | resume | info


class Notifier(Protocol):
    def send(self, notification: Notification) -> None:
        """Deliver; raise :class:`NotifyError` when it cannot be delivered."""
        ...

