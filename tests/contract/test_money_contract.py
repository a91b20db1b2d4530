"""Money is exact at any magnitude a real export can hold: stored and summed by every ledger
adapter without overflow (a month of VND or IDR, one 1e10 line item, sums far beyond int64
nano-units), and every query answers with the exact sum. Oracles sum the generated amounts
in Python with a wide decimal context, never through burnguard."""

from __future__ import annotations

import decimal
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from burnguard.core.ledger import Scope, Window
from burnguard.core.lineitem import SCHEMA
from burnguard.core.messages import (
    DeliveryRef,
    DeliverySummary,
    FileSummary,
    Message,
    encode_chunk,
    encode_summary,
    stable_id,
    totals_of,
)
from burnguard.services.record import record_message

NOW = datetime(2024, 9, 30, 12, tzinfo=UTC)
SEPTEMBER = Window(date(2024, 9, 1), date(2024, 10, 1), ("2024-09",))
WIDE = decimal.Context(prec=200)


def item(cost: Decimal, currency: str, team: str, day: int, hour: int = 0) -> dict[str, Any]:
    start = datetime(2024, 9, day, hour, tzinfo=UTC)
    return {
        "ProviderName": "AWS", "BillingAccountId": "1", "BillingPeriodStart": datetime(2024, 9, 1, tzinfo=UTC),
        "BillingPeriodEnd": datetime(2024, 10, 1, tzinfo=UTC), "ChargePeriodStart": start,
        "ChargePeriodEnd": start + timedelta(hours=1), "ChargeCategory": "Usage", "BilledCost": cost,
        "EffectiveCost": cost, "BillingCurrency": currency, "ServiceName": "EC2", "ResourceId": f"i-{team}-{day}",
        "Tags": [("team", team)], "x_Cloud": "aws", "x_InstanceType": "p4d.24xlarge", "x_AcceleratorClass": "gpu",
    }


def deliver(ledger: Any, version: int, rows: list[dict[str, Any]], chunk_rows: int = 7) -> None:
    ref = DeliveryRef(delivery_id=stable_id("money", str(version)), provider="aws", source="cur",
                      billing_period="2024-09", version=str(version),
                      produced_at=datetime(2024, 9, 1, tzinfo=UTC) + timedelta(minutes=version))
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    chunks = [table.slice(i, chunk_rows) for i in range(0, max(1, table.num_rows), chunk_rows)]
    messages: list[Message] = [encode_chunk(ref, "f.csv", i, c) for i, c in enumerate(chunks)]
    totals = totals_of(table)
    summary = DeliverySummary(delivery=ref, files=[FileSummary(key="f.csv", chunks=len(chunks), totals=totals,
                                                                rows_read=table.num_rows)], totals=totals)
    for m in [*messages, encode_summary(summary)]:
        record_message(ledger, m, NOW)
    statuses = {d.delivery.delivery_id: d for d in ledger.deliveries(include_superseded=True)}
    assert statuses[ref.delivery_id].counted, statuses[ref.delivery_id]


def expected(rows: list[dict[str, Any]]) -> dict[tuple[str, str], Decimal]:
    out: dict[tuple[str, str], Decimal] = {}
    for r in rows:
        key = (r["Tags"][0][1], r["BillingCurrency"])
        out[key] = WIDE.add(out.get(key, Decimal(0)), r["EffectiveCost"])
    return out


def spend(ledger: Any) -> dict[tuple[str, str], Decimal]:
    return {(r.scope_value, r.currency): r.amount for r in ledger.spend(Scope("team"), SEPTEMBER)}


def test_a_month_of_vnd_and_one_huge_line_item_count_and_every_query_answers(ledger: Any) -> None:
    rows = [item(Decimal("2750000000.123456789"), "VND", "ml", day, h) for day in range(1, 31) for h in range(0, 24, 6)]
    rows += [item(Decimal("10000000000"), "USD", "web", 3), item(Decimal("1.25"), "USD", "web", 4)]
    deliver(ledger, 1, rows)
    assert spend(ledger) == expected(rows)
    daily = ledger.daily(Scope("team", "ml"), SEPTEMBER)
    assert daily["ml"][date(2024, 9, 5)]["VND"] == Decimal("11000000000.493827156")
    hourly = ledger.gpu_hourly(Scope("team", "ml"), datetime(2024, 9, 1, tzinfo=UTC))
    assert WIDE.add(Decimal(0), sum((v["VND"] for v in hourly["ml"].values()), Decimal(0))) == expected(rows)[
        ("ml", "VND")]
    top = ledger.top_resources(Scope("team"), SEPTEMBER, limit=100)
    assert {r.resource_id: r.amount for r in top}["i-web-3"] == Decimal("10000000000")
    assert [r.amount for r in top] == sorted((r.amount for r in top), reverse=True)
    services = {(s.service, s.currency): s.amount for s in ledger.by_service(Scope("team"), SEPTEMBER)}
    assert services[("EC2", "VND")] == expected(rows)[("ml", "VND")]
    tags = {(r.scope_value, r.currency): r.amount for r in ledger.top_tag_values("team", SEPTEMBER)}
    assert tags == expected(rows)


def test_a_sum_beyond_int64_of_amounts_that_each_fit_is_exact(ledger: Any) -> None:
    # Each 9e8 units fits int64 nano-units (9e17); 40 of them do not (3.6e19).
    rows = [item(Decimal("900000000.000000001"), "IDR", "ml", 1 + i % 28, i % 24) for i in range(40)]
    deliver(ledger, 1, rows)
    assert spend(ledger) == expected(rows)


amounts = st.decimals(min_value=Decimal("-1e18") + 1, max_value=Decimal("1e18") - 1, places=9,
                      allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.tuples(amounts, st.sampled_from(["ml", "web"]), st.sampled_from(["USD", "IDR"])),
                       min_size=1, max_size=30))
def test_any_amounts_within_range_sum_exactly(ledger: Any, values: list[tuple[Decimal, str, str]]) -> None:
    # Every example is a newer delivery of the same month: it replaces the one before.
    version = getattr(ledger, "_money_version", 0) + 1
    ledger._money_version = version
    rows = [item(v, cur, team, 1 + i % 28, i % 24) for i, (v, team, cur) in enumerate(values)]
    deliver(ledger, version, rows)
    assert spend(ledger) == expected(rows)


def test_twenty_digit_costs_read_from_a_file_are_counted_exactly(ledger: Any, tmp_path: Any) -> None:
    from tests.deliveries import delivery_ref, messages_for

    header = ("identity/LineItemId,lineItem/LineItemType,lineItem/UsageStartDate,lineItem/UnblendedCost,"
              "lineItem/CurrencyCode,resourceTags/user:team\n")
    costs = ["99999999999999999999.5", "12345678901234567890.123456789", "1e10", "0.000000001"] * 3
    path = tmp_path / "cur.csv"
    path.write_text(header + "".join(f"id{i},Usage,2024-09-0{1 + i % 9}T00:00:00Z,{c},IDR,ml\n"
                                     for i, c in enumerate(costs)))
    for m in messages_for(delivery_ref("big"), [path], chunk_rows=5):
        record_message(ledger, m, NOW)
    want = WIDE.add(Decimal(0), sum((WIDE.create_decimal(c) for c in costs), Decimal(0)))
    assert spend(ledger) == {("ml", "IDR"): want}


twenty_digits = st.decimals(min_value=Decimal("-99999999999999999999.999999999"),
                            max_value=Decimal("99999999999999999999.999999999"), places=9,
                            allow_nan=False, allow_infinity=False)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(costs=st.lists(twenty_digits, min_size=1, max_size=30))
def test_any_amounts_read_from_a_file_within_38_digits_count_exactly(ledger: Any, tmp_path_factory: Any,
                                                                     costs: list[Decimal]) -> None:
    from tests.deliveries import delivery_ref, messages_for

    version = getattr(ledger, "_file_version", 0) + 1
    ledger._file_version = version
    header = ("identity/LineItemId,lineItem/LineItemType,lineItem/UsageStartDate,lineItem/UnblendedCost,"
              "lineItem/CurrencyCode,resourceTags/user:team\n")
    path = tmp_path_factory.mktemp("cur") / "cur.csv"
    path.write_text(header + "".join(f"id{i},Usage,2024-09-{1 + i % 28:02d}T{i % 24:02d}:00:00Z,{c:f},VND,ml\n"
                                     for i, c in enumerate(costs)))
    for m in messages_for(delivery_ref(f"file-{version}"), [path], chunk_rows=7):
        record_message(ledger, m, NOW)
    assert spend(ledger) == {("ml", "VND"): WIDE.add(Decimal(0), sum(costs, Decimal(0)))}
