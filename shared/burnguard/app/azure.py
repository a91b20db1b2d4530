"""Azure composition root: settings from the environment, wiring of the Azure functions
(``functions/azure/function_app.py``), and their ``burnguard invoke azure …`` invokers.

Nothing runs at import: each endpoint is built on the first event of an instance (settings
validated then, with an error naming the variable) and kept while the instance is warm.

Environment (Terraform sets it; references only, never secrets):

=====================================  ========================================================
``BURNGUARD_TOPIC``                    ``projects/<p>/topics/<t>``: the shared queue (ingest,
                                       budget) — required
``BURNGUARD_GCP_WIF_CONFIG``           google-auth external-account configuration (JSON text)
                                       of the workload identity pool provider that trusts the
                                       Function App's managed identity — required unless
                                       ``PUBSUB_EMULATOR_HOST`` is set
``BURNGUARD_AZURE_WIF_AUDIENCE``       the Entra application ID URI the managed identity asks a
                                       token for (``api://<app-id>``); default: the
                                       ``resource=`` of the configuration's credential URL
``BURNGUARD_AZURE_EXPORT_STORAGE``     the export storage account: its blob endpoint
                                       ``https://<account>.blob.core.windows.net`` (read with
                                       the managed identity) or a connection string (Azurite)
                                       — required by ingest
``BURNGUARD_WEBHOOK_SECRET_REF``       Key Vault reference of the secret in the budget
                                       webhook's URL (``?token=…``); or
``BURNGUARD_WEBHOOK_AUTH=entra``       the Action Group's secure webhook, validated by App
                                       Service Authentication; with
                                       ``BURNGUARD_WEBHOOK_ALLOWED_PRINCIPALS`` (comma-separated
                                       object ids) the only principals accepted
``BURNGUARD_DEAD_LETTER_CONTAINER``    ingest: container (in ``AzureWebJobsStorage``) of the
                                       records of runs not counted, with the reason
``BURNGUARD_SLACK_DEFER_QUEUE``        Storage queue of deferred slash answers (in the
                                       ``AzureWebJobsStorage`` account, connection string or
                                       ``AzureWebJobsStorage__queueServiceUri``)
=====================================  ========================================================

``instance_event`` (Event Grid ``ResourceActionSuccess`` of the subscription's VMs) reads
``BURNGUARD_TOPIC``, the federation settings and ``BURNGUARD_DEAD_LETTER_CONTAINER``.

``burnguard invoke azure ingest|budget|slack EVENT.json``: with ``BURNGUARD_TOPIC`` unset the
functions publish to the embedded queue of ``--home``, and ingest reads blobs from
``events/exports/azure/<container>/`` (``BURNGUARD_AZURE_LOCAL_EXPORTS`` overrides the root).
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from burnguard.adapters.azure.blob import BlobStore
from burnguard.adapters.azure.eventgrid import BLOB_CREATED, blob_created, event_fields
from burnguard.adapters.azure.webhook import EntraAuth, SecretAuth
from burnguard.app.config import TOPIC, ConfigurationError, topic_path
from burnguard.app.federation import (
    PUBSUB_SCOPE,
    WIF_CONFIG,
    federation_from_env,
    identity_pool_credentials,
)
from burnguard.app.invoke import InvokeContext, RecordingPublish, describe_published, invoker
from burnguard.app.slack import AZURE_DEFER_QUEUE, azure_deferrer
from burnguard.core.budget import parse_azure_budget_alert
from burnguard.core.errors import BurnguardError, InputError
from burnguard.ports.objects import ObjectStore, Publish, PublishError
from burnguard.ports.secrets import SecretError
from burnguard.services.budget import alert_message
from burnguard.services.objects import ingest_object

log = logging.getLogger("burnguard.azure")

EXPORT_STORAGE = "BURNGUARD_AZURE_EXPORT_STORAGE"
WEBHOOK_SECRET_REF = "BURNGUARD_WEBHOOK_SECRET_REF"
WEBHOOK_AUTH = "BURNGUARD_WEBHOOK_AUTH"
WEBHOOK_PRINCIPALS = "BURNGUARD_WEBHOOK_ALLOWED_PRINCIPALS"

LOCAL_EXPORTS = "BURNGUARD_AZURE_LOCAL_EXPORTS"
DEAD_LETTER_CONTAINER = "BURNGUARD_DEAD_LETTER_CONTAINER"
EMULATOR = "PUBSUB_EMULATOR_HOST"

#: The budget webhook's bodies are a few KiB.
MAX_WEBHOOK_BODY = 256 * 1024

#: the Azure slash deferral lives with the slash bootstrap (``app/slack.py``); named here too for the Azure app
DEFER_QUEUE = AZURE_DEFER_QUEUE
slack_deferrer = azure_deferrer


class IngestFailed(BurnguardError):
    """A run that cannot be counted (a part missing or unreadable): raised out of the Event
    Grid trigger so the host fails the event, Event Grid retries it (a late part may arrive)
    and finally dead-letters it to the subscription's dead-letter container."""


# --------------------------------------------------------------------------------------------
# Publishing to Pub/Sub through workload identity federation


@dataclass(frozen=True)
class PublishSettings:
    topic: str
    wif_config: Mapping[str, Any] | None = None
    audience: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PublishSettings:
        topic = topic_path(env)
        federation = federation_from_env(env)
        if federation is None:
            if env.get(EMULATOR):
                return cls(topic)
            raise ConfigurationError(f"{WIF_CONFIG} is not set (the external-account configuration of the "
                                     "workload identity pool provider)")
        return cls(topic, *federation)


def federated_credentials(settings: PublishSettings, credential: Any = None,
                          scopes: Sequence[str] = (PUBSUB_SCOPE,)) -> Any:
    """The managed identity's federated Google credentials for ``scopes`` (see
    :func:`burnguard.app.federation.identity_pool_credentials`)."""
    assert settings.wif_config is not None and settings.audience is not None
    return identity_pool_credentials(settings.wif_config, settings.audience, credential, scopes)


def build_publisher(settings: PublishSettings, client: Any = None) -> Any:
    from burnguard.adapters.gcp.pubsub import PubSubPublisher

    if client is None:
        from google.cloud.pubsub_v1 import PublisherClient

        client = (PublisherClient() if settings.wif_config is None
                  else PublisherClient(credentials=federated_credentials(settings)))
    return PubSubPublisher(client, settings.topic)


#: the one shape of a published message (``burnguard.app.invoke.describe_published``)
describe_messages = describe_published


# --------------------------------------------------------------------------------------------
# Ingest (Event Grid BlobCreated → the export run → the shared queue)


def blob_store(storage: str, credential: Any = None) -> BlobStore:
    from azure.storage.blob import BlobServiceClient

    if storage.startswith("https://"):
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        return BlobStore(BlobServiceClient(storage, credential=credential))
    if "AccountName=" in storage or "UseDevelopmentStorage=" in storage:
        return BlobStore(BlobServiceClient.from_connection_string(storage))
    raise ConfigurationError(f"{EXPORT_STORAGE} is https://<account>.blob.core.windows.net or a connection string")


class AzureIngest:
    """The ingest function's work for one event: which blob, which run, publish it whole."""

    def __init__(self, store: ObjectStore, publish: Publish, dead_letters: DeadLetters | None = None):
        self.store = store
        self.publish = publish
        self.dead_letters = dead_letters

    def handle(self, event: Any) -> dict[str, Any]:
        fields = event_fields(event)
        if fields["type"] != BLOB_CREATED:
            log.info("event %s of type %r ignored: not %s", fields["id"], fields["type"], BLOB_CREATED)
            return {"action": "ignored", "reason": f"event type {fields['type']!r}"}
        blob = blob_created(event)
        recorder = RecordingPublish(self.publish)
        where = f"{blob.container}/{blob.key}"
        try:
            outcome = ingest_object("azure", blob.container, blob.key, self.store, recorder, metadata=blob.metadata)
        except InputError as exc:
            # The run never counts: its closing summary was not published. The host fails the
            # event; Event Grid retries it, then dead-letters it with this reason in the log.
            log.error("ingest of %s failed, the run is not counted (dead-lettered after retries): %s", where, exc)
            self._dead_letter(blob.event_id, where, str(exc), fields)
            raise IngestFailed(f"{where}: {exc}") from None
        except PublishError as exc:
            log.error("ingest of %s could not publish (retried by Event Grid): %s", where, exc)
            raise
        report: dict[str, Any] = {"action": outcome.action, "container": blob.container, "key": blob.key,
                                  "reason": outcome.reason}
        if outcome.action == "skipped":
            log.info("blob %s ignored: %s", where, outcome.reason)
            return report
        assert outcome.delivery is not None and outcome.report is not None
        summary = outcome.report.summary
        skipped = sum(f.rows_skipped for f in summary.files)
        report.update(delivery_id=outcome.delivery.delivery_id, source=outcome.delivery.source,
                      version=outcome.delivery.version, files=len(summary.files), rows=summary.totals.rows,
                      rows_skipped=skipped, expected_rows=summary.expected_rows, messages=len(recorder.messages),
                      published=describe_messages(recorder.messages))
        log.info("ingested %s: delivery %s, %d rows (%d skipped), %d messages", where,
                 outcome.delivery.delivery_id, summary.totals.rows, skipped, len(recorder.messages))
        return report


    def _dead_letter(self, event_id: str, where: str, reason: str, fields: Mapping[str, Any]) -> None:
        if self.dead_letters is None:
            return
        try:
            name = self.dead_letters.record(event_id, reason, {"blob": where, "event": fields})
        except Exception as exc:  # azure.core errors: the log line above still carries the reason
            log.error("dead-letter record of %s not written: %s: %s", where, type(exc).__name__, exc)
        else:
            log.info("dead-letter record of %s: %s", where, name)


class DeadLetters(Protocol):
    def record(self, event_id: str, reason: str, details: Mapping[str, Any]) -> str: ...


def dead_letters(env: Mapping[str, str]) -> DeadLetters | None:
    """The container of ``BURNGUARD_DEAD_LETTER_CONTAINER`` in the function's own storage
    account (``AzureWebJobsStorage``: a connection string, or ``__blobServiceUri`` with the
    managed identity), or ``None`` when unset (the log line alone carries the reason)."""
    name = env.get(DEAD_LETTER_CONTAINER, "").strip()
    if not name:
        return None
    from azure.storage.blob import ContainerClient

    from burnguard.adapters.azure.deadletter import BlobDeadLetters

    connection = env.get("AzureWebJobsStorage", "").strip()
    uri = env.get("AzureWebJobsStorage__blobServiceUri", "").strip()
    if connection:
        return BlobDeadLetters(ContainerClient.from_connection_string(connection, name))
    if uri:
        from azure.identity import DefaultAzureCredential

        return BlobDeadLetters(ContainerClient(uri, name, credential=DefaultAzureCredential()))
    raise ConfigurationError(f"{DEAD_LETTER_CONTAINER} is set but AzureWebJobsStorage is not")


@functools.cache
def ingest_endpoint() -> AzureIngest:
    from burnguard.app.runtime import tune_arrow

    tune_arrow()  # the cold start, as `burnguard normalize` does: jemalloc, one Arrow I/O thread
    env = os.environ
    storage = env.get(EXPORT_STORAGE, "").strip()
    if not storage:
        raise ConfigurationError(f"{EXPORT_STORAGE} is not set (the export storage account's blob endpoint)")
    return AzureIngest(blob_store(storage), build_publisher(PublishSettings.from_env(env)), dead_letters(env))


# --------------------------------------------------------------------------------------------
# instance_event (Event Grid resource events of VMs → state-change message)


class AzureInstanceEvent:
    """A VM started, restarted, deallocated or powered off (Event Grid
    ``Microsoft.Resources.ResourceActionSuccess`` on the subscription) → one ``state-change``
    message on the shared queue; the guardrail's meter starts or ends the VM's accrual at the
    event's time. Any other event is ignored with a log line; a malformed one is recorded in
    the dead-letter container (when configured) and logged, never retried (it cannot improve)."""

    def __init__(self, publish: Publish, dead_letters: DeadLetters | None = None):
        self.publish = publish
        self.dead_letters = dead_letters

    def handle(self, event: Any) -> dict[str, Any]:
        from burnguard.core.messages import encode_state_change
        from burnguard.core.state_events import parse_state_change

        fields = event_fields(event)
        time = fields["time"]
        shaped = {"eventType": fields["type"], "subject": fields["subject"], "data": fields["data"],
                  "eventTime": time.isoformat() if isinstance(time, datetime) else time}
        try:
            change = parse_state_change("azure", shaped)
        except InputError as exc:
            reason = exc.describe()
            log.error("malformed state-change event %s: %s", fields["id"], reason)
            if self.dead_letters is not None:
                try:
                    self.dead_letters.record(str(fields["id"] or ""), reason, {"event": fields})
                except Exception as err:  # azure.core errors: the log line above carries the reason
                    log.error("dead-letter record of event %s not written: %s: %s", fields["id"],
                              type(err).__name__, err)
            return {"action": "dead-lettered", "reason": reason}
        if change is None:
            data = fields["data"] if isinstance(fields["data"], Mapping) else {}
            what = f"{fields['type']} {data.get('operationName', '')}".strip()
            log.info("event %s ignored: not a VM start or stop (%s)", fields["id"], what)
            return {"action": "ignored", "reason": f"not a VM start or stop ({what})"}
        message = encode_state_change(change)
        self.publish([message])
        log.info("state change of %s (%s at %s) published", change.instance_id, change.state, change.at.isoformat())
        return {"action": "published", "message_id": message.message_id, "instance": change.instance_id,
                "state": change.state, "at": change.at.isoformat()}


@functools.cache
def instance_event_endpoint() -> AzureInstanceEvent:
    env = os.environ
    return AzureInstanceEvent(build_publisher(PublishSettings.from_env(env)), dead_letters(env))


# --------------------------------------------------------------------------------------------
# Budget (Action Group webhook → budget-alert message)


class WebhookAuth(Protocol):
    def refuse(self, params: Mapping[str, str], headers: Mapping[str, str]) -> str | None: ...


@dataclass(frozen=True)
class WebhookResponse:
    status: int
    payload: Mapping[str, Any]

    @property
    def body(self) -> bytes:
        return json.dumps(self.payload).encode()


class AzureBudget:
    """Authenticate, parse (budget alert schema or common alert schema), publish one
    ``budget-alert`` message. Statuses: 401 unauthenticated, 405 not POST, 413 too large,
    400 not a budget alert, 503 the queue refused (the Action Group retries), 200 published."""

    def __init__(self, auth: WebhookAuth, publish: Publish, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.auth = auth
        self.publish = publish
        self.clock = clock

    def handle(self, method: str, params: Mapping[str, str], headers: Mapping[str, str],
               body: bytes) -> WebhookResponse:
        reason = self.auth.refuse(params, headers)
        if reason is not None:
            log.warning("budget webhook refused: %s", reason)
            return WebhookResponse(401, {"error": "unauthorized"})
        if method.upper() != "POST":
            return WebhookResponse(405, {"error": "method not allowed"})
        if len(body) > MAX_WEBHOOK_BODY:
            return WebhookResponse(413, {"error": "payload too large"})
        try:
            payload = json.loads(body)
            if not isinstance(payload, Mapping):
                raise InputError("the body is not a JSON object")
            alert = parse_azure_budget_alert(payload, self.clock())
        except (ValueError, InputError) as exc:
            text = str(exc) if isinstance(exc, InputError) else f"the body is not JSON ({exc})"
            log.warning("budget webhook: bad request: %s", text)
            return WebhookResponse(400, {"error": text})
        message = alert_message(alert)
        try:
            self.publish([message])
        except PublishError as exc:
            log.error("budget alert %s not published: %s", alert.alert_id, exc)
            return WebhookResponse(503, {"error": "the queue is unavailable; retry"})
        log.info("budget alert %s published: %r %s", alert.alert_id, alert.budget_name, alert.kind)
        return WebhookResponse(200, {"published": describe_messages([message])})


def webhook_auth(env: Mapping[str, str], secret: Callable[[str], str] | None = None) -> WebhookAuth:
    mode = env.get(WEBHOOK_AUTH, "").strip().lower()
    ref = env.get(WEBHOOK_SECRET_REF, "").strip()
    if mode == "entra":
        if ref:
            raise ConfigurationError(f"{WEBHOOK_AUTH}=entra and {WEBHOOK_SECRET_REF}: configure one")
        return EntraAuth(env.get(WEBHOOK_PRINCIPALS, "").split(","))
    if mode not in ("", "secret"):
        raise ConfigurationError(f"{WEBHOOK_AUTH} is secret or entra, not {mode!r}")
    if not ref:
        raise ConfigurationError(f"{WEBHOOK_SECRET_REF} is not set (or set {WEBHOOK_AUTH}=entra)")
    if secret is None:
        from burnguard.adapters.azure.secrets import azure_secret

        secret = azure_secret
    try:
        return SecretAuth(secret(ref))
    except (SecretError, ValueError) as exc:
        raise ConfigurationError(f"{WEBHOOK_SECRET_REF}: {exc}") from None


@functools.cache
def budget_endpoint() -> AzureBudget:
    env = os.environ
    return AzureBudget(webhook_auth(env), build_publisher(PublishSettings.from_env(env)))


# --------------------------------------------------------------------------------------------
# Slash commands: the Storage queue of deferred answers


# --------------------------------------------------------------------------------------------
# burnguard invoke azure …


class _LocalContainers:
    """Containers as directories under ``root`` (the embedded mode's Blob storage)."""

    def __init__(self, root: Path):
        from burnguard.adapters.local.store import DirectoryStore

        self.root = root
        self.inner = DirectoryStore()

    def open(self, bucket: str, key: str) -> IO[bytes]:
        return self.inner.open(str(self.root / bucket), key)

    def read(self, bucket: str, key: str) -> bytes:
        return self.inner.read(str(self.root / bucket), key)

    def local_path(self, bucket: str, key: str) -> str | None:
        return self.inner.local_path(str(self.root / bucket), key)


def _publish_for(ctx: InvokeContext) -> tuple[Publish, Callable[[], None], str]:
    """Pub/Sub when ``BURNGUARD_TOPIC`` is set, else the embedded queue: the publisher, how to
    close it, and where it publishes (for the report)."""
    if ctx.env.get(TOPIC):
        return build_publisher(PublishSettings.from_env(ctx.env)), lambda: None, ctx.env[TOPIC]
    from burnguard.adapters.local.queue import SqliteQueue

    ctx.home.mkdir(parents=True, exist_ok=True)
    queue = SqliteQueue(ctx.home / "queue.sqlite")
    return queue.publish, queue.close, f"embedded queue {ctx.home / 'queue.sqlite'}"


def _events(event: Any) -> list[Any]:
    return list(event) if isinstance(event, list) else [event]


@invoker("azure", "ingest")
def invoke_ingest(event: Any, ctx: InvokeContext) -> Mapping[str, Any]:
    if ctx.env.get(TOPIC):
        storage = ctx.env.get(EXPORT_STORAGE, "").strip()
        if not storage:
            raise InputError(f"{EXPORT_STORAGE} is not set (with {TOPIC} set, blobs are read from Azure)")
        store: ObjectStore = blob_store(storage)
    else:
        store = _LocalContainers(Path(ctx.env.get(LOCAL_EXPORTS) or "events/exports/azure"))
    publish, close, where = _publish_for(ctx)
    endpoint = AzureIngest(store, publish)
    try:
        results = []
        for one in _events(event):
            try:
                results.append(endpoint.handle(one))
            except BurnguardError as exc:
                results.append({"action": "failed", "reason": str(exc)})
    finally:
        close()
    return {"function": "azure ingest", "queue": where, "events": results}


@invoker("azure", "instance_event")
def invoke_instance_event(event: Any, ctx: InvokeContext) -> Mapping[str, Any]:
    publish, close, where = _publish_for(ctx)
    try:
        results = [AzureInstanceEvent(publish).handle(one) for one in _events(event)]
    finally:
        close()
    return {"function": "azure instance_event", "queue": where, "events": results}


@invoker("azure", "budget")
def invoke_budget(event: Any, ctx: InvokeContext) -> Mapping[str, Any]:
    """The event is the webhook's JSON body; authentication is the function's, not invoke's
    (a local run is trusted): it is not checked here."""

    class _Trusted:
        def refuse(self, params: Mapping[str, str], headers: Mapping[str, str]) -> str | None:
            return None

    publish, close, where = _publish_for(ctx)
    try:
        response = AzureBudget(_Trusted(), publish).handle("POST", {}, {}, json.dumps(event).encode())
    finally:
        close()
    return {"function": "azure budget", "queue": where, "status": response.status, **response.payload}


@invoker("azure", "slack")
def invoke_slack(event: Any, ctx: InvokeContext) -> Mapping[str, Any]:
    """The event is a slash command's fields (``text``, ``user_id``, …; what the queue carries
    to ``slack_deferred``). Answered on the ledger of ``BURNGUARD_LEDGER`` and the policy of
    ``BURNGUARD_POLICY`` when set, else on the embedded state of ``--home``. The Slack
    signature is the HTTP function's concern; a local run is trusted and not signed."""
    import uuid

    from burnguard.app.config import LEDGER, POLICY, open_ledger
    from burnguard.app.embedded import LocalMode
    from burnguard.core.policy import load_policy
    from burnguard.ports.slack import CommandRequest
    from burnguard.services.commands import SlashCommands

    if not isinstance(event, Mapping) or not isinstance(event.get("text"), str):
        raise InputError("a slash command event is a JSON object with a 'text' field", field="text")
    fields = {"user_id": "U-invoke", "request_id": f"invoke:{uuid.uuid4().hex}",
              "at": datetime.now(UTC).isoformat(), **{k: v for k, v in event.items() if v is not None}}
    if ctx.env.get(LEDGER):
        if not ctx.env.get(POLICY):
            raise InputError(f"{POLICY} is not set (with {LEDGER} set)", field=POLICY)
        ledger = open_ledger(ctx.env[LEDGER])
        commands = SlashCommands(ledger, load_policy(Path(ctx.env[POLICY])))
        close: Callable[[], None] = getattr(ledger, "close", lambda: None)
        where = ctx.env[LEDGER]
    else:
        local = LocalMode.open(ctx.home)
        fields.setdefault("as_of", local.data_clock().isoformat())
        commands = SlashCommands(local.ledger, local.policy, lambda guardrail, actor: local.service().resume(
            guardrail, actor=actor))
        close, where = local.close, f"embedded ledger {ctx.home}"
    try:
        request = CommandRequest.from_dict(fields)
        answer = commands.precheck(request) or commands.complete(request)
    finally:
        close()
    return {"function": "azure slack", "ledger": where, "answer": answer.as_dict()}


# --------------------------------------------------------------------------------------------
# The guardrail's reach into Azure (wired by the guardrail's composition root)

AZURE_TENANT = "BURNGUARD_AZURE_TENANT_ID"
AZURE_CLIENT = "BURNGUARD_AZURE_CLIENT_ID"
AZURE_SCOPES = "BURNGUARD_AZURE_SCOPES"
#: The audience Entra ID expects of a federated credential's assertion.
ENTRA_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"


def google_id_token(audience: str = ENTRA_EXCHANGE_AUDIENCE) -> str:
    """An ID token of the Google service account the guardrail runs as (the metadata server),
    the assertion of the Entra app's federated credential."""
    import google.auth.transport.requests
    import google.oauth2.id_token

    return str(google.oauth2.id_token.fetch_id_token(  # type: ignore[no-untyped-call]
        google.auth.transport.requests.Request(), audience))


def vm_controller(env: Mapping[str, str], credential: Any = None, *, base_url: str | None = None,
                  **client_kwargs: Any) -> Any:
    """The :class:`~burnguard.adapters.azure.vms.AzureVmController` of ``BURNGUARD_AZURE_*``,
    or ``None`` when Azure is not configured. Without ``credential``: Entra workload identity
    federation (``ClientAssertionCredential`` of the app ``BURNGUARD_AZURE_CLIENT_ID`` in
    ``BURNGUARD_AZURE_TENANT_ID``, the assertion a Google ID token): no Azure secret anywhere."""
    from burnguard.adapters.azure.vms import AzureVmController, parse_scopes

    given = [k for k in (AZURE_TENANT, AZURE_CLIENT, AZURE_SCOPES) if env.get(k, "").strip()]
    if not given:
        return None
    missing = [k for k in (AZURE_TENANT, AZURE_CLIENT, AZURE_SCOPES) if k not in given]
    if missing and credential is None:
        raise ConfigurationError(f"Azure is partly configured: missing {', '.join(missing)}")
    try:
        scopes = parse_scopes(env.get(AZURE_SCOPES, ""), field=AZURE_SCOPES)
    except InputError as exc:
        raise ConfigurationError(str(exc)) from None
    if credential is None:
        from azure.identity import ClientAssertionCredential

        credential = ClientAssertionCredential(env[AZURE_TENANT].strip(), env[AZURE_CLIENT].strip(), google_id_token)

    def clients(subscription: str) -> Any:
        from azure.mgmt.compute import ComputeManagementClient

        return ComputeManagementClient(credential, subscription, base_url=base_url, **client_kwargs)

    return AzureVmController(clients, scopes)
