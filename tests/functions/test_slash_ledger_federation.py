"""The AWS and Azure slash-command functions read the Firestore ledger (the control plane on
Google Cloud) with credentials federated from ``BURNGUARD_GCP_WIF_CONFIG``, never Google's
default credentials (which do not exist outside Google Cloud) nor a key.

The service is built as the function builds it on a cold start (``SlashSettings.from_env`` →
``build_slash_service``); the test takes the credentials out of the Firestore client the ledger
holds and refreshes them: against moto's STS-signing environment (AWS) and the managed-identity
stand-in (Azure), and a fake of Google's STS token endpoint (both named so in their modules).
The scope asked for is Datastore's, which Firestore needs (the publishers ask for Pub/Sub's)."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import google.auth.aws
import google.auth.identity_pool
import google.auth.transport.requests
import pytest
from google.cloud import firestore

from burnguard.app.config import ConfigurationError
from burnguard.app.slack import SlashSettings, build_slash_service
from burnguard.services.slack_endpoint import UnavailableDeferrer
from tests.adapters.aws.test_federation import AUDIENCE as AWS_AUDIENCE
from tests.adapters.aws.test_federation import FakeGoogleSts, cred_config
from tests.adapters.azure import test_federation as azure_fed
from tests.emulators import http_server

ROOT = Path(__file__).parents[2]
LEDGER_URL = "firestore://projects/acme-finops/databases/(default)"
DATASTORE = "https://www.googleapis.com/auth/datastore"


def env_of(cloud: str, **more: str) -> dict[str, str]:
    return {"BURNGUARD_SLACK_SIGNING_SECRET_REF": f"{cloud}-ref", "BURNGUARD_POLICY": str(ROOT / "events/policies/minimal.yaml"),
            "BURNGUARD_LEDGER": LEDGER_URL, **more}


def ledger_client(cloud: str, env: dict[str, str]) -> Any:
    service = build_slash_service(SlashSettings.from_env(cloud, env), secret=lambda _cloud, _ref: "signing-secret",
                                  deferrer=UnavailableDeferrer("not here"))
    client = service.ledger.client  # type: ignore[attr-defined]
    assert isinstance(client, firestore.Client) and client.project == "acme-finops"
    return client


@pytest.fixture
def off_google(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside Google Cloud and outside the emulator: no default credentials to fall back on."""
    for name in ("FIRESTORE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.emulator
def test_the_aws_slash_function_reads_firestore_as_its_lambda_role(aws: Any, off_google: None,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "lambda-session-token")
    FakeGoogleSts.received.clear()
    with http_server(FakeGoogleSts) as sts:
        client = ledger_client("aws", env_of("aws", BURNGUARD_GCP_WIF_CONFIG=json.dumps(cred_config(f"{sts}/v1/token"))))
        credentials = client._credentials
        assert isinstance(credentials, google.auth.aws.Credentials)
        credentials.refresh(google.auth.transport.requests.Request())
    assert credentials.token == "ya29.fake-federated"
    [form] = FakeGoogleSts.received
    assert form["audience"] == [AWS_AUDIENCE]
    assert form["scope"] == [DATASTORE]
    token = json.loads(urllib.parse.unquote(form["subject_token"][0]))
    assert {h["key"].lower(): h["value"] for h in token["headers"]}["x-amz-security-token"] == "lambda-session-token"


def test_the_azure_slash_function_reads_firestore_as_its_managed_identity(off_google: None,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    azure_fed.seen.clear()
    with http_server(azure_fed.ManagedIdentityStandIn) as mi, http_server(azure_fed.StsStandIn) as sts:
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"{mi}/msi/token")
        monkeypatch.setenv("IDENTITY_HEADER", "identity-header-secret")
        client = ledger_client("azure", env_of("azure", BURNGUARD_GCP_WIF_CONFIG=json.dumps(azure_fed.wif_config(sts))))
        credentials = client._credentials
        assert isinstance(credentials, google.auth.identity_pool.Credentials)
        credentials.refresh(google.auth.transport.requests.Request())
    assert credentials.token == "ya29.federated"
    assert azure_fed.seen["mi"]["resource"] == azure_fed.APP_URI
    assert azure_fed.seen["sts"]["subject_token"] == "entra-mi-token"
    assert azure_fed.seen["sts"]["scope"] == DATASTORE


def test_without_the_configuration_aws_and_azure_fail_at_cold_start_naming_it(off_google: None) -> None:
    for cloud in ("aws", "azure"):
        with pytest.raises(ConfigurationError, match="BURNGUARD_GCP_WIF_CONFIG is not set"):
            SlashSettings.from_env(cloud, env_of(cloud))
    with pytest.raises(ConfigurationError, match="BURNGUARD_GCP_WIF_CONFIG"):
        SlashSettings.from_env("aws", env_of("aws", BURNGUARD_GCP_WIF_CONFIG="{not json"))
    # Google Cloud keeps its own default credentials; a SQLite ledger needs none; nor does the emulator.
    assert SlashSettings.from_env("gcp", env_of("gcp")).ledger_credentials is None
    assert SlashSettings.from_env("aws", {**env_of("aws"), "BURNGUARD_LEDGER": "sqlite:///x"}).ledger_credentials is None
    assert SlashSettings.from_env("aws", env_of("aws", FIRESTORE_EMULATOR_HOST="h:1")).ledger_credentials is None
