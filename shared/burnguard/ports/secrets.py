"""Secrets by reference: a function's environment holds a reference (a secret name or ARN, a
Secret Manager version name, a Key Vault secret URL), never the secret. One reader per cloud in
``adapters/<cloud>/secrets.py``; each takes its SDK client, and creates one only when none is given."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from burnguard.core.errors import BurnguardError


class SecretError(BurnguardError):
    """A secret reference that is malformed, or a secret that cannot be read."""



SecretReader = Callable[[str, Any], str]
