"""modules/gcp triggers Pub/Sub functions with a push subscription it owns (for the dead-letter
policy) rather than an Eventarc trigger: the function is deployed as an HTTP function and
receives Pub/Sub's raw push body, without CloudEvent headers. functions-framework must still
call the @cloud_event entry point with the same data: checked here with slack_deferred."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import functions_framework
import pytest

from burnguard.adapters.gcp.deferral import PubSubDeferrer
from tests.functions.slash_events import FUNCTIONS, use_service
from tests.slack_helpers import FakeSlack, World, form, signed_headers, slash_service

SOURCE = str(FUNCTIONS / "gcp" / "main.py")


class Publisher:
    def __init__(self) -> None:
        self.published: list[bytes] = []

    def publish(self, topic: str, data: bytes, **attrs: str) -> Any:
        self.published.append(data)

        class Done:
            def result(self, timeout: float | None = None) -> str:
                return "1"

        return Done()


def test_a_raw_push_reaches_the_cloud_event_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a slow command the slash command handed to the deferral topic
    world = World(tmp_path).standard()
    world.overspend()
    publisher = Publisher()
    use_service(monkeypatch, "gcp", slash_service(world, deferrer=PubSubDeferrer(publisher, "projects/p/topics/t")))
    with FakeSlack() as hooks:
        body = form("resume ml-monthly", response_url=f"{hooks.url}/commands/7")
        slash = functions_framework.create_app(target="slack_command", source=SOURCE, signature_type="http")
        assert slash.test_client().post("/", data=body, headers=signed_headers(body)).status_code == 200
        [data] = publisher.published
        # WHEN the module's push subscription delivers it: plain JSON, no ce-* headers, and the
        # function deployed without an event trigger (signature type http, as Cloud Functions sets)
        push = {"message": {"data": base64.b64encode(data).decode(), "messageId": "9001",
                            "publishTime": "2024-09-20T12:00:01Z", "attributes": {"kind": "slash-deferred"}},
                "subscription": "projects/p/subscriptions/burnguard-slack-deferred-push"}
        worker = functions_framework.create_app(target="slack_deferred", source=SOURCE, signature_type="http")
        response = worker.test_client().post("/", json=push)
        # THEN the worker completes the command, as with an Eventarc CloudEvent
        assert response.status_code == 200
        [posted] = hooks.wait(1)
    assert "resumed 2 instance(s)" in posted.json()["text"]
    assert world.state("aws", "i-a100") == "running"
