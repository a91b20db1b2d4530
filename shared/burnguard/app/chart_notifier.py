"""Threshold alerts with a picture: a :class:`~burnguard.ports.notify.Notifier` that wraps
another (the Slack notifier) and, once a threshold alert is delivered, uploads the scope's
spend chart (:mod:`burnguard.app.report`, PNG) to the same channel with slack-sdk's
``files_upload_v2``.

Only where the Slack app may upload files (the ``files:write`` scope): the first refusal
(``missing_scope``, ``not_in_channel``, ``not_allowed_token_type``…) turns uploads off for this
notifier and is logged; the alert itself was already delivered and is never held back by the
picture. A chart that cannot be drawn (matplotlib missing, no data) is logged and skipped.
Wire it in a composition root: ``ChartNotifier(SlackNotifier(client, channel), client, ledger,
policy, clock)``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from burnguard.ports.notify import Notification, Notifier

log = logging.getLogger("burnguard.app.chart_notifier")

#: "ml-research-monthly: team=ml-research crossed 100% of its budget" (notify/content.py)
_HEADLINE = re.compile(r"^(?P<guardrail>\S+): (?P<scope>[^=\s]+=\S+) crossed ")
_PERIOD = re.compile(r"\bperiod (\d{4}-\d{2})\b")
#: Slack errors that mean "this app may not upload here": stop trying.
REFUSALS = frozenset({"missing_scope", "not_allowed_token_type", "no_permission", "not_in_channel",
                      "channel_not_found", "restricted_action", "invalid_auth", "not_authed"})


class ChartNotifier:
    def __init__(self, inner: Notifier, client: Any, ledger: Any, policy: Any, clock: Callable[[], datetime], *,
                 default_channel: str | None = None):
        self.inner = inner
        self.client = client
        self.ledger = ledger
        self.policy = policy
        self.clock = clock
        self.default_channel = default_channel or getattr(inner, "default_channel", None)
        self.enabled = True
        self.refusal: str | None = None

    def send(self, notification: Notification) -> None:
        self.inner.send(notification)
        if notification.kind != "threshold" or not self.enabled:
            return
        channel = notification.channel or self.default_channel
        m = _HEADLINE.match(notification.text.splitlines()[0] if notification.text else "")
        if not channel or m is None:
            return
        period = _PERIOD.search(notification.text)
        try:
            from burnguard.app.report import build_report, png_bytes

            data = build_report(self.ledger, self.policy, m.group("scope"), period.group(1) if period else None,
                                self.clock())
            png = png_bytes(data)
        except Exception as exc:  # the picture is extra: the alert went out
            log.warning("spend chart for %s not drawn: %s: %s", m.group("scope"), type(exc).__name__, exc)
            return
        self.upload(channel, png, m.group("guardrail"), m.group("scope"), data.period)

    def upload(self, channel: str, png: bytes, guardrail: str, scope: str, period: str) -> bool:
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            self.client.files_upload_v2(
                channel=channel, file=png, filename=f"burnguard-{scope.replace('=', '-')}-{period}.png",
                title=f"Spend of {scope} in {period}",
                initial_comment=f"{guardrail}: daily spend of {scope} against its budget, forecast to the "
                                "period's end")
        except SlackApiError as exc:
            response = exc.response
            error = str(response.get("error")) if response is not None else "unknown"
            if error in REFUSALS:
                self.enabled, self.refusal = False, error
                log.warning("Slack refused the spend chart upload (%s): charts are off for this notifier", error)
            else:
                log.warning("spend chart upload to %s failed: %s", channel, error)
            return False
        except (SlackClientError, OSError) as exc:
            log.warning("spend chart upload to %s failed: %s: %s", channel, type(exc).__name__, exc)
            return False
        except Exception as exc:  # an unexpected answer from Slack: the alert itself went out
            log.warning("spend chart upload to %s failed: %s: %s", channel, type(exc).__name__, exc)
            return False
        return True
