"""The Slack notifier: :class:`~burnguard.ports.instances.Notifier` on ``chat.postMessage``.

It posts the notification's Block Kit ``blocks`` with its ``text`` (Slack requires the text
next to blocks: it is the push notification and the fallback). The ``WebClient`` is given,
never built here, so tests pass one pointed at a local stand-in of the Slack API
(``WebClient(base_url="http://127.0.0.1:<port>/api/")``) and the bootstrap passes one built
with the bot token read from the secret store.

Retries are slack-sdk's own: :func:`with_retries` makes sure the client carries
``RateLimitErrorRetryHandler`` (HTTP 429: waits ``Retry-After``), ``ServerErrorRetryHandler``
(500/503) and ``ConnectionErrorRetryHandler``, adding whichever the given client lacks
(a plain ``WebClient`` only has the connection one). A message that still cannot be delivered
raises :class:`~burnguard.ports.instances.NotifyError` naming Slack's error (``channel_not_found``,
``not_in_channel``, ``invalid_blocks``, ``ratelimited``…); the guardrail service audits it, so
no alert is lost silently.
"""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler, RetryHandler
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler

from burnguard.ports.notify import Notification, NotifyError


def with_retries(client: WebClient, *, rate_limited: int = 3, server_errors: int = 2, connection: int = 2) -> WebClient:
    """Attach slack-sdk's retry handlers that ``client`` does not carry yet (in place)."""
    wanted: list[tuple[type[RetryHandler], RetryHandler]] = [
        (RateLimitErrorRetryHandler, RateLimitErrorRetryHandler(max_retry_count=rate_limited)),
        (ServerErrorRetryHandler, ServerErrorRetryHandler(max_retry_count=server_errors)),
        (ConnectionErrorRetryHandler, ConnectionErrorRetryHandler(max_retry_count=connection)),
    ]
    for kind, handler in wanted:
        if not any(isinstance(h, kind) for h in client.retry_handlers):
            client.retry_handlers.append(handler)
    return client


class SlackNotifier:
    """Posts notifications to Slack channels (the policy's channel, else ``default_channel``)."""

    def __init__(self, client: WebClient, default_channel: str | None = None):
        self.client = with_retries(client)
        self.default_channel = default_channel

    def send(self, notification: Notification) -> None:
        channel = notification.channel or self.default_channel
        if not channel:
            raise NotifyError("no Slack channel for this message: set slack.channel in the policy")
        try:
            self.client.chat_postMessage(
                channel=channel, text=notification.text, blocks=[dict(b) for b in notification.blocks] or None,
                unfurl_links=False, unfurl_media=False,
            )
        except SlackApiError as exc:
            response = exc.response
            error = response.get("error") if response is not None else None
            status = getattr(response, "status_code", None)
            raise NotifyError(f"Slack chat.postMessage to {channel} failed: {error or f'HTTP {status}'}") from None
        except (SlackClientError, OSError) as exc:
            raise NotifyError(f"Slack chat.postMessage to {channel} failed: {type(exc).__name__}: {exc}") from None
