"""Deferrers (Lambda self-invoke under botocore's Stubber, Pub/Sub), the response_url
responder, secrets by reference and the cloud bootstrap."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from burnguard.adapters.aws.deferral import LambdaSelfInvokeDeferrer
from burnguard.adapters.aws.secrets import aws_secret
from burnguard.adapters.azure.secrets import azure_secret
from burnguard.adapters.gcp.deferral import PubSubDeferrer
from burnguard.adapters.gcp.secrets import gcp_secret
from burnguard.adapters.slack.respond import WebhookResponder
from burnguard.app import slack as bootstrap
from burnguard.app.slack import read_secret
from burnguard.ports.notify import NotifyError
from burnguard.ports.secrets import SecretError
from burnguard.ports.slack import CommandRequest, DeferralError
from burnguard.services.slack_endpoint import DEFERRED_KEY, UnavailableDeferrer, deferred_request, pubsub_request
from tests.slack_helpers import ADMIN, NOW, NOW_TS, POLICY, SECRET, FakeSlack, World, form, signed_headers

REQUEST = CommandRequest("resume ml-monthly", ADMIN, NOW, "1234.5678.abcd", channel_id="C0SPEND01",
                         response_url="https://hooks.slack.com/commands/T1/1/x")


def never(request: CommandRequest) -> None:
    raise AssertionError("a remote deferrer must not run the request in this process")


# --------------------------------------------------------------------------- AWS


def lambda_client() -> Any:
    return boto3.client("lambda", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")


def test_lambda_self_invoke_sends_the_request_as_an_async_event() -> None:
    client = lambda_client()
    sent: dict[str, Any] = {}
    with Stubber(client) as stub:
        stub.add_response("invoke", {"StatusCode": 202},
                          {"FunctionName": "burnguard-slack-command", "InvocationType": "Event", "Payload": ANY})
        client.meta.events.register("before-parameter-build.lambda.Invoke",
                                    lambda params, **_: sent.update(payload=params["Payload"]))
        LambdaSelfInvokeDeferrer(client, "burnguard-slack-command").defer(REQUEST, never)
        stub.assert_no_pending_responses()
    event = json.loads(sent["payload"])
    assert set(event) == {DEFERRED_KEY}
    assert deferred_request(event) == REQUEST


def test_lambda_invoke_errors_become_deferral_errors() -> None:
    client = lambda_client()
    with Stubber(client) as stub:
        stub.add_client_error("invoke", "AccessDeniedException", "not authorized to perform lambda:InvokeFunction",
                              http_status_code=403)
        with pytest.raises(DeferralError, match="AccessDenied"):
            LambdaSelfInvokeDeferrer(client, "fn").defer(REQUEST, never)
    with Stubber(client) as stub:
        stub.add_response("invoke", {"StatusCode": 200})
        with pytest.raises(DeferralError, match="200"):
            LambdaSelfInvokeDeferrer(client, "fn").defer(REQUEST, never)


def test_only_the_deferred_event_shape_is_taken_for_a_deferred_request() -> None:
    assert deferred_request({"requestContext": {}, "body": json.dumps({DEFERRED_KEY: REQUEST.to_dict()})}) is None
    assert deferred_request({"version": "2.0", "headers": {}}) is None


# --------------------------------------------------------------------------- Google Cloud


class FakePublisher:
    def __init__(self, fail: bool = False):
        self.published: list[tuple[str, bytes, dict[str, str]]] = []
        self.fail = fail

    def publish(self, topic: str, data: bytes, **attrs: str) -> Any:
        if self.fail:
            raise RuntimeError("503 the service is unavailable")
        self.published.append((topic, data, attrs))
        return SimpleNamespace(result=lambda timeout=None: "message-id-1")


def test_pubsub_deferrer_publishes_the_request_for_the_worker() -> None:
    publisher = FakePublisher()
    PubSubDeferrer(publisher, "projects/p/topics/slash").defer(REQUEST, never)
    [(topic, data, attrs)] = publisher.published
    assert topic == "projects/p/topics/slash" and attrs == {"kind": "slash-deferred"}
    assert pubsub_request(data) == REQUEST
    with pytest.raises(DeferralError, match="503"):
        PubSubDeferrer(FakePublisher(fail=True), "projects/p/topics/slash").defer(REQUEST, never)
    with pytest.raises(DeferralError):
        pubsub_request(b"[1, 2]")


def test_unavailable_deferrer_says_why() -> None:
    with pytest.raises(DeferralError, match="no queue here"):
        UnavailableDeferrer("no queue here").defer(REQUEST, never)


# --------------------------------------------------------------------------- response_url


def test_webhook_responder_posts_json_and_reports_failures() -> None:
    with FakeSlack() as hooks:
        hooks.on("/expired", 404, b"expired_url")
        responder = WebhookResponder(allowed_prefixes=(hooks.url,))
        responder.respond(f"{hooks.url}/commands/1", {"response_type": "in_channel", "text": "done"})
        with pytest.raises(NotifyError, match="404"):
            responder.respond(f"{hooks.url}/expired", {"text": "late"})
    assert hooks.requests[0].json() == {"response_type": "in_channel", "text": "done"}
    with pytest.raises(NotifyError, match="not a Slack hooks URL"):
        WebhookResponder().respond("http://169.254.169.254/latest/meta-data", {"text": "x"})


# --------------------------------------------------------------------------- secrets


def test_aws_secret_by_name_and_by_json_key() -> None:
    client = boto3.client("secretsmanager", region_name="eu-west-1", aws_access_key_id="x",
                          aws_secret_access_key="y")
    with Stubber(client) as stub:
        stub.add_response("get_secret_value", {"SecretString": f"{SECRET}\n"}, {"SecretId": "burnguard/slack"})
        stub.add_response("get_secret_value", {"SecretString": json.dumps({"signing_secret": SECRET})},
                          {"SecretId": "arn:aws:secretsmanager:eu-west-1:1:secret:bg"})
        stub.add_client_error("get_secret_value", "ResourceNotFoundException", "Secrets Manager can't find it")
        assert aws_secret("burnguard/slack", client) == SECRET
        assert aws_secret("arn:aws:secretsmanager:eu-west-1:1:secret:bg#signing_secret", client) == SECRET
        with pytest.raises(SecretError, match="ResourceNotFound") as info:
            aws_secret("missing", client)
    assert SECRET not in str(info.value)


def test_gcp_and_azure_secrets_by_reference() -> None:
    class Gcp:
        def access_secret_version(self, request: dict[str, str]) -> Any:
            assert request == {"name": "projects/p/secrets/slack/versions/latest"}
            return SimpleNamespace(payload=SimpleNamespace(data=SECRET.encode()))

    class Azure:
        def get_secret(self, name: str, version: str | None) -> Any:
            assert (name, version) == ("slack-signing", "v1")
            return SimpleNamespace(value=SECRET)

    assert gcp_secret("projects/p/secrets/slack", Gcp()) == SECRET
    assert azure_secret("https://bg.vault.azure.net/secrets/slack-signing/v1", Azure()) == SECRET
    assert read_secret("gcp", "projects/p/secrets/slack", Gcp()) == SECRET
    for reader, bad in ((gcp_secret, "slack"), (azure_secret, "bg/slack")):
        with pytest.raises(SecretError, match="reference"):
            reader(bad, object())
    with pytest.raises(SecretError):
        read_secret("oci", "x")


# --------------------------------------------------------------------------- bootstrap


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    (tmp_path / "policy.yaml").write_text(POLICY)
    return {"BURNGUARD_SLACK_SIGNING_SECRET_REF": "projects/p/secrets/slack", "BURNGUARD_POLICY":
            str(tmp_path / "policy.yaml"), "BURNGUARD_LEDGER": f"sqlite:///{tmp_path / 'ledger.sqlite'}", **extra}


def test_settings_name_what_is_missing_or_not_there_yet(tmp_path: Path) -> None:
    with pytest.raises(bootstrap.ConfigurationError, match="BURNGUARD_POLICY, BURNGUARD_LEDGER"):
        bootstrap.SlashSettings.from_env("gcp", {"BURNGUARD_SLACK_SIGNING_SECRET_REF": "x"})
    with pytest.raises(bootstrap.ConfigurationError, match="firestore://projects/<project>/databases/<database>"):
        bootstrap.open_ledger("firestore://my-project/ledger")
    with pytest.raises(bootstrap.ConfigurationError, match="sqlite:///"):
        bootstrap.open_ledger("postgres://x")
    with pytest.raises(bootstrap.ConfigurationError, match="memory or ledger"):
        bootstrap.SlashSettings.from_env("aws", env(tmp_path, BURNGUARD_SLACK_REPLAY="redis"))


def test_the_bootstrap_builds_a_working_service_reading_the_secret_by_reference(tmp_path: Path) -> None:
    World(tmp_path).standard()  # fills tmp_path/ledger.sqlite
    reads: list[tuple[str, str]] = []

    def secret(cloud: str, ref: str) -> str:
        reads.append((cloud, ref))
        return SECRET

    settings = bootstrap.SlashSettings.from_env("gcp", env(tmp_path, BURNGUARD_SLACK_REPLAY="ledger"))
    service = bootstrap.build_slash_service(settings, secret=secret, clock=lambda: NOW_TS)
    assert reads == [("gcp", "projects/p/secrets/slack")]
    body = form("spend team=web 2024-09")  # the cloud's clock is the wall clock: name the month
    assert "total 55.55 USD" in service.handle(body, signed_headers(body)).json()["text"]
    assert service.handle(body, signed_headers(body)).status == 401  # replay, caught through the ledger
    # No instance controllers in the cloud yet: resume says so at once, nothing is deferred.
    body = form("resume ml-monthly")
    assert "not available on this deployment" in service.handle(body, signed_headers(body)).json()["text"]


def test_each_cloud_gets_its_deferrer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    aws = bootstrap.default_deferrer(bootstrap.SlashSettings.from_env(
        "aws", env(tmp_path, AWS_LAMBDA_FUNCTION_NAME="burnguard-slack")))
    assert isinstance(aws, LambdaSelfInvokeDeferrer) and aws.function_name == "burnguard-slack"
    for cloud in ("aws", "gcp", "azure"):
        deferrer = bootstrap.default_deferrer(bootstrap.SlashSettings.from_env(cloud, env(tmp_path)))
        assert isinstance(deferrer, UnavailableDeferrer), cloud


def test_nothing_cloud_is_created_at_import() -> None:
    import subprocess
    import sys

    code = ("import sys; import burnguard.app.slack, burnguard.adapters.slack.http; "
            "print(sorted(m for m in ('boto3', 'google.cloud.secretmanager', 'azure.keyvault.secrets', "
            "'google.cloud.pubsub_v1') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
