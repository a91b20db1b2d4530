"""Google Cloud Functions (2nd gen, functions-framework) entry points. Each parses its event,
calls a service through the composition root (:mod:`burnguard.app.gcp`), and returns; a
report line goes to Cloud Logging (one JSON object per line).

* ``ingest`` (CloudEvent ``google.cloud.storage.object.v1.finalized``, Eventarc): the billing
  extract a scheduled BigQuery ``EXPORT DATA`` job writes; the run's ``manifest.json`` brings
  the whole delivery onto the shared topic. A bad object is reported (one line) and
  acknowledged; a failed publish raises (Eventarc retries when the trigger has retry on).
* ``budget`` (CloudEvent Pub/Sub messagePublished, the budget topic): one ``budget-alert``.
* ``guardrail`` (CloudEvent Pub/Sub messagePublished, the shared topic): applies one message;
  returning acknowledges it (after the ledger commit); raising answers 500, so Pub/Sub retries
  with backoff; a message that can never apply goes to the dead-letter topic with its reason.
* ``slack_command`` (HTTP): the Slack slash command; ``request.get_data()`` is the raw body
  Slack signed.
* ``slack_deferred`` (CloudEvent, Pub/Sub ``BURNGUARD_SLACK_DEFER_TOPIC``): completes a
  command acknowledged within Slack's 3 seconds, and posts the answer to its response_url.
* ``meter`` (CloudEvent Pub/Sub messagePublished, the meter topic a Cloud Scheduler job
  publishes to every few minutes): one meter tick (the live estimate of the running GPU
  instances on the three clouds, then the guardrails with it); each problem of the tick (a
  cloud whose listing failed, an instance without a rate) is one log line.
* ``instance_event`` (CloudEvent ``google.cloud.audit.log.v1.written``, Eventarc, Compute
  Engine's instance start/stop/insert/delete/suspend/resume): the meter reads at the change;
  any other entry is ignored with a log line.
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any

import flask
import functions_framework

from burnguard.adapters.slack.http import handle_flask
from burnguard.app import gcp
from burnguard.app import slack as bootstrap
from burnguard.core.errors import InputError
from burnguard.services.slack_endpoint import pubsub_request


def _log(severity: str, **fields: Any) -> None:
    print(json.dumps({"severity": severity, **fields}, default=str), file=sys.stdout if severity == "INFO"
          else sys.stderr, flush=True)


@functions_framework.cloud_event
def ingest(cloud_event: Any) -> None:
    store, publish = gcp.ingest_runtime()
    try:
        report = gcp.handle_object_finalized(cloud_event.data, store, publish)
    except InputError as exc:
        _log("ERROR", message=f"ingest: {exc}", event_id=cloud_event["id"])
        return
    _log("INFO", message=f"ingest: {report['action']} {report['object']}", **report)


@functions_framework.cloud_event
def budget(cloud_event: Any) -> None:
    event = {**cloud_event.get_attributes(), "data": cloud_event.data}
    try:
        report = gcp.handle_budget_event(event, gcp.budget_runtime())
    except InputError as exc:
        _log("ERROR", message=f"budget: {exc}", event_id=cloud_event["id"])
        return
    _log("INFO", message="budget: alert published", **report)


def _push_envelope(cloud_event: Any) -> Any:
    """The push envelope. Deployed as an HTTP function behind burnguard's own push subscription
    (infra/modules/gcp: the subscription carries the dead-letter policy), the request body is
    the raw push, whose ``deliveryAttempt`` and ``subscription`` the framework's conversion to
    a CloudEvent drops: read them from the body. Behind Eventarc, the CloudEvent's data is it."""
    body = flask.request.get_json(silent=True)
    if isinstance(body, dict) and isinstance(body.get("message"), dict) and "subscription" in body:
        return body
    return cloud_event.data


@functions_framework.cloud_event
def guardrail(cloud_event: Any) -> None:
    outcome = gcp.guardrail_runtime()(_push_envelope(cloud_event))
    _log("INFO" if outcome.status == "applied" else "ERROR", message=f"guardrail: {outcome.status}",
         **gcp.describe_outcome(outcome))


@functions_framework.http
def slack_command(request: Any) -> Any:
    return handle_flask(bootstrap.slash_service("gcp"), request)


@functions_framework.cloud_event
def slack_deferred(cloud_event: Any) -> None:
    data = base64.b64decode(cloud_event.data["message"]["data"])
    bootstrap.slash_service("gcp").run_deferred(pubsub_request(data))


def _tick_lines(name: str, report: dict[str, Any]) -> None:
    for line in report.get("problems", []) + report.get("unpriced", []):
        _log("WARNING", message=f"{name}: {line}")


@functions_framework.cloud_event
def meter(cloud_event: Any) -> None:
    report = gcp.handle_meter_tick(gcp.meter_runtime())
    _tick_lines("meter", report)
    _log("INFO", message=f"meter: {report['running']} of {report['read']} GPU instances running", **report)


@functions_framework.cloud_event
def instance_event(cloud_event: Any) -> None:
    report = gcp.handle_instance_event(cloud_event.data, gcp.meter_runtime)
    _tick_lines("instance_event", report)
    severity = {"metered": "INFO", "ignored": "INFO"}.get(report["action"], "ERROR")
    _log(severity, message=f"instance_event: {report['action']}", event_id=cloud_event["id"], **report)
