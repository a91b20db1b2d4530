"""burnguard deployed on one machine: every cloud part that has an emulator runs it (moto's
server for S3, EC2 and STS; Azurite; the Pub/Sub and Firestore emulators), the two that have
none are FAKES (the Compute Engine fake and the ARM fake of ``tests/fakes``), and a local HTTP
server stands for Slack's Web API. The real handlers are wired to them as a deployment wires
them: the AWS ingest and budget Lambdas, the Azure ingest (Event Grid) and budget (Action Group
webhook) functions, and the Google Cloud guardrail, budget, slash and deferred-slash functions
through functions-framework; the Pub/Sub emulator pushes the shared topic to the guardrail.

Stand-ins, named as such: the Google ID token the guardrail presents to AWS STS and Entra
(``id_token_stand_in``), the ARM bearer token, the Key Vault and Secret Manager reads of the
webhook and signing secrets, and the guardrail's clock (the sample data is September 2024).

Expected figures never come from burnguard: :func:`aws_team_total` and :func:`azure_team_total`
read the raw files with gzip, csv and Decimal.
"""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import boto3
from google.api_core.exceptions import DeadlineExceeded
from google.cloud import pubsub_v1

from tests.pubsub_pull import pull_now

ROOT = Path(__file__).resolve().parents[2]
AWS_EXPORTS = ROOT / "events" / "exports" / "aws"
AZURE_EXPORTS = ROOT / "events" / "exports" / "azure"
INVENTORY = ROOT / "events" / "inventory.json"
BUDGETS = ROOT / "events" / "budget"
CUR_BUCKET = "acme-billing-cur"
AZURE_CONTAINER = "billing-exports"
GCP_PROJECT = "acme-ml-prod"
AMI = "ami-12c6146b"  # one of moto's default images
ROLE_ARN = "arn:aws:iam::123456789012:role/burnguard-guardrail-stop"
#: the guardrail's clock: the morning after the sample data (through 2024-09-20T23:00Z)
NOW = datetime(2024, 9, 21, 6, tzinfo=UTC)
ADMIN, STRANGER = "U0E2EADMIN", "U0E2ESTRANGER"
WEBHOOK_SECRET = "e2e-webhook-" + "s" * 24

POLICY = f"""
version: 1
safety:
  dry_run: false
  protect_tag: burnguard:protect=true
  max_stops_per_run: 10
  gpu_only: true
slack:
  channel: "#finops-e2e"
  authorized_users: [{ADMIN}]
guardrails:
  - name: ml-research-monthly
    scope: team=ml-research
    period: month
    budget: {{amount: 5000, currency: USD}}
    thresholds:
      - {{at: 50%, actions: [notify]}}
      - {{at: 100%, actions: [notify, stop]}}
      - {{at: 120%, actions: [notify, stop]}}
    budget_notifications:
      aws: ["Test Budget"]
      gcp: ["name-of-budget"]
      azure: [Test_actual_cost_budget]
      actions: [notify]
"""

#: the native budget notifications of step 4 (public documentation samples): file, budget name
NATIVE = {"aws": ("public.sre-bot.lambda-sns-event.CONSTRUCTED.json", "Test Budget"),
          "gcp": ("public.budget-notification.cloudevent.CONSTRUCTED.json", "name-of-budget"),
          "azure": ("public.budget-alert.common-schema.actual.json", "Test_actual_cost_budget")}

#: one untagged GPU machine per cloud, besides the sample inventory
UNTAGGED = {"aws": "orphan-g5-1", "gcp": "orphan-a2-1", "azure": "orphan-nc-az"}


def say(line: str = "") -> None:
    """The story's narration (shown with ``pytest -s``, as ``.ci/e2e`` runs it)."""
    print(line, flush=True)


# --------------------------------------------------------------------------- oracles (raw files)
def cur_files() -> list[Path]:
    return sorted(AWS_EXPORTS.rglob("*.csv.gz"))


def aws_team_total(team: str) -> Decimal:
    """ml-research's CUR cost: every row of the team is on-demand ``Usage`` (checked), whose
    effective cost is ``lineItem/UnblendedCost``."""
    total = Decimal(0)
    for path in cur_files():
        for row in csv.DictReader(io.StringIO(gzip.decompress(path.read_bytes()).decode())):
            if row["resourceTags/user:team"] == team:
                assert row["lineItem/LineItemType"] == "Usage", "the oracle only knows on-demand usage"
                total += Decimal(row["lineItem/UnblendedCost"])
    return total


def azure_runs() -> dict[str, Path]:
    """Run id → folder, oldest submission first (from each manifest's ``runInfo``)."""
    folders = [m.parent for m in AZURE_EXPORTS.rglob("manifest.json")]
    return {f.name: f for f in sorted(folders, key=lambda f: json.loads((f / "manifest.json").read_text())
                                       ["runInfo"]["submittedTime"])}


def azure_team_total(run: Path, team: str) -> Decimal:
    total = Decimal(0)
    for part in sorted(run.glob("part_*.csv")):
        for row in csv.DictReader(io.StringIO(part.read_text(encoding="utf-8-sig"))):
            tags = {k.lower(): v for k, v in json.loads(row["tags"] or "{}").items()}
            if tags.get("team") == team:
                total += Decimal(row["costInBillingCurrency"])
    return total


def money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):,} USD"


# --------------------------------------------------------------------------- inventory
def inventory(cloud: str) -> list[dict[str, Any]]:
    items = [i for i in json.loads(INVENTORY.read_text())["instances"] if i["cloud"] == cloud]
    extra = {"aws": {"type": "g5.xlarge", "location": "us-east-1a"},
             "gcp": {"type": "a2-highgpu-1g", "location": "us-central1-a"},
             "azure": {"type": "Standard_NC6s_v3", "location": "ml-research-rg",
                       "id": "/subscriptions/5f1c3a7e-2b4d-4c6e-8f0a-1b3d5e7f9a2c/resourceGroups/ml-research-rg/"
                             "providers/Microsoft.Compute/virtualMachines/orphan-nc-az"}}[cloud]
    return [*items, {"cloud": cloud, "name": UNTAGGED[cloud], "state": "running", "tags": {}, **extra}]


def launch_ec2(regions: list[str]) -> dict[str, tuple[str, str]]:
    """The AWS sample machines in moto's EC2: name → (region, instance id)."""
    launched: dict[str, tuple[str, str]] = {}
    for inst in inventory("aws"):
        region = inst["location"][:-1]
        assert region in regions
        ec2 = boto3.client("ec2", region_name=region)
        tags = [{"Key": k, "Value": v} for k, v in {**inst["tags"], "Name": inst["name"]}.items()]
        [made] = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType=inst["type"],
                                   Placement={"AvailabilityZone": inst["location"]},
                                   TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])["Instances"]
        launched[inst["name"]] = (region, made["InstanceId"])
    return launched


def ec2_states(launched: dict[str, tuple[str, str]]) -> dict[str, str]:
    states = {}
    for name, (region, iid) in launched.items():
        [r] = boto3.client("ec2", region_name=region).describe_instances(InstanceIds=[iid])["Reservations"]
        states[name] = r["Instances"][0]["State"]["Name"]
    return states


# --------------------------------------------------------------------------- Pub/Sub plumbing
@dataclass
class Bridge:
    """The push endpoint of the shared topic's subscription: each push goes to the guardrail
    function as Eventarc sends it (a binary-mode CloudEvent, functions-framework's test
    client). Records which message ids were acknowledged."""

    post: Callable[[dict[str, Any]], int]
    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: set[str] = field(default_factory=set)
    statuses: list[int] = field(default_factory=list)
    busy_until: float = 0.0

    def handler(self) -> type[BaseHTTPRequestHandler]:
        from tests.emulators import QuietHandler

        bridge = self

        class Push(QuietHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with bridge.lock:
                    status = bridge.post(body)
                    bridge.statuses.append(status)
                    if status == 200:
                        bridge.acked.add(body["message"]["attributes"]["message_id"])
                    bridge.busy_until = time.monotonic()
                self.send_response(204 if status == 200 else status)
                self.end_headers()

        return Push


class Topics:
    """The shared topic (a tap subscription counts what is published; a push subscription feeds
    the guardrail), the dead-letter topic, and the deferred-slash topic."""

    def __init__(self, project: str):
        self.publisher, self.subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        name = uuid.uuid4().hex[:8]
        self.project = project
        self.shared = self._topic(f"burnguard-{name}")
        self.dead = self._topic(f"burnguard-dead-{name}")
        self.defer = self._topic(f"burnguard-slack-defer-{name}")
        self.tap = self._pull(self.shared, f"tap-{name}")
        self.dead_tap = self._pull(self.dead, f"dead-tap-{name}")
        self.defer_sub = self._pull(self.defer, f"defer-{name}")
        self.published: set[str] = set()

    def _topic(self, name: str) -> str:
        path = self.publisher.topic_path(self.project, name)
        self.publisher.create_topic(name=path)
        return path

    def _pull(self, topic: str, name: str) -> str:
        path = self.subscriber.subscription_path(self.project, name)
        self.subscriber.create_subscription(name=path, topic=topic)
        return path

    def push_to(self, endpoint: str) -> None:
        self.subscriber.create_subscription(request={
            "name": self.subscriber.subscription_path(self.project, f"guardrail-{uuid.uuid4().hex[:8]}"),
            "topic": self.shared, "push_config": {"push_endpoint": endpoint}, "ack_deadline_seconds": 30,
            "retry_policy": {"minimum_backoff": {"seconds": 1}, "maximum_backoff": {"seconds": 2}},
            "dead_letter_policy": {"dead_letter_topic": self.dead, "max_delivery_attempts": 5}})

    def pull(self, subscription: str, timeout: float = 2.0) -> list[Any]:
        try:
            got = self.subscriber.pull(request={"subscription": subscription, "max_messages": 500},
                                       timeout=timeout).received_messages
        except DeadlineExceeded:
            return []
        if got:
            self.subscriber.acknowledge(request={"subscription": subscription, "ack_ids": [r.ack_id for r in got]})
        return [r.message for r in got]

    def drain_tap(self) -> int:
        """Record what was published on the shared topic so far; returns how many new ids."""
        new = 0
        while True:
            # The functions publish synchronously: what they published is held now (no long pull).
            got = [r.message for r in pull_now(self.subscriber, self.tap, 500)]
            if not got:
                return new
            for m in got:
                mid = m.attributes["message_id"]
                new += mid not in self.published
                self.published.add(mid)

    def close(self) -> None:
        self.subscriber.close()


def settle(topics: Topics, bridge: Bridge, timeout: float = 90.0) -> None:
    """Wait until every message published on the shared topic was applied by the guardrail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        topics.drain_tap()
        with bridge.lock:
            done = topics.published <= bridge.acked and time.monotonic() - bridge.busy_until > 1.0
        if done and topics.drain_tap() == 0:
            return
        time.sleep(0.3)
    missing = topics.published - bridge.acked
    raise AssertionError(f"{len(missing)} published message(s) never applied by the guardrail; statuses "
                         f"{sorted(set(bridge.statuses))}")


def push_envelope(message: Any, subscription: str) -> dict[str, Any]:
    return {"message": {"data": base64.b64encode(message.data).decode(), "attributes": dict(message.attributes),
                        "messageId": message.message_id or uuid.uuid4().hex, "publishTime": "2024-09-21T06:00:00Z"},
            "subscription": subscription}


def id_token_stand_in(audience: str) -> str:
    """STAND-IN for the metadata server's Google ID token (moto's STS accepts any web identity
    token; the ARM fake ignores the Entra exchange)."""
    return f"stand-in-google-id-token-for-{audience}"


def iter_slack_posts(requests: list[Any]) -> Iterator[dict[str, Any]]:
    """The chat.postMessage calls the local Slack server received (slack-sdk sends JSON or a
    form), as dicts."""
    from urllib.parse import parse_qs

    for r in list(requests):
        if not r.path.endswith("/chat.postMessage"):
            continue
        try:
            body = json.loads(r.body)
        except ValueError:
            body = {k: v[0] for k, v in parse_qs(r.body.decode()).items()}
        yield body
