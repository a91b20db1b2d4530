"""Azure Key Vault: ``https://<vault>.vault.azure.net/secrets/<name>[/<version>]``, read with
``DefaultAzureCredential`` (the function's managed identity)."""

from __future__ import annotations

import re
from typing import Any

from burnguard.ports.secrets import SecretError

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

