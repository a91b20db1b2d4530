"""Workload identity federation: the Google credentials AWS and Azure functions use, built
from ``BURNGUARD_GCP_WIF_CONFIG`` (a google-auth external-account configuration: JSON text, no
secret in it) and the function's own identity (the Lambda role; the Function App's managed
identity). No key file anywhere.

One module for the three users of it (AWS and Azure publishing to Pub/Sub, and their slash
commands reading the Firestore ledger), so that ``app.slack`` need not import ``app.aws`` or
``app.azure`` (which import it). Google SDKs are imported when credentials are built.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from burnguard.app.config import ConfigurationError

WIF_CONFIG = "BURNGUARD_GCP_WIF_CONFIG"
WIF_AUDIENCE = "BURNGUARD_AZURE_WIF_AUDIENCE"
PUBSUB_SCOPE = "https://www.googleapis.com/auth/pubsub"
DATASTORE_SCOPE = "https://www.googleapis.com/auth/datastore"


# --------------------------------------------------------------------------------------------
# AWS: the Lambda role's credentials sign a GetCallerIdentity request


def parse_wif_config(raw: str) -> dict[str, Any]:
    """The external-account configuration, checked enough to fail at cold start, not at the
    first publish: JSON, ``type: external_account``, an AWS credential source."""
    try:
        info = json.loads(raw)
    except ValueError:
        raise ConfigurationError(f"{WIF_CONFIG} is not JSON") from None
    if not isinstance(info, dict) or info.get("type") != "external_account":
        raise ConfigurationError(f"{WIF_CONFIG} must be a google-auth configuration with type external_account")
    source = info.get("credential_source")
    if not isinstance(source, dict) or not str(source.get("environment_id", "")).startswith("aws"):
        raise ConfigurationError(f"{WIF_CONFIG}: credential_source.environment_id must be aws1 (from "
                                 "`gcloud iam workload-identity-pools create-cred-config --aws`)")
    for key in ("audience", "subject_token_type"):
        if not info.get(key):
            raise ConfigurationError(f"{WIF_CONFIG}: {key} is missing")
    if "private_key" in info or "client_secret" in info:
        raise ConfigurationError(f"{WIF_CONFIG} holds a secret; it must be an external-account configuration")
    return info


def wif_credentials(info: Mapping[str, Any], scopes: Sequence[str] = (PUBSUB_SCOPE,)) -> Any:
    """google-auth AWS external-account credentials from the configuration: the Lambda role's
    credentials (environment variables Lambda sets) sign a GetCallerIdentity request that
    Google's STS exchanges for a token of ``scopes`` (Pub/Sub for publishing, Datastore for the
    Firestore ledger of the slash command). No key file anywhere."""
    from google.auth import aws

    # from_info, not load_credentials_from_dict: that one also looks the project up (a call to
    # Cloud Resource Manager the role may not be allowed to make); the topic names it already.
    return aws.Credentials.from_info(dict(info), scopes=list(scopes))  # type: ignore[no-untyped-call]



# --------------------------------------------------------------------------------------------
# Azure: the Function App's managed identity supplies the subject token


def federation_from_env(env: Mapping[str, str]) -> tuple[dict[str, Any], str] | None:
    """The external-account configuration of ``BURNGUARD_GCP_WIF_CONFIG`` and the audience the
    managed identity asks a token for; ``None`` when the variable is not set."""
    raw = env.get(WIF_CONFIG, "").strip()
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{WIF_CONFIG} is not JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("type") != "external_account" or not config.get("audience"):
        raise ConfigurationError(f"{WIF_CONFIG} is not an external_account configuration with an audience")
    audience = env.get(WIF_AUDIENCE, "").strip() or _resource_of(config)
    if not audience:
        raise ConfigurationError(f"{WIF_AUDIENCE} is not set and {WIF_CONFIG} names no resource= to ask the "
                                 "managed identity a token for")
    return config, audience


def _resource_of(config: Mapping[str, Any]) -> str | None:
    source = config.get("credential_source")
    url = source.get("url") if isinstance(source, Mapping) else None
    if not isinstance(url, str):
        return None
    values = parse_qs(urlsplit(url).query).get("resource")
    return values[0] if values else None


class ManagedIdentitySupplier:
    """A google-auth ``SubjectTokenSupplier``: the subject token is an Entra ID token of the
    Function App's managed identity for ``audience`` (the app the pool provider trusts). On
    Functions the managed identity answers at ``IDENTITY_ENDPOINT``, not at the VM metadata
    address a URL-sourced configuration names, hence the supplier."""

    def __init__(self, audience: str, credential: Any = None):
        self.audience = audience
        self._credential = credential

    def get_subject_token(self, context: Any, request: Any) -> str:
        if self._credential is None:
            from azure.identity import ManagedIdentityCredential

            self._credential = ManagedIdentityCredential()
        scope = self.audience if self.audience.endswith("/.default") else f"{self.audience}/.default"
        return str(self._credential.get_token(scope).token)


def identity_pool_credentials(config: Mapping[str, Any], audience: str, credential: Any = None,
                              scopes: Sequence[str] = (PUBSUB_SCOPE,)) -> Any:
    """google-auth identity-pool credentials whose subject token the managed identity supplies,
    for ``scopes`` (Pub/Sub for publishing, Datastore for the slash command's Firestore ledger)."""
    from google.auth import identity_pool

    info = {k: v for k, v in config.items() if k != "credential_source"}
    info["subject_token_supplier"] = ManagedIdentitySupplier(audience, credential)
    return identity_pool.Credentials.from_info(info, scopes=list(scopes))  # type: ignore[no-untyped-call]
