"""Slash commands finished later on AWS: the function invokes itself asynchronously."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from burnguard.ports.slack import CommandRequest, DeferralError
from burnguard.services.slack_endpoint import DEFERRED_KEY


class LambdaSelfInvokeDeferrer:
    """``client`` is a boto3 Lambda client; ``function_name`` the function's own name or ARN."""

    def __init__(self, client: Any, function_name: str):
        self.client = client
        self.function_name = function_name

    def defer(self, request: CommandRequest, run: Callable[[CommandRequest], None]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        payload = json.dumps({DEFERRED_KEY: request.to_dict()}).encode()
        try:
            response = self.client.invoke(FunctionName=self.function_name, InvocationType="Event", Payload=payload)
        except (BotoCoreError, ClientError) as exc:
            raise DeferralError(f"lambda:Invoke of {self.function_name} failed: {exc}") from None
        if response.get("StatusCode") != 202:
            raise DeferralError(f"lambda:Invoke of {self.function_name} answered {response.get('StatusCode')}")

