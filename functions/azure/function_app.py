"""Azure Functions app (Python v2 programming model).

* ``ingest`` (Event Grid trigger, ``Microsoft.Storage.BlobCreated`` on the export container,
  Event Grid or CloudEvents schema): a Cost Management export run's ``manifest.json`` makes its
  parts streamed from Blob storage and published on the shared queue; any other blob is
  ignored with a log line. A run that cannot be counted (a part missing or unreadable) raises:
  the host fails the event, Event Grid retries it and then dead-letters it.
* ``ingest_queue`` (Storage queue trigger on ``%BURNGUARD_EVENTS_QUEUE%``, connection
  ``BURNGUARD_EVENTS``): the same work when the Event Grid subscription delivers to a Storage
  queue (``infra/modules/azure``'s ``blob_events`` trigger); a failing message is retried by
  the host and moved to ``<queue>-poison`` after five attempts (the dead letter).
* ``budget`` (HTTP ``POST /api/budget``, the Action Group webhook): a budget alert (budget
  alert schema or common alert schema) becomes one ``budget-alert`` message. Anonymous at the
  platform level: every request is authenticated by the function (a secret in the URL, read
  from Key Vault, or Entra ID through App Service Authentication; ``burnguard.app.azure``).
* ``slack_command`` (HTTP): the Slack slash command. Anonymous at the platform level on
  purpose: Slack cannot send a function key in a header, and every request is authenticated by
  its Slack signature instead (``burnguard.adapters.slack.verify``). Every method is routed to
  the function so a wrong one gets the service's 405 rather than the host's 404.
* ``instance_event`` (Event Grid trigger, ``Microsoft.Resources.ResourceActionSuccess`` of the
  subscription, filtered to VM start/restart/deallocate/powerOff): one ``state-change`` message
  on the shared queue (the guardrail's meter starts or ends the VM's accrual); any other event
  is ignored with a log line.
* ``slack_deferred`` (Storage queue trigger on ``%BURNGUARD_SLACK_DEFER_QUEUE%``, base64
  messages): completes a command acknowledged within Slack's 3 seconds and posts the answer
  to its response_url. A message failing five times goes to ``<queue>-poison``.
"""

from __future__ import annotations

import azure.functions as func

from burnguard.adapters.azure.eventgrid import events_of_queue_message
from burnguard.app import azure as azure_app
from burnguard.app import slack as bootstrap
from burnguard.services.slack_endpoint import pubsub_request

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.event_grid_trigger(arg_name="event")
def ingest(event: func.EventGridEvent) -> None:
    azure_app.ingest_endpoint().handle(event)


@app.event_grid_trigger(arg_name="event")
def instance_event(event: func.EventGridEvent) -> None:
    azure_app.instance_event_endpoint().handle(event)


@app.queue_trigger(arg_name="msg", queue_name="%BURNGUARD_EVENTS_QUEUE%", connection="BURNGUARD_EVENTS")
def ingest_queue(msg: func.QueueMessage) -> None:
    for event in events_of_queue_message(msg.get_body()):
        azure_app.ingest_endpoint().handle(event)


@app.route(route="budget", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def budget(req: func.HttpRequest) -> func.HttpResponse:
    response = azure_app.budget_endpoint().handle(req.method, dict(req.params), dict(req.headers), req.get_body())
    return func.HttpResponse(response.body, status_code=response.status, mimetype="application/json")


@app.route(route="slack/command", auth_level=func.AuthLevel.ANONYMOUS)
def slack_command(req: func.HttpRequest) -> func.HttpResponse:
    response = bootstrap.slash_service("azure").handle(req.get_body(), dict(req.headers), req.method)
    return func.HttpResponse(response.body, status_code=response.status, headers=response.headers,
                             mimetype=response.mimetype)


@app.queue_trigger(arg_name="msg", queue_name="%BURNGUARD_SLACK_DEFER_QUEUE%", connection="AzureWebJobsStorage")
def slack_deferred(msg: func.QueueMessage) -> None:
    bootstrap.slash_service("azure").run_deferred(pubsub_request(msg.get_body()))
