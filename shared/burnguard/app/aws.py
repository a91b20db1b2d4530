"""The AWS functions' composition root: settings from the environment, clients, wiring, and
the ``burnguard invoke aws ingest|budget|slack`` invokers.

Nothing runs at import: the entry points (``functions/aws/ingest.py``, ``budget.py``) call
:func:`ingest_app` / :func:`budget_app` on their first event (a cold start), which validates
the environment (an error names the variable) and builds the clients once per instance.

Environment (documented in ``functions/README.md``, AWS section):

``BURNGUARD_TOPIC``            ``projects/<p>/topics/<t>``: the shared queue (required)
``BURNGUARD_GCP_WIF_CONFIG``   google-auth external-account configuration (JSON text) that
                               trades the Lambda role for Google credentials; required unless
                               ``PUBSUB_EMULATOR_HOST`` is set (the emulator takes no credentials)
``BURNGUARD_STATE_BUCKET``     bucket for marker records (repeated events, parts); optional
``BURNGUARD_STATE_PREFIX``     key prefix of the markers (default ``burnguard-state/``)
``BURNGUARD_PARTS_QUEUE_URL``  SQS queue of part jobs (big deliveries); needs the state bucket
``BURNGUARD_FAN_OUT_PARTS``    deliveries with at least this many files fan out (default 2)
``BURNGUARD_DEAD_LETTER_URL``  SQS queue that receives a bad event with its reason; optional
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from burnguard.app.config import TOPIC, ConfigurationError, topic_path
from burnguard.app.invoke import InvokeContext, RecordingPublish, invoker
from burnguard.core.errors import BurnguardError, InputError
from burnguard.ports.objects import Publish, PublishError

if TYPE_CHECKING:  # the budget function never loads the ingest side (normalizers, Arrow)
    from burnguard.ports.objects import ObjectStore
    from burnguard.services.parts import DeliveryIngestor, Markers, Outcome

WIF_CONFIG = "BURNGUARD_GCP_WIF_CONFIG"
STATE_BUCKET = "BURNGUARD_STATE_BUCKET"
STATE_PREFIX = "BURNGUARD_STATE_PREFIX"
PARTS_QUEUE = "BURNGUARD_PARTS_QUEUE_URL"
FAN_OUT_PARTS = "BURNGUARD_FAN_OUT_PARTS"
DEAD_LETTER = "BURNGUARD_DEAD_LETTER_URL"
EMULATOR = "PUBSUB_EMULATOR_HOST"
PUBSUB_SCOPE = "https://www.googleapis.com/auth/pubsub"

log = logging.getLogger("burnguard.aws")

#: What the ingest and budget functions' role needs (the Terraform issue checks it).
INGEST_PERMISSIONS: tuple[str, ...] = ("s3:GetObject", "s3:ListBucket", "s3:PutObject", "sqs:SendMessage",
                                       "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
# (Federation signs sts:GetCallerIdentity, which needs no IAM permission.)
BUDGET_PERMISSIONS: tuple[str, ...] = ("sqs:SendMessage",)


class TransientError(BurnguardError):
    """Worth trying again (a part not written yet, throttling, Pub/Sub unavailable)."""


@dataclass(frozen=True)
class AwsSettings:
    topic: str
    wif_config: dict[str, Any] | None
    emulator: str | None = None
    state_bucket: str | None = None
    state_prefix: str = "burnguard-state/"
    parts_queue_url: str | None = None
    fan_out_parts: int = 2
    dead_letter_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AwsSettings:
        topic = topic_path(env)
        emulator = env.get(EMULATOR) or None
        wif: dict[str, Any] | None = None
        raw = env.get(WIF_CONFIG, "").strip()
        if raw:
            wif = parse_wif_config(raw)
        elif not emulator:
            raise ConfigurationError(f"{WIF_CONFIG} is not set (the external-account configuration that lets the "
                                     f"Lambda role publish to Pub/Sub); set {EMULATOR} for the emulator")
        fan_out = env.get(FAN_OUT_PARTS, "2")
        if not fan_out.isdigit() or int(fan_out) < 1:
            raise ConfigurationError(f"{FAN_OUT_PARTS} is a whole number of files >= 1, not {fan_out!r}")
        parts = env.get(PARTS_QUEUE) or None
        bucket = env.get(STATE_BUCKET) or None
        if parts and not bucket:
            raise ConfigurationError(f"{PARTS_QUEUE} needs {STATE_BUCKET} (parts record their summaries there)")
        for name in (PARTS_QUEUE, DEAD_LETTER):
            value = env.get(name)
            if value and not value.startswith(("https://", "http://")):
                raise ConfigurationError(f"{name} is an SQS queue URL, not {value[:80]!r}")
        return cls(topic, wif, emulator, bucket, env.get(STATE_PREFIX) or "burnguard-state/", parts,
                   int(fan_out), env.get(DEAD_LETTER) or None)


def parse_wif_config(raw: str) -> dict[str, Any]:
    """The external-account configuration, checked enough to fail at cold start, not at the
    first publish: JSON, ``type: external_account``, an AWS credential source."""
    try:
        info = json.loads(raw)
    except ValueError:
        raise ConfigurationError(f"{WIF_CONFIG} is not JSON") from None
    if not isinstance(info, dict) or info.get("type") != "external_account":
        raise ConfigurationError(f"{WIF_CONFIG} must be a google-auth configuration with type external_account")
    source = info.get("credential_source")
    if not isinstance(source, dict) or not str(source.get("environment_id", "")).startswith("aws"):
        raise ConfigurationError(f"{WIF_CONFIG}: credential_source.environment_id must be aws1 (from "
                                 "`gcloud iam workload-identity-pools create-cred-config --aws`)")
    for key in ("audience", "subject_token_type"):
        if not info.get(key):
            raise ConfigurationError(f"{WIF_CONFIG}: {key} is missing")
    if "private_key" in info or "client_secret" in info:
        raise ConfigurationError(f"{WIF_CONFIG} holds a secret; it must be an external-account configuration")
    return info


def wif_credentials(info: Mapping[str, Any], scopes: Sequence[str] = (PUBSUB_SCOPE,)) -> Any:
    """google-auth AWS external-account credentials from the configuration: the Lambda role's
    credentials (environment variables Lambda sets) sign a GetCallerIdentity request that
    Google's STS exchanges for a token of ``scopes`` (Pub/Sub for publishing, Datastore for the
    Firestore ledger of the slash command). No key file anywhere."""
    from google.auth import aws

    # from_info, not load_credentials_from_dict: that one also looks the project up (a call to
    # Cloud Resource Manager the role may not be allowed to make); the topic names it already.
    return aws.Credentials.from_info(dict(info), scopes=list(scopes))  # type: ignore[no-untyped-call]


def pubsub_publisher(settings: AwsSettings) -> Publish:
    from google.cloud.pubsub_v1 import PublisherClient

    from burnguard.adapters.gcp.pubsub import PubSubPublisher

    if settings.emulator:
        client = PublisherClient()
    else:
        assert settings.wif_config is not None
        client = PublisherClient(credentials=wif_credentials(settings.wif_config))
    return PubSubPublisher(client, settings.topic)


def boto_client(service: str) -> Any:
    """A boto3 client with botocore's standard retry mode (``AWS_ENDPOINT_URL`` honoured)."""
    import boto3
    from botocore.config import Config

    return boto3.client(service, config=Config(retries={"mode": "standard", "max_attempts": 5}))


# --------------------------------------------------------------------------------------------
# dead letters


DeadLetter = Callable[[Any, str], None]


def dead_letter_of(settings: AwsSettings, function: str) -> DeadLetter | None:
    if not settings.dead_letter_url:
        return None
    from burnguard.adapters.aws.sqs import SqsDeadLetter

    return SqsDeadLetter(boto_client("sqs"), settings.dead_letter_url, function)


def _transient(exc: BaseException) -> bool:
    from burnguard.adapters.aws.s3 import TransientStoreError

    return isinstance(exc, TransientStoreError | PublishError | TransientError)


# --------------------------------------------------------------------------------------------
# ingest


@dataclass
class IngestApp:
    """The ingest function's work on one event or one SQS record body."""

    ingestor: DeliveryIngestor
    dead_letter: DeadLetter | None = None

    def handle_event(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        """A direct trigger (S3 notification, EventBridge, SNS). A bad event goes to the
        dead-letter queue when one is configured, else raises (the Lambda's own on-failure
        destination then gets it); a transient failure raises (Lambda retries)."""
        return self._guarded(event, lambda: self.handle_body(event))

    def handle_body(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        from burnguard.adapters.aws.events import PART_JOB_KEY, created_objects

        if PART_JOB_KEY in body:
            job = body[PART_JOB_KEY]
            if not isinstance(job, Mapping):
                raise InputError("is not an object", field=PART_JOB_KEY)
            return [self._log(self.ingestor.on_part(job), job.get("bucket"), job.get("part"))]
        results = []
        for obj in created_objects(body):
            outcome = self.ingestor.on_object(obj.bucket, obj.key, obj.metadata)
            results.append(self._log(outcome, obj.bucket, obj.key))
        return results

    def handle_record_body(self, body: str) -> list[dict[str, Any]]:
        """One SQS record (its body). Same rules as :meth:`handle_event`, except that without a
        dead-letter queue a bad record fails and the queue's redrive policy moves it to its DLQ."""
        from burnguard.adapters.aws.events import sqs_body

        return self._guarded(body, lambda: self.handle_body(sqs_body(body)))

    def _guarded(self, event: Any, work: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        try:
            return work()
        except InputError as exc:
            reason = exc.describe()
            log.error("dead-lettered: %s", reason)
            if self.dead_letter is None:
                raise
            self.dead_letter(event, reason)
            return [{"action": "dead-lettered", "reason": reason}]
        except Exception as exc:
            if _transient(exc):
                log.warning("will be retried: %s", exc)
            raise

    @staticmethod
    def _log(outcome: Outcome, bucket: Any, key: Any) -> dict[str, Any]:
        entry = {"bucket": bucket, "key": key, **outcome.as_dict()}
        if outcome.action == "skipped":
            log.info("ignored s3://%s/%s: %s", bucket, key, outcome.reason)
        else:
            log.info("%s s3://%s/%s: %s", outcome.action, bucket, key, outcome.reason)
        return entry


def build_ingest_app(settings: AwsSettings, *, store: ObjectStore | None = None, publish: Publish | None = None,
                     markers: Markers | None = None) -> IngestApp:
    from burnguard.adapters.aws.s3 import S3Markers, S3Store
    from burnguard.adapters.aws.sqs import SqsPartQueue
    from burnguard.services.parts import DeliveryIngestor

    s3 = None
    if store is None or (markers is None and settings.state_bucket):
        s3 = boto_client("s3")
    if markers is None and settings.state_bucket:
        markers = S3Markers(s3, settings.state_bucket, settings.state_prefix)
    send = SqsPartQueue(boto_client("sqs"), settings.parts_queue_url) if settings.parts_queue_url else None
    ingestor = DeliveryIngestor("aws", store or S3Store(s3), publish or pubsub_publisher(settings), markers, send,
                                settings.fan_out_parts)
    return IngestApp(ingestor, dead_letter_of(settings, "ingest"))


@functools.cache
def ingest_app() -> IngestApp:
    """The instance's app, built on its first event (the cold start validates the environment
    and tunes Arrow as ``burnguard normalize`` does: jemalloc, one I/O thread)."""
    from burnguard.app.runtime import tune_arrow

    tune_arrow()
    return build_ingest_app(AwsSettings.from_env(os.environ))


# --------------------------------------------------------------------------------------------
# budget


@dataclass
class BudgetApp:
    publish: Publish
    dead_letter: DeadLetter | None = None

    def handle_event(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        """An SNS event (Lambda subscribed to the budget topic): one budget alert per record.
        A record that is not an AWS Budgets notification is dead-lettered with its reason (or
        raises, for the Lambda's on-failure destination, when no DLQ is configured); the other
        records go on."""
        from burnguard.core.budget import parse_sns_record
        from burnguard.services.budget import alert_message

        records = event.get("Records") if isinstance(event, Mapping) else None
        if not isinstance(records, list) or not records:
            records = [event]  # an SNS HTTP envelope, or an SQS-wrapped one
        results: list[dict[str, Any]] = []
        failures: list[str] = []
        for record in records:
            try:
                alert = parse_sns_record(_unwrap_sns(record))
            except InputError as exc:
                reason = exc.describe()
                log.error("not a budget notification, dead-lettered: %s", reason)
                if self.dead_letter is None:
                    failures.append(reason)
                else:
                    self.dead_letter(record, reason)
                results.append({"action": "dead-lettered", "reason": reason})
                continue
            message = alert_message(alert)
            self.publish([message])
            results.append({"action": "published", "message_id": message.message_id,
                            "budget": alert.budget_name, "kind": alert.kind, "account": alert.account})
        if failures:
            raise InputError("; ".join(failures))
        return results


def _unwrap_sns(record: Any) -> Mapping[str, Any]:
    """An SQS record wrapping an SNS notification (SNS → SQS, not raw) gives its body."""
    if isinstance(record, Mapping) and record.get("eventSource") == "aws:sqs":
        from burnguard.adapters.aws.events import sqs_body

        return sqs_body(str(record.get("body", "")))
    if not isinstance(record, Mapping):
        raise InputError("a record is not an object", field="Records")
    return record


def build_budget_app(settings: AwsSettings, *, publish: Publish | None = None) -> BudgetApp:
    return BudgetApp(publish or pubsub_publisher(settings), dead_letter_of(settings, "budget"))


@functools.cache
def budget_app() -> BudgetApp:
    return build_budget_app(AwsSettings.from_env(os.environ))


# --------------------------------------------------------------------------------------------
# burnguard invoke aws ...


def _configured(env: Mapping[str, str]) -> bool:
    return bool(env.get(TOPIC))


def _local_exports() -> Path:
    """``events/exports/aws`` of the repository: local directories stand for buckets."""
    return Path(__file__).resolve().parents[3] / "events" / "exports" / "aws"


class _BucketDirectories:
    """An ObjectStore where bucket ``b`` is the directory ``root/b`` (the embedded layout)."""

    def __init__(self, root: Path):
        from burnguard.adapters.local.store import DirectoryStore

        self.root = root
        self.inner = DirectoryStore()

    def open(self, bucket: str, key: str) -> Any:
        return self.inner.open(str(self.root / bucket), key)

    def read(self, bucket: str, key: str) -> bytes:
        return self.inner.read(str(self.root / bucket), key)

    def local_path(self, bucket: str, key: str) -> str | None:
        return self.inner.local_path(str(self.root / bucket), key)


def _publish_for(ctx: InvokeContext) -> tuple[Publish, Callable[[], None], str]:
    if _configured(ctx.env):
        settings = AwsSettings.from_env(ctx.env)
        return pubsub_publisher(settings), lambda: None, settings.topic
    from burnguard.adapters.local.queue import SqliteQueue

    ctx.home.mkdir(parents=True, exist_ok=True)
    queue = SqliteQueue(ctx.home / "queue.sqlite")
    return queue.publish, queue.close, str(ctx.home / "queue.sqlite")


@invoker("aws", "ingest")
def invoke_ingest(event: Any, ctx: InvokeContext) -> Mapping[str, Any]:
    publish, close, where = _publish_for(ctx)
    recorder = RecordingPublish(publish)
    try:
        if _configured(ctx.env):
            app = build_ingest_app(AwsSettings.from_env(ctx.env), publish=recorder)
        else:
            from burnguard.services.parts import DeliveryIngestor

            root = Path(ctx.env.get("BURNGUARD_LOCAL_EXPORTS") or _local_exports())
            app = IngestApp(DeliveryIngestor("aws", _BucketDirectories(root), recorder, compression=None))
        results = _run_ingest(app, event)
    finally:
        close()
    return {"function": "aws ingest", "queue": where, "results": results, "published": recorder.report()}


def _run_ingest(app: IngestApp, event: Mapping[str, Any]) -> list[dict[str, Any]]:
    from burnguard.adapters.aws.events import is_sqs_event, sqs_records

    if not is_sqs_event(event):
        return app.handle_event(event)
    results: list[dict[str, Any]] = []
    for record in sqs_records(event):
        try:
            results.extend(app.handle_record_body(record.body))
        except Exception as exc:  # what batchItemFailures would report
            results.append({"action": "failed", "itemIdentifier": record.message_id, "reason": str(exc)})
    return results


@invoker("aws", "budget")
def invoke_budget(event: Any, ctx: InvokeContext) -> Mapping[str, Any]:
    publish, close, where = _publish_for(ctx)
    recorder = RecordingPublish(publish)
    try:
        results = BudgetApp(recorder).handle_event(event)
    except InputError as exc:
        results = [{"action": "dead-lettered", "reason": exc.describe()}]
    finally:
        close()
    return {"function": "aws budget", "queue": where, "results": results, "published": recorder.report()}


@invoker("aws", "slack")
def invoke_slack(event: Any, ctx: InvokeContext) -> Mapping[str, Any]:
    """The slash command's handler on a Function URL event; its environment as configured
    (``BURNGUARD_SLACK_SIGNING_SECRET_REF``, ``BURNGUARD_POLICY``, ``BURNGUARD_LEDGER``)."""
    from burnguard.adapters.slack.http import handle_function_url
    from burnguard.app import slack as bootstrap

    service = bootstrap.build_slash_service(bootstrap.SlashSettings.from_env("aws", ctx.env))
    return {"function": "aws slack", "response": handle_function_url(service, event)}


# --------------------------------------------------------------------------------------------
# EC2 for the guardrail (which runs on Google Cloud, or here)

AWS_ROLE_ARN = "BURNGUARD_AWS_ROLE_ARN"
AWS_REGIONS = "BURNGUARD_AWS_REGIONS"
_ROLE_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")


def ec2_controller(env: Mapping[str, str], *, web_identity_token: Callable[[], str] | None = None) -> Any:
    """The guardrail's ``Ec2Controller`` from ``BURNGUARD_AWS_REGIONS`` (required) and
    ``BURNGUARD_AWS_ROLE_ARN``. With a role and ``web_identity_token`` (on Google Cloud: an ID
    token of the function's service account, ``google.oauth2.id_token.fetch_id_token``), the
    role is assumed with ``AssumeRoleWithWebIdentity``: no AWS key anywhere. Without them the
    default AWS credential chain is used (on AWS, or here with moto)."""
    from burnguard.adapters.aws.ec2 import MAX_ATTEMPTS, RETRY_MODE, Ec2Controller

    regions = [r.strip() for r in env.get(AWS_REGIONS, "").split(",") if r.strip()]
    if not regions:
        raise ConfigurationError(f"{AWS_REGIONS} is not set (comma-separated regions, e.g. us-east-1,eu-west-1)")
    bad = [r for r in regions if not re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", r)]
    if bad:
        raise ConfigurationError(f"{AWS_REGIONS}: {bad[0]!r} is not an AWS region name")
    role = env.get(AWS_ROLE_ARN, "").strip()
    if role and not _ROLE_RE.match(role):
        raise ConfigurationError(f"{AWS_ROLE_ARN} must be an IAM role ARN, not {role[:80]!r}")
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": RETRY_MODE, "max_attempts": MAX_ATTEMPTS})
    if role and web_identity_token is not None:
        sts = boto3.client("sts", region_name=regions[0])
        creds = sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="burnguard-guardrail",
                                                  WebIdentityToken=web_identity_token())["Credentials"]
        session = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                                aws_session_token=creds["SessionToken"])
    else:
        session = boto3.Session()
    return Ec2Controller(regions, lambda region: session.client("ec2", region_name=region, config=config))
