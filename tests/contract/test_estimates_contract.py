"""The live estimate's contract (:class:`burnguard.ports.ledger.EstimateLog`), on every ledger
adapter: accrual from ``max(accrued_until, coverage end, started_at)``, never double counted
whatever the order, repetition, lateness or skew of the readings; the estimates of the hours a
counted delivery covers drop out with it, their error against the bill recorded. Oracles are
rate × seconds written out here, and the bill's rows of ``test_ledger_ports``."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from burnguard.core.estimates import EstimateError, Rate, Reading
from burnguard.core.ledger import Scope, Window
from burnguard.core.messages import DeliveryRef, stable_id
from burnguard.ports.ledger import EstimateLog, Ledger
from tests.contract.test_ledger_ports import LATEST, ROWS, delivery, load, row

D = Decimal
T0 = datetime(2024, 9, 11, 4, 30, tzinfo=UTC)  # before the bill's coverage end (LATEST: 09-12 10:00)
RATE = Rate(D("32"), "USD", "price-table", "2024-09-01")
SEPTEMBER = Window(date(2024, 9, 1), date(2024, 10, 1), ("2024-09",))


def log(ledger: Ledger) -> EstimateLog:
    assert isinstance(ledger, EstimateLog)
    return cast(EstimateLog, ledger)


def reading(  # noqa: PLR0913 - a reading: one keyword per field a test varies
        at: datetime, *, iid: str = "i-a", cloud: str = "aws", running: bool = True,
            started: datetime | None = T0, stopped: datetime | None = None, rate: Rate | None = RATE,
            tags: dict[str, str] | None = None, itype: str = "p4d.24xlarge", account: str | None = None) -> Reading:
    return Reading(cloud, iid, itype, "us-east-1a", at, running, rate, tags if tags is not None else {"team": "ml"},
                   started_at=started, stopped_at=stopped, account=account)


def seconds_of(est: EstimateLog) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in est.estimates():
        out[r.instance_id] = out.get(r.instance_id, 0) + r.seconds
    return out


def test_readings_accrue_once_whatever_their_order_repetition_lateness_or_skew(ledger: Ledger) -> None:
    est = log(ledger)
    assert est.latest_reading() is None and est.estimates() == [] and est.estimate_rows() == 0
    assert est.record_readings([reading(T0)]) == []  # started this instant: nothing yet
    (a, b) = est.record_readings([reading(T0 + timedelta(minutes=90))])  # 04:30 → 06:00, split at 05:00
    assert [(x.hour.hour, x.seconds, x.amount, x.source) for x in (a, b)] == [
        (4, 1800, D(16), "price-table"), (5, 3600, D(32), "price-table")]
    assert est.record_readings([reading(T0 + timedelta(minutes=90))]) == []  # the same tick again
    assert est.record_readings([reading(T0 + timedelta(minutes=87))]) == []  # a clock 3 minutes behind
    assert est.record_readings([reading(T0 + timedelta(minutes=60))]) == []  # a late (older) reading
    # three readings of one instance in one call (two meters' merged): each second once
    got = est.record_readings([reading(T0 + timedelta(minutes=95)), reading(T0 + timedelta(minutes=100)),
                               reading(T0 + timedelta(minutes=95))])
    assert [(x.seconds, x.amount) for x in got] == [(300, D(32) * 300 / 3600)] * 2
    (row,) = est.estimates()
    assert (row.cloud, row.instance_id, row.instance_type, row.source, row.currency, row.seconds) == (
        "aws", "i-a", "p4d.24xlarge", "price-table", "USD", 100 * 60)
    assert row.amount == (D(32) * 100 / 60).quantize(D("1e-18"))
    assert (row.first_hour, row.last_hour) == (T0.replace(minute=0), T0.replace(hour=6, minute=0))
    assert row.accrued_until == T0 + timedelta(minutes=100)
    assert est.estimate_rows() == 3  # hours 04, 05, 06
    assert est.latest_reading() == T0 + timedelta(minutes=100)


def test_a_meter_that_missed_ticks_catches_up_and_a_stopped_instance_accrues_nothing(ledger: Ledger) -> None:
    est = log(ledger)
    est.record_readings([reading(T0), reading(T0, iid="i-b")])
    # three hours without a tick; i-b stopped at 06:00 in between
    late = T0 + timedelta(hours=3)
    got = est.record_readings([reading(late), reading(late, iid="i-b", running=False, stopped=T0 + timedelta(
        minutes=90))])
    assert sum(x.seconds for x in got if x.instance_id == "i-a") == 3 * 3600
    assert sum(x.seconds for x in got if x.instance_id == "i-b") == 90 * 60  # up to its stop
    assert est.record_readings([reading(late + timedelta(hours=1), iid="i-b", running=False,
                                        stopped=T0 + timedelta(minutes=90))]) == []
    assert est.record_readings([reading(late, iid="i-c", running=False, stopped=None)]) == []  # never ran
    assert seconds_of(est) == {"i-a": 3 * 3600, "i-b": 90 * 60}
    # without a start time, reading or coverage there is nothing to backfill from
    assert est.record_readings([reading(late, iid="i-new", started=None)]) == []
    assert [x.seconds for x in est.record_readings([reading(late + timedelta(minutes=5), iid="i-new",
                                                            started=None)])] == [300]


def test_estimated_spend_and_running_rate_select_as_billed_spend_does(ledger: Ledger) -> None:
    est = log(ledger)
    at = T0 + timedelta(minutes=90)  # 1.5 h each at 32 USD/h = 48 USD
    est.record_readings([reading(at, tags={"Team": "ml", "project": "llm"}),  # key case folded
                         reading(at, iid="i-b", tags={"team": "ml"}),
                         reading(at, iid="vm-1", cloud="gcp", tags={"team": "search"}),
                         reading(at, iid="i-eur", rate=Rate(D("10"), "EUR", "billing:type"), tags={"team": "ml"}),
                         reading(at, iid="i-untagged", tags={})])
    rows = {(r.scope_value, r.currency): (r.amount, r.gpu_amount) for r in est.estimated_spend(Scope("team"),
                                                                                              SEPTEMBER)}
    assert rows == {("ml", "USD"): (D(96), D(96)), ("ml", "EUR"): (D(15), D(15)), ("search", "USD"): (D(48), D(48))}
    assert [(r.scope_value, r.amount) for r in est.estimated_spend(Scope("project", "llm"), SEPTEMBER)] == [
        ("llm", D(48))]
    assert est.estimated_spend(Scope("team", "ml"), SEPTEMBER, clouds=["gcp"]) == []
    assert [r.amount for r in est.estimated_spend(Scope("team", "search"), SEPTEMBER, clouds=["gcp"])] == [D(48)]
    assert est.estimated_spend(Scope("team"), Window(date(2024, 9, 12), date(2024, 9, 13))) == []  # other days
    rates = {(r.scope_value, r.currency): r.amount for r in est.running_rate(Scope("team"))}
    assert rates == {("ml", "USD"): D(64), ("ml", "EUR"): D(10), ("search", "USD"): D(32)}
    assert [r.amount for r in est.running_rate(Scope("team", "search"), clouds=["aws"])] == []
    # a stop read later: the rate drops; a late reading from before it does not bring it back
    est.record_readings([reading(at + timedelta(minutes=5), iid="i-b", running=False, stopped=at)])
    est.record_readings([reading(at - timedelta(minutes=5), iid="i-b")])
    assert [r.amount for r in est.running_rate(Scope("team", "ml"))] == [D(10), D(32)]  # EUR, USD


def test_a_counted_delivery_drops_the_estimates_it_covers_and_records_their_error(ledger: Ledger) -> None:
    est = log(ledger)
    assert est.coverage() == {}
    # i-a estimated 04:30-06:00 on the 11th (48 USD); the bill will say 40 for its 05:00 hour
    # only; i-z estimated after the coverage end; vm-1 on a cloud no delivery covers
    est.record_readings([reading(T0 + timedelta(minutes=90)),
                         reading(LATEST + timedelta(minutes=30), iid="i-z", started=LATEST),
                         reading(T0 + timedelta(minutes=90), iid="vm-1", cloud="gcp", itype="a2-highgpu-8g")])
    assert [r.amount for r in est.estimated_spend(Scope("team", "ml"), SEPTEMBER)] == [D(48 + 16 + 48)]
    load(ledger)
    assert est.coverage() == {"aws": LATEST}
    assert seconds_of(est) == {"i-z": 1800, "vm-1": 5400}
    assert est.estimate_rows() == 3  # i-z's hour 10, vm-1's hours 04 and 05
    assert [r.amount for r in est.estimated_spend(Scope("team", "ml"), SEPTEMBER)] == [D(16 + 48)]
    assert est.estimate_errors() == [EstimateError("p4d.24xlarge", "price-table", 1, D("1.50"), D(48), D(40), "USD")]
    # a reading after the delivery: i-a accrues from the coverage end on, never the covered hours
    (a,) = est.record_readings([reading(LATEST + timedelta(hours=1))])
    assert (a.hour, a.seconds) == (LATEST, 3600)
    # the same delivery completed again (a redelivered message) changes nothing
    assert ledger.complete(ledger.deliveries()[0].delivery.delivery_id, LATEST).switched is False
    assert len(est.estimate_errors()) == 1 and est.estimate_rows() == 4


def test_billed_rates_are_the_counted_bill_per_instance_and_per_type(ledger: Ledger) -> None:
    est = log(ledger)
    assert est.billed_rates() == ({}, {})
    load(ledger)
    # the last 24 hours of the bill (to 09-12 10:00): i-e's GPU hour at 08:00, 10 EUR
    by_instance, by_type = est.billed_rates()
    assert by_instance == {("aws", "i-e"): (D(10), "EUR", datetime(2024, 9, 12, 8, tzinfo=UTC))}
    assert by_type == {("aws", "p4d.24xlarge"): (D(10), "EUR")}
    by_instance, _ = est.billed_rates(hours=48)  # i-a's hour on the 11th at 05:00 too
    assert by_instance[("aws", "i-a")] == (D(40), "USD", datetime(2024, 9, 11, 5, tzinfo=UTC))


def test_amounts_stay_exact_at_any_size(ledger: Ledger) -> None:
    est = log(ledger)
    huge = Rate(D("123456789012345678901234567.123456789"), "VND", "price-table")  # 36 digits
    est.record_readings([reading(T0 + timedelta(seconds=7), rate=huge)])
    (row,) = est.estimates()
    assert row.amount == (huge.amount * 7 / 3600).quantize(D("1e-18"))  # 1e-18 of a 27-digit rate
    (spent,) = est.estimated_spend(Scope("team"), SEPTEMBER)
    assert spent.amount == row.amount


def test_within_a_tick_snapshot_every_question_sees_the_writes_before_it(ledger: Ledger) -> None:
    """A meter tick's questions share one read of the estimate (Firestore: each meter document
    once): a reading or a delivery switch made meanwhile, here or in another thread, is seen
    by the next question, never a stale answer."""
    est = log(ledger)
    ml = Scope("team", "ml")

    def estimated() -> list[Decimal]:
        return [r.amount for r in est.estimated_spend(ml, SEPTEMBER)]

    def rate() -> list[Decimal]:
        return [r.amount for r in est.running_rate(ml)]

    def billed() -> dict[tuple[str | None, str], Decimal]:
        return {(r.scope_value, r.currency): r.amount for r in ledger.spend(ml, SEPTEMBER)}

    est.record_readings([reading(T0 + timedelta(minutes=90))])  # i-a 04:30-06:00 at 32 USD/h: 48
    with est.tick_snapshot():
        assert (estimated(), rate(), billed(), est.coverage()) == ([D(48)], [D(32)], {}, {})
        assert estimated() == [D(48)]  # asked again: the same answer
        # a second reading of the tick: i-a 30 minutes more (16), i-b started at 06:00 (16)
        est.record_readings([reading(T0 + timedelta(minutes=120)),
                             reading(T0 + timedelta(minutes=120), iid="i-b", started=T0 + timedelta(minutes=90))])
        assert (estimated(), rate()) == ([D(48 + 16 + 16)], [D(64)])
        with est.tick_snapshot():  # reentrant: the inner one shares the outer's read
            assert estimated() == [D(80)]
        # a reading written by another thread of the same process (i-b stops at 06:30: 0 more)
        other = threading.Thread(target=est.record_readings, args=([reading(
            T0 + timedelta(minutes=125), iid="i-b", running=False, stopped=T0 + timedelta(minutes=120))],))
        other.start()
        other.join()
        assert rate() == [D(32)]
        # the delivery covering everything to 09-12 10:00 is counted: the estimates drop out
        load(ledger)
        assert (estimated(), est.coverage()) == ([], {"aws": LATEST})
        assert billed() == {("ml", "USD"): D(90 + 40 + 30), ("ml", "EUR"): D(10)}  # ROWS' team=ml
        assert ledger.latest_data() == LATEST
        # a reading after the coverage end: accrues from it, and is counted at once
        est.record_readings([reading(LATEST + timedelta(minutes=30))])
        assert (estimated(), rate()) == ([D(16)], [D(32)])
        # a restated delivery of the slice (its first two rows only) replaces it; no estimate is
        # in the hours it covers (nothing dropped): the switch alone must be seen
        load(ledger, ROWS[:2], delivery("v2", produced_hour=2))
        end = datetime(2024, 9, 11, 6, tzinfo=UTC)  # the end of the latest hour of those rows
        assert (billed(), est.coverage(), estimated()) == ({("ml", "USD"): D(90 + 40)}, {"aws": end}, [D(16)])
    assert (estimated(), rate(), est.coverage()) == ([D(16)], [D(32)], {"aws": end})  # afresh: the same


def _account_delivery(account: str, period: str = "2024-09") -> Any:
    return DeliveryRef(delivery_id=stable_id("contract-account", account, period), provider="aws",
                       source=f"aws-cur|{account}|r", billing_period=period, version="v1",
                       produced_at=datetime(2024, 9, 13, tzinfo=UTC))


def _august(account: str) -> dict[str, Any]:
    """A line item of 08-31 23:00 (the August bill of ``account``)."""
    start = datetime(2024, 8, 31, 23, tzinfo=UTC)
    return {**row(1, 0, "1", "1", {"team": "ml"}, resource="i-old"), "SubAccountId": account,
            "BillingPeriodStart": datetime(2024, 8, 1, tzinfo=UTC), "BillingPeriodEnd": datetime(2024, 9, 1, tzinfo=UTC),
            "ChargePeriodStart": start, "ChargePeriodEnd": start + timedelta(hours=1)}


def _charging(account: str, *rows: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**r, "SubAccountId": account} for r in rows]


def test_coverage_is_per_account_so_a_lagging_account_keeps_its_estimates(ledger: Ledger) -> None:
    """Account 111's delivery covers to 09-12 10:00, account 222's (a separate export, whose
    August bill is counted) lags: 222's estimates count from its own coverage, not from 111's;
    an instance of no account, or of an account no delivery holds, falls back to the cloud's."""
    est = log(ledger)
    load(ledger, [_august("222")], _account_delivery("222", "2024-08"))
    noon = datetime(2024, 9, 12, 11, tzinfo=UTC)
    est.record_readings([reading(noon, iid="i-a", account="111"), reading(noon, iid="i-b", account="222"),
                         reading(noon, iid="i-c", itype="p5.48xlarge", started=LATEST - timedelta(hours=1))])
    # 111's delivery: i-a 40 (09-11 05:00) + 32 (09-12 09:00)
    load(ledger, _charging("111", row(11, 5, "50", "40", {"team": "ml"}, resource="i-a"),
                           row(12, 9, "32", "32", {"team": "ml"}, resource="i-a")), _account_delivery("111"))
    assert est.coverage() == {"aws": LATEST}
    # i-a from 10:00 (1 h); i-b all of 04:30 → 11:00 (30.5 h); i-c (no account) from the cloud's 10:00 (1 h)
    assert seconds_of(est) == {"i-a": 3600, "i-b": 30 * 3600 + 1800, "i-c": 3600}
    assert [r.amount for r in est.estimated_spend(Scope("team", "ml"), SEPTEMBER)] == [D(32) * D("32.5")]
    assert est.estimate_errors() == [  # i-a's 29.5 h against its bill; i-c's hour against none
        EstimateError("p4d.24xlarge", "price-table", 1, D("29.50"), D(944), D(72), "USD"),
        EstimateError("p5.48xlarge", "price-table", 1, D("1.00"), D(32), D(0), "USD")]
    # 222's delivery, lagging: i-b 30 (09-11 05:00); its 1.5 h to 06:00 drop, the rest counts on
    load(ledger, _charging("222", row(11, 5, "30", "30", {"team": "ml"}, resource="i-b")), _account_delivery("222"))
    assert seconds_of(est) == {"i-a": 3600, "i-b": 29 * 3600, "i-c": 3600}
    assert {(e.instance_type, e.hours, e.estimated, e.billed) for e in est.estimate_errors()} == {
        ("p4d.24xlarge", D("31.00"), D(944 + 48), D(72 + 30)), ("p5.48xlarge", D("1.00"), D(32), D(0))}
    assert [r.amount for r in est.estimated_spend(Scope("team", "ml"), SEPTEMBER)] == [D(32) * 31]
    # first readings backfill from their own account's coverage; an account no delivery holds
    # (333) from the cloud's
    later = noon + timedelta(hours=1)
    got = est.record_readings([reading(later, iid="i-d", account="222", started=datetime(2024, 9, 11, tzinfo=UTC)),
                               reading(later, iid="i-e", account="333", started=datetime(2024, 9, 11, tzinfo=UTC))])
    assert {i: sum(x.seconds for x in got if x.instance_id == i) for i in ("i-d", "i-e")} == {
        "i-d": 30 * 3600, "i-e": 2 * 3600}


def test_the_rate_of_the_same_type_in_the_same_region_and_account_comes_before_the_types(ledger: Ledger) -> None:
    """p4d hours billed at 09-12 08:00: i-a (account 111, us-east-1) 40, i-b (111, us-west-2)
    30, i-c (222, us-east-1) 20: per place its own mean, per type the mean of all three."""
    from burnguard.app.estimates_cli import load_prices
    from burnguard.core.estimates import place_key
    from burnguard.core.instances import Instance
    from burnguard.services.meter import RateBook

    est = log(ledger)
    bill = [{**row(12, 8, cost, cost, {"team": "ml"}, resource=rid), "SubAccountId": account, "RegionId": region}
            for rid, account, region, cost in (("i-a", "111", "us-east-1", "40"), ("i-b", "111", "us-west-2", "30"),
                                               ("i-c", "222", "us-east-1", "20"))]
    load(ledger, [*bill, row(12, 9, "1", "1", {"team": "web"}, resource="i-w", gpu=False)])
    _, by_type = est.billed_rates()
    assert by_type == {("aws", "p4d.24xlarge"): (D(30), "USD"),
                       place_key("aws", "111", "us-east-1", "p4d.24xlarge"): (D(40), "USD"),
                       place_key("aws", "111", "us-west-2", "p4d.24xlarge"): (D(30), "USD"),
                       place_key("aws", "222", "US-EAST-1", "p4d.24xlarge"): (D(20), "USD")}
    book = RateBook(est, load_prices())

    def rate(account: str | None, region: str) -> tuple[Decimal, str]:
        got = book.rate(Instance("aws", "i-new", "new", region, "p4d.24xlarge", "running", account=account))
        assert got is not None
        return got.amount, got.source

    assert rate("111", "us-east-1") == (D(40), "billing:type@region")
    assert rate("222", "us-east-1") == (D(20), "billing:type@region")
    assert rate("111", "eu-west-1") == (D(30), "billing:type")  # no p4d of 111 billed there: the type's
    assert rate(None, "us-east-1") == (D(30), "billing:type")  # account unknown: the type's
    # an instance's own billed hour still comes first
    own = book.rate(Instance("aws", "i-c", "c", "us-east-1", "p4d.24xlarge", "running", account="222"))
    assert own is not None and (own.amount, own.source) == (D(20), "billing:instance")
