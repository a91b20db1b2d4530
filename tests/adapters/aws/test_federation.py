"""Publishing from AWS with Google workload identity federation, and the AWS functions' settings.

The credentials are google-auth's own AWS external-account credentials built from the
configuration ``gcloud iam workload-identity-pools create-cred-config --aws`` writes. Their
subject token is a GetCallerIdentity request signed with the Lambda role's credentials (the
environment variables Lambda sets; here moto's): the test replays it on moto's STS, as Google's
STS does on AWS's. Google's STS itself has no local emulator: a fake token endpoint on a local
HTTP server (named so) answers the exchange with the documented response shape.
"""

from __future__ import annotations

import json
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import google.auth.aws
import google.auth.transport.requests
import pytest
import requests

from burnguard.app.aws import AwsSettings, ConfigurationError, parse_wif_config, wif_credentials
from tests.emulators import QuietHandler, http_server

AUDIENCE = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/burnguard/providers/aws"


def cred_config(token_url: str = "https://sts.googleapis.com/v1/token") -> dict[str, Any]:
    """The shape of ``gcloud iam workload-identity-pools create-cred-config ... --aws`` output."""
    return {
        "type": "external_account",
        "audience": AUDIENCE,
        "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
        "token_url": token_url,
        "credential_source": {
            "environment_id": "aws1",
            "region_url": "http://169.254.169.254/latest/meta-data/placement/availability-zone",
            "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials",
            "regional_cred_verification_url":
                "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
        },
    }


class FakeGoogleSts(QuietHandler):
    """A fake of Google's STS token endpoint (RFC 8693 token exchange response)."""

    received: ClassVar[list[dict[str, list[str]]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        FakeGoogleSts.received.append(urllib.parse.parse_qs(self.rfile.read(length).decode()))
        body = json.dumps({"access_token": "ya29.fake-federated", "issued_token_type":
                           "urn:ietf:params:oauth:token-type:access_token", "token_type": "Bearer",
                           "expires_in": 3600}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.emulator
def test_lambda_role_credentials_are_exchanged_for_a_google_token(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "lambda-session-token")
    FakeGoogleSts.received.clear()
    base: type[BaseHTTPRequestHandler] = FakeGoogleSts
    with http_server(base) as url:
        credentials = wif_credentials(parse_wif_config(json.dumps(cred_config(f"{url}/v1/token"))))
        assert isinstance(credentials, google.auth.aws.Credentials)
        credentials.refresh(google.auth.transport.requests.Request())
    assert credentials.token == "ya29.fake-federated"
    [form] = FakeGoogleSts.received
    assert form["audience"] == [AUDIENCE]
    assert form["subject_token_type"] == ["urn:ietf:params:aws:token-type:aws4_request"]
    assert form["scope"] == ["https://www.googleapis.com/auth/pubsub"]
    token = json.loads(urllib.parse.unquote(form["subject_token"][0]))
    headers = {h["key"].lower(): h["value"] for h in token["headers"]}
    assert token["url"] == "https://sts.us-east-1.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
    assert headers["x-goog-cloud-target-resource"] == AUDIENCE
    assert headers["x-amz-security-token"] == "lambda-session-token"
    assert "Credential=testing/" in headers["authorization"]  # signed with the role's key, not sent
    # What Google's STS does with it: send the signed request to AWS STS (here: moto's).
    replay = requests.request(token["method"], aws.endpoint_url + "/?Action=GetCallerIdentity&Version=2011-06-15",
                              headers={k: v for k, v in headers.items() if k != "host"}, timeout=10)
    assert replay.status_code == 200 and b"<Arn>arn:aws:" in replay.content


def test_settings_name_the_variable_that_is_wrong() -> None:
    ok = {"BURNGUARD_TOPIC": "projects/acme-finops/topics/burnguard", "BURNGUARD_GCP_WIF_CONFIG":
          json.dumps(cred_config())}
    assert AwsSettings.from_env(ok).wif_config == cred_config()
    cases = [
        ({}, "BURNGUARD_TOPIC is not set"),
        ({**ok, "BURNGUARD_TOPIC": "burnguard"}, "BURNGUARD_TOPIC must be projects/"),
        ({"BURNGUARD_TOPIC": ok["BURNGUARD_TOPIC"]}, "BURNGUARD_GCP_WIF_CONFIG is not set"),
        ({**ok, "BURNGUARD_GCP_WIF_CONFIG": "{not json"}, "BURNGUARD_GCP_WIF_CONFIG is not JSON"),
        ({**ok, "BURNGUARD_GCP_WIF_CONFIG": json.dumps({"type": "service_account", "private_key": "x"})},
         "type external_account"),
        ({**ok, "BURNGUARD_GCP_WIF_CONFIG": json.dumps({**cred_config(), "credential_source": {"file": "/x"}})},
         "environment_id must be aws1"),
        ({**ok, "BURNGUARD_FAN_OUT_PARTS": "many"}, "BURNGUARD_FAN_OUT_PARTS"),
        ({**ok, "BURNGUARD_PARTS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/p"}, "needs BURNGUARD_STATE_BUCKET"),
        ({**ok, "BURNGUARD_DEAD_LETTER_URL": "burnguard-dlq"}, "BURNGUARD_DEAD_LETTER_URL is an SQS queue URL"),
    ]
    for env, message in cases:
        with pytest.raises(ConfigurationError, match=message):
            AwsSettings.from_env(env)
    # The emulator needs no federation configuration.
    assert AwsSettings.from_env({"BURNGUARD_TOPIC": ok["BURNGUARD_TOPIC"], "PUBSUB_EMULATOR_HOST": "h:1"}).emulator


def test_the_ingest_function_fails_at_cold_start_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from burnguard.app import aws as bootstrap
    from tests.functions.aws_helpers import LambdaContext
    from tests.functions.slash_events import load

    handler = load("aws", "ingest.py").lambda_handler
    monkeypatch.delenv("BURNGUARD_TOPIC", raising=False)
    bootstrap.ingest_app.cache_clear()
    with pytest.raises(ConfigurationError, match="BURNGUARD_TOPIC is not set"):
        handler({"Records": []}, LambdaContext())
    bootstrap.ingest_app.cache_clear()
