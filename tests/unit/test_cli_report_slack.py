"""Threshold alerts attach the spend chart in Slack where the app may upload files: the real
slack-sdk ``files_upload_v2`` flow (getUploadURLExternal, the upload, completeUploadExternal)
against a local stand-in of the Slack Web API (tests/slack_helpers.FakeSlack)."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from slack_sdk import WebClient

from burnguard.adapters.slack.notifier import SlackNotifier
from burnguard.app.chart_notifier import ChartNotifier
from burnguard.app.cli import main
from burnguard.app.embedded import LocalMode
from burnguard.ports.notify import Notification
from tests.slack_helpers import FakeSlack

pytest.importorskip("matplotlib", reason="the report extra (matplotlib) is installed by .ci/setup")

ALERT = Notification("#spend", "ml-research-monthly: team=ml-research crossed 100% of its budget\n"
                               "Spend 5,808.11 USD of 5,000.00 USD (116.2% used), period 2024-09", kind="threshold")


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> LocalMode:
    home = tmp_path_factory.mktemp("chart") / "home"
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        assert main(["demo", "--home", str(home)]) == 0
    mode = LocalMode.open(home)
    yield mode
    mode.close()


def notifier(fake: FakeSlack, local: LocalMode) -> ChartNotifier:
    client = WebClient(token="xoxb-test", base_url=f"{fake.url}/api/")
    return ChartNotifier(SlackNotifier(client), client, local.ledger, local.policy, local.data_clock)


def test_a_threshold_alert_uploads_the_chart_to_its_channel(local: LocalMode) -> None:
    with FakeSlack() as fake:
        fake.on("/api/files.getUploadURLExternal", 200, {"ok": True, "upload_url": f"{fake.url}/upload/F1",
                                                         "file_id": "F1"})
        fake.on("/api/files.completeUploadExternal", 200, {"ok": True, "files": [{"id": "F1"}]})
        chart = notifier(fake, local)
        chart.send(ALERT)
        paths = [r.path for r in fake.requests]
        upload = next(r for r in fake.requests if r.path == "/upload/F1")
        complete = next(r for r in fake.requests if r.path == "/api/files.completeUploadExternal")
    assert paths[0] == "/api/chat.postMessage"  # the alert first, the picture after
    assert "/api/files.getUploadURLExternal" in paths
    assert upload.body.startswith(b"\x89PNG\r\n\x1a\n") and len(upload.body) > 10_000
    form = complete.body.decode()
    assert "spend" in form and "F1" in form
    assert chart.enabled


def test_no_upload_scope_turns_charts_off_and_never_holds_the_alert(local: LocalMode) -> None:
    with FakeSlack() as fake:
        fake.on("/api/files.getUploadURLExternal", 200, {"ok": False, "error": "missing_scope"})
        chart = notifier(fake, local)
        chart.send(ALERT)
        chart.send(ALERT)
        paths = [r.path for r in fake.requests]
    assert paths.count("/api/chat.postMessage") == 2  # both alerts delivered
    assert paths.count("/api/files.getUploadURLExternal") == 1  # tried once, then off
    assert not chart.enabled and chart.refusal == "missing_scope"


def test_other_alerts_carry_no_chart(local: LocalMode) -> None:
    with FakeSlack() as fake:
        chart = notifier(fake, local)
        chart.send(Notification("#spend", "inference-burn-rate: team=inference burns 59.19 USD/h", kind="burn-rate"))
        paths = [r.path for r in fake.requests]
    assert paths == ["/api/chat.postMessage"]


def test_upload_helper_names_the_file(local: LocalMode, tmp_path: Path) -> None:
    with FakeSlack() as fake:
        fake.on("/api/files.getUploadURLExternal", 200, {"ok": True, "upload_url": f"{fake.url}/upload/F2",
                                                         "file_id": "F2"})
        fake.on("/api/files.completeUploadExternal", 200, {"ok": True, "files": [{"id": "F2"}]})
        assert notifier(fake, local).upload("#spend", b"\x89PNG\r\n\x1a\nxx", "g", "team=web", "2024-09")
        first = next(r for r in fake.requests if r.path == "/api/files.getUploadURLExternal")
    assert "burnguard-team-web-2024-09.png" in first.body.decode()


def test_an_odd_answer_from_slack_is_logged_not_raised(local: LocalMode) -> None:
    with FakeSlack() as fake:
        fake.on("/api/files.getUploadURLExternal", 200, {"ok": True, "upload_url": f"{fake.url}/upload/F3",
                                                         "file_id": "F3"})
        fake.on("/api/files.completeUploadExternal", 200, {"ok": True})  # no "files": slack-sdk trips on it
        assert not notifier(fake, local).upload("#spend", b"\x89PNG", "g", "team=web", "2024-09")
