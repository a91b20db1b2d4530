"""The Azure Functions HTTP trigger, called as the host would: the registered function with a
real ``azure.functions.HttpRequest``."""

from __future__ import annotations

import json
from pathlib import Path

import azure.functions as func
import pytest

from tests.functions.slash_events import load, use_service
from tests.slack_helpers import NOW_TS, World, form, sign, signed_headers, slash_service

app_module = load("azure", "function_app.py")
slack_command = app_module.slack_command.build().get_user_function()


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path).standard()


def request(body: bytes, headers: dict[str, str], method: str = "POST") -> func.HttpRequest:
    return func.HttpRequest(method=method, url="https://burnguard.azurewebsites.net/api/slack/command",
                            headers=headers, body=body)


def test_the_route_is_anonymous_and_takes_every_method() -> None:
    [function] = [f for f in app_module.app.get_functions() if f.get_function_name() == "slack_command"]
    config = json.loads(function.get_function_json())
    trigger = next(b for b in config["bindings"] if b["type"] == "httpTrigger")
    assert trigger["route"] == "slack/command" and trigger["authLevel"].lower() == "anonymous"
    assert not trigger.get("methods")


def test_a_signed_command_is_answered(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = use_service(monkeypatch, "azure", slash_service(world))
    body = form("stopped")
    response = slack_command(request(body, signed_headers(body)))
    assert asked == ["azure"] and response.status_code == 200
    assert response.mimetype == "application/json" and response.headers["Content-Type"] == "application/json"
    assert json.loads(response.get_body())["text"] == "Nothing is stopped right now."


def test_refusals(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    use_service(monkeypatch, "azure", slash_service(world))
    body = form("guardrails")
    bad = {**signed_headers(body), "X-Slack-Signature": sign(body, NOW_TS, "wrong")}
    assert slack_command(request(body, bad)).status_code == 401
    assert slack_command(request(body, {k.lower(): v for k, v in bad.items()})).get_body() == b"unauthorized"
    assert slack_command(request(b"", {}, "GET")).status_code == 405
    big = form("spend team=" + "z" * 70_000)
    assert slack_command(request(big, signed_headers(big))).status_code == 413
    assert slack_command(request(body, signed_headers(body, NOW_TS + 999))).status_code == 401
