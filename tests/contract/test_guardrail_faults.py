"""The guardrail never fails silently: an exception at any step of handling a message (before
and after each ledger commit, while stopping an instance, while notifying, while writing the
audit), then redelivery, ends in the same state as a run without the fault: the same stops,
one alert per crossing, a complete audit, nothing left pending. Runs on every ledger adapter
(the ``ledger`` fixture), through the effect log of the Ledger port.

The instances are the embedded inventory controller over a real file; the notifier is the
console notifier; the faults are raised by thin wrappers around them and around the ledger.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from burnguard.adapters.local.inventory import InventoryController, InventoryFile
from burnguard.adapters.local.notifier import ConsoleNotifier
from burnguard.core.budget import parse_aws_budget_sns
from burnguard.core.errors import InputError
from burnguard.core.lineitem import SCHEMA
from burnguard.core.messages import (
    DeliveryRef,
    DeliverySummary,
    FileSummary,
    Message,
    encode_budget_alert,
    encode_chunk,
    encode_summary,
    stable_id,
    totals_of,
)
from burnguard.core.policy import load_policy
from burnguard.ports.notify import Notification, NotifyError
from burnguard.services.guardrail import GuardrailService

NOW = datetime(2024, 9, 20, 12, tzinfo=UTC)
FIXTURES = Path(__file__).parents[1] / "fixtures/public"

POLICY = """
version: 1
safety: {dry_run: false, max_stops_per_run: 10}
slack: {channel: "#spend"}
guardrails:
  - name: ml-monthly
    scope: team=ml-research
    budget: 1000 USD
    thresholds:
      - {at: 50%, actions: [notify]}
      - {at: 100%, actions: [notify, stop]}
    budget_notifications: {aws: ["Test Budget"], actions: [notify]}
  - name: per-project
    scope: project=*
    budget: 300 USD
    thresholds: [{at: 100%, actions: [notify]}]
"""

INVENTORY = [
    {"cloud": "aws", "id": "i-a100", "name": "trainer", "type": "p4d.24xlarge", "state": "running",
     "tags": {"team": "ml-research"}, "hourly_cost": "32.77", "currency": "USD"},
    {"cloud": "aws", "id": "i-g5", "name": "notebook", "type": "g5.xlarge", "state": "running",
     "tags": {"team": "ml-research"}, "hourly_cost": "1.01", "currency": "USD"},
    {"cloud": "aws", "id": "i-keep", "name": "prod", "type": "p5.48xlarge", "state": "running",
     "tags": {"team": "ml-research", "burnguard:protect": "true", "Burnguard:Protect": "false"}},
    {"cloud": "aws", "id": "i-bad", "name": "other-team", "type": "g5.xlarge", "state": "running",
     "tags": {"team": "web"}, "hourly_cost": "n/a", "currency": "USD"},
    {"cloud": "gcp", "id": "gce-a2", "name": "a2", "type": "a2-highgpu-1g", "state": "running",
     "tags": {"team": "ml-research"}, "hourly_cost": "3.67", "currency": "USD"},
    {"cloud": "azure", "id": "vm-nc", "name": "nc", "type": "Standard_NC24ads_A100_v4", "state": "running",
     "tags": {"team": "ml-research"}, "fail_stop": "AuthorizationFailed: no permission to deallocate"},
]


class Boom(RuntimeError):
    """The injected fault."""


class Fault:
    """Raise :class:`Boom` at the ``nth`` call of ``target``, before or after the real call."""

    def __init__(self, target: str, nth: int, when: str):
        self.target, self.nth, self.when = target, nth, when
        self.calls = Counter[str]()
        self.fired = False

    def around(self, name: str, call: Callable[[], Any]) -> Any:
        self.calls[name] += 1
        hit = name == self.target and self.calls[name] == self.nth and not self.fired
        if hit and self.when == "before":
            self.fired = True
            raise Boom(f"injected before {name}")
        result = call()
        if hit:
            self.fired = True
            raise Boom(f"injected after {name}")
        return result


class FaultyLedger:
    def __init__(self, ledger: Any, fault: Fault):
        self._ledger, self._fault = ledger, fault

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._ledger, name)
        if not callable(real):
            return real
        return lambda *a, **k: self._fault.around(f"ledger.{name}", lambda: real(*a, **k))


class FaultyController(InventoryController):
    fault: Fault | None = None

    def stop(self, instance: Any) -> None:
        assert self.fault is not None
        self.fault.around("controller.stop", lambda: InventoryController.stop(self, instance))


class FaultyNotifier(ConsoleNotifier):
    fault: Fault | None = None

    def send(self, notification: Notification) -> None:
        assert self.fault is not None
        self.fault.around("notifier.send", lambda: ConsoleNotifier.send(self, notification))


class FaultyInventory(InventoryFile):
    fault: Fault | None = None

    def set_state(self, cloud: str, instance_id: str, state: str) -> None:
        assert self.fault is not None
        self.fault.around("inventory.write", lambda: InventoryFile.set_state(self, cloud, instance_id, state))


def item(cost: str, tags: dict[str, str], *, day: int = 10) -> dict[str, Any]:
    start = datetime(2024, 9, day, tzinfo=UTC)
    return {
        "ProviderName": "AWS", "BillingAccountId": "1", "BillingPeriodStart": datetime(2024, 9, 1, tzinfo=UTC),
        "BillingPeriodEnd": datetime(2024, 10, 1, tzinfo=UTC), "ChargePeriodStart": start,
        "ChargePeriodEnd": start + timedelta(hours=1), "ChargeCategory": "Usage", "BilledCost": Decimal(cost),
        "EffectiveCost": Decimal(cost), "BillingCurrency": "USD", "ServiceName": "EC2", "ResourceId": "i-a100",
        "Tags": list(tags.items()), "x_Cloud": "aws", "x_InstanceType": "p4d.24xlarge", "x_AcceleratorClass": "gpu",
    }


def delivery(version: int, rows: list[dict[str, Any]]) -> list[Message]:
    ref = DeliveryRef(delivery_id=stable_id("d", str(version)), provider="aws", source="cur",
                      billing_period="2024-09", version=str(version),
                      produced_at=datetime(2024, 9, 1, tzinfo=UTC) + timedelta(hours=version))
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    totals = totals_of(table)
    summary = DeliverySummary(delivery=ref, files=[FileSummary(key="f.csv", chunks=1, totals=totals,
                                                                rows_read=table.num_rows)], totals=totals)
    return [encode_chunk(ref, "f.csv", 0, table), encode_summary(summary)]


def messages() -> list[Message]:
    ml = {"team": "ml-research", "project": "llm"}
    text = (FIXTURES / "aws-budgets-sns/sre-bot.budget-message.txt").read_text()
    alert = parse_aws_budget_sns("AWS Budgets: Test Budget has exceeded your alert threshold", text,
                                 "2022-09-26T13:23:38.553Z")
    return [*delivery(1, [item("600", ml)]), *delivery(2, [item("1300", ml, day=12)]),
            encode_budget_alert(alert, alert.alert_id)]


def run(ledger: Any, tmp: Path, fault: Fault) -> dict[str, Any]:
    """Handle every message; a message that raises (other than bad input) is redelivered."""
    (tmp / "seed.json").write_text(json.dumps({"instances": INVENTORY}))
    inventory = FaultyInventory(tmp / "inventory.json", seed=tmp / "seed.json")
    inventory.fault = fault
    notifier = FaultyNotifier(quiet=True)
    notifier.fault = fault
    controllers = {}
    for cloud in ("aws", "gcp", "azure"):
        controllers[cloud] = FaultyController(cloud, inventory)
        controllers[cloud].fault = fault
    service = GuardrailService(load_policy(POLICY, "policy.yaml"), FaultyLedger(ledger, fault), notifier,
                               controllers, clock=lambda: NOW)
    failures = 0
    for message in messages():
        for _attempt in range(5):
            try:
                service.handle(message)
                break
            except InputError:
                raise
            except (Boom, NotifyError, Exception):
                failures += 1
        else:
            pytest.fail(f"message {message.message_id} never succeeded")
    audit = list(ledger.audit_log(limit=1000))
    done = Counter((e.kind, e.outcome, e.guardrail, e.scope, e.details.get("action"), e.details.get("instance"))
                   for e in audit if e.outcome != "failed")
    failed = Counter((e.kind, e.guardrail, e.details.get("instance")) for e in audit
                     if e.outcome == "failed" and e.kind == "action")
    return {
        "states": {(r["cloud"], r["id"]): r["state"] for r in json.loads((tmp / "inventory.json").read_text())[
            "instances"]},
        "stops": sorted((s.guardrail, s.cloud, s.instance_id, s.dry_run) for s in ledger.stops(active_only=False)),
        "alerts": Counter((n.kind, n.text.splitlines()[0]) for n in notifier.sent),
        "audit": done,
        "failed_actions": set(failed),
        "pending": ledger.pending_claims(),
        "announced": sorted(ledger.announced("")),
        "failures": failures,
    }


#: Every step the guardrail takes on the way, in the ledger and outside it. (``ledger.effects`` is
#: only called when a claim is resumed, so after another fault: it is covered by those runs.)
TARGETS = ["ledger.add_chunk", "ledger.add_summary", "ledger.complete", "ledger.claim", "ledger.begin_effect",
           "ledger.complete_effect", "ledger.settle", "ledger.spend", "ledger.announced", "ledger.latest_data",
           "controller.stop", "notifier.send", "inventory.write"]
#: A notifier that raises did not deliver (the Notifier port's contract): it is faulted before.
CASES = [(t, n, w) for t in TARGETS for n in (1, 2, 3) for w in ("before", "after")
         if not (t == "notifier.send" and w == "after")]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from burnguard.adapters.local.ledger import SqliteLedger

    tmp = tmp_path_factory.mktemp("baseline")
    ledger = SqliteLedger(tmp / "ledger.sqlite")
    try:
        return run(ledger, tmp, Fault("none", 0, "before"))
    finally:
        ledger.close()


def test_the_fault_free_run_does_what_the_policy_says(baseline: dict[str, Any]) -> None:
    states = baseline["states"]
    assert states[("aws", "i-a100")] == states[("aws", "i-g5")] == states[("gcp", "gce-a2")] == "stopped"
    assert states[("aws", "i-keep")] == "running"  # protected, whatever the other spelling says
    assert states[("azure", "vm-nc")] == "running" and ("action", "ml-monthly", "azure:vm-nc") in baseline[
        "failed_actions"]
    kinds = Counter(kind for kind, _ in baseline["alerts"].elements())
    # 50% (ml), 100% project, 100% ml with stops, the refused stop, the native budget alert
    assert kinds == Counter({"threshold": 2, "stop": 1, "failure": 1, "native-budget": 1}), baseline["alerts"]
    assert baseline["pending"] == {} and baseline["failures"] == 0


@pytest.mark.parametrize("case", CASES,
                         ids=lambda c: f"{c[0]}#{c[1]}-{c[2]}")
def test_a_fault_at_any_step_then_redelivery_ends_as_without_it(
        ledger: Any, tmp_path: Path, baseline: dict[str, Any], case: tuple[str, int, str]) -> None:
    target, nth, when = case
    fault = Fault(target, nth, when)
    got = run(ledger, tmp_path, fault)
    if nth == 1:
        assert fault.fired, f"{target} was never called"
    if fault.fired:
        assert got["failures"] >= 1
    assert got["states"] == baseline["states"]
    assert got["stops"] == baseline["stops"]
    assert got["alerts"] == baseline["alerts"]  # one alert per crossing: none lost, none twice
    assert got["audit"] == baseline["audit"]  # complete, and nothing recorded twice
    assert got["failed_actions"] == baseline["failed_actions"]
    assert got["pending"] == {}
    assert got["announced"] == baseline["announced"]


class RacingNotifier(ConsoleNotifier):
    """While delivering its first message, lets another guardrail run handle the same delivery
    (two guardrail instances racing on one crossing)."""

    racer: Callable[[], Any] | None = None

    def send(self, notification: Notification) -> None:
        racer, self.racer = self.racer, None
        if racer is not None:
            racer()
        ConsoleNotifier.send(self, notification)


def test_two_runs_racing_on_one_crossing_act_once(ledger: Any, tmp_path: Path, baseline: dict[str, Any]) -> None:
    (tmp_path / "seed.json").write_text(json.dumps({"instances": INVENTORY}))
    inventory = InventoryFile(tmp_path / "inventory.json", seed=tmp_path / "seed.json")
    controllers = {c: InventoryController(c, inventory) for c in ("aws", "gcp", "azure")}
    policy = load_policy(POLICY, "policy.yaml")
    first, second = RacingNotifier(quiet=True), ConsoleNotifier(quiet=True)
    a = GuardrailService(policy, ledger, first, controllers, clock=lambda: NOW)
    b = GuardrailService(policy, ledger, second, controllers, clock=lambda: NOW)
    msgs = messages()
    for m in msgs[:2]:
        a.handle(m)  # the 50% and project crossings, no race
    first.racer = lambda: [b.handle(m) for m in msgs[2:4]]  # b handles delivery 2 while a notifies on it
    for m in msgs[2:]:
        a.handle(m)
    sent = Counter((n.kind, n.text.splitlines()[0]) for n in [*first.sent, *second.sent])
    assert sent == baseline["alerts"]  # each crossing told once, by one of the two
    stops = sorted((s.guardrail, s.cloud, s.instance_id, s.dry_run) for s in ledger.stops(active_only=False))
    assert stops == baseline["stops"] and ledger.pending_claims() == {}
