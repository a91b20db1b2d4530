"""Answers posted to a slash command's ``response_url`` (the
:class:`~burnguard.services.slack_endpoint.Responder` port), with slack-sdk's ``WebhookClient``.

A ``response_url`` comes from a verified request, but it is still a URL a request handed us:
it must start with one of ``allowed_prefixes`` (Slack's hooks hosts by default), so a
forged-but-signed-looking job can never make burnguard POST elsewhere. Tests and the local
server allow their own prefix explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from burnguard.ports.notify import NotifyError

SLACK_HOOKS = ("https://hooks.slack.com/", "https://hooks.slack-gov.com/")


class WebhookResponder:
    def __init__(self, *, allowed_prefixes: Sequence[str] = SLACK_HOOKS, timeout: int = 10):
        self.allowed_prefixes = tuple(allowed_prefixes)
        self.timeout = timeout

    def respond(self, response_url: str, payload: Mapping[str, Any]) -> None:
        if not response_url.startswith(self.allowed_prefixes):
            raise NotifyError(f"response_url {response_url[:40]!r}… is not a Slack hooks URL")
        client = WebhookClient(response_url, timeout=self.timeout, retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=2),
            ServerErrorRetryHandler(max_retry_count=2)])
        try:
            response = client.send_dict(dict(payload))
        except OSError as exc:
            raise NotifyError(f"response_url unreachable: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise NotifyError(f"response_url answered HTTP {response.status_code}: {response.body[:200]}")
