"""The meter on Google Cloud: the ``meter`` function (a Cloud Scheduler tick through Pub/Sub)
and the ``instance_event`` function (Compute Engine audit log entries through Eventarc), through
functions-framework's test client, built from their environment by ``app.gcp.build_meter``.
Compute Engine and Azure Resource Manager are the real SDKs against the FAKES of
``tests/fakes`` (neither has an emulator); EC2 is moto's server, reached through
AssumeRoleWithWebIdentity with a STAND-IN Google ID token.

The ledger is the Firestore emulator's, as in the cloud (``ledger_url``). The
oracles read the shipped price table's JSON and compute hours from the times the test chose."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import functions_framework
import pytest

from burnguard.app import gcp
from burnguard.app.config import ConfigurationError, open_ledger
from burnguard.core.messages import encode_state_change
from burnguard.core.state_events import StateChange
from tests.adapters.meter_clouds import GROUP, PROJECT, SUBSCRIPTION, gce_vm, launch_ec2
from tests.emulators import free_port, http_server
from tests.fakes.arm import _Bearer, _Token
from tests.fakes.compute import FakeCompute, compute_clients, vm
from tests.fakes.compute import handler_for as gce_handler
from tests.functions.slash_events import FUNCTIONS
from tests.functions.test_gcp_guardrail import Notes, push_envelope

pytestmark = pytest.mark.emulator

SOURCE = str(FUNCTIONS / "gcp" / "main.py")
PRICES = Path(__file__).parents[2] / "shared" / "burnguard" / "data" / "gpu_prices.json"
ROLE = "arn:aws:iam::123456789012:role/burnguard-guardrail-stop"
ML = {"team": "ml-research"}
ZONE = "us-central1-a"
T0 = datetime(2026, 12, 4, 18, tzinfo=UTC)  # Friday 18:00 UTC
POLICY = """
version: 1
safety: {dry_run: false, max_stops_per_run: 10}
slack: {channel: "#gpu"}
guardrails:
  - name: ml
    scope: team=ml-research
    budget: 10 USD
    thresholds: [{at: 100%, actions: [notify, stop]}]
"""


def list_price(cloud: str, instance_type: str) -> Decimal:
    """The shipped table's price, read from its JSON (not through burnguard)."""
    rows = json.loads(PRICES.read_text())["prices"]
    return Decimal(next(r["hourly"] for r in rows if r["cloud"] == cloud and r["instance_type"] == instance_type))


@pytest.fixture
def ledger_url(firestore: Any) -> str:
    """BURNGUARD_LEDGER of the meter: the Firestore emulator (the ledger the cloud runs on)."""
    return f"firestore://projects/{firestore.project}/databases/(default)?prefix=meter_"


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def client(target: str) -> Any:
    return functions_framework.create_app(target=target, source=SOURCE, signature_type="cloudevent").test_client()


def scheduler_tick(meter_client: Any) -> Any:
    """What a push of the Cloud Scheduler job's message to the meter topic delivers."""
    envelope = {"message": {"data": base64.b64encode(b"tick").decode(), "messageId": uuid.uuid4().hex,
                            "publishTime": "2026-12-04T18:00:00Z"},
                "subscription": "projects/burnguard-test/subscriptions/burnguard-meter-push"}
    headers = {"ce-id": uuid.uuid4().hex, "ce-specversion": "1.0",
               "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
               "ce-source": "//pubsub.googleapis.com/projects/burnguard-test/topics/burnguard-meter",
               "Content-Type": "application/json"}
    return meter_client.post("/", data=json.dumps(envelope), headers=headers)


def audit_entry(method: str, name: str, at: datetime, *, last: bool = True) -> dict[str, Any]:
    """A Compute Engine Admin Activity audit log entry (the documented LogEntry/AuditLog shape)."""
    resource = f"projects/{PROJECT}/zones/{ZONE}/instances/{name}"
    return {"protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                             "serviceName": "compute.googleapis.com", "methodName": method,
                             "resourceName": resource, "authenticationInfo": {"principalEmail": "dana@example.com"}},
            "insertId": uuid.uuid4().hex[:12], "resource": {"type": "gce_instance", "labels": {
                "instance_id": "4242", "project_id": PROJECT, "zone": ZONE}},
            "timestamp": at.isoformat().replace("+00:00", "Z"), "severity": "NOTICE",
            "logName": f"projects/{PROJECT}/logs/cloudaudit.googleapis.com%2Factivity",
            "operation": {"id": "operation-1", "producer": "compute.googleapis.com", **({"last": True} if last
                                                                                       else {"first": True})}}


def post_audit(event_client: Any, entry: dict[str, Any]) -> Any:
    """What Eventarc sends for an audit log entry: a binary-mode CloudEvent, data = the entry."""
    headers = {"ce-id": uuid.uuid4().hex, "ce-specversion": "1.0", "ce-type": "google.cloud.audit.log.v1.written",
               "ce-source": f"//cloudaudit.googleapis.com/projects/{PROJECT}/logs/activity",
               "ce-subject": f"compute.googleapis.com/{entry['protoPayload']['resourceName']}",
               "Content-Type": "application/json"}
    return event_client.post("/", data=json.dumps(entry), headers=headers)


def log_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def use_meter(monkeypatch: pytest.MonkeyPatch, build: Callable[[], Any]) -> None:
    meter = build()
    monkeypatch.setattr(gcp, "meter_runtime", lambda: meter)


def test_a_start_event_then_ticks_accrue_from_the_event_and_stop_at_the_crossing(
        tmp_path: Path, ledger_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY)
    env = {"BURNGUARD_POLICY": str(tmp_path / "policy.yaml"), "BURNGUARD_LEDGER": ledger_url,
           "BURNGUARD_GCP_PROJECTS": PROJECT}
    fake = FakeCompute()
    fake.add(vm(PROJECT, ZONE, "trainer", "a2-highgpu-1g", ML))  # no lastStartTimestamp: the event gives it
    clock = Clock(T0 + timedelta(seconds=10))
    notes = Notes()
    with http_server(gce_handler(fake)) as url:
        instances, operations = compute_clients(url)
        controllers = gcp.cloud_controllers(env, compute_clients=instances, compute_operations=operations)
        use_meter(monkeypatch, lambda: gcp.build_meter(env, controllers=controllers, notifier=notes, clock=clock))
        events, ticks = client("instance_event"), client("meter")
        ledger = open_ledger(ledger_url)

        # not state changes: ignored with a log line, nothing read
        assert post_audit(events, audit_entry("v1.compute.instances.setLabels", "trainer", T0)).status_code == 200
        assert post_audit(events, audit_entry("v1.compute.instances.start", "trainer", T0, last=False)).status_code == 200
        assert ledger.latest_reading() is None
        ignored = [line for line in log_lines(capsys.readouterr().out) if line["message"] == "instance_event: ignored"]
        assert len(ignored) == 2 and "setLabels" in ignored[0]["reason"]

        # the start: the accrual runs from the event's time
        assert post_audit(events, audit_entry("v1.compute.instances.start", "trainer", T0)).status_code == 200
        clock.at = T0 + timedelta(hours=2)
        assert scheduler_tick(ticks).status_code == 200
        price = list_price("gcp", "a2-highgpu-1g")
        (row,) = ledger.estimates()
        assert row.amount == price * 2 and row.source == "price-table" and row.first_hour == T0
        assert fake.instances[(PROJECT, ZONE, "trainer")]["status"] == "RUNNING"  # 7.35 of 10 USD
        (line,) = [x for x in log_lines(capsys.readouterr().out) if x["message"].startswith("meter:")]
        crossing = T0 + timedelta(hours=float(Decimal(10) / price))  # the projected 100%: 20:43:20
        (projection,) = line["projections"]
        assert projection["at"][:16] == crossing.isoformat()[:16]

        # the next tick is past the crossing: the budget is crossed by estimate and acted on
        clock.at = T0 + timedelta(hours=3)
        assert scheduler_tick(ticks).status_code == 200
        assert fake.instances[(PROJECT, ZONE, "trainer")]["status"] == "TERMINATED"
        assert any("Triggered with estimates" in n.text for n in notes.sent)
        (line,) = [x for x in log_lines(capsys.readouterr().out) if x["message"].startswith("meter:")]
        (decision,) = line["decisions"]
        assert decision["label"] == "100%" and len(decision["stopped"]) == 1 and "trainer" in decision["stopped"][0]
        ledger.close()


def test_one_cloud_failing_to_list_stops_none_of_the_others(
        aws: Any, tmp_path: Path, ledger_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY.replace("10 USD", "100000 USD"))
    env = {"BURNGUARD_POLICY": str(tmp_path / "policy.yaml"), "BURNGUARD_LEDGER": ledger_url,
           "BURNGUARD_GCP_PROJECTS": PROJECT, "BURNGUARD_AWS_ROLE_ARN": ROLE, "BURNGUARD_AWS_REGIONS": "us-east-1",
           "BURNGUARD_AZURE_TENANT_ID": "t", "BURNGUARD_AZURE_CLIENT_ID": "c",
           "BURNGUARD_AZURE_SCOPES": f"{SUBSCRIPTION}/{GROUP}"}
    (ec2_id,) = launch_ec2(1, "g5.xlarge", ML)
    launched = boto3.client("ec2", region_name="us-east-1").describe_instances(
        InstanceIds=[ec2_id])["Reservations"][0]["Instances"][0]["LaunchTime"].astimezone(UTC)
    fake = FakeCompute()
    fake.add(gce_vm("a2", "a2-highgpu-1g", ML, started=launched.isoformat()))
    now = launched + timedelta(hours=2)
    dead = f"http://127.0.0.1:{free_port()}"  # Azure Resource Manager unreachable
    with http_server(gce_handler(fake)) as url:
        instances, operations = compute_clients(url)
        controllers = gcp.cloud_controllers(
            env, compute_clients=instances, compute_operations=operations, id_token=lambda audience: "stand-in",
            azure_credential=_Token(), azure_options={"base_url": dead, "authentication_policy": _Bearer(),
                                                      "polling_interval": 0, "retry_total": 0})
        assert set(controllers) == {"aws", "gcp", "azure"}
        use_meter(monkeypatch, lambda: gcp.build_meter(env, controllers=controllers, notifier=Notes(),
                                                       clock=lambda: now))
        assert scheduler_tick(client("meter")).status_code == 200
    captured = capsys.readouterr()
    problems = [x for x in log_lines(captured.err) if x["severity"] == "WARNING"]
    assert len(problems) == 1 and problems[0]["message"].startswith("meter: azure: listing team=ml-research failed")
    assert "\n" not in problems[0]["message"]
    ledger = open_ledger(ledger_url)
    est = {r.instance_id.rsplit("/", 1)[-1]: r.amount for r in ledger.estimates()}
    hours = Decimal(int((now - launched).total_seconds())) / 3600
    assert est == {ec2_id: list_price("aws", "g5.xlarge") * hours, "a2": list_price("gcp", "a2-highgpu-1g") * hours}
    ledger.close()


def test_a_ledger_that_keeps_no_estimate_is_a_configuration_error_and_dead_letters_state_changes(
        tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY)
    env = {"BURNGUARD_POLICY": str(tmp_path / "policy.yaml"),
           "BURNGUARD_LEDGER": f"sqlite:///{tmp_path / 'ledger.sqlite'}"}
    ledger = billed_only(open_ledger(env["BURNGUARD_LEDGER"]))
    with pytest.raises(ConfigurationError, match="BURNGUARD_LEDGER: the meter needs a ledger that keeps"):
        gcp.build_meter(env, ledger=ledger, controllers={}, notifier=Notes())
    dead: list[Any] = []
    consumer = gcp.build_guardrail(env, ledger=ledger, controllers={}, notifier=Notes(), dead_letter=dead.extend)
    change = encode_state_change(StateChange("aws", "i-0abc", "running", T0))
    outcome = consumer(push_envelope(change))
    assert outcome.status == "dead-lettered" and "keeps no live estimate" in outcome.reason
    assert dead[0].attributes["message_id"] == change.message_id


def billed_only(inner: Any) -> Any:
    """A ledger that keeps the bill and no live estimate (both shipped ledgers keep both; a
    third-party ``Ledger`` may not): the ``Ledger`` protocol's methods of ``inner``, nothing more."""
    from burnguard.ports.ledger import EstimateLog, Ledger

    names = {n for n in dir(Ledger) if not n.startswith("_")} - {n for n in dir(EstimateLog) if not n.startswith("_")}
    bill = type("BilledOnly", (), {n: staticmethod(getattr(inner, n)) for n in names})()
    assert not isinstance(bill, EstimateLog)
    return bill
