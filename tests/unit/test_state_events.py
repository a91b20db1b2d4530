"""Instance state-change events of the three clouds (documented shapes: the EventBridge EC2
state-change notification, a Compute Engine audit log entry as Eventarc delivers it, an Event
Grid resource action event) and the meter reading at them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from burnguard.adapters.local.inventory import InventoryController, InventoryFile
from burnguard.adapters.local.ledger import SqliteLedger
from burnguard.adapters.local.notifier import ConsoleNotifier
from burnguard.app.estimates_cli import load_prices
from burnguard.core.errors import InputError
from burnguard.core.policy import load_policy
from burnguard.core.state_events import StateChange, parse_state_change
from burnguard.ports.instances import InstanceController
from burnguard.services.guardrail import GuardrailService
from burnguard.services.meter import MeterService

EC2 = {"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602",
       "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "account": "123456789012",
       "time": "2026-12-04T18:00:00Z", "region": "us-east-1",
       "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
       "detail": {"instance-id": "i-abcd1111", "state": "running"}}
GCE = {"protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                        "serviceName": "compute.googleapis.com", "methodName": "v1.compute.instances.stop",
                        "resourceName": "projects/ml-prod/zones/us-central1-a/instances/trainer-1",
                        "authenticationInfo": {"principalEmail": "dana@example.com"}},
       "insertId": "-x1", "resource": {"type": "gce_instance", "labels": {"instance_id": "123", "project_id": "ml-prod",
                                                                           "zone": "us-central1-a"}},
       "timestamp": "2026-12-04T19:30:12.345678Z", "severity": "NOTICE",
       "logName": "projects/ml-prod/logs/cloudaudit.googleapis.com%2Factivity",
       "operation": {"id": "operation-1", "producer": "compute.googleapis.com", "last": True}}
VM = "/subscriptions/s1/resourceGroups/gpu/providers/Microsoft.Compute/virtualMachines/nd-1"
AZURE = {"id": "4f1c", "topic": "/subscriptions/s1", "subject": VM,
         "eventType": "Microsoft.Resources.ResourceActionSuccess", "eventTime": "2026-12-04T20:15:00.1234567Z",
         "data": {"operationName": "Microsoft.Compute/virtualMachines/deallocate/action", "status": "Succeeded",
                  "resourceProvider": "Microsoft.Compute", "resourceUri": VM, "subscriptionId": "s1"},
         "dataVersion": "2", "metadataVersion": "1"}


def test_each_cloud_s_event_is_a_state_change() -> None:
    assert parse_state_change("aws", EC2) == StateChange("aws", "i-abcd1111", "running",
                                                         datetime(2026, 12, 4, 18, tzinfo=UTC))
    assert parse_state_change("gcp", GCE) == StateChange(
        "gcp", "projects/ml-prod/zones/us-central1-a/instances/trainer-1", "stopped",
        datetime(2026, 12, 4, 19, 30, 12, 345678, tzinfo=UTC))
    change = parse_state_change("azure", AZURE)
    assert change is not None and change.state == "stopped" and change.instance_id == VM
    assert change.at.replace(microsecond=0) == datetime(2026, 12, 4, 20, 15, tzinfo=UTC)


def _variant(base: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(base))
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


@pytest.mark.parametrize(("cloud", "event"), [
    ("aws", _variant(EC2, ("detail", "state"), "pending")),  # not running yet
    ("aws", _variant(EC2, ("detail-type",), "EBS Volume Notification")),
    ("gcp", _variant(GCE, ("operation", "last"), False)),  # the first entry of the operation
    ("gcp", _variant(GCE, ("protoPayload", "methodName"), "v1.compute.disks.insert")),
    ("azure", _variant(AZURE, ("data", "operationName"), "Microsoft.Compute/virtualMachines/write")),
    ("azure", _variant(AZURE, ("eventType",), "Microsoft.Resources.ResourceWriteSuccess")),
])
def test_other_events_are_not_state_changes(cloud: str, event: dict[str, Any]) -> None:
    assert parse_state_change(cloud, event) is None


def test_a_malformed_event_names_the_field() -> None:
    with pytest.raises(InputError, match=r"detail\.instance-id"):
        parse_state_change("aws", _variant(EC2, ("detail",), {"state": "running"}))
    with pytest.raises(InputError, match="timestamp"):
        parse_state_change("gcp", _variant(GCE, ("timestamp",), "yesterday"))


def test_a_stop_event_ends_the_accrual_at_its_time(tmp_path: Path) -> None:
    """EC2 gives no stop time: a stop found by the next tick accrues nothing after the previous
    reading; the event's time is the stop, so the minutes up to it are counted, and no more."""
    start = datetime(2026, 12, 4, 18, tzinfo=UTC)
    seed = tmp_path / "inventory.json"
    seed.write_text(json.dumps({"instances": [{"cloud": "aws", "id": "i-abcd1111", "type": "p5.48xlarge",
                                               "state": "running", "tags": {"team": "ml"},
                                               "started_at": "2026-12-04T18:00:00Z"}]}))
    inventory = InventoryFile(tmp_path / "state.json", seed=seed)
    controllers: dict[str, InstanceController] = {"aws": InventoryController("aws", inventory)}  # stamps no time
    policy = load_policy('version: 1\nslack: {channel: "#x"}\nguardrails:\n'
                         '  - {name: ml, scope: team=ml, budget: 100000 USD, thresholds: [{at: 100%, actions: [notify]}]}\n')
    ledger = SqliteLedger(":memory:")
    clock = [start + timedelta(minutes=10)]
    guardrail = GuardrailService(policy, ledger, ConsoleNotifier(stream=StringIO()), controllers,
                                 clock=lambda: clock[0])
    guardrail.estimates = ledger
    meter = MeterService(policy, ledger, controllers, load_prices(), guardrail, clock=lambda: clock[0])
    meter.tick()  # 18:10
    (instance,) = controllers["aws"].find("team", "ml")
    controllers["aws"].stop(instance)  # stopped at 18:12 (the inventory records no time: like EC2)
    stop = _variant(EC2, ("detail", "state"), "stopped")
    stop["time"] = "2026-12-04T18:12:00Z"
    change = parse_state_change("aws", stop)
    assert change is not None
    clock[0] = start + timedelta(minutes=12, seconds=20)  # the event arrives 20 s later
    report = meter.on_state_change(change)
    assert report.running == 0
    price = load_prices().price("aws", "p5.48xlarge")
    assert price is not None
    (row,) = ledger.estimates()
    assert row.seconds == 12 * 60 and row.amount == (price * 12 / 60).quantize(Decimal("1e-18"))
    clock[0] = start + timedelta(hours=1)
    assert meter.tick().accrued == {}  # stopped: nothing more


class _BrokenNotifier:
    def send(self, notification: Any) -> None:
        raise RuntimeError("slack is down in an unexpected way")


def test_a_fault_while_acting_is_reported_and_the_readings_stay(tmp_path: Path) -> None:
    """The guardrail failing mid-way (here its notifier) does not lose the tick: the readings
    are recorded, the fault is reported, and the next tick resumes the crossing."""
    seed = tmp_path / "inventory.json"
    seed.write_text(json.dumps({"instances": [{"cloud": "aws", "id": "i-1", "type": "p5.48xlarge", "state": "running",
                                               "tags": {"team": "ml"}, "started_at": "2026-12-04T18:00:00Z"}]}))
    controllers: dict[str, InstanceController] = {
        "aws": InventoryController("aws", InventoryFile(tmp_path / "state.json", seed=seed))}
    policy = load_policy('version: 1\nslack: {channel: "#x"}\nguardrails:\n'
                         '  - {name: ml, scope: team=ml, budget: 10 USD, thresholds: [{at: 100%, actions: [notify]}]}\n')
    ledger = SqliteLedger(":memory:")
    now = datetime(2026, 12, 4, 19, tzinfo=UTC)
    guardrail = GuardrailService(policy, ledger, _BrokenNotifier(), controllers, clock=lambda: now)
    guardrail.estimates = ledger
    report = MeterService(policy, ledger, controllers, load_prices(), guardrail, clock=lambda: now).tick()
    assert report.problems and "slack is down" in report.problems[0]
    assert report.accrued and ledger.estimates()  # the hour from 18:00 is recorded
    assert ledger.pending_claims()  # the crossing is pending: the next tick resumes it
