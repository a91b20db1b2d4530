"""The estimated hourly saving of a stop (notify/saving.py): each instance at its effective cost
from the billing data when the ledger has it, never more than the burn a burn-rate stop stops."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from burnguard.core.instances import Instance
from burnguard.core.ledger import ResourceRow, Scope
from burnguard.core.money import Money
from burnguard.notify.saving import billed_as, estimate, rate_window
from burnguard.rules.decisions import Decision
from burnguard.services.guardrail import ExecutionReport

END = datetime(2024, 9, 21, tzinfo=UTC)
D = Decimal


def vm(cloud: str, iid: str, name: str, cost: str | None) -> Instance:
    return Instance(cloud, iid, name, "z", "p4d.24xlarge", "running", {"team": "inference"},
                    hourly_cost=D(cost) if cost else None, currency="USD" if cost else None)


def burn(hours: int = 6, rate: str = "20") -> Decision:
    return Decision("burn-rate", "burn", Scope("team", "inference"), "2024-09-20", "burn rate", ("stop",), ("k",),
                    rate=Money(D(rate), "USD"), limit=Money(D(10), "USD"), spend=Money(D(rate) * hours, "USD"),
                    window_start=END - timedelta(hours=hours), window_end=END, data_until=END)


def res(cloud: str, rid: str, amount: str, currency: str = "USD") -> ResourceRow:
    return ResourceRow(rid, cloud, "", True, currency, D(amount))


def test_a_burn_rate_stop_saves_each_instances_share_of_the_burn() -> None:
    covered = vm("aws", "i-sp", "covered", "32.77")  # on demand 32.77/h, a Savings Plan makes it 20.00
    gone = vm("gcp", "123", "no-data", "0.85")
    report = ExecutionReport(burn(), dry_run=False, stopped=[covered, gone])
    saving = estimate(report, [res("aws", "i-sp", "120"), res("aws", "i-other", "0.50"),
                               res("aws", "i-sp", "9", currency="EUR")])
    assert saving.amount == Money(D(20), "USD")  # 120 over 6 hours; EUR spend not mixed in
    assert saving.measured == ("covered",) and saving.outside == (("no-data", Money(D("0.85"), "USD")),)
    assert saving.amount.amount <= D(20)  # the burn


def test_a_budget_stop_prices_from_the_last_hour_of_data_else_on_demand() -> None:
    d = Decision("threshold", "ml", Scope("team", "ml"), "2024-09", "100%", ("stop",), ("k",),
                 spend=Money(D(1200), "USD"), budget=Money(D(1000), "USD"),
                 window_start=datetime(2024, 9, 1, tzinfo=UTC), window_end=datetime(2024, 10, 1, tzinfo=UTC),
                 data_until=END)
    assert rate_window(d) == (END - timedelta(hours=1), END)
    report = ExecutionReport(d, dry_run=False, stopped=[vm("aws", "i-1", "a", "5.672"), vm("aws", "i-2", "b", "1.5"),
                                                        vm("aws", "i-3", "c", None)])
    saving = estimate(report, [res("aws", "i-1", "3.97")])
    assert saving.amount == Money(D("5.47"), "USD") and saving.measured == ("a",) and saving.listed == ("b",)
    assert estimate(report, None).amount == Money(D("7.172"), "USD")  # no ledger: on-demand prices


def test_billing_resources_name_instances_in_each_clouds_way() -> None:
    gce = vm("gcp", "7730192846601183529", "infer-l4-1", None)
    assert billed_as(gce, res("gcp", "//compute.googleapis.com/projects/p/zones/z/instances/7730192846601183529", "1"))
    ref = vm("gcp", "p/us-central1-b/infer-l4-1", "infer-l4-1", None)  # the Compute Engine controller's id
    assert billed_as(ref, res("gcp", "//compute.googleapis.com/projects/p/zones/z/instances/infer-l4-1", "1"))
    arm = "/subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/vm-a"
    assert billed_as(vm("azure", arm, "vm-a", None), res("azure", arm.lower(), "1"))
    assert not billed_as(vm("aws", "i-1", "a", None), res("aws", "i-10", "1"))
    assert not billed_as(vm("aws", "i-1", "a", None), res("gcp", "i-1", "1"))
