"""The cloud guardrail's Slack notifier carries the spend chart after a threshold alert
(``app/chart_notifier.ChartNotifier`` wired in ``app/gcp.notifier_from_env`` and
``build_guardrail``): the real slack-sdk client against a local stand-in of the Slack Web API
(tests/slack_helpers.FakeSlack), on the demo's SQLite ledger."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime

import pytest
from slack_sdk import WebClient

from burnguard.adapters.slack.notifier import SlackNotifier
from burnguard.app import gcp
from burnguard.app.chart_notifier import ChartNotifier
from burnguard.app.cli import main
from burnguard.app.embedded import LocalMode
from burnguard.ports.notify import Notification
from tests.helpers import EVENTS
from tests.slack_helpers import FakeSlack

NOW = datetime(2024, 9, 30, 23, 0, tzinfo=UTC)
ALERT = Notification(None, "ml-research-monthly: team=ml-research crossed 100% of its budget\n"
                           "Spend 5,094.12 USD of 5,000.00 USD (101.9% used), period 2024-09", kind="threshold")
ENV = {gcp.SLACK_TOKEN_REF: "projects/p/secrets/slack-bot-token", gcp.SLACK_CHANNEL: "#gpu-spend"}


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMode]:
    home = tmp_path_factory.mktemp("gcp-chart") / "home"
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        assert main(["demo", "--home", str(home)]) == 0
    mode = LocalMode.open(home)
    yield mode
    mode.close()


def test_a_threshold_alert_is_followed_by_the_chart_in_the_configured_channel(local: LocalMode) -> None:
    with FakeSlack() as fake:
        fake.on("/api/files.getUploadURLExternal", 200, {"ok": True, "upload_url": f"{fake.url}/upload/F9",
                                                         "file_id": "F9"})
        fake.on("/api/files.completeUploadExternal", 200, {"ok": True, "files": [{"id": "F9"}]})
        client = WebClient(token="xoxb-test", base_url=f"{fake.url}/api/")
        notifier = gcp.notifier_from_env(ENV, ledger=local.ledger, policy=local.policy, clock=lambda: NOW,
                                         client=client)
        notifier.send(ALERT)
        paths = [r.path for r in fake.requests]
        upload = next(r for r in fake.requests if r.path == "/upload/F9")
        complete = next(r for r in fake.requests if r.path == "/api/files.completeUploadExternal").body.decode()
    assert paths[0] == "/api/chat.postMessage"  # the alert first
    assert upload.body.startswith(b"\x89PNG\r\n\x1a\n")
    assert "gpu-spend" in complete  # the channel the notifier posts to when the alert names none


def test_without_the_guardrails_ledger_it_is_the_plain_slack_notifier(local: LocalMode) -> None:
    with FakeSlack() as fake:
        client = WebClient(token="xoxb-test", base_url=f"{fake.url}/api/")
        notifier = gcp.notifier_from_env(ENV, client=client)
        notifier.send(ALERT)
        paths = [r.path for r in fake.requests]
    assert isinstance(notifier, SlackNotifier) and paths == ["/api/chat.postMessage"]


def test_the_guardrail_function_wires_the_chart_to_its_ledger_and_policy(
        local: LocalMode, monkeypatch: pytest.MonkeyPatch) -> None:
    """Secret Manager has no emulator: its read is faked here (the token's reference in, a token
    out); nothing is sent, so no Slack is needed."""
    from burnguard.adapters.gcp import secrets

    read: list[str] = []
    monkeypatch.setattr(secrets, "gcp_secret", lambda ref, client=None: read.append(ref) or "xoxb-fake")
    env = {**ENV, gcp.POLICY: str(EVENTS / "policies" / "demo.yaml")}
    consumer = gcp.build_guardrail(env, ledger=local.ledger, controllers={}, dead_letter=lambda ms: None,
                                   clock=lambda: NOW)
    notifier = consumer.handle.__self__.service.notifier  # type: ignore[attr-defined]
    assert isinstance(notifier, ChartNotifier) and isinstance(notifier.inner, SlackNotifier)
    assert notifier.ledger is local.ledger and notifier.clock() == NOW
    assert [g.name for g in notifier.policy.guardrails] == [g.name for g in local.policy.guardrails]
    assert read == [ENV[gcp.SLACK_TOKEN_REF]]


def test_a_deployment_without_slack_logs_and_has_no_chart() -> None:
    assert not isinstance(gcp.notifier_from_env({}), ChartNotifier)
