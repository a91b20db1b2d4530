"""The Google Cloud Functions entry points through functions-framework's own Flask app:
``slack_command`` (HTTP) and ``slack_deferred`` (the Pub/Sub CloudEvent that completes a
deferred command)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import functions_framework
import pytest

from burnguard.adapters.gcp.deferral import PubSubDeferrer
from tests.functions.slash_events import FUNCTIONS, use_service
from tests.slack_helpers import NOW_TS, FakeSlack, World, form, sign, signed_headers, slash_service

SOURCE = str(FUNCTIONS / "gcp" / "main.py")


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path).standard()


def client(target: str = "slack_command", signature_type: str = "http") -> Any:
    return functions_framework.create_app(target=target, source=SOURCE, signature_type=signature_type).test_client()


def test_a_signed_command_is_answered(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = use_service(monkeypatch, "gcp", slash_service(world))
    body = form("top 2 by project 2024-09")
    response = client().post("/", data=body, headers=signed_headers(body))
    assert asked == ["gcp"] and response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.get_json()["text"].splitlines()[1:] == ["1. project=llm: 740.62 USD",
                                                            "2. project=vision: 180.25 USD"]


def test_refusals_through_flask(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    use_service(monkeypatch, "gcp", slash_service(world))
    body = form("guardrails")
    app = client()
    bad = {**signed_headers(body), "X-Slack-Signature": sign(body, NOW_TS, "wrong")}
    assert app.post("/", data=body, headers=bad).status_code == 401
    assert app.post("/", data=body, headers=signed_headers(body, NOW_TS - 400)).status_code == 401
    assert app.get("/").status_code == 405
    json_headers = {**signed_headers(body), "Content-Type": "application/json"}
    assert app.post("/", data=body, headers=json_headers).status_code == 415
    big = form("spend team=" + "y" * 70_000)
    assert app.post("/", data=big, headers=signed_headers(big)).status_code == 413
    response = app.post("/", data=body, headers=signed_headers(body))
    assert response.status_code == 200
    replay = app.post("/", data=body, headers=signed_headers(body))
    assert replay.status_code == 401 and replay.data == b"unauthorized"


def test_a_deferred_command_goes_through_pubsub_to_the_worker(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.overspend()
    published: list[bytes] = []

    class Publisher:
        def publish(self, topic: str, data: bytes, **attrs: str) -> Any:
            published.append(data)

            class Done:
                def result(self, timeout: float | None = None) -> str:
                    return "1"

            return Done()

    service = slash_service(world, deferrer=PubSubDeferrer(Publisher(), "projects/p/topics/slash"))
    use_service(monkeypatch, "gcp", service)
    with FakeSlack() as hooks:
        body = form("resume ml-monthly", response_url=f"{hooks.url}/commands/9")
        ack = client().post("/", data=body, headers=signed_headers(body))
        assert ack.get_json()["text"].startswith("Working on it") and len(published) == 1
        assert world.state("aws", "i-a100") == "stopped"
        push = {"message": {"data": base64.b64encode(published[0]).decode(), "messageId": "m-1",
                            "attributes": {"kind": "slash-deferred"}},
                "subscription": "projects/p/subscriptions/slash-worker"}
        headers = {"ce-specversion": "1.0", "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
                   "ce-source": "//pubsub.googleapis.com/projects/p/topics/slash", "ce-id": "m-1",
                   "ce-time": "2024-09-20T12:00:01Z", "Content-Type": "application/json"}
        worker = client("slack_deferred", "cloudevent").post("/", json=push, headers=headers)
        assert worker.status_code == 200
        [posted] = hooks.wait(1)
    assert "resumed 2 instance(s)" in posted.json()["text"]
    assert world.state("aws", "i-a100") == "running"
