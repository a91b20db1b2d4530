"""Google Cloud composition root: settings from the environment, wiring, and the
``burnguard invoke gcp …`` handlers.

The functions of ``functions/gcp/main.py`` call the ``*_runtime()`` builders here (cached per
instance: built on the first event, kept while warm); tests and ``burnguard invoke`` call the
``handle_*`` functions with their own parts. Nothing runs at import time and no SDK client is
built before it is needed.

Environment (validated when an instance first needs it; the error names the variable):

=====================================  ==========================================================
``BURNGUARD_TOPIC``                    ``projects/<p>/topics/<t>``: the shared queue (ingest,
                                       budget)
``BURNGUARD_POLICY``                   the policy YAML (guardrail, slash)
``BURNGUARD_LEDGER``                   ``firestore://projects/<p>/databases/<d>`` (guardrail,
                                       slash); ``sqlite:///<path>`` for development
``BURNGUARD_DEAD_LETTER_TOPIC``        ``projects/<p>/topics/<t>``: where the guardrail puts a
                                       message it can never apply, with its ``reason``
``BURNGUARD_MAX_DELIVERY_ATTEMPTS``    the subscription's dead-letter ``max_delivery_attempts``
                                       (default 5): the guardrail dead-letters a message that
                                       failed that many times itself, with the last error
``BURNGUARD_GCP_PROJECTS``             comma-separated projects whose Compute Engine instances
                                       the guardrail may stop
``BURNGUARD_GCE_LOCAL_SSD``            ``refuse`` (default), ``discard`` or ``suspend``: what
                                       stopping an instance with local SSDs does
``BURNGUARD_SLACK_BOT_TOKEN_REF``      Secret Manager reference of the bot token (optional:
                                       without it, notifications go to the function's log)
``BURNGUARD_SLACK_CHANNEL``            default channel (the policy's channel wins)
``BURNGUARD_AWS_ROLE_ARN`` …           reach into AWS and Azure (see :func:`cloud_controllers`);
                                       ``BURNGUARD_AWS_TOKEN_AUDIENCE`` (default
                                       ``burnguard-aws-stop``) the ID token's audience for STS
=====================================  ==========================================================

The meter (``meter``: a Cloud Scheduler tick through Pub/Sub; ``instance_event``: Compute Engine
audit logs through Eventarc) reads what the guardrail reads (``BURNGUARD_POLICY``,
``BURNGUARD_LEDGER``, the reach, Slack), and its ledger must keep the live estimate
(:class:`~burnguard.ports.ledger.EstimateLog`): :func:`build_meter` refuses one that does not.
The guardrail hands the ``state-change`` messages AWS and Azure publish to the meter.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from burnguard.adapters.gcp.pubsub import DEFAULT_MAX_ATTEMPTS, PushConsumer, PushOutcome
from burnguard.app.config import LEDGER, POLICY, TOPIC, ConfigurationError, open_ledger, topic_path
from burnguard.app.invoke import InvokeContext, RecordingPublish, describe_published, invoker
from burnguard.app.slack import RESUMERS
from burnguard.core.budget import parse_gcp_pubsub_cloudevent
from burnguard.core.errors import InputError
from burnguard.core.messages import STATE_CHANGE, Message
from burnguard.core.policy import Policy, load_policy
from burnguard.core.prices import PriceTable
from burnguard.core.state_events import parse_state_change
from burnguard.ports.instances import InstanceController
from burnguard.ports.ledger import EstimateLog, Ledger
from burnguard.ports.notify import Notifier
from burnguard.ports.objects import ObjectStore, Publish
from burnguard.services.budget import alert_message
from burnguard.services.guardrail import ExecutionReport, GuardrailService, HandleResult
from burnguard.services.meter import EstimatingLedger, MeterService, TickReport
from burnguard.services.objects import ingest_object

DEAD_LETTER_TOPIC = "BURNGUARD_DEAD_LETTER_TOPIC"
MAX_ATTEMPTS = "BURNGUARD_MAX_DELIVERY_ATTEMPTS"
GCP_PROJECTS = "BURNGUARD_GCP_PROJECTS"
LOCAL_SSD = "BURNGUARD_GCE_LOCAL_SSD"
SLACK_TOKEN_REF = "BURNGUARD_SLACK_BOT_TOKEN_REF"
SLACK_CHANNEL = "BURNGUARD_SLACK_CHANNEL"
AWS_ROLE_ARN = "BURNGUARD_AWS_ROLE_ARN"
AWS_REGIONS = "BURNGUARD_AWS_REGIONS"
AZURE_TENANT = "BURNGUARD_AZURE_TENANT_ID"
AZURE_CLIENT = "BURNGUARD_AZURE_CLIENT_ID"
AZURE_SCOPES = "BURNGUARD_AZURE_SCOPES"
#: embedded fallback of ``burnguard invoke gcp ingest``: the directory holding local "buckets"
LOCAL_BUCKETS = "BURNGUARD_LOCAL_BUCKETS"


# -- settings -----------------------------------------------------------------------------


def max_attempts(env: Mapping[str, str]) -> int:
    raw = env.get(MAX_ATTEMPTS, "").strip()
    if not raw:
        return DEFAULT_MAX_ATTEMPTS
    if not raw.isdigit() or not 5 <= int(raw) <= 100:
        raise ConfigurationError(f"{MAX_ATTEMPTS} must be an integer from 5 to 100 (Pub/Sub's range), not {raw!r}")
    return int(raw)


def gcp_projects(env: Mapping[str, str]) -> list[str]:
    projects = [p.strip() for p in env.get(GCP_PROJECTS, "").split(",") if p.strip()]
    bad = [p for p in projects if not re.match(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", p)]
    if bad:
        raise ConfigurationError(f"{GCP_PROJECTS}: {bad[0]!r} is not a project id")
    return projects


# -- controllers ----------------------------------------------------------------------------
#: the audience of the Google ID token the guardrail presents to AWS STS (the stop role's trust
#: policy checks it as ``accounts.google.com:oaud``; infra/modules/aws ``token_audience``)
AWS_TOKEN_AUDIENCE = "BURNGUARD_AWS_TOKEN_AUDIENCE"
DEFAULT_AWS_AUDIENCE = "burnguard-aws-stop"
IdToken = Callable[[str], str]


def google_id_token(audience: str) -> str:
    """An ID token of the service account the function runs as (the metadata server), for
    ``audience``: what AWS STS and Entra ID accept as a federated identity."""
    import google.auth.transport.requests
    import google.oauth2.id_token

    return str(google.oauth2.id_token.fetch_id_token(  # type: ignore[no-untyped-call]
        google.auth.transport.requests.Request(), audience))


def cloud_controllers(env: Mapping[str, str], *, compute_clients: Any = None, compute_operations: Any = None,
                      id_token: IdToken | None = None, azure_credential: Any = None,
                      azure_options: Mapping[str, Any] | None = None) -> dict[str, InstanceController]:
    """The guardrail's instance controllers: Compute Engine for ``BURNGUARD_GCP_PROJECTS``, and
    EC2 / Azure VMs when their federated-credential variables are set. A cloud without its
    variables has no controller: the guardrail then reports its instances as uncontrolled.

    ``id_token`` (audience → Google ID token) defaults to the metadata server's; tests pass a
    stand-in. ``azure_credential`` / ``azure_options`` (``base_url``, pipeline policies) reach
    the ARM client for tests."""
    controllers: dict[str, InstanceController] = {}
    projects = gcp_projects(env)
    if projects:
        from burnguard.adapters.gcp.compute import GceController, local_ssd_policy

        try:
            ssd = local_ssd_policy(env.get(LOCAL_SSD, "refuse"))
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        controllers["gcp"] = GceController(projects, clients=compute_clients, operations=compute_operations,
                                           local_ssd=ssd)
    if env.get(AWS_ROLE_ARN) or env.get(AWS_REGIONS):
        controllers["aws"] = aws_controller(env, id_token=id_token)
    if env.get(AZURE_TENANT) or env.get(AZURE_CLIENT) or env.get(AZURE_SCOPES):
        controllers["azure"] = azure_controller(env, credential=azure_credential, id_token=id_token,
                                                **(azure_options or {}))
    # The clouds' APIs give no price: list prices order the stops and price the saving.
    from burnguard.app.estimates_cli import load_prices
    from burnguard.services.pricing import ListPricedController

    prices = load_prices()
    return {cloud: ListPricedController(c, prices) for cloud, c in controllers.items()}


def aws_controller(env: Mapping[str, str], *, id_token: IdToken | None = None) -> InstanceController:
    """EC2 in ``BURNGUARD_AWS_REGIONS`` through ``BURNGUARD_AWS_ROLE_ARN``: the role is assumed
    with ``AssumeRoleWithWebIdentity`` and the function's Google-signed ID token (audience
    ``BURNGUARD_AWS_TOKEN_AUDIENCE``, default ``burnguard-aws-stop``): no AWS key."""
    from burnguard.app import aws

    if not env.get(AWS_ROLE_ARN, "").strip():
        raise ConfigurationError(f"{AWS_REGIONS} is set but {AWS_ROLE_ARN} is not (the role the guardrail assumes)")
    audience = env.get(AWS_TOKEN_AUDIENCE, "").strip() or DEFAULT_AWS_AUDIENCE
    fetch = id_token or google_id_token
    controller: InstanceController = aws.ec2_controller(env, web_identity_token=lambda: fetch(audience))
    return controller


def azure_controller(env: Mapping[str, str], *, credential: Any = None, id_token: IdToken | None = None,
                     **client_options: Any) -> InstanceController:
    """Azure VMs through Entra workload identity federation (``BURNGUARD_AZURE_TENANT_ID``,
    ``BURNGUARD_AZURE_CLIENT_ID``, ``BURNGUARD_AZURE_SCOPES``): the client assertion is the
    function's Google ID token for ``api://AzureADTokenExchange``."""
    from burnguard.app import azure

    if credential is None and id_token is not None:
        from azure.identity import ClientAssertionCredential

        missing = [k for k in (AZURE_TENANT, AZURE_CLIENT) if not env.get(k, "").strip()]
        if missing:
            raise ConfigurationError(f"Azure is partly configured: missing {', '.join(missing)}")
        credential = ClientAssertionCredential(env[AZURE_TENANT].strip(), env[AZURE_CLIENT].strip(),
                                               lambda: id_token(azure.ENTRA_EXCHANGE_AUDIENCE))
    controller: InstanceController | None = azure.vm_controller(env, credential, **client_options)
    if controller is None:
        raise ConfigurationError(f"missing environment variable(s): {AZURE_TENANT}, {AZURE_CLIENT}, {AZURE_SCOPES}")
    return controller


def resume_guardrails(env: Mapping[str, str], **controller_options: Any) -> Callable[[Any, Ledger], GuardrailService]:
    """What ``/burnguard resume`` acts through in the slash function: a guardrail service on the
    slash function's ledger and policy, with the guardrail's controllers (built when a resume
    is completed, not at cold start). ``controller_options``: see :func:`cloud_controllers`."""

    def build(policy: Any, ledger: Ledger) -> GuardrailService:
        return GuardrailService(policy, ledger, notifier_from_env(env), cloud_controllers(env, **controller_options))

    return build


RESUMERS["gcp"] = resume_guardrails


def notifier_from_env(env: Mapping[str, str], *, ledger: Ledger | None = None, policy: Policy | None = None,
                      clock: Callable[[], datetime] | None = None, client: Any = None) -> Notifier:
    """Slack when a bot token is configured (else the log). Given the guardrail's ledger and
    policy, a threshold alert is followed by the scope's spend chart (``ChartNotifier``: uploads
    only where the app may, never holding the alert back). ``client``: a slack-sdk WebClient
    (built from the token's secret when none is given)."""
    ref = env.get(SLACK_TOKEN_REF)
    if not ref:
        from burnguard.adapters.local.notifier import ConsoleNotifier

        return ConsoleNotifier(sys.stdout)
    from burnguard.adapters.slack.notifier import SlackNotifier, with_retries

    if client is None:
        from slack_sdk import WebClient

        from burnguard.adapters.gcp.secrets import gcp_secret

        client = with_retries(WebClient(token=gcp_secret(ref, None)))
    slack = SlackNotifier(client, env.get(SLACK_CHANNEL) or None)
    if ledger is None or policy is None:
        return slack
    from burnguard.app.chart_notifier import ChartNotifier

    return ChartNotifier(slack, client, ledger, policy, clock or (lambda: datetime.now(UTC)))


# -- the three functions ----------------------------------------------------------------------
def pubsub_publisher(topic: str, client: Any = None) -> Publish:
    from burnguard.adapters.gcp.pubsub import PubSubPublisher

    if client is None:
        from google.cloud.pubsub_v1 import PublisherClient

        client = PublisherClient()
    return PubSubPublisher(client, topic)


def handle_object_finalized(data: Mapping[str, Any], store: ObjectStore, publish: Publish) -> dict[str, Any]:
    """Ingest the GCS object a ``google.cloud.storage.object.v1.finalized`` CloudEvent names
    (its ``data`` is a StorageObjectData: ``bucket``, ``name``, ``generation``, ``size``…)."""
    if not isinstance(data, Mapping):
        raise InputError("the event's data is not a StorageObjectData object", field="data")
    bucket, name = data.get("bucket"), data.get("name")
    if not isinstance(bucket, str) or not bucket:
        raise InputError("missing", field="data.bucket")
    if not isinstance(name, str) or not name:
        raise InputError("missing", field="data.name")
    metadata = {k: data[k] for k in ("generation", "etag", "size", "updated", "timeCreated", "contentType")
                if data.get(k) is not None}
    if isinstance(data.get("metadata"), Mapping):
        metadata.update({str(k): v for k, v in data["metadata"].items()})
    outcome = ingest_object("gcp", bucket, name, store, publish, metadata=metadata)
    report: dict[str, Any] = {"object": f"gs://{bucket}/{name}", "action": outcome.action, "reason": outcome.reason}
    if outcome.delivery is not None:
        report["delivery_id"] = outcome.delivery.delivery_id
    if outcome.report is not None:
        report["messages"] = outcome.report.messages
        report["rows"] = outcome.report.summary.totals.rows
        report["effective"] = {k: str(v) for k, v in outcome.report.summary.totals.effective.items()}
    return report


def handle_budget_event(event: Mapping[str, Any], publish: Publish) -> dict[str, Any]:
    """A budget notification (Pub/Sub messagePublished CloudEvent, or its data) → one
    ``budget-alert`` message. The same state re-sent during the day has the same alert id, so
    the guardrail takes it once."""
    alert = parse_gcp_pubsub_cloudevent(event)
    message = alert_message(alert)
    publish([message])
    return {"published": describe_published([message]), "alert": json.loads(alert.model_dump_json())}


class GuardrailHandler:
    """What the guardrail's push consumer applies a message with: queue messages go to the
    guardrail service, ``state-change`` messages to the meter (a ledger that keeps no estimate
    dead-letters them, with the reason: they can be replayed once it does)."""

    def __init__(self, service: GuardrailService, meter: MeterService | None = None):
        self.service = service
        self.meter = meter

    def handle(self, message: Message) -> Any:
        if message.kind != STATE_CHANGE:
            return self.service.handle(message)
        if self.meter is None:
            raise InputError("state-change: this guardrail's ledger keeps no live estimate (the meter is not "
                             f"deployed on it; see {LEDGER})", field="kind")
        return self.meter.handle(message)


def guardrail_consumer(service: GuardrailService, dead_letter: Publish, *, attempts: int = DEFAULT_MAX_ATTEMPTS,
                       log: Callable[[str], None] | None = None, meter: MeterService | None = None) -> PushConsumer:
    return PushConsumer(GuardrailHandler(service, meter).handle, dead_letter, max_attempts=attempts, log=log)


def estimating(ledger: Ledger) -> EstimatingLedger:
    """``ledger`` as one that keeps the live estimate, or the configuration error saying it cannot."""
    if not isinstance(ledger, EstimateLog):
        raise ConfigurationError(
            f"{LEDGER}: the meter needs a ledger that keeps the live estimate, and {type(ledger).__name__} does "
            "not (the shipped ledgers, sqlite:///<path> and firestore://..., do)")
    return ledger  # a Ledger and an EstimateLog: an EstimatingLedger


def _parts(env: Mapping[str, str], ledger: Ledger | None, notifier: Notifier | None,
           clock: Callable[[], datetime] | None) -> tuple[Policy, Ledger, Notifier]:
    missing = [k for k in (POLICY, LEDGER) if not env.get(k)] if ledger is None else \
        [k for k in (POLICY,) if not env.get(k)]
    if missing:
        raise ConfigurationError(f"missing environment variable(s): {', '.join(missing)}")
    policy = load_policy(Path(env[POLICY]))
    if ledger is None:
        ledger = open_ledger(env[LEDGER])
    if notifier is None:  # Slack, with the spend chart after a threshold alert
        notifier = notifier_from_env(env, ledger=ledger, policy=policy, clock=clock)
    return policy, ledger, notifier


def build_guardrail(env: Mapping[str, str], *, ledger: Ledger | None = None,
                    controllers: Mapping[str, InstanceController] | None = None,
                    notifier: Notifier | None = None, dead_letter: Publish | None = None,
                    clock: Callable[[], datetime] | None = None) -> PushConsumer:
    """The guardrail. When its ledger keeps the live estimate, guardrails count billed +
    estimated spend and the ``state-change`` messages go to a meter sharing its parts."""
    policy, ledger, notifier = _parts(env, ledger, notifier, clock)
    reach = controllers if controllers is not None else cloud_controllers(env)
    service = GuardrailService(policy, ledger, notifier, reach, **({"clock": clock} if clock else {}))
    meter = None
    if isinstance(ledger, EstimateLog):
        meter = _meter(policy, estimating(ledger), reach, service, clock, None)
    dead = dead_letter or pubsub_publisher(topic_path(env, DEAD_LETTER_TOPIC))
    return guardrail_consumer(service, dead, attempts=max_attempts(env), log=_log, meter=meter)


def build_meter(env: Mapping[str, str], *, ledger: Ledger | None = None,
                controllers: Mapping[str, InstanceController] | None = None, notifier: Notifier | None = None,
                clock: Callable[[], datetime] | None = None, prices: PriceTable | None = None) -> MeterService:
    """The meter of the ``meter`` and ``instance_event`` functions, from the guardrail's settings:
    the policy, the ledger of ``BURNGUARD_LEDGER`` (it must keep estimates: a
    :class:`ConfigurationError` at cold start otherwise), the three clouds' controllers
    (:func:`cloud_controllers`), the shipped price table, and a guardrail service with its
    notifier that acts on a budget crossed by estimate at the tick."""
    policy, ledger, notifier = _parts(env, ledger, notifier, clock)
    keeping = estimating(ledger)
    reach = controllers if controllers is not None else cloud_controllers(env)
    service = GuardrailService(policy, ledger, notifier, reach, **({"clock": clock} if clock else {}))
    return _meter(policy, keeping, reach, service, clock, prices)


def _meter(policy: Policy, ledger: EstimatingLedger, controllers: Mapping[str, InstanceController],
           service: GuardrailService, clock: Callable[[], datetime] | None, prices: PriceTable | None) -> MeterService:
    from burnguard.app.estimates_cli import load_prices

    service.estimates = ledger  # guardrails count billed + estimated (unless basis: billed)
    meter = MeterService(policy, ledger, controllers, prices or load_prices(), service)
    if clock is not None:
        meter.clock = clock
    return meter


def handle_meter_tick(meter: MeterService) -> dict[str, Any]:
    """One tick of the ``meter`` function (the scheduler's message says nothing more). A cloud
    whose listing fails is one of the report's ``problems``; the other clouds are read."""
    return describe_tick(meter.tick())


def handle_instance_event(entry: Any, meter: Callable[[], MeterService]) -> dict[str, Any]:
    """A Compute Engine audit log entry (the data of an Eventarc
    ``google.cloud.audit.log.v1.written`` CloudEvent) → the meter reads at the change. An entry
    that is no instance start or stop is ``ignored``; a malformed one ``rejected`` (both
    acknowledged, with the reason: a retry would not make them readable)."""
    payload = entry.get("protoPayload") if isinstance(entry, Mapping) else None
    method = payload.get("methodName") if isinstance(payload, Mapping) else None
    try:
        change = parse_state_change("gcp", entry)
    except InputError as exc:
        return {"action": "rejected", "reason": exc.describe()}
    if change is None:
        return {"action": "ignored", "reason": f"not an instance start or stop ({method or 'no methodName'})"}
    report = describe_tick(meter().on_state_change(change))
    return {"action": "metered", "instance": change.instance_id, "state": change.state, "at": change.at.isoformat(),
            **report}


def _log(line: str) -> None:
    print(json.dumps({"severity": "WARNING", "message": line}), file=sys.stderr)


@functools.cache
def ingest_runtime() -> tuple[ObjectStore, Publish]:
    from google.cloud import storage  # type: ignore[attr-defined]

    from burnguard.app.runtime import tune_arrow

    tune_arrow()  # the cold start, as `burnguard normalize` does: jemalloc, one Arrow I/O thread

    from burnguard.adapters.gcp.gcs import GcsStore

    return GcsStore(storage.Client()), pubsub_publisher(topic_path(os.environ))


@functools.cache
def budget_runtime() -> Publish:
    return pubsub_publisher(topic_path(os.environ))


@functools.cache
def guardrail_runtime() -> PushConsumer:
    return build_guardrail(os.environ)


@functools.cache
def meter_runtime() -> MeterService:
    return build_meter(os.environ)


# -- reports ------------------------------------------------------------------------------------
def describe_outcome(outcome: PushOutcome) -> dict[str, Any]:
    report: dict[str, Any] = {"status": outcome.status, "message_id": outcome.message_id}
    if outcome.reason:
        report["reason"] = outcome.reason
    result = outcome.result
    if isinstance(result, HandleResult):
        report["kind"] = result.kind
        if result.completion is not None:
            c = result.completion
            report["completion"] = {"delivery_id": c.delivery_id, "status": c.status, "reason": c.reason,
                                    "switched": c.switched, "replaced": c.replaced}
        report["decisions"] = describe_reports(result.reports)
    elif isinstance(result, TickReport):
        report["kind"] = STATE_CHANGE
        report.update(describe_tick(result))
    return report


def describe_reports(reports: list[ExecutionReport]) -> list[dict[str, Any]]:
    return [{
        "guardrail": r.decision.guardrail, "scope": str(r.decision.scope), "label": r.decision.label,
        "actions": list(r.decision.actions), "dry_run": r.dry_run, "claimed": r.claimed,
        "stopped": [i.ref for i in r.stopped],
        "failed": [{"instance": i.ref, "reason": why} for i, why in r.failed],
        "skipped": [{"instance": s.instance.ref, "reason": s.reason} for s in r.skipped],
        "notified": r.notified} for r in reports]


def describe_tick(report: TickReport) -> dict[str, Any]:
    """A meter tick as the function logs it; ``problems`` and ``unpriced`` are one line each."""
    return {"at": report.at.isoformat(), "read": report.read, "running": report.running,
            # for the log: the ledger keeps the exact amounts
            "accrued": {c: str(a.quantize(Decimal("0.000001"))) for c, a in sorted(report.accrued.items())},
            "rate_sources": dict(sorted(report.sources.items())), "unpriced": list(report.unpriced),
            "problems": list(report.problems), "decisions": describe_reports(report.reports),
            "projections": [{"guardrail": p.guardrail, "scope": str(p.scope), "text": p.text(),
                             "at": p.at.isoformat() if p.at else None} for p in report.projections]}


# -- burnguard invoke gcp … ----------------------------------------------------------------------


def _configured(env: Mapping[str, str]) -> bool:
    return bool(env.get(TOPIC))


def _event_data(event: Mapping[str, Any]) -> Any:
    """A CloudEvent file holds ``{"specversion", "type", …, "data": …}``; a bare data file is
    accepted too."""
    return event.get("data") if isinstance(event, Mapping) and "specversion" in event else event


def _local_queue(ctx: InvokeContext) -> Publish:
    from burnguard.adapters.local.queue import SqliteQueue

    ctx.home.mkdir(parents=True, exist_ok=True)
    return SqliteQueue(ctx.home / "queue.sqlite").publish


def _local_mode(ctx: InvokeContext, inventory: Path | None = None) -> Any:
    """The embedded state of ``--home``; a fresh home is set up with ``BURNGUARD_POLICY`` or the
    demo policy of this checkout (and ``inventory``, for the meter)."""
    from burnguard.app.embedded import LocalMode

    if (ctx.home / "config.json").exists():
        return LocalMode.open(ctx.home)
    policy = Path(ctx.env.get(POLICY) or Path(__file__).parents[3] / "events" / "policies" / "demo.yaml")
    if not policy.exists():
        raise ConfigurationError(f"no local state in {ctx.home} and no policy: set {POLICY}")
    return LocalMode.create(ctx.home, policy, inventory if inventory is not None and inventory.exists() else None)


def _local_meter(mode: Any) -> MeterService | None:
    """The embedded mode's meter, when its home has an inventory to read."""
    from burnguard.app.estimates_cli import meter_service

    if mode.inventory is None:
        return None
    meter: MeterService = meter_service(mode, lambda: datetime.now(UTC))
    return meter


@invoker("gcp", "ingest")
def invoke_ingest(event: Any, ctx: InvokeContext) -> Mapping[str, Any]:
    if _configured(ctx.env):
        from google.cloud import storage  # type: ignore[attr-defined]

        from burnguard.adapters.gcp.gcs import GcsStore

        store: ObjectStore = GcsStore(storage.Client())
        publish = RecordingPublish(pubsub_publisher(topic_path(ctx.env)))
        where = topic_path(ctx.env)
    else:
        from burnguard.adapters.local.store import DirectoryStore

        class _Buckets(DirectoryStore):  # bucket names resolve under the local buckets directory
            def _path(self, bucket: str, key: str) -> Path:
                return super()._path(str(Path(ctx.env.get(LOCAL_BUCKETS, "events/exports/gcp")) / bucket), key)

        store = _Buckets()
        publish = RecordingPublish(_local_queue(ctx))
        where = f"embedded queue {ctx.home / 'queue.sqlite'}"
    report = handle_object_finalized(_event_data(event), store, publish)
    return {**report, "queue": where, "published": publish.report()}


@invoker("gcp", "budget")
def invoke_budget(event: Any, ctx: InvokeContext) -> Mapping[str, Any]:
    if _configured(ctx.env):
        publish, where = pubsub_publisher(topic_path(ctx.env)), topic_path(ctx.env)
    else:
        publish, where = _local_queue(ctx), f"embedded queue {ctx.home / 'queue.sqlite'}"
    return {**handle_budget_event(event, publish), "queue": where}


@invoker("gcp", "guardrail")
def invoke_guardrail(event: Any, ctx: InvokeContext) -> Mapping[str, Any]:
    """Apply one pushed message (a messagePublished CloudEvent file) to the guardrail."""
    data = _event_data(event)
    if ctx.env.get(LEDGER):
        consumer = build_guardrail(ctx.env)
        return describe_outcome(consumer(data))
    mode = _local_mode(ctx)
    try:
        dead: list[Message] = []
        consumer = guardrail_consumer(mode.service(), dead.extend, meter=_local_meter(mode))
        report = describe_outcome(consumer(data))
        if dead:
            report["dead_letter"] = describe_published(dead)
        return report
    finally:
        mode.close()


@invoker("gcp", "instance_event")
@invoker("gcp", "meter")
def invoke_meter(event: Any, ctx: InvokeContext) -> Mapping[str, Any]:
    """One meter tick (the scheduler's message is not read): on the ledger of
    ``BURNGUARD_LEDGER`` and the clouds configured, or on the embedded mode of ``--home`` (its
    inventory; a home without one is given the sample inventory of ``events/``). An event file
    holding a Compute Engine audit log entry (or its CloudEvent) is taken as the
    ``instance_event`` function takes it."""
    data = _event_data(event)
    is_entry = isinstance(data, Mapping) and "protoPayload" in data
    if ctx.env.get(LEDGER):
        meter = build_meter(ctx.env)
        return handle_instance_event(data, lambda: meter) if is_entry else handle_meter_tick(meter)
    from burnguard.app.estimates_cli import meter_service

    sample = Path(__file__).parents[3] / "events" / "inventory.json"
    mode = _local_mode(ctx, sample)
    if mode.inventory is None and sample.exists():  # a home set up without one: the sample's machines
        from burnguard.app.embedded import LocalMode

        mode.close()
        mode = LocalMode.open(ctx.home, inventory=sample)
    try:
        local = meter_service(mode, lambda: datetime.now(UTC))  # an InputError without an inventory
        return handle_instance_event(data, lambda: local) if is_entry else handle_meter_tick(local)
    finally:
        mode.close()


@invoker("gcp", "slack")
def invoke_slack(event: Any, ctx: InvokeContext) -> Mapping[str, Any]:
    """A slash command (``{"text": "spend team=ml-research", "user_id": …}``) answered from the
    ledger of ``BURNGUARD_LEDGER`` (Firestore on Google Cloud), or the embedded one."""
    import uuid

    from burnguard.ports.slack import CommandRequest
    from burnguard.services.commands import SlashCommands

    if not isinstance(event, Mapping) or not isinstance(event.get("text"), str):
        raise InputError('a slash command event is {"text": "…", "user_id": "…"}', field="text")
    now = datetime.now(UTC)
    as_of = None
    if ctx.env.get(LEDGER):
        if not ctx.env.get(POLICY):
            raise ConfigurationError(f"{POLICY} is not set")
        commands = SlashCommands(open_ledger(ctx.env[LEDGER]), load_policy(Path(ctx.env[POLICY])))
        where = ctx.env[LEDGER].split("?", 1)[0]
    else:
        mode = _local_mode(ctx)
        commands, as_of, where = SlashCommands(mode.ledger, mode.policy), mode.data_clock(), str(ctx.home)
    request = CommandRequest(text=event["text"], user_id=str(event.get("user_id", "cli")), at=now,
                             request_id=str(event.get("trigger_id") or uuid.uuid4()), as_of=as_of)
    if commands.is_slow(request):
        answer = commands.precheck(request) or commands.complete(request)
    else:
        answer = commands.complete(request)
    return {"ledger": where, "command": event["text"], "answer": answer.as_dict()}
