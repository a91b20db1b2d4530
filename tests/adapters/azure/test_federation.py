"""Publishing from Azure with workload identity federation: real google-auth identity-pool
credentials whose subject token is the Function App's managed identity token, obtained by the
real azure-identity ``ManagedIdentityCredential``. Two local stand-ins replace what only the
clouds serve (named as such): the App Service managed-identity endpoint
(``IDENTITY_ENDPOINT`` + ``X-IDENTITY-HEADER``) and Google's STS token exchange."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import google.auth.transport.requests
import pytest

from burnguard.app import azure as azure_app
from burnguard.app import federation
from tests.emulators import QuietHandler, http_server

AUDIENCE = "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/azure/providers/burnguard-func"
APP_URI = "api://burnguard-wif"
seen: dict[str, Any] = {}


class ManagedIdentityStandIn(QuietHandler):
    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        seen["mi"] = {"resource": query.get("resource", [""])[0], "header": self.headers.get("X-IDENTITY-HEADER")}
        body = json.dumps({"access_token": "entra-mi-token", "expires_on": str(int(time.time()) + 3600),
                           "resource": seen["mi"]["resource"], "token_type": "Bearer"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class StsStandIn(QuietHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        seen["sts"] = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        body = json.dumps({"access_token": "ya29.federated", "issued_token_type":
                           "urn:ietf:params:oauth:token-type:access_token", "token_type": "Bearer",
                           "expires_in": 3600}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def wif_config(sts: str) -> dict[str, Any]:
    """What ``gcloud iam workload-identity-pools create-cred-config … --azure`` writes."""
    return {
        "type": "external_account", "audience": AUDIENCE,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_url": f"{sts}/v1/token",
        "credential_source": {
            "url": f"http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource={APP_URI}",
            "headers": {"Metadata": "True"}, "format": {"type": "json", "subject_token_field_name": "access_token"}},
    }


def test_the_managed_identity_token_is_exchanged_for_google_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    seen.clear()
    with http_server(ManagedIdentityStandIn) as mi, http_server(StsStandIn) as sts:
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"{mi}/msi/token")
        monkeypatch.setenv("IDENTITY_HEADER", "identity-header-secret")
        monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
        settings = azure_app.PublishSettings.from_env({
            azure_app.TOPIC: "projects/acme-finops/topics/burnguard", azure_app.WIF_CONFIG: json.dumps(wif_config(sts))})
        assert settings.audience == APP_URI  # from the configuration's resource=
        credentials = azure_app.federated_credentials(settings)
        credentials.refresh(google.auth.transport.requests.Request())
    assert credentials.token == "ya29.federated"
    assert seen["mi"] == {"resource": APP_URI, "header": "identity-header-secret"}
    assert seen["sts"]["subject_token"] == "entra-mi-token"
    assert seen["sts"]["audience"] == AUDIENCE
    assert seen["sts"]["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"


def test_an_explicit_audience_wins_and_a_bad_configuration_is_named() -> None:
    env = {azure_app.TOPIC: "projects/acme-finops/topics/burnguard-q", azure_app.WIF_CONFIG: json.dumps(wif_config("https://sts")),
           federation.WIF_AUDIENCE: "api://other"}
    assert azure_app.PublishSettings.from_env(env).audience == "api://other"
    for bad in ("{", json.dumps({"type": "service_account"})):
        with pytest.raises(azure_app.ConfigurationError, match=azure_app.WIF_CONFIG):
            azure_app.PublishSettings.from_env({**env, azure_app.WIF_CONFIG: bad})
    no_resource = wif_config("https://sts")
    no_resource["credential_source"] = {"file": "/tmp/token"}
    with pytest.raises(azure_app.ConfigurationError, match=federation.WIF_AUDIENCE):
        azure_app.PublishSettings.from_env({azure_app.TOPIC: "projects/acme-finops/topics/burnguard-q",
                                            azure_app.WIF_CONFIG: json.dumps(no_resource)})
