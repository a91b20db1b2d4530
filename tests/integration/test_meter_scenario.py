"""The live estimate end to end on the embedded mode, on a simulated clock (issue #16's proof).

Friday 2026-12-04 18:00 UTC: six GPU instances of team ml-research start. The last billing
delivery (a real AWS CUR file, ingested through the real pipeline) covers up to Friday 12:00.
The meter ticks every five minutes over the inventory controller and the SQLite ledger; the
budget's 100% threshold is crossed by estimate on Saturday and the fleet is stopped at the
first tick after the crossing. Monday's delivery is counted: the estimates of the hours it
covers drop out, the totals equal the bill alone, and the estimate's error is reported.

Oracles are computed here from the test's own constants and the CSV rows written, never by
burnguard.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
from burnguard.core.estimates import Rate as EstRate
from burnguard.core.estimates import Reading
from burnguard.core.ledger import Scope, Window
from burnguard.core.policy import load_policy
from burnguard.ports.instances import InstanceController
from burnguard.services.guardrail import GuardrailService
from burnguard.services.meter import EstimatingLedger, MeterService, next_tick
from tests.deliveries import delivery_ref, messages_for

FRI_NOON = datetime(2026, 12, 4, 12, tzinfo=UTC)
START = datetime(2026, 12, 4, 18, tzinfo=UTC)
MONTH = datetime(2026, 12, 1, tzinfo=UTC)
TEAM = {"team": "ml-research"}
SP_RATE = Decimal("20.00")  # i-sp01's effective rate under its Savings Plan
P4D = Decimal("32.7726")  # public on-demand
P5 = Decimal("98.32")
G6 = Decimal("13.3504")  # the shipped table's list prices
G5 = Decimal("16.288")
# The fleet: (id, type, the rate burnguard should estimate it at, its source, what the bill will say)
FLEET = [
    ("i-sp01", "p4d.24xlarge", SP_RATE, "billing:instance", SP_RATE),
    ("i-0002", "p4d.24xlarge", (SP_RATE + P4D) / 2, "billing:type", P4D),  # mean of the type's billed rates
    ("i-0003", "p5.48xlarge", P5, "billing:type", P5),
    ("i-0004", "g6.48xlarge", G6, "price-table", G6),  # a type absent from the billing data
    ("i-0005", "g5.48xlarge", G5, "price-table", G5 * Decimal("0.9")),  # negotiated discount in the bill
    ("i-0006", "p5.48xlarge", P5, "billing:type", P5),
]
BUDGET = Decimal(8000)

POLICY = """
version: 1
safety: {dry_run: false, max_stops_per_run: 20}
slack: {channel: "#gpu-spend"}
guardrails:
  - name: ml-research
    scope: team=ml-research
    budget: 8000 USD
    thresholds:
      - {at: 80%, actions: [notify]}
      - {at: 100%, actions: [notify, stop]}
"""

COLUMNS = ["identity/LineItemId", "bill/PayerAccountId", "bill/BillingPeriodStartDate", "bill/BillingPeriodEndDate",
           "lineItem/UsageAccountId", "lineItem/LineItemType", "lineItem/UsageStartDate", "lineItem/UsageEndDate",
           "lineItem/ProductCode", "lineItem/UsageType", "lineItem/ResourceId", "lineItem/UsageAmount",
           "lineItem/CurrencyCode", "lineItem/UnblendedCost", "product/instanceType",
           "savingsPlan/SavingsPlanEffectiveCost", "resourceTags/user:team"]


@dataclass
class MakeLedger:
    """Opens the scenario's ledger; ``every``: the meter's interval on it (five minutes on
    SQLite; hourly on the Firestore emulator, where a tick takes ~0.1 s: the same story in a
    twelfth of the ticks, so the suite stays lean)."""

    make: Callable[[], EstimatingLedger]
    every: timedelta

    def __call__(self) -> EstimatingLedger:
        return self.make()


@pytest.fixture(params=["sqlite", pytest.param("firestore", marks=pytest.mark.emulator)])
def make_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeLedger]:
    """The scenario on the embedded SQLite ledger and on the cloud's Firestore ledger (the
    Firestore emulator, wiped per test)."""
    opened: list[Any] = []

    def make() -> EstimatingLedger:
        ledger: EstimatingLedger
        if request.param == "sqlite":
            ledger = SqliteLedger(tmp_path / "ledger.sqlite")
        else:
            from google.cloud import firestore as gcf

            from burnguard.adapters.gcp.firestore import FirestoreLedger

            emulator = request.getfixturevalue("firestore")
            client = gcf.Client(project=emulator.project)
            opened.append(client)
            ledger = FirestoreLedger(client, prefix="meter_")
        opened.append(ledger)
        return ledger

    yield MakeLedger(make, timedelta(minutes=5) if request.param == "sqlite" else timedelta(hours=1))
    for thing in reversed(opened):
        thing.close()


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _row(n: int, rid: str, itype: str, start: datetime, hours: Decimal, cost: Decimal, *,  # noqa: PLR0913
         sp: Decimal | None = None, team: str = "ml-research", product: str = "AmazonEC2") -> dict[str, str]:
    return {"identity/LineItemId": f"li{n}", "bill/PayerAccountId": "123456789012",
            "bill/BillingPeriodStartDate": "2026-12-01T00:00:00Z", "bill/BillingPeriodEndDate": "2027-01-01T00:00:00Z",
            "lineItem/UsageAccountId": "123456789012",
            "lineItem/LineItemType": "SavingsPlanCoveredUsage" if sp is not None else "Usage",
            "lineItem/UsageStartDate": _iso(start), "lineItem/UsageEndDate": _iso(start + timedelta(hours=1)),
            "lineItem/ProductCode": product, "lineItem/UsageType": f"BoxUsage:{itype}" if itype else "TimedStorage",
            "lineItem/ResourceId": rid, "lineItem/UsageAmount": str(hours), "lineItem/CurrencyCode": "USD",
            "lineItem/UnblendedCost": str(cost), "product/instanceType": itype,
            "savingsPlan/SavingsPlanEffectiveCost": str(sp) if sp is not None else "", "resourceTags/user:team": team}


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return path


def _hours(start: datetime, end: datetime) -> list[tuple[datetime, Decimal]]:
    """Clock hours of ``[start, end)`` with the used fraction of each."""
    out, hour = [], start.replace(minute=0, second=0)
    while hour < end:
        lo, hi = max(start, hour), min(end, hour + timedelta(hours=1))
        out.append((hour, Decimal(int((hi - lo).total_seconds())) / 3600))
        hour += timedelta(hours=1)
    return out


def _friday_bill(tmp: Path) -> tuple[Path, Decimal]:
    """The month to Friday 12:00: i-sp01 under its Savings Plan and two on-demand instances
    (one p4d, one p5) that stopped at noon; storage every hour. Returns the file and its
    effective total of team ml-research."""
    rows, team, n = [], Decimal(0), 0
    for hour, _ in _hours(datetime(2026, 12, 4, 0, tzinfo=UTC), FRI_NOON):
        for rid, itype, cost, sp in (("i-sp01", "p4d.24xlarge", P4D, SP_RATE), ("i-old1", "p4d.24xlarge", P4D, None),
                                     ("i-old2", "p5.48xlarge", P5, None)):
            n += 1
            rows.append(_row(n, rid, itype, hour, Decimal(1), cost, sp=sp))
            team += sp if sp is not None else cost
        n += 1
        rows.append(_row(n, "bucket-1", "", hour, Decimal(1), Decimal("0.5"), team="data", product="AmazonS3"))
    return _write(tmp / "cur-friday.csv", rows), team


def _monday_bill(tmp: Path, stopped_at: datetime, friday_rows: Path) -> tuple[Path, Decimal]:
    """Month to Monday 00:00: Friday's rows, and the fleet from 18:00 to its stop at the rates
    the bill really charges (partial last hour); storage every hour to Monday."""
    with friday_rows.open() as f:
        rows = list(csv.DictReader(f))
    team = sum((Decimal(r["savingsPlan/SavingsPlanEffectiveCost"] or r["lineItem/UnblendedCost"])
                for r in rows if r["resourceTags/user:team"] == "ml-research"), Decimal(0))
    n = len(rows)
    for rid, itype, _, _, billed in FLEET:
        for hour, frac in _hours(START, stopped_at):
            n += 1
            sp = billed * frac if rid == "i-sp01" else None
            rows.append(_row(n, rid, itype, hour, frac, (P4D if rid == "i-sp01" else billed) * frac, sp=sp))
            team += billed * frac
    for hour, _ in _hours(FRI_NOON, datetime(2026, 12, 7, tzinfo=UTC)):
        n += 1
        rows.append(_row(n, "bucket-1", "", hour, Decimal(1), Decimal("0.5"), team="data", product="AmazonS3"))
    return _write(tmp / "cur-monday.csv", rows), team


def _inventory(tmp: Path) -> Path:
    instances = [{"cloud": "aws", "id": rid, "name": rid, "location": "us-east-1a", "type": itype,
                  "state": "running", "tags": TEAM, "started_at": _iso(START)} for rid, itype, *_ in FLEET]
    instances += [
        {"cloud": "aws", "id": "i-old1", "name": "old1", "location": "us-east-1a", "type": "p4d.24xlarge",
         "state": "stopped", "tags": TEAM, "started_at": "2026-12-01T00:00:00Z", "stopped_at": _iso(FRI_NOON)},
        {"cloud": "aws", "id": "i-old2", "name": "old2", "location": "us-east-1a", "type": "p5.48xlarge",
         "state": "stopped", "tags": TEAM, "started_at": "2026-12-01T00:00:00Z", "stopped_at": _iso(FRI_NOON)},
        {"cloud": "aws", "id": "i-other", "name": "other", "location": "us-east-1a", "type": "p5.48xlarge",
         "state": "running", "tags": {"team": "search"}, "started_at": _iso(START)},
    ]
    path = tmp / "inventory.json"
    path.write_text(json.dumps({"instances": instances}))
    return path


def _count(service: GuardrailService, path: Path, version: str, produced: datetime) -> None:
    for m in messages_for(delivery_ref(version, source="aws-cur|123456789012|cur", period="2026-12",
                                       produced_at=produced), [path]):
        service.handle(m)


@dataclass
class World:
    clock: Clock
    ledger: EstimatingLedger
    controllers: dict[str, InstanceController]
    notifier: ConsoleNotifier
    guardrail: GuardrailService
    meter: MeterService
    friday: Path
    billed_friday: Decimal


def _world(tmp_path: Path, make_ledger: MakeLedger) -> World:
    """The fleet in the inventory, the policy, the meter; Friday's delivery counted at 14:00."""
    clock = Clock(FRI_NOON + timedelta(hours=2))
    policy = load_policy(POLICY)
    ledger = make_ledger()
    inventory = InventoryFile(tmp_path / "state.json", seed=_inventory(tmp_path))
    controllers: dict[str, InstanceController] = {"aws": InventoryController("aws", inventory, clock=clock)}
    notifier = ConsoleNotifier(stream=StringIO())
    guardrail = GuardrailService(policy, ledger, notifier, controllers, clock=clock)
    guardrail.estimates = ledger
    meter = MeterService(policy, ledger, controllers, load_prices(), guardrail, clock=clock)
    friday, billed_friday = _friday_bill(tmp_path)
    _count(guardrail, friday, "fri", FRI_NOON + timedelta(hours=2))
    assert ledger.coverage() == {"aws": FRI_NOON}
    return World(clock, ledger, controllers, notifier, guardrail, meter, friday, billed_friday)


def test_friday_fleet_is_stopped_on_saturday_and_the_bill_wins_on_monday(  # noqa: PLR0915
        tmp_path: Path, make_ledger: MakeLedger) -> None:
    w = _world(tmp_path, make_ledger)
    clock, ledger, controllers, notifier, guardrail, meter = (w.clock, w.ledger, w.controllers, w.notifier,
                                                               w.guardrail, w.meter)
    friday, billed_friday = w.friday, w.billed_friday
    every = make_ledger.every

    # The oracle: the first tick (every five minutes; hourly on Firestore) at which bill + estimate
    # reaches the budget.
    fleet_rate = sum((rate for _, _, rate, _, _ in FLEET), Decimal(0))
    t = START
    while billed_friday + fleet_rate * Decimal(int((t - START).total_seconds())) / 3600 < BUDGET:
        t += every
    expected_stop = t
    assert expected_stop.weekday() == 5  # Saturday

    # The meter: every five minutes from Friday 18:00, with a three-hour outage Friday night
    # (it catches up), a repeated tick, a late tick from a skewed clock, and a second meter
    # racing the first (overlapping readings).
    clock.at = START
    first = meter.tick()
    assert first.running == 6 and first.read == 8 and not first.unpriced  # i-other is not in scope
    assert first.accrued == {}  # started this instant: nothing yet
    twin = MeterService(w.meter.policy, ledger, controllers, load_prices(), guardrail, clock=clock)
    outage = (datetime(2026, 12, 4, 22, tzinfo=UTC), datetime(2026, 12, 5, 1, tzinfo=UTC))
    stopped_at = None
    while clock.at < datetime(2026, 12, 7, 9, tzinfo=UTC):
        clock.at += every
        if outage[0] < clock.at < outage[1]:
            continue
        report = meter.tick()
        if clock.at == datetime(2026, 12, 4, 20, tzinfo=UTC):
            assert meter.tick().accrued == {}  # the same tick again adds nothing
            assert twin.tick().accrued == {}  # nor does a second meter at the same time
            clock.at -= timedelta(minutes=3)
            assert meter.tick().accrued == {}  # a reading from a clock 3 minutes behind adds nothing
            clock.at += timedelta(minutes=3)
        if clock.at == outage[1]:  # caught up: 3 hours of the fleet in one tick
            assert report.accrued == {"USD": fleet_rate * 3}
        if report.reports and any(r.stopped for r in report.reports):
            stopped_at = clock.at
            stop = next(r for r in report.reports if r.stopped)
            assert len(stop.stopped) == 6
            assert stop.decision.estimated is not None and stop.decision.estimated_share is not None
            text = notifier.sent[-1].text
            assert "Triggered with estimates" in text and f"({stop.decision.estimated_share}%)" in text
        if stopped_at is None and clock.at == datetime(2026, 12, 5, 9, tzinfo=UTC):
            (proj,) = report.projections  # "at 272.67 USD/h, 100% at Sat ..." before the crossing
            assert proj.rate.amount == fleet_rate and proj.label == "100%"
            assert proj.at is not None and expected_stop - every <= proj.at <= expected_stop
        if stopped_at is not None and clock.at > stopped_at:
            assert report.running == 0 and report.accrued == {}  # stopped instances accrue nothing

    assert stopped_at == expected_stop
    # The 80% alert (by estimate) said when 100% would be crossed at the fleet's rate: in Slack.
    (alert80,) = [n.text for n in notifier.sent if "crossed 80%" in n.text]
    assert "Triggered with estimates" in alert80
    assert f"Projection: at {fleet_rate.quantize(Decimal('0.01'))} USD/h, 100% at Sat 2026-12-05 " in alert80
    states = {i.instance_id: (i.state, i.stopped_at) for i in controllers["aws"].find("team", "ml-research")}
    assert all(states[rid] == ("stopped", expected_stop) for rid, *_ in FLEET)
    decisions = [e for e in ledger.audit_log(limit=1000) if e.kind == "decision"]
    assert {e.details["crossed"][0] for e in decisions} == {"80%", "100%"}
    assert all("estimated_share" in e.details for e in decisions)

    # Before Monday's delivery: the estimate of the fleet's run, by source of rate.
    run_hours = Decimal(int((expected_stop - START).total_seconds())) / 3600
    est = {(r.instance_id, r.source): r.amount for r in ledger.estimates()}
    for rid, _, rate, source, _ in FLEET:
        assert abs(est[(rid, source)] - rate * run_hours) < Decimal("1e-6")
    month = Window(MONTH.date(), datetime(2027, 1, 1, tzinfo=UTC).date(), ("2026-12",))
    (e_row,) = ledger.estimated_spend(Scope("team", "ml-research"), month)
    assert abs(e_row.amount - fleet_rate * run_hours) < Decimal("1e-6")

    # Monday: the delivery covering those hours is counted; its estimates drop out with it.
    monday, billed_monday = _monday_bill(tmp_path, expected_stop, friday)
    _count(guardrail, monday, "mon", datetime(2026, 12, 7, 8, tzinfo=UTC))
    assert ledger.coverage() == {"aws": datetime(2026, 12, 7, tzinfo=UTC)}
    assert ledger.estimates() == [] and ledger.estimate_rows() == 0
    assert ledger.estimated_spend(Scope("team", "ml-research"), month) == []
    (billed,) = ledger.spend(Scope("team", "ml-research"), month)
    assert billed.amount == billed_monday  # the totals are the bill alone
    # The estimate's error for the hours it covered, per instance type and source of rate.
    errors = {(e.instance_type, e.source): e for e in ledger.estimate_errors()}
    want: dict[tuple[str, str], list[Decimal]] = {}
    for _, itype, rate, source, bill in FLEET:
        acc = want.setdefault((itype, source), [Decimal(0), Decimal(0)])
        acc[0] += rate * run_hours
        acc[1] += bill * run_hours
    assert set(errors) == set(want)
    for key, (estimated, bill) in want.items():
        assert abs(errors[key].estimated - estimated) < Decimal("1e-6")
        assert abs(errors[key].billed - bill) < Decimal("1e-6")
    assert errors[("p4d.24xlarge", "billing:instance")].error == 0  # the Savings Plan rate carried over
    assert errors[("g5.48xlarge", "price-table")].percent == Decimal("11.1")  # list price vs 10% discount

    # A meter tick after Monday's delivery adds nothing for covered hours (all stopped anyway).
    clock.at = datetime(2026, 12, 7, 9, 5, tzinfo=UTC)
    assert meter.tick().accrued == {}


def test_a_reading_never_accrues_hours_billing_covers(tmp_path: Path, make_ledger: MakeLedger) -> None:
    """An instance started before the end of billing coverage backfills from the coverage end."""
    ledger = make_ledger()
    service = GuardrailService(load_policy(POLICY), ledger, ConsoleNotifier(stream=StringIO()), {},
                               clock=lambda: FRI_NOON)
    friday, _ = _friday_bill(tmp_path)
    _count(service, friday, "fri", FRI_NOON)
    rate = EstRate(Decimal(10), "USD", "price-table")
    at = FRI_NOON + timedelta(hours=2, minutes=30)
    reading = Reading("aws", "i-x", "p5.48xlarge", "us-east-1a", at, True, rate, TEAM,
                      started_at=FRI_NOON - timedelta(hours=6))
    (a, b, c) = ledger.record_readings([reading])
    assert [x.hour.hour for x in (a, b, c)] == [12, 13, 14]
    assert sum((x.amount for x in (a, b, c)), Decimal(0)) == 25
    # a GCP reading (no GCP billing at all) backfills from its start time
    g = ledger.record_readings([Reading("gcp", "vm-1", "a2-highgpu-8g", "us-central1-a", at, True, rate, TEAM,
                                        started_at=at - timedelta(minutes=90))])
    assert sum((x.amount for x in g), Decimal(0)) == 15
    # no start time, no previous reading, no coverage: nothing to backfill from
    assert ledger.record_readings([Reading("azure", "vm-2", "Standard_ND96asr_v4", "eastus", at, True, rate,
                                           TEAM)]) == []


def test_started_by_an_event_the_fleet_is_stopped_at_the_projected_crossing(tmp_path: Path,
                                                                            make_ledger: MakeLedger) -> None:
    """The fleet's start is read the moment it happens (a state-change event: a reading at
    18:00); the meter then wakes at the projected crossing of the stopping threshold, not at
    the next five-minute tick after it."""
    w = _world(tmp_path, make_ledger)
    fleet_rate = sum((rate for _, _, rate, _, _ in FLEET), Decimal(0))
    # the oracle: the second at which bill + rate × time reaches the budget, rounded up
    crossing = START + timedelta(seconds=math.ceil((BUDGET - w.billed_friday) * 3600 / fleet_rate))
    five_minute_tick = START + timedelta(minutes=5 * -(-int((crossing - START).total_seconds()) // 300))
    assert crossing < five_minute_tick
    w.clock.at = START
    report = w.meter.tick()
    stopped_at = None
    while stopped_at is None and w.clock.at < datetime(2026, 12, 7, tzinfo=UTC):
        w.clock.at = next_tick(report, make_ledger.every)
        report = w.meter.tick()
        if any(r.stopped for r in report.reports):
            stopped_at = w.clock.at
    assert stopped_at == crossing
    states = {i.instance_id: i.stopped_at for i in w.controllers["aws"].find("team", "ml-research")}
    assert all(states[rid] == crossing for rid, *_ in FLEET)
