"""The guardrail end to end on the embedded adapters: decisions are edge-triggered, stops obey
every safety rule, failures are reported and the rest goes on, resume undoes the stops."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from burnguard.adapters.local.inventory import InventoryController, InventoryFile
from burnguard.adapters.local.ledger import SqliteLedger
from burnguard.adapters.local.notifier import ConsoleNotifier
from burnguard.core.budget import parse_aws_budget_sns
from burnguard.core.lineitem import SCHEMA
from burnguard.core.messages import (
    DeliveryRef,
    DeliverySummary,
    FileSummary,
    encode_budget_alert,
    encode_chunk,
    encode_summary,
    stable_id,
    totals_of,
)
from burnguard.core.policy import load_policy
from burnguard.services.guardrail import GuardrailService

NOW = datetime(2024, 9, 20, 12, tzinfo=UTC)

POLICY = """
version: 1
safety: {dry_run: DRY, max_stops_per_run: CAP}
slack: {channel: "#spend", authorized_users: [U0ADMIN01]}
guardrails:
  - name: ml-monthly
    scope: team=ml-research
    budget: 1000 USD
    thresholds:
      - {at: 50%, actions: [notify]}
      - {at: 80%, actions: [notify]}
      - {at: 100%, actions: [notify, stop]}
    budget_notifications: {aws: ["Test Budget"], actions: [notify]}
  - name: per-project
    scope: project=*
    budget: 300 USD
    thresholds: [{at: 100%, actions: [notify]}]
  - name: inference-burn
    scope: team=inference
    burn_rate: {gpu_per_hour: {limit: 10, currency: USD}, window_hours: 4, actions: [notify]}
"""

INVENTORY = [
    {"cloud": "aws", "id": "i-a100", "name": "trainer-1", "type": "p4d.24xlarge", "state": "running",
     "tags": {"user:team": "ml-research"}, "hourly_cost": "32.77", "currency": "USD"},
    {"cloud": "aws", "id": "i-g5", "name": "notebook", "type": "g5.xlarge", "state": "running",
     "tags": {"team": "ml-research"}, "hourly_cost": "1.01", "currency": "USD"},
    {"cloud": "aws", "id": "i-cpu", "name": "etl", "type": "m5.xlarge", "state": "running",
     "tags": {"team": "ml-research"}, "hourly_cost": "0.19", "currency": "USD"},
    {"cloud": "aws", "id": "i-keep", "name": "prod-infer", "type": "p5.48xlarge", "state": "running",
     "tags": {"team": "ml-research", "burnguard:protect": "true"}, "hourly_cost": "98.32", "currency": "USD"},
    {"cloud": "aws", "id": "i-other", "name": "web-gpu", "type": "g6.xlarge", "state": "running",
     "tags": {"team": "web"}, "hourly_cost": "0.80", "currency": "USD"},
    {"cloud": "gcp", "id": "gce-a2", "name": "a2-box", "location": "us-central1-a", "type": "a2-highgpu-1g",
     "state": "running", "tags": {"team": "ml-research"}, "hourly_cost": "3.67", "currency": "USD"},
    {"cloud": "gcp", "id": "gce-t4", "name": "n1-t4", "location": "us-central1-a", "type": "n1-standard-8",
     "accelerators": ["nvidia-tesla-t4"], "state": "running", "tags": {"team": "ml-research"},
     "hourly_cost": "0.73", "currency": "USD"},
    {"cloud": "gcp", "id": "gce-keep", "name": "protected", "type": "g2-standard-4", "state": "running",
     "tags": {"team": "ml-research", "burnguard-protect": "true"}},
    {"cloud": "azure", "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/nc",
     "name": "nc-a100", "location": "rg", "type": "Standard_NC24ads_A100_v4", "state": "running",
     "tags": {"Team": "ml-research"}, "hourly_cost": "3.40", "currency": "USD",
     "fail_stop": "AuthorizationFailed: the client has no permission to deallocate"},
    {"cloud": "azure", "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/old",
     "name": "stopped-one", "type": "Standard_NC6s_v3", "state": "stopped", "tags": {"team": "ml-research"}},
]


def item(cost: str, tags: dict[str, str], *, day: int = 10, hour: int = 0, cloud: str = "aws",
         gpu: bool = True, resource: str = "i-a100") -> dict[str, Any]:
    start = datetime(2024, 9, day, hour, tzinfo=UTC)
    return {
        "ProviderName": "AWS", "BillingAccountId": "1", "BillingPeriodStart": datetime(2024, 9, 1, tzinfo=UTC),
        "BillingPeriodEnd": datetime(2024, 10, 1, tzinfo=UTC), "ChargePeriodStart": start,
        "ChargePeriodEnd": start + timedelta(hours=1), "ChargeCategory": "Usage", "BilledCost": Decimal(cost),
        "EffectiveCost": Decimal(cost), "BillingCurrency": "USD", "ServiceName": "EC2", "ResourceId": resource,
        "Tags": list(tags.items()), "x_Cloud": cloud, "x_InstanceType": "p4d.24xlarge" if gpu else "m5.large",
        "x_AcceleratorClass": "gpu" if gpu else None,
    }


class Env:
    def __init__(self, tmp: Path, *, dry_run: bool = False, cap: int = 10):
        policy_text = POLICY.replace("DRY", "true" if dry_run else "false").replace("CAP", str(cap))
        self.policy = load_policy(policy_text, "policy.yaml")
        self.ledger = SqliteLedger(":memory:")
        self.notifier = ConsoleNotifier(quiet=True)
        (tmp / "inventory.json").write_text(json.dumps({"instances": INVENTORY}))
        inventory = InventoryFile(tmp / "state" / "inventory.json", seed=tmp / "inventory.json")
        self.inventory = inventory
        self.service = GuardrailService(self.policy, self.ledger, self.notifier,
                                        {c: InventoryController(c, inventory) for c in ("aws", "gcp", "azure")},
                                        clock=lambda: NOW)
        self.version = 0

    def deliver(self, rows: list[dict[str, Any]]) -> list[Any]:
        """One complete delivery (a new version of the same month-to-date snapshot)."""
        self.version += 1
        ref = DeliveryRef(delivery_id=stable_id("d", str(self.version)), provider="aws", source="cur",
                          billing_period="2024-09", version=str(self.version),
                          produced_at=datetime(2024, 9, 1, tzinfo=UTC) + timedelta(hours=self.version))
        table = pa.Table.from_pylist(rows, schema=SCHEMA)
        chunk = encode_chunk(ref, "f.csv", 0, table)
        totals = totals_of(table)
        summary = DeliverySummary(delivery=ref, files=[FileSummary(key="f.csv", chunks=1, totals=totals,
                                                                    rows_read=table.num_rows)], totals=totals)
        self.service.handle(chunk)
        return self.service.handle(encode_summary(summary)).reports

    def state(self, cloud: str, instance_id: str) -> str:
        return self.inventory.raw(cloud, instance_id)["state"]  # type: ignore[no-any-return]


ML = {"team": "ml-research", "project": "llm"}


def test_thresholds_are_announced_once_per_period(tmp_path: Path) -> None:
    env = Env(tmp_path)
    reports = env.deliver([item("600", ML)])
    assert [(r.decision.guardrail, r.decision.label) for r in reports] == [("ml-monthly", "50%"),
                                                                         ("per-project", "100%")]
    # The same spend again (a restated delivery), and a re-run: nothing new to say.
    assert env.deliver([item("600", ML)]) == []
    assert env.service.run() == []
    # Crossing 80%: one more alert, and only that one.
    reports = env.deliver([item("850", ML)])
    assert [r.decision.label for r in reports] == ["80%"]
    texts = [n.text for n in env.notifier.sent]
    assert len(texts) == 3 and "crossed 80% of its budget" in texts[-1] and "850.00 USD of 1,000.00 USD" in texts[-1]


def test_a_jump_over_several_thresholds_reports_the_highest_and_acts_on_all(tmp_path: Path) -> None:
    env = Env(tmp_path)
    [report, _project] = env.deliver([item("1300", ML)])
    d = report.decision
    assert d.label == "100%" and d.crossed == ("50%", "80%", "100%") and set(d.actions) == {"notify", "stop"}
    assert env.deliver([item("1400", ML)]) == []  # 50/80/100 all announced


def test_stop_obeys_scope_gpu_only_protect_tag_state_and_reports_partial_failure(tmp_path: Path) -> None:
    env = Env(tmp_path)
    [report, _project] = env.deliver([item("1000", ML)])
    stopped = {i.instance_id for i in report.stopped}
    assert stopped == {"i-a100", "i-g5", "gce-a2", "gce-t4"}
    assert {i.instance_id for i, _ in report.failed} == {INVENTORY[8]["id"]}
    reasons = {s.instance.instance_id: s.reason for s in report.skipped}
    assert "only GPU instances" in reasons["i-cpu"]
    assert "protected" in reasons["i-keep"] and "protected" in reasons["gce-keep"]
    assert "not running" in reasons[INVENTORY[9]["id"]]
    assert "i-other" not in reasons and "i-other" not in stopped  # another team is not even a candidate
    for cloud, iid in [("aws", "i-a100"), ("aws", "i-g5"), ("gcp", "gce-a2"), ("gcp", "gce-t4")]:
        assert env.state(cloud, iid) == "stopped"
    for cloud, iid in [("aws", "i-cpu"), ("aws", "i-keep"), ("aws", "i-other"), ("gcp", "gce-keep")]:
        assert env.state(cloud, iid) == "running"
    assert env.state("azure", INVENTORY[8]["id"]) == "running"
    kinds = [n.kind for n in env.notifier.sent]
    assert "failure" in kinds and "stop" in kinds
    failure = next(n for n in env.notifier.sent if n.kind == "failure")
    assert "AuthorizationFailed" in failure.text
    outcomes = {(e.details.get("instance"), e.outcome) for e in env.ledger.audit_log(limit=200) if e.kind == "action"}
    assert ("aws:i-a100", "ok") in outcomes and (f"azure:{INVENTORY[8]['id']}", "failed") in outcomes
    assert ("aws:i-keep", "skipped") in outcomes


def test_most_expensive_first_and_the_cap_per_run(tmp_path: Path) -> None:
    env = Env(tmp_path, cap=2)
    [report, _project] = env.deliver([item("1000", ML)])
    assert [i.instance_id for i in report.stopped] == ["i-a100", "gce-a2"]
    # Failed attempts count against the cap too; the Azure VM is next in line here.
    assert sum("cap of stops per run" in s.reason for s in report.skipped) == 3


def test_dry_run_decides_and_records_but_never_calls_the_cloud(tmp_path: Path) -> None:
    env = Env(tmp_path, dry_run=True)
    [report, _project] = env.deliver([item("1000", ML)])
    # The Azure VM that would refuse is listed too: a dry run never calls the cloud to find out.
    assert report.dry_run and {i.instance_id for i in report.stopped} == {"i-a100", "i-g5", "gce-a2", "gce-t4",
                                                                          INVENTORY[8]["id"]}
    assert report.failed == []
    assert all(inst["state"] == orig["state"] for inst, orig in
               zip(json.loads((tmp_path / "state" / "inventory.json").read_text())["instances"], INVENTORY, strict=True))
    assert env.ledger.stops(active_only=True) == []
    assert len(env.ledger.stops(active_only=False)) == 5
    assert "Would stop (dry-run)" in next(n.text for n in env.notifier.sent if n.kind == "stop")


def test_resume_starts_what_the_guardrail_stopped(tmp_path: Path) -> None:
    env = Env(tmp_path)
    env.deliver([item("1000", ML)])
    report = env.service.resume("ml-monthly", "U0ADMIN01")
    assert {r.instance_id for r in report.started} == {"i-a100", "i-g5", "gce-a2", "gce-t4"}
    assert env.state("aws", "i-a100") == "running" and env.ledger.stops("ml-monthly") == []
    assert env.service.resume("ml-monthly", "U0ADMIN01").started == []


def test_burn_rate_over_the_last_hours_of_data(tmp_path: Path) -> None:
    env = Env(tmp_path)
    inference = {"team": "inference"}
    rows = [item("12", inference, hour=h, resource="i-inf") for h in range(20, 24)]
    rows += [item("1", inference, hour=h, resource="i-inf", gpu=False) for h in range(20, 24)]  # not GPU
    [report] = [r for r in env.deliver(rows) if r.decision.guardrail == "inference-burn"]
    assert report.decision.rate is not None and report.decision.rate.amount == Decimal("12.00")
    assert env.deliver(rows) == []  # announced for that day of data


def test_the_same_native_budget_alert_ten_times_gives_one_alert(tmp_path: Path) -> None:
    env = Env(tmp_path)
    message = (Path(__file__).parents[1] / "fixtures/public/aws-budgets-sns/sre-bot.budget-message.txt").read_text()
    alert = parse_aws_budget_sns("AWS Budgets: Test Budget has exceeded your alert threshold", message,
                                 "2022-09-26T13:23:38.553Z")
    results = [env.service.handle(encode_budget_alert(alert, alert.alert_id)) for _ in range(10)]
    assert [len(r.reports) for r in results] == [1] + [0] * 9
    assert "Test Budget" in env.notifier.sent[0].text


def test_snooze_silences_a_guardrail_until_it_ends(tmp_path: Path) -> None:
    env = Env(tmp_path)
    env.ledger.snooze("ml-monthly", NOW + timedelta(hours=1), "U0ADMIN01", NOW)
    reports = env.deliver([item("600", ML)])
    assert [r.decision.guardrail for r in reports] == ["per-project"]


def test_status_says_when_spend_in_another_currency_is_not_compared(tmp_path: Path) -> None:
    from burnguard.services.status import guardrail_status

    env = Env(tmp_path)
    nok = item("300", ML, resource="i-nok")
    nok["BillingCurrency"] = "NOK"
    env.deliver([item("400", ML), nok])
    [row] = [s for s in guardrail_status(env.policy, env.ledger, NOW) if s.guardrail == "ml-monthly"]
    assert row.spend is not None and row.spend.amount == Decimal("400")
    assert "plus 300.00 NOK not compared (other currency)" in row.state
