"""The live estimate's arithmetic and its SQLite ledger part: never double counted, whatever
the order, repetition, lateness or clock skew of the readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from burnguard.adapters.local.ledger import SqliteLedger
from burnguard.app.estimates_cli import load_prices, parse_every
from burnguard.core.estimates import Rate, Reading, accrue, crossing_time, new_accrued_until, resource_key
from burnguard.core.ledger import Scope, Window
from burnguard.core.prices import azure_retail_items, parse_price_table, region_of

T0 = datetime(2026, 12, 4, 18, tzinfo=UTC)
RATE = Rate(Decimal("12.34"), "USD", "price-table", "2024-09-01")
TAGS = {"team": "ml-research"}


def reading(minutes: int, *, running: bool = True, started: int | None = 0, stopped: int | None = None,
            iid: str = "i-1") -> Reading:
    return Reading("aws", iid, "p5.48xlarge", "us-east-1a", T0 + timedelta(minutes=minutes), running, RATE, TAGS,
                   started_at=T0 + timedelta(minutes=started) if started is not None else None,
                   stopped_at=T0 + timedelta(minutes=stopped) if stopped is not None else None)


def test_accruals_split_at_clock_hours_and_sum_to_rate_times_time() -> None:
    out = accrue(reading(150, started=-20), None, None)  # 17:40 → 20:30
    assert [(a.hour.hour, a.seconds) for a in out] == [(17, 1200), (18, 3600), (19, 3600), (20, 1800)]
    assert sum((a.amount for a in out), Decimal(0)) == Decimal("12.34") * Decimal(170) / 60


def test_start_is_the_latest_of_previous_reading_coverage_and_start_time() -> None:
    r = reading(60, started=-120)
    assert new_accrued_until(r, None, T0 - timedelta(minutes=30)) == T0 + timedelta(minutes=60)
    (a, b) = accrue(r, None, T0 - timedelta(minutes=30))  # from coverage end 17:30
    assert (a.seconds, b.seconds) == (1800, 3600)
    assert accrue(r, T0 + timedelta(minutes=45), T0)[0].seconds == 900  # from the previous reading
    assert accrue(r, T0 + timedelta(minutes=60), None) == []  # repeated reading
    assert accrue(r, T0 + timedelta(minutes=70), None) == []  # a late (older) reading
    assert new_accrued_until(r, T0 + timedelta(minutes=70), None) == T0 + timedelta(minutes=70)  # never back


def test_a_stopped_instance_accrues_up_to_its_stop_and_then_nothing() -> None:
    stopped = reading(60, running=False, stopped=20)
    (a,) = accrue(stopped, T0 + timedelta(minutes=5), None)
    assert a.seconds == 15 * 60
    assert accrue(stopped, T0 + timedelta(minutes=20), None) == []
    assert accrue(reading(60, running=False, stopped=None), T0, None) == []


def test_crossing_time() -> None:
    assert crossing_time(T0, Decimal(900), Decimal(1000), Decimal(50)) == T0 + timedelta(hours=2)
    assert crossing_time(T0, Decimal(1000), Decimal(1000), Decimal(50)) == T0
    assert crossing_time(T0, Decimal(900), Decimal(1000), Decimal(0)) is None


def test_resource_keys_match_across_id_shapes() -> None:
    assert resource_key("i-0abc") == "i-0abc"
    assert resource_key("/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/VM-1") == "vm-1"
    assert resource_key("projects/p/zones/us-central1-a/instances/train-1") == "train-1"


# -- the ledger: any set of readings, in any order, repeated, skewed ---------------------------
@settings(max_examples=60, deadline=None)
@given(ticks=st.lists(st.integers(min_value=0, max_value=600), min_size=1, max_size=25),
       repeat=st.lists(st.integers(min_value=0, max_value=24), max_size=10),
       stop=st.one_of(st.none(), st.integers(min_value=1, max_value=600)),
       start=st.integers(min_value=-120, max_value=300))
def test_any_readings_count_each_running_second_once(ticks: list[int], repeat: list[int], stop: int | None,
                                                     start: int) -> None:
    """Readings at arbitrary minutes, shuffled by the strategy's order (late ones included),
    some replayed: the estimate equals rate × the time the instance ran, from its start to the
    latest reading (or its stop), and never more."""
    ledger = SqliteLedger(":memory:")
    order = ticks + [ticks[i % len(ticks)] for i in repeat]
    for m in order:
        running = stop is None or m < stop
        ledger.record_readings([reading(m, running=running, started=start,
                                        stopped=stop if not running else None)])
    # The oracle: the instance ran over [start, stop); the readings saw it up to the latest one.
    seen_until = max(min(m, stop) if stop is not None else m for m in order)
    seconds = max(0, seen_until - start) * 60
    rows = ledger.estimates()
    assert sum((r.seconds for r in rows), 0) == seconds
    # exact: one division of the integer sum of rate × seconds, to 1e-18
    assert sum((r.amount for r in rows), Decimal(0)) == (RATE.amount * seconds / 3600).quantize(Decimal("1e-18"))


def test_estimated_spend_selects_by_tag_and_excludes_covered_hours() -> None:
    ledger = SqliteLedger(":memory:")
    ledger.record_readings([reading(90), reading(90, iid="i-2"),
                            Reading("gcp", "vm-1", "a2-highgpu-8g", "us-central1-a", T0 + timedelta(minutes=90),
                                    True, RATE, {"team": "search"}, started_at=T0)])
    window = Window(T0.date(), T0.date() + timedelta(days=1))
    (row,) = ledger.estimated_spend(Scope("team", "ml-research"), window)
    assert row.amount == RATE.amount * 3  # two instances × 1.5 h
    assert {r.scope_value for r in ledger.estimated_spend(Scope("team"), window)} == {"ml-research", "search"}
    assert ledger.estimated_spend(Scope("team", "ml-research"), window, clouds=["gcp"]) == []
    (rate,) = ledger.running_rate(Scope("team", "ml-research"))
    assert rate.amount == RATE.amount * 2


def test_price_table_ships_with_its_date_and_prices_every_cloud() -> None:
    table = load_prices()
    assert table.date and set(table.sources) == {"aws", "gcp", "azure"}
    assert table.price("aws", "p5.48xlarge", "us-east-1c") == Decimal("98.32")
    assert table.price("gcp", "a2-highgpu-8g", "europe-west4-a") is not None  # falls back to its region
    assert table.price("azure", "standard_nd96asr_v4", "eastus") is not None
    assert table.price("aws", "m5.large") is None
    assert region_of("aws", "us-east-1a") == "us-east-1" and region_of("gcp", "us-central1-b") == "us-central1"


def test_price_table_errors_name_the_file() -> None:
    try:
        parse_price_table("{", file="x.json")
    except Exception as exc:
        assert "x.json" in str(exc)
    else:
        raise AssertionError("no error")


def test_azure_retail_items_keep_linux_pay_as_you_go_hours() -> None:
    page = {"Items": [
        {"armSkuName": "Standard_NC24ads_A100_v4", "armRegionName": "eastus", "retailPrice": 3.673,
         "type": "Consumption", "productName": "Virtual Machines NCadsA100v4 Series", "skuName": "NC24ads A100 v4",
         "unitOfMeasure": "1 Hour"},
        {"armSkuName": "Standard_NC24ads_A100_v4", "armRegionName": "eastus", "retailPrice": 0.9,
         "type": "Consumption", "productName": "Virtual Machines NCadsA100v4 Series",
         "skuName": "NC24ads A100 v4 Spot", "unitOfMeasure": "1 Hour"},
        {"armSkuName": "Standard_NC24ads_A100_v4", "armRegionName": "eastus", "retailPrice": 4.5,
         "type": "Consumption", "productName": "Virtual Machines NCadsA100v4 Series Windows",
         "skuName": "NC24ads A100 v4", "unitOfMeasure": "1 Hour"},
        {"armSkuName": "Standard_NC24ads_A100_v4", "armRegionName": "eastus", "retailPrice": 20000,
         "type": "Reservation", "productName": "Virtual Machines NCadsA100v4 Series", "skuName": "NC24ads A100 v4",
         "unitOfMeasure": "1 Hour"},
    ]}
    (entry,) = azure_retail_items(page, ["standard_nc24ads_a100_v4"])
    assert entry.hourly == Decimal("3.673") and entry.region == "eastus"


def test_meter_interval() -> None:
    assert parse_every("5m") == 300 and parse_every("1h") == 3600 and parse_every("2") == 120
    for bad in ("30s", "x", "5d"):
        try:
            parse_every(bad)
        except Exception as exc:
            assert bad in str(exc)
        else:
            raise AssertionError(bad)


def test_guardrails_count_the_estimate_unless_basis_billed() -> None:
    """Two guardrails on the same scope and budget: the default one is crossed by the estimate
    (and says how much of the spend is estimated); ``basis: billed`` is not."""
    from burnguard.core.policy import load_policy
    from burnguard.rules.decisions import evaluate

    policy = load_policy("""
version: 1
slack: {channel: "#x"}
guardrails:
  - {name: live, scope: team=ml-research, budget: 100 USD, thresholds: [{at: 100%, actions: [notify]}]}
  - {name: bill, scope: team=ml-research, basis: billed, budget: 100 USD, thresholds: [{at: 100%, actions: [notify]}]}
""")
    ledger = SqliteLedger(":memory:")
    ledger.record_readings([reading(600)])  # 10 h at 12.34 USD/h = 123.40 USD, estimated
    now = T0 + timedelta(hours=10)
    (decision,) = evaluate(policy, ledger, now, estimates=ledger)
    assert decision.guardrail == "live" and decision.spend is not None and decision.spend.amount == Decimal("123.4")
    assert decision.estimated is not None and decision.estimated_share == Decimal("100.0")
    assert evaluate(policy, ledger, now) == []  # without the estimate (a ledger that keeps none): nothing


def test_estimates_meet_the_bill_by_the_id_billing_names_the_instance_by() -> None:
    """A GCE instance is named projects/…/instances/<name> by its controller and by its numeric
    id in the billing export: the error is measured against the lines of that id."""
    from burnguard.adapters.local.estimates import drop_covered_estimates

    ledger = SqliteLedger(":memory:")
    gce = Reading("gcp", "projects/p/zones/us-central1-a/instances/trainer-1", "a2-highgpu-8g", "us-central1-a",
                  T0 + timedelta(hours=2), True, RATE, TAGS, started_at=T0, billing_id="7730192846601190417")
    ledger.record_readings([gce])
    with ledger._tx() as db:  # what a counted GCP delivery covering 18:00-20:00 leaves in the tables
        db.execute("INSERT INTO deliveries (delivery_id, provider, source, period, version, status, data_end)"
                   " VALUES ('d1', 'gcp', 'bq', '2026-12', '1', 'complete', '2026-12-04T20:00:00Z')")
        db.execute("INSERT INTO current VALUES ('gcp', 'bq', '2026-12', 'd1', NULL, '2026-12-05T00:00:00Z')")
        for hour in ("2026-12-04T18:00:00Z", "2026-12-04T19:00:00Z"):
            db.execute("INSERT INTO gpu_hourly (delivery_id, hour, cloud, resource_id, currency, tagset, billed,"
                       " effective, rows) VALUES ('d1', ?, 'gcp', ?, 'USD', '-', 11000000000, 11000000000, 1)",
                       (hour, "//compute.googleapis.com/projects/p/zones/us-central1-a/instances/7730192846601190417"))
        assert drop_covered_estimates(db, "gcp", "d1", T0) == 2
    (error,) = ledger.estimate_errors()
    assert error.billed == Decimal(22) and error.estimated == RATE.amount * 2


def test_coverage_per_account_falls_back_to_the_cloud_where_the_account_is_unknown() -> None:
    from burnguard.core.estimates import Coverage

    fri, thu, wed = T0, T0 - timedelta(days=1), T0 - timedelta(days=2)
    cov = Coverage.of([("aws", fri, ["111"]), ("aws", thu, ["222", "111"]), ("azure", thu, ["AbC-Guid"]),
                       ("gcp", wed, None), ("gcp", thu, ["proj-a"]), ("aws", None, ["333"])])
    assert cov.end("aws", "111") == fri and cov.end("aws", "222") == thu  # 222's delivery lags: its own
    assert cov.end("aws", None) == fri and cov.end("aws", "333") == fri  # unknown: the cloud's
    assert cov.end("azure", "abc-GUID") == thu  # ids match case-insensitively
    assert cov.end("gcp", "proj-a") == thu and cov.end("gcp", "proj-b") == thu
    assert Coverage.of([("gcp", thu, None), ("gcp", wed, ["proj-a"])]).end("gcp", "proj-a") == thu  # covers all
    assert cov.end("other", "x") is None


def test_spend_facts_staged_before_they_kept_account_and_region_sum_with_newer_ones() -> None:
    """A chunk staged by the previous release (no account, region) and one staged now, summed
    into one delivery: the older rows read as account and region unknown (""), none lost."""
    import pyarrow as pa

    from burnguard.core.facts import SPEND_KEYS, combine, empty_facts

    schema = empty_facts().spend.schema

    def chunk(account: str, region: str, amount: str) -> pa.Table:
        money = pa.array([Decimal(amount)], schema.field("billed").type)
        return pa.table({"period": ["2026-12"], "day": [T0.date()], "cloud": ["aws"], "service": ["EC2"],
                         "category": ["Usage"], "currency": ["USD"], "gpu": [True], "tagset": ["t"],
                         "resource_id": ["i-1"], "instance_type": ["p5.48xlarge"], "account": [account],
                         "region": [region], "billed": money, "effective": money, "rows": [1]}, schema=schema)

    old = chunk("", "", "1.5").drop_columns(["account", "region"])
    total = combine([old, chunk("111", "us-east-1", "2"), chunk("", "", "0.25")], SPEND_KEYS)
    got = {(r["account"], r["region"]): r["billed"] for r in total.to_pylist()}
    assert got == {("", ""): Decimal("1.75"), ("111", "us-east-1"): Decimal(2)}


OLD_TABLES = """
CREATE TABLE deliveries (
    delivery_id TEXT PRIMARY KEY, provider TEXT NOT NULL, source TEXT NOT NULL, period TEXT NOT NULL,
    version TEXT NOT NULL, produced_at TEXT, summary TEXT, status TEXT NOT NULL DEFAULT 'waiting',
    reason TEXT NOT NULL DEFAULT '', rows INTEGER NOT NULL DEFAULT 0, received_at TEXT, completed_at TEXT,
    data_end TEXT);
CREATE TABLE chunks (
    chunk_id TEXT PRIMARY KEY, delivery_id TEXT NOT NULL, totals TEXT NOT NULL, received_at TEXT NOT NULL,
    data_end TEXT);
CREATE TABLE meter (
    cloud TEXT NOT NULL, instance_id TEXT NOT NULL, accrued_until TEXT, seen_at TEXT NOT NULL,
    running INTEGER NOT NULL, instance_type TEXT NOT NULL, tagset TEXT NOT NULL, rate TEXT, currency TEXT,
    source TEXT, PRIMARY KEY (cloud, instance_id));
CREATE TABLE estimates (
    cloud TEXT NOT NULL, instance_id TEXT NOT NULL, hour TEXT NOT NULL, instance_type TEXT NOT NULL,
    tagset TEXT NOT NULL, currency TEXT NOT NULL, source TEXT NOT NULL, seconds INTEGER NOT NULL,
    rate_seconds INTEGER NOT NULL, billing_key TEXT NOT NULL,
    PRIMARY KEY (cloud, instance_id, hour, currency, source));
CREATE TABLE estimate_errors (
    delivery_id TEXT NOT NULL, cloud TEXT NOT NULL, instance_id TEXT NOT NULL, instance_type TEXT NOT NULL,
    source TEXT NOT NULL, currency TEXT NOT NULL, seconds INTEGER NOT NULL, rate_seconds INTEGER NOT NULL,
    billed INTEGER NOT NULL, at TEXT NOT NULL, PRIMARY KEY (delivery_id, cloud, instance_id, source, currency));
CREATE TABLE spend (delivery_id TEXT NOT NULL, period TEXT, day TEXT, cloud TEXT, service TEXT, category TEXT,
    currency TEXT, gpu INTEGER, tagset TEXT, resource_id TEXT, instance_type TEXT, billed INTEGER NOT NULL,
    effective INTEGER NOT NULL, rows INTEGER NOT NULL, billed_x TEXT, effective_x TEXT);
INSERT INTO meter VALUES ('aws', 'i-1', '2026-12-04T18:00:00Z', '2026-12-04T18:00:00Z', 1, 'p5.48xlarge', '-',
    '12.34', 'USD', 'price-table');
"""


def test_a_ledger_file_of_the_previous_release_gains_the_new_columns_and_meters_on(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_TABLES)
    ledger = SqliteLedger(path)
    (a,) = ledger.record_readings([reading(60)])  # from the accrued_until the old file holds
    assert (a.seconds, a.amount) == (3600, RATE.amount)
    assert [r.seconds for r in ledger.estimates()] == [3600]
    ledger.close()


def test_an_azure_vm_is_priced_in_its_region_not_its_resource_group() -> None:
    import json
    from dataclasses import replace

    from burnguard.core.instances import Instance
    from burnguard.services.meter import RateBook

    table = parse_price_table(json.dumps({"date": "2026-12-01", "currency": "USD", "prices": [
        {"cloud": "azure", "instance_type": "Standard_NC6s_v3", "region": "eastus", "hourly": "3.06"},
        {"cloud": "azure", "instance_type": "Standard_NC6s_v3", "region": "westeurope", "hourly": "3.82"}]}))
    book = RateBook(SqliteLedger(":memory:"), table)  # no billing data: the table decides
    vm = Instance("azure", "/subscriptions/s1/resourceGroups/rg-ml/providers/Microsoft.Compute/virtualMachines/a",
                  "a", "rg-ml", "Standard_NC6s_v3", "running", account="s1", region="westeurope")
    priced = book.rate(vm)
    assert priced is not None and (priced.amount, priced.source) == (Decimal("3.82"), "price-table")
    # a resource group is never read as a region (here one named like one): region unknown, the table's first
    unknown = book.rate(replace(vm, location="westeurope", region=None))
    assert unknown is not None and unknown.amount == Decimal("3.06")
