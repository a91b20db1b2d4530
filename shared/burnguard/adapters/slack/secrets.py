"""Secrets by reference, from each cloud's secret store (the Slack signing secret, the bot token).

A function's environment holds a *reference* (a secret name or ARN, a Secret Manager version
name, a Key Vault secret URL), never the secret. Each reader takes its SDK client, and creates
one only when none is given, at call time (never at import: a cold start that needs no secret
pays for no client). Generic, not Slack-specific: they can move to ``adapters/<cloud>/`` when
those packages exist.

* AWS Secrets Manager: ``name`` or ARN, optionally ``#key`` to pick a key of a JSON secret
  (``burnguard/slack#signing_secret``).
* Google Secret Manager: ``projects/<p>/secrets/<s>[/versions/<v>]`` (default ``latest``).
* Azure Key Vault: ``https://<vault>.vault.azure.net/secrets/<name>[/<version>]``, read with
  ``DefaultAzureCredential`` (the function's managed identity).
"""

from __future__ import annotations

import json
import re
from typing import Any

from ...errors import BurnguardError


class SecretError(BurnguardError):
    """A secret reference that is malformed, or a secret that cannot be read."""


def aws_secret(ref: str, client: Any = None) -> str:
    secret_id, _, key = ref.partition("#")
    if client is None:
        import boto3

        client = boto3.client("secretsmanager")
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        value = client.get_secret_value(SecretId=secret_id)["SecretString"]
    except (BotoCoreError, ClientError, KeyError) as exc:
        raise SecretError(f"cannot read AWS secret {secret_id!r}: {type(exc).__name__}") from None
    if key:
        try:
            value = json.loads(value)[key]
        except (ValueError, KeyError, TypeError):
            raise SecretError(f"AWS secret {secret_id!r} is not a JSON object with key {key!r}") from None
    return str(value).strip()


_GCP = re.compile(r"^projects/[^/]+/secrets/[^/]+(/versions/[^/]+)?$")


def gcp_secret(ref: str, client: Any = None) -> str:
    if not _GCP.match(ref):
        raise SecretError(f"a Secret Manager reference is projects/<p>/secrets/<s>[/versions/<v>], not {ref!r}")
    name = ref if "/versions/" in ref else f"{ref}/versions/latest"
    if client is None:
        from google.cloud import secretmanager

        client = secretmanager.SecretManagerServiceClient()
    try:
        data: bytes = client.access_secret_version(request={"name": name}).payload.data
    except Exception as exc:  # google.api_core.exceptions.GoogleAPIError and transport errors
        raise SecretError(f"cannot read secret {name!r}: {type(exc).__name__}") from None
    return data.decode("utf-8").strip()


_AZURE = re.compile(r"^(https://[^/]+)/secrets/([^/]+)(?:/([^/]+))?/?$")


def azure_secret(ref: str, client: Any = None) -> str:
    m = _AZURE.match(ref)
    if not m:
        raise SecretError(f"a Key Vault reference is https://<vault>.vault.azure.net/secrets/<name>, not {ref!r}")
    vault, name, version = m.groups()
    if client is None:
        from azure.identity import DefaultAzureCredential
        from azure.keyvault.secrets import SecretClient

        client = SecretClient(vault_url=vault, credential=DefaultAzureCredential())
    try:
        value = client.get_secret(name, version).value
    except Exception as exc:  # azure.core.exceptions.AzureError and credential errors
        raise SecretError(f"cannot read Key Vault secret {name!r}: {type(exc).__name__}") from None
    if not value:
        raise SecretError(f"Key Vault secret {name!r} is empty")
    return str(value).strip()


READERS = {"aws": aws_secret, "gcp": gcp_secret, "azure": azure_secret}


def read_secret(cloud: str, ref: str, client: Any = None) -> str:
    try:
        reader = READERS[cloud]
    except KeyError:
        raise SecretError(f"no secret store for cloud {cloud!r}") from None
    return reader(ref, client)
