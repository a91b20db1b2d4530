"""Google Cloud Functions (2nd gen, functions-framework) entry points.

* ``slack_command`` (HTTP): the Slack slash command; ``request.get_data()`` is the raw body
  Slack signed.
* ``slack_deferred`` (CloudEvent, Pub/Sub ``BURNGUARD_SLACK_DEFER_TOPIC``): completes a
  command acknowledged within Slack's 3 seconds, and posts the answer to its response_url.
"""

from __future__ import annotations

import base64
from typing import Any

import functions_framework

from burnguard.adapters.slack.http import handle_flask
from burnguard.app import slack as bootstrap
from burnguard.services.slack_endpoint import pubsub_request


@functions_framework.http
def slack_command(request: Any) -> Any:
    return handle_flask(bootstrap.slash_service("gcp"), request)


@functions_framework.cloud_event
def slack_deferred(cloud_event: Any) -> None:
    data = base64.b64decode(cloud_event.data["message"]["data"])
    bootstrap.slash_service("gcp").run_deferred(pubsub_request(data))
