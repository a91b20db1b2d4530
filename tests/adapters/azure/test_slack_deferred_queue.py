"""Slow slash answers on Azure: acknowledged at once, the request put on a Storage queue
(Azurite) as base64 text the way the Functions host's queue trigger expects, and completed by
the ``slack_deferred`` queue-trigger function, which posts the answer to the command's
response_url (a local Slack stand-in)."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.storage.queue import QueueClient

from burnguard.adapters.azure.deferral import StorageQueueDeferrer
from burnguard.app import azure as azure_app
from burnguard.app import slack as bootstrap
from burnguard.services.slack_endpoint import UnavailableDeferrer
from tests.functions.slash_events import load, use_service
from tests.slack_helpers import FakeSlack, World, form, signed_headers, slash_service

pytestmark = pytest.mark.emulator

app_module = load("azure", "function_app.py")
slack_command = app_module.slack_command.build().get_user_function()
slack_deferred = app_module.slack_deferred.build().get_user_function()


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path).standard()


def http(body: bytes, headers: dict[str, str]) -> func.HttpRequest:
    return func.HttpRequest(method="POST", url="https://burnguard.azurewebsites.net/api/slack/command",
                            headers=headers, body=body)


def test_the_trigger_reads_the_configured_queue() -> None:
    [function] = [f for f in app_module.app.get_functions() if f.get_function_name() == "slack_deferred"]
    [binding] = json.loads(function.get_function_json())["bindings"]
    assert binding["type"] == "queueTrigger" and binding["queueName"] == "%BURNGUARD_SLACK_DEFER_QUEUE%"
    assert binding["connection"] == "AzureWebJobsStorage"


def test_a_deferred_command_goes_through_the_storage_queue(world: World, azure_storage: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    world.overspend()
    name = f"slash-{uuid.uuid4().hex[:10]}"
    QueueClient.from_connection_string(azure_storage.connection_string, name).create_queue()
    monkeypatch.setenv(azure_app.DEFER_QUEUE, name)
    settings = bootstrap.SlashSettings("azure", "ref", Path("p.yaml"), "sqlite:///x")
    deferrer = bootstrap.default_deferrer(settings)  # the Azure bootstrap's own wiring, on Azurite
    assert isinstance(deferrer, StorageQueueDeferrer)
    use_service(monkeypatch, "azure", slash_service(world, deferrer=deferrer))
    with FakeSlack() as hooks:
        body = form("resume ml-monthly", response_url=f"{hooks.url}/commands/7")
        ack = slack_command(http(body, signed_headers(body)))
        assert json.loads(ack.get_body())["text"].startswith("Working on it")
        assert world.state("aws", "i-a100") == "stopped"
        reader = QueueClient.from_connection_string(azure_storage.connection_string, name)
        [queued] = list(reader.receive_messages(max_messages=5))
        decoded = base64.b64decode(queued.content, validate=True)  # what the host does before the trigger
        assert json.loads(decoded)["text"] == "resume ml-monthly"
        slack_deferred(func.QueueMessage(id=queued.id, body=decoded))
        reader.delete_message(queued)
        [posted] = hooks.wait(1)
    assert "resumed 2 instance(s)" in posted.json()["text"]
    assert world.state("aws", "i-a100") == "running"


def test_without_a_queue_the_command_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(azure_app.DEFER_QUEUE, raising=False)
    deferrer = bootstrap.default_deferrer(bootstrap.SlashSettings("azure", "ref", Path("p.yaml"), "sqlite:///x"))
    assert isinstance(deferrer, UnavailableDeferrer)
    assert azure_app.DEFER_QUEUE in deferrer.why


def test_a_queue_that_refuses_is_a_deferral_error(azure_storage: Any) -> None:
    from burnguard.ports.slack import CommandRequest, DeferralError

    missing = QueueClient.from_connection_string(azure_storage.connection_string, f"nope-{uuid.uuid4().hex[:8]}")
    request = CommandRequest.from_dict({"text": "resume x", "user_id": "U1", "request_id": "r1",
                                        "at": "2024-09-20T12:00:00+00:00", "response_url": "http://127.0.0.1:1/x"})
    with pytest.raises(DeferralError, match="send to queue nope-"):
        StorageQueueDeferrer(missing).defer(request, lambda r: None)
