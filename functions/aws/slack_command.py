"""AWS Lambda entry point of the Slack slash command (Function URL, payload format 2.0).

Two kinds of events reach it: Slack's HTTP request through the Function URL, and the
asynchronous self-invocation that completes a deferred command (``LambdaSelfInvokeDeferrer``).
Everything else is in ``burnguard.adapters.slack`` and ``burnguard.services.slack_endpoint``.
"""

from __future__ import annotations

from typing import Any

from burnguard.adapters.slack.http import handle_function_url
from burnguard.app import slack as bootstrap
from burnguard.services.slack_endpoint import deferred_request


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    service = bootstrap.slash_service("aws")
    deferred = deferred_request(event)
    if deferred is not None:
        service.run_deferred(deferred)
        return {"completed": deferred.request_id}
    return handle_function_url(service, event)
