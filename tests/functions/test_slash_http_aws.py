"""The AWS Lambda handler driven by Function URL events (lower-case headers, base64 bodies)
and by its own asynchronous self-invocation, which completes a deferred command."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from burnguard.adapters.aws.deferral import LambdaSelfInvokeDeferrer
from tests.functions.slash_events import load, use_service
from tests.slack_helpers import NOW_TS, SEPTEMBER, FakeSlack, World, expected_spend, form, money, sign, slash_service

handler = load("aws", "slack_command.py").lambda_handler


def url_event(body: bytes, *, timestamp: int = NOW_TS, signature: str | None = None, base64_body: bool = True,
              method: str = "POST") -> dict[str, Any]:
    """A Lambda Function URL event (payload format 2.0) as Lambda delivers it."""
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
        "headers": {"content-type": "application/x-www-form-urlencoded", "content-length": str(len(body)),
                    "host": "abc123.lambda-url.eu-west-1.on.aws", "user-agent": "Slackbot 1.0",
                    "x-slack-request-timestamp": str(timestamp),
                    "x-slack-signature": signature or sign(body, timestamp), "x-forwarded-proto": "https"},
        "requestContext": {"accountId": "anonymous", "apiId": "abc123", "domainName": "abc123.lambda-url.eu-west-1.on.aws",
                           "http": {"method": method, "path": "/", "protocol": "HTTP/1.1", "sourceIp": "3.3.3.3",
                                    "userAgent": "Slackbot 1.0"}, "requestId": "r-1", "routeKey": "$default",
                           "stage": "$default", "time": "20/Sep/2024:12:00:00 +0000", "timeEpoch": NOW_TS * 1000},
        "body": base64.b64encode(body).decode() if base64_body else body.decode(),
        "isBase64Encoded": base64_body,
    }


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path).standard()


def test_a_base64_body_is_verified_on_its_decoded_bytes(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = use_service(monkeypatch, "aws", slash_service(world))
    response = handler(url_event(form("spend team=ml-research")), None)
    assert asked == ["aws"]
    assert response["statusCode"] == 200 and response["isBase64Encoded"] is False
    assert response["headers"]["Content-Type"] == "application/json"
    answer = json.loads(response["body"])
    assert f"total {money(expected_spend(SEPTEMBER, 'team', 'ml-research'))}" in answer["text"]
    # Not base64 at all (API Gateway may pass it through): the same.
    response = handler(url_event(form("guardrails"), base64_body=False), None)
    assert response["statusCode"] == 200 and json.loads(response["body"])["text"].startswith("Guardrails")


@pytest.mark.parametrize(("mutate", "status"), [
    ("tampered", 401), ("stale", 401), ("wrong secret", 401), ("not base64", 400), ("GET", 405),
    ("oversized", 413), ("no headers", 401),
])
def test_refusals(world: World, monkeypatch: pytest.MonkeyPatch, mutate: str, status: int) -> None:
    use_service(monkeypatch, "aws", slash_service(world))
    body = form("resume ml-monthly")
    event = url_event(body)
    if mutate == "tampered":
        event["body"] = base64.b64encode(body.replace(b"ml-monthly", b"per-project")).decode()
    elif mutate == "stale":
        event = url_event(body, timestamp=NOW_TS - 301)
    elif mutate == "wrong secret":
        event = url_event(body, signature=sign(body, NOW_TS, "another-secret"))
    elif mutate == "not base64":
        event["body"] = "%%% not base64 %%%"
    elif mutate == "GET":
        event = url_event(b"", method="GET")
    elif mutate == "oversized":
        event = url_event(form("spend team=" + "x" * 70_000))
    else:
        event["headers"] = {"content-type": "application/x-www-form-urlencoded"}
    response = handler(event, None)
    assert response["statusCode"] == status
    assert response["body"] in ("unauthorized", "bad request", "method not allowed", "payload too large")


def test_resume_is_acknowledged_then_completed_by_the_self_invocation(world: World,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    world.overspend()
    client = boto3.client("lambda", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
    invoked: list[bytes] = []
    client.meta.events.register("before-parameter-build.lambda.Invoke",
                                lambda params, **_: invoked.append(params["Payload"]))
    service = slash_service(world, deferrer=LambdaSelfInvokeDeferrer(client, "burnguard-slack-command"))
    use_service(monkeypatch, "aws", service)
    with FakeSlack() as hooks, Stubber(client) as stub:
        stub.add_response("invoke", {"StatusCode": 202}, {"FunctionName": "burnguard-slack-command",
                                                          "InvocationType": "Event", "Payload": ANY})
        response = handler(url_event(form("resume ml-monthly", response_url=f"{hooks.url}/commands/T/1/x")), None)
        assert json.loads(response["body"])["text"].startswith("Working on it")
        assert world.state("aws", "i-a100") == "stopped"  # nothing done yet: Lambda would freeze a thread
        # Lambda now delivers the async event to the same function.
        [payload] = invoked
        result = handler(json.loads(payload), None)
        [posted] = hooks.wait(1)
    assert result["completed"]
    assert posted.json()["response_type"] == "in_channel" and "resumed 2 instance(s)" in posted.json()["text"]
    assert world.state("aws", "i-a100") == "running" and world.state("gcp", "gce-a2") == "running"
