"""Currencies: ISO 4217 codes only, in data, policies and ``--currency`` (anything else is a named
error, never a bucket of its own); spend in another currency than a budget's is stated in the
status and alerted once, never "no spend yet"."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from burnguard.adapters.local.ledger import SqliteLedger
from burnguard.adapters.local.notifier import ConsoleNotifier
from burnguard.app.embedded import LocalMode, check_currency_argument
from burnguard.core.errors import BurnguardError, InputError
from burnguard.core.lineitem import SCHEMA
from burnguard.core.messages import (
    DeliveryRef,
    DeliverySummary,
    FileSummary,
    encode_chunk,
    encode_summary,
    stable_id,
    totals_of,
)
from burnguard.core.policy import load_policy
from burnguard.normalize import Normalizer
from burnguard.services.guardrail import GuardrailService
from burnguard.services.status import guardrail_status
from tests.helpers import EVENTS

HEADER = ("identity/LineItemId,lineItem/LineItemType,lineItem/UsageStartDate,lineItem/UnblendedCost,"
          "lineItem/CurrencyCode,resourceTags/user:team\n")
NOW = datetime(2024, 9, 20, 12, tzinfo=UTC)


def test_codes_in_data_are_iso_4217_and_others_are_named_row_errors() -> None:
    rows = ["a,Usage,2024-09-01T00:00:00Z,1.00,USD,ml", "b,Usage,2024-09-01T01:00:00Z,2.00,XYZ,ml",
            "c,Usage,2024-09-01T02:00:00Z,4.00,usd,ml", 'd,Usage,2024-09-01T03:00:00Z,8.00," USD",ml']
    n = Normalizer(io.BytesIO((HEADER + "\n".join(rows) + "\n").encode()), "cur.csv")
    table = n.read_all()
    assert totals_of(table).billed == {"USD": Decimal("9.00")}
    assert [(e.file, e.row, e.field) for e in n.stats.errors] == [
        ("cur.csv", 2, "lineItem/CurrencyCode"), ("cur.csv", 3, "lineItem/CurrencyCode")]
    assert "'XYZ' is not an ISO 4217 currency code" in str(n.stats.errors[0])
    assert "'usd'" in str(n.stats.errors[1]) and "'USD'" in str(n.stats.errors[1])


def test_codes_in_policies_and_arguments_are_iso_4217() -> None:
    policy = ("version: 1\nslack: {channel: '#s'}\nguardrails:\n"
              "  - {name: g, scope: team=a, budget: 10 XYZ, thresholds: [{at: 100%, actions: [notify]}]}\n")
    with pytest.raises(BurnguardError, match="ISO 4217"):
        load_policy(policy, "policy.yaml")
    assert load_policy(policy.replace("XYZ", "eur"), "policy.yaml").guardrails[0].budget.money.currency == "EUR"  # type: ignore[union-attr]
    with pytest.raises(InputError, match="ISO 4217") as info:
        check_currency_argument("XYZ")
    assert info.value.field == "--currency"
    assert check_currency_argument(" usd ") == "USD"


def test_mistyped_currency_argument_stops_the_ingest(tmp_path: Path) -> None:
    local = LocalMode.create(tmp_path / "home", EVENTS / "policies" / "demo.yaml", None)
    with pytest.raises(InputError, match="'US' is not an ISO 4217"):
        local.ingest([EVENTS / "exports" / "aws"], default_currency="US")
    local.close()


POLICY = """
version: 1
slack: {channel: "#spend"}
guardrails:
  - name: ml-monthly
    scope: team=ml-research
    budget: 1000 USD
    thresholds: [{at: 100%, actions: [notify]}]
"""


def item(cost: str, currency: str) -> dict[str, Any]:
    start = datetime(2024, 9, 10, tzinfo=UTC)
    return {
        "ProviderName": "AWS", "BillingAccountId": "1", "BillingPeriodStart": datetime(2024, 9, 1, tzinfo=UTC),
        "BillingPeriodEnd": datetime(2024, 10, 1, tzinfo=UTC), "ChargePeriodStart": start,
        "ChargePeriodEnd": start + timedelta(hours=1), "ChargeCategory": "Usage", "BilledCost": Decimal(cost),
        "EffectiveCost": Decimal(cost), "BillingCurrency": currency, "ServiceName": "EC2", "ResourceId": "i-1",
        "Tags": [("team", "ml-research")], "x_Cloud": "aws", "x_InstanceType": "p4d.24xlarge",
        "x_AcceleratorClass": "gpu",
    }


def deliver(service: GuardrailService, version: int, rows: list[dict[str, Any]]) -> list[Any]:
    ref = DeliveryRef(delivery_id=stable_id("cur", str(version)), provider="aws", source="cur",
                      billing_period="2024-09", version=str(version),
                      produced_at=datetime(2024, 9, 1, tzinfo=UTC) + timedelta(hours=version))
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    totals = totals_of(table)
    summary = DeliverySummary(delivery=ref, files=[FileSummary(key="f.csv", chunks=1, totals=totals,
                                                                rows_read=table.num_rows)], totals=totals)
    service.handle(encode_chunk(ref, "f.csv", 0, table))
    return service.handle(encode_summary(summary)).reports


def test_spend_in_another_currency_is_stated_and_alerted_once() -> None:
    ledger = SqliteLedger(":memory:")
    notifier = ConsoleNotifier(quiet=True)
    policy = load_policy(POLICY, "policy.yaml")
    service = GuardrailService(policy, ledger, notifier, {}, clock=lambda: NOW)
    reports = deliver(service, 1, [item("30000000", "VND")])
    assert [r.decision.kind for r in reports] == ["currency"]
    assert len(notifier.sent) == 1 and "VND" in notifier.sent[0].text and "USD" in notifier.sent[0].text
    assert deliver(service, 2, [item("31000000", "VND")]) == []  # once per period and currency
    assert service.run() == []
    [status] = guardrail_status(policy, ledger, NOW)
    assert "no spend yet" not in status.state and "VND" in status.state and "not compared" in status.state
    # Spend in the budget's currency still counts as before; the VND note stays in the status.
    [report] = deliver(service, 3, [item("31000000", "VND"), item("1200", "USD")])
    assert report.decision.kind == "threshold" and report.decision.label == "100%"

