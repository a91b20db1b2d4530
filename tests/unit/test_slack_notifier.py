"""The Slack notifier against a local stand-in of the Slack Web API (``WebClient(base_url=...)``):
the Block Kit JSON that is posted, retries on 429 and 5xx, errors that name Slack's error and
are audited by the guardrail, never lost."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from slack_sdk import WebClient
from slack_sdk.http_retry import RateLimitErrorRetryHandler

from burnguard.adapters.local.inventory import InventoryController
from burnguard.adapters.slack.notifier import SlackNotifier, with_retries
from burnguard.notify import blocks as slack_blocks
from burnguard.ports.notify import Notification, NotifyError
from burnguard.services.guardrail import GuardrailFault, GuardrailService
from tests.slack_helpers import NOW, SEPTEMBER, FakeSlack, World, item

ML = {"team": "ml-research", "project": "llm"}


def client(fake: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test-token", base_url=f"{fake.url}/api/")


def guardrail(world: World, notifier: SlackNotifier) -> GuardrailService:
    return GuardrailService(world.policy, world.ledger, notifier,
                            {c: InventoryController(c, world.inventory) for c in ("aws", "gcp", "azure")},
                            clock=lambda: NOW)


def deliver(world: World, service: GuardrailService, rows: list) -> list:
    world.guardrails = lambda: service  # type: ignore[method-assign]
    return world.deliver(rows)


def test_a_stop_alert_posts_its_block_kit_with_the_text_fallback(tmp_path: Path) -> None:
    world = World(tmp_path)
    with FakeSlack() as fake:
        service = guardrail(world, SlackNotifier(client(fake), "#fallback"))
        deliver(world, service, [*SEPTEMBER, item("300", ML, day=18)])
        posts = [r for r in fake.requests if r.path == "/api/chat.postMessage"]
    assert posts, "nothing posted"
    for post in posts:
        assert post.headers["Authorization"] == "Bearer xoxb-test-token"
        assert post.headers["Content-Type"].startswith("application/json")
        payload = post.json()
        assert payload["text"] and payload["blocks"] and slack_blocks.problems(payload["blocks"]) == []
        assert payload["unfurl_links"] is False
    stop = next(p.json() for p in posts if "stopped 2 GPU instance(s)" in p.json()["blocks"][0]["text"]["text"])
    assert stop["channel"] == "#spend"  # the policy's channel wins over the notifier's default
    assert "Stopped 2 GPU instance(s)" in stop["text"]
    blob = str(stop["blocks"])
    assert "`trainer-1` p4d.24xlarge us-east-1 — 32.77 USD/h" in blob and "Google Cloud `a2-box`" in blob
    assert "36.44 USD/h" in blob  # 32.77 + 3.67: the estimated hourly saving
    assert "/burnguard resume ml-monthly" in blob
    assert "Protected, left running: `prod-infer`" in blob
    fields = next(b["fields"] for b in stop["blocks"] if "fields" in b)
    assert {f["text"].split("\n")[0] for f in fields} >= {"*Scope*", "*Spend*", "*Budget*", "*Used*", "*Forecast*"}


def test_rate_limited_then_delivered(tmp_path: Path) -> None:
    with FakeSlack() as fake:
        fake.on("/api/chat.postMessage", 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "0"})
        fake.on("/api/chat.postMessage", 503, {"ok": False, "error": "service_unavailable"})
        started = time.monotonic()
        SlackNotifier(client(fake)).send(Notification("#spend", "hello", [slack_blocks.section("hello")]))
        elapsed = time.monotonic() - started
    assert [r.path for r in fake.requests] == ["/api/chat.postMessage"] * 3
    assert all(r.json()["blocks"] == [slack_blocks.section("hello")] for r in fake.requests)
    assert elapsed < 10


def test_channel_not_found_raises_naming_the_error_and_the_guardrail_audits_it(tmp_path: Path) -> None:
    world = World(tmp_path)
    with FakeSlack() as fake:
        for _ in range(5):
            fake.on("/api/chat.postMessage", 200, {"ok": False, "error": "channel_not_found"})
        notifier = SlackNotifier(client(fake))
        with pytest.raises(NotifyError, match="channel_not_found") as info:
            notifier.send(Notification("#nowhere", "x"))
        assert "#nowhere" in str(info.value)
        # Undelivered alerts fail the message (it is retried, then dead-lettered), never pass silently.
        with pytest.raises(GuardrailFault, match="channel_not_found") as fault:
            deliver(world, guardrail(world, notifier), SEPTEMBER)
    reports = fault.value.reports
    assert reports and all(r.notify_error and "channel_not_found" in r.notify_error for r in reports)
    failed = [e for e in world.ledger.audit_log(limit=100) if e.kind == "notify" and e.outcome == "failed"]
    assert len(failed) == len(reports) and all("channel_not_found" in e.details["reason"] for e in failed)
    assert len(world.ledger.pending_claims()) == len(reports)  # retried: not announced yet


def test_no_channel_at_all_is_an_error_not_a_silent_drop() -> None:
    with pytest.raises(NotifyError, match="no Slack channel"):
        SlackNotifier(WebClient(token="x", base_url="http://127.0.0.1:9/api/")).send(Notification(None, "x"))


def test_retry_handlers_are_attached_once() -> None:
    plain = WebClient(token="x")
    with_retries(with_retries(plain))
    kinds = [type(h).__name__ for h in plain.retry_handlers]
    assert sorted(kinds) == ["ConnectionErrorRetryHandler", "RateLimitErrorRetryHandler", "ServerErrorRetryHandler"]
    mine = RateLimitErrorRetryHandler(max_retry_count=7)
    custom = WebClient(token="x", retry_handlers=[mine])
    SlackNotifier(custom)
    assert [h for h in custom.retry_handlers if isinstance(h, RateLimitErrorRetryHandler)] == [mine]


def test_an_unreachable_api_is_a_notify_error() -> None:
    with FakeSlack() as fake:
        url = f"{fake.url}/api/"
    web = WebClient(token="x", base_url=url, timeout=2)
    with pytest.raises(NotifyError, match="failed"):
        SlackNotifier(web).send(Notification("#spend", "x"))
