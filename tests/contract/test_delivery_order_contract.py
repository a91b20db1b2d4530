"""The newest delivery by production time wins whatever the arrival order: any interleaving
of the chunks and summaries of restated deliveries of one month counts the newest one, on
every ledger adapter."""

from __future__ import annotations

import itertools
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
SLICES = itertools.count()


def item(cost: str, day: int, team: str) -> dict[str, Any]:
    start = datetime(2024, 9, day, tzinfo=UTC)
    return {
        "ProviderName": "AWS", "BillingAccountId": "1", "BillingPeriodStart": datetime(2024, 9, 1, tzinfo=UTC),
        "BillingPeriodEnd": datetime(2024, 10, 1, tzinfo=UTC), "ChargePeriodStart": start,
        "ChargePeriodEnd": start + timedelta(hours=1), "ChargeCategory": "Usage", "BilledCost": Decimal(cost),
        "EffectiveCost": Decimal(cost), "BillingCurrency": "USD", "ServiceName": "EC2", "ResourceId": "i-1",
        "Tags": [("team", team)], "x_Cloud": "aws", "x_InstanceType": "p4d.24xlarge", "x_AcceleratorClass": "gpu",
    }


def restated(source: str, version: int, produced: datetime, team: str) -> tuple[list[Message], Decimal]:
    """A month-to-date delivery: two chunks and a summary; its total tells it apart."""
    ref = DeliveryRef(delivery_id=stable_id(source, str(version)), provider="aws", source=source,
                      billing_period="2024-09", version=f"assembly-{version}", produced_at=produced)
    rows = [item(f"{version}.{d:02d}", d, team) for d in range(1, 5)]
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    chunks = [table.slice(0, 2), table.slice(2, 2)]
    totals = totals_of(table)
    summary = DeliverySummary(delivery=ref, files=[FileSummary(key="f.csv", chunks=2, totals=totals,
                                                                rows_read=table.num_rows)], totals=totals)
    return ([encode_chunk(ref, "f.csv", i, c) for i, c in enumerate(chunks)] + [encode_summary(summary)],
            sum((r["EffectiveCost"] for r in rows), Decimal(0)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), count=st.integers(min_value=2, max_value=4))
def test_any_arrival_order_counts_the_newest(ledger: Any, data: st.DataObject, count: int) -> None:
    n = next(SLICES)
    source, team = f"aws-cur|1|order-{n}", f"team-{n}"  # a slice and a scope of its own per example
    base = datetime(2024, 9, 28, tzinfo=UTC)
    hours = data.draw(st.lists(st.integers(0, 1000), min_size=count, max_size=count, unique=True), label="hours")
    deliveries = [restated(source, v, base + timedelta(hours=h), team) for v, h in enumerate(hours, start=1)]
    messages = [m for msgs, _ in deliveries for m in msgs]
    order = data.draw(st.permutations(messages), label="arrival")
    redelivered = data.draw(st.lists(st.sampled_from(messages), max_size=4), label="duplicates")
    for m in [*order, *redelivered]:
        record_message(ledger, m, NOW)
    newest = max(range(count), key=lambda i: hours[i])
    counted = [d for d in ledger.deliveries(include_superseded=True) if d.delivery.source == source and d.counted]
    assert [d.delivery.version for d in counted] == [f"assembly-{newest + 1}"]
    assert [(r.scope_value, r.amount) for r in ledger.spend(Scope("team", team), SEPTEMBER)] == [
        (team, deliveries[newest][1])]
