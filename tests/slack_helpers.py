"""Shared by the Slack tests: a ledger with real data, signed slash-command requests, and a
local stand-in for Slack's HTTP endpoints (Web API and response_url).

Expected figures are computed here from the line items themselves (Decimal sums over the
rows whose tags match), never with the ledger's or the services' code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pyarrow as pa

from burnguard.adapters.local.inventory import InventoryController, InventoryFile
from burnguard.adapters.local.ledger import SqliteLedger
from burnguard.adapters.local.notifier import ConsoleNotifier
from burnguard.core.lineitem import SCHEMA
from burnguard.core.messages import (
    DeliveryRef,
    DeliverySummary,
    FileSummary,
    encode_chunk,
    encode_summary,
    stable_id,
    totals_of,
)
from burnguard.core.policy import load_policy
from burnguard.services.guardrail import GuardrailService

SECRET = "test-signing-secret-5b1f0c2e9a"
NOW = datetime(2024, 9, 20, 12, tzinfo=UTC)
NOW_TS = int(NOW.timestamp())
ADMIN = "U0ADMIN01"
PROJECT_ADMIN = "U0PROJ001"
STRANGER = "U0RANDOM9"

POLICY = """
version: 1
safety: {dry_run: false, max_stops_per_run: 10}
slack: {channel: "#spend", authorized_users: [U0ADMIN01]}
guardrails:
  - name: ml-monthly
    scope: team=ml-research
    budget: 1000 USD
    thresholds:
      - {at: 50%, actions: [notify]}
      - {at: 100%, actions: [notify, stop]}
    forecast_thresholds: [{at: 100%, actions: [notify]}]
  - name: per-project
    scope: project=*
    budget: 300 USD
    thresholds: [{at: 100%, actions: [notify]}]
    authorized_users: [U0PROJ001]
  - name: inference-burn
    scope: team=inference
    burn_rate: {gpu_per_hour: {limit: 10, currency: USD}, window_hours: 4, actions: [notify]}
"""

INVENTORY = [
    {"cloud": "aws", "id": "i-a100", "name": "trainer-1", "location": "us-east-1", "type": "p4d.24xlarge",
     "state": "running", "tags": {"team": "ml-research"}, "hourly_cost": "32.77", "currency": "USD"},
    {"cloud": "gcp", "id": "gce-a2", "name": "a2-box", "location": "us-central1-a", "type": "a2-highgpu-1g",
     "state": "running", "tags": {"team": "ml-research"}, "hourly_cost": "3.67", "currency": "USD"},
    {"cloud": "aws", "id": "i-keep", "name": "prod-infer", "type": "p5.48xlarge", "state": "running",
     "tags": {"team": "ml-research", "burnguard:protect": "true"}, "hourly_cost": "98.32", "currency": "USD"},
]


def item(  # noqa: PLR0913 - a line item: one keyword per column a test varies
        cost: str, tags: dict[str, str], *, day: int = 10, hour: int = 0, cloud: str = "aws", gpu: bool = True,
        resource: str = "i-a100", itype: str = "p4d.24xlarge", service: str = "EC2",
        period: str = "2024-09") -> dict[str, Any]:
    year, month = (int(x) for x in period.split("-"))
    start = datetime(year, month, day, hour, tzinfo=UTC)
    first = datetime(year, month, 1, tzinfo=UTC)
    return {
        "ProviderName": cloud.upper(), "BillingAccountId": "1", "BillingPeriodStart": first,
        "BillingPeriodEnd": (first + timedelta(days=32)).replace(day=1), "ChargePeriodStart": start,
        "ChargePeriodEnd": start + timedelta(hours=1), "ChargeCategory": "Usage", "BilledCost": Decimal(cost),
        "EffectiveCost": Decimal(cost), "BillingCurrency": "USD", "ServiceName": service, "ResourceId": resource,
        "Tags": list(tags.items()), "x_Cloud": cloud, "x_InstanceType": itype,
        "x_AcceleratorClass": "gpu" if gpu else None,
    }


ML = {"team": "ml-research", "project": "llm"}
SEPTEMBER = [
    item("400.00", ML, day=10),
    item("250.50", ML, day=15),
    item("180.25", {"team": "ml-research", "project": "vision"}, cloud="gcp", resource="gce-a2",
         itype="a2-highgpu-1g", service="Compute Engine"),
    item("90.125", {"Team": "ml-research", "project": "llm"}, cloud="azure", resource="/subscriptions/s/vm/nc-a100",
         itype="Standard_NC24ads_A100_v4", service="Virtual Machines"),
    item("12.34", {"team": "ml-research"}, resource="i-cpu", itype="m5.xlarge", gpu=False),
    item("55.55", {"team": "web", "project": "site"}, resource="i-web", itype="g6.xlarge"),
    *[item("12", {"team": "inference"}, day=19, hour=h, resource="i-inf", itype="g5.xlarge") for h in range(20, 24)],
]
AUGUST = [item("999.99", ML, day=20, period="2024-08"), item("1.01", {"team": "web"}, day=21, period="2024-08",
                                                               resource="i-web", itype="g6.xlarge")]


def matches(row: dict[str, Any], key: str, value: str | None) -> bool:
    found = [v for k, v in row["Tags"] if k.casefold() == key.casefold()]
    return bool(found) and (value is None or found[0] == value)


def expected_spend(rows: Iterable[dict[str, Any]], key: str, value: str | None = None) -> Decimal:
    return sum((r["EffectiveCost"] for r in rows if matches(r, key, value)), Decimal(0))


def expected_by_value(rows: Iterable[dict[str, Any]], key: str) -> dict[str, Decimal]:
    out: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        for k, v in r["Tags"]:
            if k.casefold() == key.casefold():
                out[v] += r["EffectiveCost"]
    return dict(out)


def expected_by_resource(rows: Iterable[dict[str, Any]], keys: Iterable[str]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = defaultdict(Decimal)
    keys = [k.casefold() for k in keys]
    for r in rows:
        if any(k.casefold() in keys for k, _ in r["Tags"]):
            out[r["ResourceId"]] += r["EffectiveCost"]
    return dict(out)


def money(value: Decimal) -> str:
    """As the answers show it: cents, thousands separators, currency."""
    return f"{value.quantize(Decimal('0.01')):,} USD"


class World:
    """A policy, a SQLite ledger with deliveries, an inventory and the guardrail service."""

    def __init__(self, tmp: Path, policy_text: str = POLICY):
        self.tmp = tmp
        self.policy = load_policy(policy_text, "policy.yaml")
        (tmp / "policy.yaml").write_text(policy_text)
        self.ledger = SqliteLedger(tmp / "ledger.sqlite")
        (tmp / "inventory.json").write_text(json.dumps({"instances": INVENTORY}))
        self.inventory = InventoryFile(tmp / "state" / "inventory.json", seed=tmp / "inventory.json")
        self.notifier = ConsoleNotifier(quiet=True)
        self.version = 0

    def guardrails(self) -> GuardrailService:
        return GuardrailService(self.policy, self.ledger, self.notifier,
                                {c: InventoryController(c, self.inventory) for c in ("aws", "gcp", "azure")},
                                clock=lambda: NOW)

    def deliver(self, rows: list[dict[str, Any]], period: str = "2024-09") -> list[Any]:
        self.version += 1
        ref = DeliveryRef(delivery_id=stable_id("d", period, str(self.version)), provider="aws", source="cur",
                          billing_period=period, version=str(self.version),
                          produced_at=datetime(2024, 9, 1, tzinfo=UTC) + timedelta(hours=self.version))
        table = pa.Table.from_pylist(rows, schema=SCHEMA)
        totals = totals_of(table)
        summary = DeliverySummary(delivery=ref, files=[FileSummary(key="f.csv", chunks=1, totals=totals,
                                                                    rows_read=table.num_rows)], totals=totals)
        service = self.guardrails()
        service.handle(encode_chunk(ref, "f.csv", 0, table))
        return service.handle(encode_summary(summary)).reports

    def standard(self) -> World:
        """August and September delivered (September under the ml-research budget)."""
        self.deliver(AUGUST, "2024-08")
        self.deliver(SEPTEMBER)
        return self

    def overspend(self) -> list[Any]:
        """A new September snapshot that takes ml-research over 100%: the guardrail stops."""
        return self.deliver([*SEPTEMBER, item("300", ML, day=18)])

    def state(self, cloud: str, instance_id: str) -> str:
        return str(self.inventory.raw(cloud, instance_id)["state"])


# --------------------------------------------------------------------------- signed requests


def sign(body: bytes, timestamp: int | str, secret: str = SECRET) -> str:
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def form(text: str, user: str = ADMIN, *, trigger: str | None = None, response_url: str = "",
         command: str = "/burnguard", **extra: str) -> bytes:
    fields = {"token": "deprecated", "team_id": "T0001", "team_domain": "example", "channel_id": "C0SPEND01",
              "channel_name": "gpu-spend", "user_id": user, "user_name": "someone", "command": command,
              "text": text, "response_url": response_url, "api_app_id": "A0BURN001",
              "trigger_id": trigger or hashlib.sha1(f"{text}{user}{response_url}".encode()).hexdigest(), **extra}
    return urlencode(fields).encode()


def signed_headers(body: bytes, timestamp: int | str = NOW_TS, secret: str = SECRET) -> dict[str, str]:
    return {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": sign(body, timestamp, secret)}


# --------------------------------------------------------------------------- a stand-in for Slack


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeSlack:
    """A local HTTP server standing in for Slack: records every request, answers from a
    per-path script of ``(status, headers, json)`` (default ``200 {"ok": true}``)."""

    requests: list[Recorded] = field(default_factory=list)
    script: dict[str, deque[tuple[int, dict[str, str], Any]]] = field(default_factory=lambda: defaultdict(deque))
    arrived: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> FakeSlack:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.requests.append(Recorded("POST", self.path, dict(self.headers.items()), body))
                queue = fake.script.get(self.path)
                status, headers, payload = queue.popleft() if queue else (200, {}, {"ok": True})
                data = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                fake.arrived.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def on(self, path: str, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.script[path].append((status, headers or {}, payload))

    def wait(self, count: int = 1, timeout: float = 10.0) -> list[Recorded]:
        deadline = threading.Event()
        for _ in range(int(timeout * 20)):
            if len(self.requests) >= count:
                return self.requests
            deadline.wait(0.05)
        raise AssertionError(f"expected {count} request(s) to the fake Slack, got {len(self.requests)}")


def slash_service(world: World, *, deferrer: Any = None, clock: float = NOW_TS, **kwargs: Any) -> Any:
    """The slash service on ``world``: verifier clock fixed at ``clock``, answers posted to
    local response URLs (``http://127.0.0.1``), deferred completions on threads."""
    from burnguard.adapters.local.deferral import ThreadDeferrer
    from burnguard.adapters.slack.respond import WebhookResponder
    from burnguard.adapters.slack.verify import SlackRequestVerifier
    from burnguard.services.slack_endpoint import SlashService

    return SlashService(SlackRequestVerifier(SECRET, clock=lambda: clock), world.ledger, world.policy,
                        world.guardrails, deferrer=deferrer or ThreadDeferrer(),
                        responder=WebhookResponder(allowed_prefixes=("http://127.0.0.1:",)), clock=lambda: NOW,
                        **kwargs)
