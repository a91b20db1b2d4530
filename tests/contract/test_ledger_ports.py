"""The ledger contract, port by port: every method of SpendFacts, SpendQueries, OnceOnly,
AlertState, AuditLog, StopLog and EffectLog, on a handful of line items whose sums are written out by
hand (the oracle never asks burnguard). Every ledger adapter must pass this module."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from burnguard.core.facts import chunk_facts
from burnguard.core.ledger import AuditEvent, Scope, StopRecord, Window
from burnguard.core.lineitem import SCHEMA
from burnguard.core.messages import DeliveryRef, DeliverySummary, FileSummary, chunk_id, stable_id, totals_of
from burnguard.ports.ledger import Ledger

NOW = datetime(2024, 9, 30, 12, tzinfo=UTC)
SEPTEMBER = Window(date(2024, 9, 1), date(2024, 10, 1), ("2024-09",))
D = Decimal


def row(  # noqa: PLR0913 - a line item: one keyword per column a test varies
        day: int, hour: int, billed: str, effective: str, tags: dict[str, str], *, cloud: str = "aws",
        resource: str = "i-a", service: str = "EC2", currency: str = "USD", gpu: bool = True) -> dict[str, Any]:
    start = datetime(2024, 9, day, hour, tzinfo=UTC)
    return {
        "ProviderName": "AWS" if cloud == "aws" else "Google Cloud", "BillingAccountId": "1",
        "BillingPeriodStart": datetime(2024, 9, 1, tzinfo=UTC), "BillingPeriodEnd": datetime(2024, 10, 1, tzinfo=UTC),
        "ChargePeriodStart": start, "ChargePeriodEnd": start + timedelta(hours=1), "ChargeCategory": "Usage",
        "BilledCost": D(billed), "EffectiveCost": D(effective), "BillingCurrency": currency, "ServiceName": service,
        "ResourceId": resource, "Tags": list(tags.items()), "x_Cloud": cloud,
        "x_InstanceType": "p4d.24xlarge" if gpu else "m5.large", "x_AcceleratorClass": "gpu" if gpu else None,
    }


ML_LLM = {"team": "ml", "project": "llm"}
ROWS = [
    row(10, 0, "100", "90", ML_LLM),
    row(11, 5, "50", "40", ML_LLM),
    row(11, 5, "30", "30", {"team": "ml", "project": "vision"}, cloud="gcp", resource="vm-b",
        service="Compute Engine", gpu=False),
    row(12, 7, "20", "20", {"team": "web"}, resource="i-w", gpu=False),
    row(12, 8, "10", "10", ML_LLM, resource="i-e", currency="EUR"),
    row(12, 9, "5", "5", {}, resource="i-untagged", gpu=False),
]
#: The end of the latest hour of usage above (day 12, 09:00-10:00).
LATEST = datetime(2024, 9, 12, 10, tzinfo=UTC)


def delivery(version: str = "v1", produced_hour: int = 1) -> DeliveryRef:
    return DeliveryRef(delivery_id=stable_id("contract", version), provider="aws", source="aws-cur|1|r",
                       billing_period="2024-09", version=version,
                       produced_at=datetime(2024, 9, 13, produced_hour, tzinfo=UTC))


def summary_of(ref: DeliveryRef, table: pa.Table) -> DeliverySummary:
    totals = totals_of(table)
    return DeliverySummary(delivery=ref, files=[FileSummary(key="f.csv", chunks=1, totals=totals,
                                                            rows_read=table.num_rows)], totals=totals)


def load(ledger: Ledger, rows: list[dict[str, Any]] = ROWS, ref: DeliveryRef | None = None) -> DeliveryRef:
    ref = ref or delivery()
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    ledger.add_chunk(chunk_id(ref.delivery_id, "f.csv", 0), ref, totals_of(table), chunk_facts(table), NOW)
    ledger.add_summary(summary_of(ref, table), NOW)
    assert ledger.complete(ref.delivery_id, NOW).status == "complete"
    return ref


# -- SpendFacts ---------------------------------------------------------------------------------

def test_chunks_and_summaries_are_stored_once_and_complete_switches_once(ledger: Ledger) -> None:
    ref = delivery()
    table = pa.Table.from_pylist(ROWS, schema=SCHEMA)
    cid = chunk_id(ref.delivery_id, "f.csv", 0)
    assert ledger.complete("no-such-delivery", NOW).status == "unknown"
    assert ledger.add_chunk(cid, ref, totals_of(table), chunk_facts(table), NOW) is True
    assert ledger.add_chunk(cid, ref, totals_of(table), chunk_facts(table), NOW) is False
    assert ledger.complete(ref.delivery_id, NOW).status == "waiting"  # no summary yet
    assert ledger.add_summary(summary_of(ref, table), NOW) is True
    assert ledger.add_summary(summary_of(ref, table), NOW) is False
    first = ledger.complete(ref.delivery_id, NOW)
    assert (first.status, first.switched, first.replaced) == ("complete", True, None)
    again = ledger.complete(ref.delivery_id, NOW + timedelta(minutes=1))
    assert (again.status, again.switched) == ("complete", False)
    [status] = ledger.deliveries()
    assert status.counted and status.status == "complete" and status.rows == len(ROWS)
    assert status.delivery.delivery_id == ref.delivery_id and status.received_at == NOW


def test_a_newer_snapshot_replaces_the_older_one_and_says_so(ledger: Ledger) -> None:
    old = load(ledger, ROWS[:1], delivery("v1", 1))
    new = delivery("v2", 2)
    table = pa.Table.from_pylist(ROWS[1:2], schema=SCHEMA)
    ledger.add_chunk(chunk_id(new.delivery_id, "f.csv", 0), new, totals_of(table), chunk_facts(table), NOW)
    ledger.add_summary(summary_of(new, table), NOW)
    done = ledger.complete(new.delivery_id, NOW)
    assert (done.status, done.switched, done.replaced) == ("complete", True, old.delivery_id)
    assert [d.delivery.version for d in ledger.deliveries()] == ["v2"]
    assert {d.delivery.version: d.counted for d in ledger.deliveries(include_superseded=True)} == {
        "v1": False, "v2": True}
    [ml] = ledger.spend(Scope("team", "ml"), SEPTEMBER)
    assert ml.amount == D("40")  # v2 only, not 90 + 40


# -- SpendQueries -------------------------------------------------------------------------------

def amounts(rows: list[Any]) -> dict[tuple[str | None, str], tuple[Decimal, Decimal]]:
    return {(r.scope_value, r.currency): (r.amount, r.gpu_amount) for r in rows}


def test_spend_per_scope_value_and_currency_with_its_gpu_part(ledger: Ledger) -> None:
    load(ledger)
    assert amounts(ledger.spend(Scope("team"), SEPTEMBER)) == {
        ("ml", "USD"): (D(90 + 40 + 30), D(90 + 40)), ("ml", "EUR"): (D(10), D(10)), ("web", "USD"): (D(20), D(0))}
    assert amounts(ledger.spend(Scope("team"), SEPTEMBER, basis="billed")) == {
        ("ml", "USD"): (D(100 + 50 + 30), D(100 + 50)), ("ml", "EUR"): (D(10), D(10)), ("web", "USD"): (D(20), D(0))}
    assert amounts(ledger.spend(Scope("team", "ml"), SEPTEMBER, clouds=["gcp"])) == {("ml", "USD"): (D(30), D(0))}
    assert amounts(ledger.spend(Scope("team", "web"), SEPTEMBER)) == {("web", "USD"): (D(20), D(0))}
    assert ledger.spend(Scope("team"), Window(date(2024, 8, 1), date(2024, 9, 1))) == []


def test_daily_spend_per_value_day_and_currency(ledger: Ledger) -> None:
    load(ledger)
    assert ledger.daily(Scope("team", "ml"), SEPTEMBER) == {
        "ml": {date(2024, 9, 10): {"USD": D(90)}, date(2024, 9, 11): {"USD": D(40 + 30)},
               date(2024, 9, 12): {"EUR": D(10)}}}
    eleventh = Window(date(2024, 9, 11), date(2024, 9, 12))
    assert ledger.daily(Scope("team"), eleventh, basis="billed") == {"ml": {date(2024, 9, 11): {"USD": D(50 + 30)}}}


def test_gpu_spend_per_hour_from_a_time_on(ledger: Ledger) -> None:
    load(ledger)
    assert ledger.gpu_hourly(Scope("team"), datetime(2024, 9, 1, tzinfo=UTC)) == {
        "ml": {datetime(2024, 9, 10, 0, tzinfo=UTC): {"USD": D(90)},
               datetime(2024, 9, 11, 5, tzinfo=UTC): {"USD": D(40)},
               datetime(2024, 9, 12, 8, tzinfo=UTC): {"EUR": D(10)}}}
    assert ledger.gpu_hourly(Scope("team", "ml"), datetime(2024, 9, 11, tzinfo=UTC), clouds=["aws"]) == {
        "ml": {datetime(2024, 9, 11, 5, tzinfo=UTC): {"USD": D(40)},
               datetime(2024, 9, 12, 8, tzinfo=UTC): {"EUR": D(10)}}}
    assert ledger.gpu_hourly(Scope("team", "web"), datetime(2024, 9, 1, tzinfo=UTC)) == {}


def test_top_resources_most_expensive_first(ledger: Ledger) -> None:
    load(ledger)
    top = ledger.top_resources(Scope("team", "ml"), SEPTEMBER)
    assert [(r.resource_id, r.cloud, r.gpu, r.currency, r.amount) for r in top] == [
        ("i-a", "aws", True, "USD", D(130)), ("vm-b", "gcp", False, "USD", D(30)), ("i-e", "aws", True, "EUR", D(10))]
    assert [r.resource_id for r in ledger.top_resources(Scope("team", "ml"), SEPTEMBER, limit=1)] == ["i-a"]
    assert [r.resource_id for r in ledger.top_resources(Scope("team"), SEPTEMBER, gpu_only=True)] == ["i-a", "i-e"]
    assert [r.amount for r in ledger.top_resources(Scope("team", "ml"), SEPTEMBER, basis="billed", limit=1)] == [
        D(150)]


def test_gpu_spend_per_resource_over_hours(ledger: Ledger) -> None:
    """Hourly GPU facts per resource over ``[start, end)``: two more GPU resources on the 11th at
    06:00 (one on AWS, one on Google Cloud); sums by hand from the rows."""
    vm = "//compute.googleapis.com/projects/p/zones/z/instances/42"
    load(ledger, [*ROWS, row(11, 6, "12", "8", ML_LLM, resource="i-b"),
                  row(11, 6, "7", "7", {"team": "ml"}, cloud="gcp", resource=vm, service="Compute Engine")])
    eleventh = (datetime(2024, 9, 11, tzinfo=UTC), datetime(2024, 9, 12, tzinfo=UTC))

    def got(rows: list[Any]) -> list[tuple[str, str, str, bool, str, Decimal]]:
        return [(r.resource_id, r.cloud, r.instance_type, r.gpu, r.currency, r.amount) for r in rows]

    assert got(ledger.gpu_by_resource(Scope("team", "ml"), *eleventh)) == [
        ("i-a", "aws", "", True, "USD", D(40)), ("i-b", "aws", "", True, "USD", D(8)),
        (vm, "gcp", "", True, "USD", D(7))]
    assert got(ledger.gpu_by_resource(Scope("team", "ml"), *eleventh, basis="billed")) == [
        ("i-a", "aws", "", True, "USD", D(50)), ("i-b", "aws", "", True, "USD", D(12)),
        (vm, "gcp", "", True, "USD", D(7))]
    # The end is excluded: 05:00-06:00 holds i-a's hour only.
    five = datetime(2024, 9, 11, 5, tzinfo=UTC)
    assert got(ledger.gpu_by_resource(Scope("team"), five, five + timedelta(hours=1))) == [
        ("i-a", "aws", "", True, "USD", D(40))]
    assert got(ledger.gpu_by_resource(Scope("team", "ml"), *eleventh, clouds=["gcp"])) == [
        (vm, "gcp", "", True, "USD", D(7))]
    # The whole month, every value of the key: i-a 90 + 40; i-e 10 EUR; non-GPU rows never.
    assert got(ledger.gpu_by_resource(Scope("team"), datetime(2024, 9, 1, tzinfo=UTC),
                                      datetime(2024, 10, 1, tzinfo=UTC))) == [
        ("i-a", "aws", "", True, "USD", D(130)), ("i-e", "aws", "", True, "EUR", D(10)),
        ("i-b", "aws", "", True, "USD", D(8)), (vm, "gcp", "", True, "USD", D(7))]
    assert ledger.gpu_by_resource(Scope("team", "web"), *eleventh) == []


def test_spend_by_cloud_and_service(ledger: Ledger) -> None:
    load(ledger)
    got = {(s.cloud, s.service, s.currency): s.amount for s in ledger.by_service(Scope("team"), SEPTEMBER)}
    assert got == {("aws", "EC2", "USD"): D(90 + 40 + 20), ("gcp", "Compute Engine", "USD"): D(30),
                   ("aws", "EC2", "EUR"): D(10)}
    assert [s.amount for s in ledger.by_service(Scope("team"), SEPTEMBER)] == [D(150), D(30), D(10)]
    assert {s.amount for s in ledger.by_service(Scope("team", "web"), SEPTEMBER, basis="billed")} == {D(20)}


def test_top_values_of_a_tag_key(ledger: Ledger) -> None:
    load(ledger)
    top = ledger.top_tag_values("project", SEPTEMBER)
    assert [(r.scope_value, r.currency, r.amount, r.gpu_amount) for r in top] == [
        ("llm", "USD", D(130), D(130)), ("vision", "USD", D(30), D(0)), ("llm", "EUR", D(10), D(10))]
    assert [r.scope_value for r in ledger.top_tag_values("project", SEPTEMBER, limit=1)] == ["llm"]
    assert [r.amount for r in ledger.top_tag_values("team", SEPTEMBER, basis="billed", limit=1)] == [D(180)]
    assert ledger.top_tag_values("owner", SEPTEMBER) == []


def test_latest_data_is_the_end_of_the_last_counted_hour(ledger: Ledger) -> None:
    assert ledger.latest_data() is None
    load(ledger)
    assert ledger.latest_data() == LATEST


# -- OnceOnly and AlertState --------------------------------------------------------------------

def test_a_key_is_announced_once_and_found_by_its_prefix(ledger: Ledger) -> None:
    t1, t2 = NOW, NOW + timedelta(hours=1)
    assert ledger.announce("threshold|g|team=a|2024-09|80%", t1, {"spend": "4100"}) is True
    assert ledger.announce("threshold|g|team=a|2024-09|80%", t2, {}) is False
    assert ledger.announce("threshold|g|team=a|2024-09|100%", t2, {}) is True
    assert ledger.announce("threshold|g2|team=a|2024-09|80%", t2, {}) is True
    assert ledger.announced("threshold|g|team=a|2024-09|") == {
        "threshold|g|team=a|2024-09|80%": t1, "threshold|g|team=a|2024-09|100%": t2}
    assert ledger.announced("threshold|g|").keys() == {"threshold|g|team=a|2024-09|80%",
                                                        "threshold|g|team=a|2024-09|100%"}
    assert ledger.announced("slash|") == {}


# -- AuditLog -----------------------------------------------------------------------------------

def test_the_audit_log_returns_the_latest_first_filtered_and_limited(ledger: Ledger) -> None:
    events = [AuditEvent(NOW + timedelta(minutes=i), "action", "guardrail", "ok", f"g{i % 2}", "team=a",
                         {"instance": f"aws:i-{i}", "n": i, "nested": {"list": [1, "two"]}}) for i in range(5)]
    for e in events:
        ledger.audit(e)
    ledger.audit(AuditEvent(NOW, "command", "U01", "refused"))
    log = ledger.audit_log()
    assert log[0] == AuditEvent(NOW, "command", "U01", "refused", None, None, {})
    assert log[1:] == events[::-1]
    assert ledger.audit_log(limit=2) == log[:2]
    assert ledger.audit_log(guardrail="g1") == [events[3], events[1]]
    assert all(e.at.tzinfo is not None for e in log)


# -- StopLog ------------------------------------------------------------------------------------

def stop(instance_id: str, minutes: int, *, guardrail: str = "g", dry_run: bool = False,
         cost: str | None = "32.77") -> StopRecord:
    return StopRecord(guardrail, "team=ml", "aws", instance_id, f"name-{instance_id}", "us-east-1", "p4d.24xlarge",
                      NOW + timedelta(minutes=minutes), dry_run, D(cost) if cost else None, "USD" if cost else None)


def test_stops_are_listed_in_order_and_resumed_ones_leave_the_active_list(ledger: Ledger) -> None:
    a, b, dry, other = stop("i-a", 2), stop("i-b", 1, cost=None), stop("i-c", 3, dry_run=True), stop(
        "i-d", 0, guardrail="h")
    for record in (a, b, dry, other):
        ledger.record_stop(record)
    assert ledger.stops("g") == [b, a]  # active: not dry-run, not resumed; oldest first
    assert ledger.stops("g", active_only=False) == [b, a, dry]
    assert ledger.stops() == [other, b, a]
    assert ledger.stops("g")[1].hourly_cost == D("32.77")
    resumed_at = NOW + timedelta(hours=2)
    ledger.mark_resumed("g", "aws", "i-a", resumed_at)
    assert ledger.stops("g") == [b]
    [_, again, _] = ledger.stops("g", active_only=False)
    assert again.instance_id == "i-a" and again.resumed_at == resumed_at
    ledger.mark_resumed("g", "aws", "i-a", resumed_at + timedelta(hours=1))  # a second resume changes nothing
    assert ledger.stops("g", active_only=False)[1].resumed_at == resumed_at
    ledger.mark_resumed("h", "aws", "i-b", resumed_at)  # another guardrail's record of the same id: untouched
    assert ledger.stops("g") == [b]


def test_a_snooze_is_kept_per_guardrail_and_the_latest_wins(ledger: Ledger) -> None:
    assert ledger.snoozed_until("g") is None
    ledger.snooze("g", NOW + timedelta(hours=4), "U01", NOW)
    assert ledger.snoozed_until("g") == NOW + timedelta(hours=4)
    ledger.snooze("g", NOW + timedelta(hours=1), "U02", NOW + timedelta(minutes=5))
    assert ledger.snoozed_until("g") == NOW + timedelta(hours=1)
    assert ledger.snoozed_until("h") is None


def test_the_effect_log_claims_a_crossing_once_and_resumes_what_is_pending(ledger: Ledger) -> None:
    # GIVEN a crossing nobody claimed
    assert ledger.claim("threshold|g|team=ml|2024-09|100%", NOW, {"label": "100%"}) == "new"
    assert ledger.claim("threshold|g|team=ml|2024-09|100%", NOW, {"label": "100%"}) == "pending"
    assert ledger.effects("threshold|g|team=ml|2024-09|100%") == {}
    key = "threshold|g|team=ml|2024-09|100%"
    # WHEN effects begin: each once
    assert ledger.begin_effect(key, "stop:aws:i-a", NOW, {"instance": {"id": "i-a"}}) is True
    assert ledger.begin_effect(key, "stop:aws:i-a", NOW, {"instance": {"id": "i-a"}}) is False
    assert ledger.begin_effect(key, "notify", NOW, {"kind": "threshold"}) is True
    assert {e: v["state"] for e, v in ledger.effects(key).items()} == {"stop:aws:i-a": "pending", "notify": "pending"}
    # a pending effect that did not happen can be dropped; a done one stays
    ledger.drop_effect(key, "notify")
    assert set(ledger.effects(key)) == {"stop:aws:i-a"}
    event = AuditEvent(NOW, "action", "guardrail", "ok", "g", "team=ml", {"instance": "aws:i-a"})
    stop = StopRecord("g", "team=ml", "aws", "i-a", "a", "us-east-1", "p4d.24xlarge", NOW, False, D("32.77"), "USD")
    assert ledger.complete_effect(key, "stop:aws:i-a", "ok", NOW, details={"instance": {"id": "i-a"}},
                                  audit=event, stop=stop) is True
    assert ledger.complete_effect(key, "stop:aws:i-a", "ok", NOW, details={"instance": {"id": "i-a"}},
                                  audit=event, stop=stop) is False
    ledger.drop_effect(key, "stop:aws:i-a")
    done = ledger.effects(key)["stop:aws:i-a"]
    assert (done["state"], done["outcome"], done["details"]) == ("done", "ok", {"instance": {"id": "i-a"}})
    # THEN completing wrote the audit event and the stop record exactly once
    assert [e.details for e in ledger.audit_log(guardrail="g")] == [{"instance": "aws:i-a"}]
    assert [(s.instance_id, s.hourly_cost) for s in ledger.stops("g")] == [("i-a", D("32.77"))]
    # an unsettled claim is listed with its effects and is no announcement yet
    assert list(ledger.pending_claims()) == [key]
    assert set(ledger.pending_claims()[key]["effects"]) == {"stop:aws:i-a"}
    assert ledger.announced("threshold|g|") == {}
    # settling announces the key and the others its decision reports, once
    ledger.settle(key, NOW, ["threshold|g|team=ml|2024-09|80%"])
    ledger.settle(key, NOW, ["threshold|g|team=ml|2024-09|80%"])
    assert set(ledger.announced("threshold|g|")) == {key, "threshold|g|team=ml|2024-09|80%"}
    assert ledger.pending_claims() == {}
    assert ledger.claim(key, NOW, {}) == "settled"
    # a key announced directly is settled for the effect log too
    assert ledger.announce("burn|g|team=web|2024-09-12", NOW, {}) is True
    assert ledger.claim("burn|g|team=web|2024-09-12", NOW, {}) == "settled"


def test_settling_a_decision_that_reports_many_crossings_announces_each_once(ledger: Ledger) -> None:
    # GIVEN a `project=*` decision crossing 600 projects at once (more than one Firestore commit
    # takes), one of them announced an hour earlier by another path
    key = "threshold|p|project=p000|2024-09|100%"
    others = [f"threshold|p|project=p{i:03d}|2024-09|100%" for i in range(1, 601)]
    earlier = NOW - timedelta(hours=1)
    assert ledger.announce(others[-1], earlier, {}) is True
    assert ledger.claim(key, NOW, {"label": "100%"}) == "new"
    # WHEN it settles (twice: a retry)
    ledger.settle(key, NOW, others)
    ledger.settle(key, NOW + timedelta(minutes=5), others)
    # THEN every crossing is announced once, the earlier announcement keeps its time
    announced = ledger.announced("threshold|p|")
    assert set(announced) == {key, *others}
    assert announced[others[-1]] == earlier
    assert {at for k, at in announced.items() if k != others[-1]} == {NOW}
    assert ledger.pending_claims() == {} and ledger.claim(key, NOW, {}) == "settled"


def test_every_method_of_every_ledger_port_is_called_in_this_module() -> None:
    """Guards the contract against a port that grows a method no contract test calls."""
    from burnguard.ports import ledger as port

    protocols = (port.SpendFacts, port.SpendQueries, port.OnceOnly, port.AlertState, port.AuditLog, port.StopLog,
                 port.EffectLog)
    declared = {name for proto in protocols for name in vars(proto) if callable(vars(proto)[name])
                and not name.startswith("_")}
    assert len(declared) == 28
    source = Path(__file__).read_text()
    assert {m for m in declared if f".{m}(" not in source} == set()
    union = {name for name in dir(port.Ledger) if not name.startswith("_")}
    assert union == declared
    # the live estimate's port: called in test_estimates_contract.py
    estimate = {name for proto in (port.EstimateLog, port.EstimateView, port.BilledRates)
                for name in vars(proto) if callable(vars(proto)[name]) and not name.startswith("_")}
    assert len(estimate) == 10
    estimates_source = (Path(__file__).parent / "test_estimates_contract.py").read_text()
    assert {m for m in estimate if f".{m}(" not in estimates_source} == set()
    assert {name for name in dir(port.EstimateLog) if not name.startswith("_")} == estimate
