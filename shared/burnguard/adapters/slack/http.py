"""The slash-command endpoint on each HTTP front end: request in, :class:`HttpResponse` out.

Translators only, in the style of Slack Bolt's adapters: they take the method, the headers and
the **raw body bytes** from the platform's request, call :meth:`SlashService.handle`, and turn
its response into the platform's. No decision is made here.

* AWS Lambda Function URL (payload format 2.0) and API Gateway events: header names arrive
  lower-cased, and the body may be base64 (``isBase64Encoded``): it is decoded to the exact
  bytes Slack signed.
* Google Cloud Functions (functions-framework, Flask): ``request.get_data()`` is the raw body.
* Azure Functions: ``req.get_body()`` is the raw body (the Azure handler builds its
  ``HttpResponse`` from :class:`HttpResponse` itself, to keep ``azure.functions`` out of here).
* :func:`make_server`: the local ``burnguard serve`` endpoint (stdlib ``http.server``), which
  refuses an oversized body from its ``Content-Length`` before reading it.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from burnguard.services.slack_endpoint import HttpResponse, SlashService

log = logging.getLogger("burnguard.services.commands.http")


# --------------------------------------------------------------------------- AWS


def function_url_request(event: Mapping[str, Any]) -> tuple[str, dict[str, str], bytes] | None:
    """``(method, headers, raw body)`` of a Function URL / API Gateway event; ``None`` when
    the body is marked base64 but is not."""
    context = event.get("requestContext") or {}
    method = str((context.get("http") or {}).get("method") or event.get("httpMethod") or "POST")
    headers = {str(k): str(v) for k, v in (event.get("headers") or {}).items()}
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return None
    else:
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    return method, headers, raw


def function_url_response(response: HttpResponse) -> dict[str, Any]:
    return {"statusCode": response.status, "headers": dict(response.headers),
            "body": response.body.decode("utf-8"), "isBase64Encoded": False}


def handle_function_url(service: SlashService, event: Mapping[str, Any]) -> dict[str, Any]:
    parsed = function_url_request(event)
    if parsed is None:
        log.warning("slash command refused (400): body marked base64 is not base64")
        return function_url_response(HttpResponse.refused(400))
    method, headers, body = parsed
    return function_url_response(service.handle(body, headers, method))


# --------------------------------------------------------------------------- Google Cloud (Flask)


def handle_flask(service: SlashService, request: Any) -> tuple[bytes, int, dict[str, str]]:
    """A functions-framework (Flask) request; returns Flask's ``(body, status, headers)``."""
    response = service.handle(request.get_data(cache=False), dict(request.headers.items()), request.method)
    return response.body, response.status, response.headers


# --------------------------------------------------------------------------- local server


def make_server(service: SlashService, host: str = "127.0.0.1", port: int = 3000) -> ThreadingHTTPServer:
    """An HTTP server answering slash commands on any path (point Slack's Request URL at it)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "burnguard"
        sys_version = ""

        def _reply(self, response: HttpResponse) -> None:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

        def do_POST(self) -> None:
            declared = self.headers.get("Content-Length", "0").strip() or "0"
            if not declared.isdigit():
                self._reply(HttpResponse.refused(400))
                return
            if int(declared) > service.max_body:
                log.warning("slash command refused (413): Content-Length %s", declared)
                self.close_connection = True
                self._reply(HttpResponse.refused(413))
                return
            body = self.rfile.read(int(declared))
            self._reply(service.handle(body, dict(self.headers.items()), "POST"))

        def _other(self) -> None:
            self._reply(service.handle(b"", dict(self.headers.items()), self.command))

        do_GET = do_PUT = do_DELETE = do_PATCH = _other

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), format % args)

    return ThreadingHTTPServer((host, port), Handler)
