"""Google Secret Manager: ``projects/<p>/secrets/<s>[/versions/<v>]`` (default ``latest``)."""

from __future__ import annotations

import re
from typing import Any

from burnguard.ports.secrets import SecretError

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

