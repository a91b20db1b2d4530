"""Azure Functions app (Python v2 programming model).

``slack_command``: the Slack slash command over HTTP. Anonymous at the platform level on
purpose: Slack cannot send a function key in a header, and every request is authenticated by
its Slack signature instead (``burnguard.adapters.slack.verify``). Every method is routed to the
function so a wrong one gets the service's 405 rather than the host's 404.
"""

from __future__ import annotations

import azure.functions as func

from burnguard.app import slack as bootstrap

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="slack/command", auth_level=func.AuthLevel.ANONYMOUS)
def slack_command(req: func.HttpRequest) -> func.HttpResponse:
    response = bootstrap.slash_service("azure").handle(req.get_body(), dict(req.headers), req.method)
    return func.HttpResponse(response.body, status_code=response.status, headers=response.headers,
                             mimetype=response.mimetype)
