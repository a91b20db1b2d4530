"""AWS Secrets Manager: ``name`` or ARN, optionally ``#key`` to pick a key of a JSON secret
(``burnguard/slack#signing_secret``)."""

from __future__ import annotations

import json
from typing import Any

from burnguard.ports.secrets import SecretError


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

