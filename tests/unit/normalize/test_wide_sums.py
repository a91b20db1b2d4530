"""Sums of line items never wrap: 20-digit costs (which Arrow's decimal128 sums silently wrap
past 38 digits) sum exactly in the delivery totals, the summary and the ledger facts; a value
truly out of range is named (file, row, field) and the rest of the file counts."""

from __future__ import annotations

import decimal
import io
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from burnguard.core.facts import chunk_facts
from burnguard.core.messages import totals_of
from burnguard.core.summary import Summary
from burnguard.normalize import Normalizer

HEADER = ("identity/LineItemId,lineItem/LineItemType,lineItem/UsageStartDate,lineItem/UnblendedCost,"
          "lineItem/CurrencyCode,resourceTags/user:team\n")


def normalized(costs: list[str]) -> tuple[Normalizer, object]:
    text = HEADER + "".join(f"id{i},Usage,2024-09-01T0{i % 10}:00:00Z,{c},USD,ml\n" for i, c in enumerate(costs))
    n = Normalizer(io.BytesIO(text.encode()), "cur.csv")
    return n, n.read_all()


def test_five_twenty_digit_costs_sum_exactly() -> None:
    _, table = normalized(["99999999999999999999.5"] * 5)
    want = Decimal("499999999999999999997.5")
    assert totals_of(table).billed == {"USD": want}  # type: ignore[arg-type]
    summary = Summary()
    summary.add(table)  # type: ignore[arg-type]
    assert summary.currency_totals()["USD"] == (want, want)
    facts = chunk_facts(table)  # type: ignore[arg-type]
    assert sum(facts.spend.column("billed").to_pylist(), Decimal(0)) == want


def test_a_value_out_of_range_is_named_and_the_rest_counts() -> None:
    n, table = normalized(["1.25", "123456789012345678901234567890123.5", "2.5"])
    assert totals_of(table).billed == {"USD": Decimal("3.75")}  # type: ignore[arg-type]
    [err] = n.stats.errors
    assert (err.file, err.row, err.field) == ("cur.csv", 2, "lineItem/UnblendedCost")
    assert "out of range" in str(err)


thirty_eight_digits = st.decimals(min_value=Decimal("-99999999999999999999.999999999999999999"),
                                  max_value=Decimal("99999999999999999999.999999999999999999"), places=18,
                                  allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(costs=st.lists(thirty_eight_digits, min_size=1, max_size=40))
def test_any_amounts_within_38_digits_sum_exactly(costs: list[Decimal]) -> None:
    _, table = normalized([f"{c:f}" for c in costs])
    want = decimal.Context(prec=200).create_decimal(sum(costs, Decimal(0)))
    got = totals_of(table).billed  # type: ignore[arg-type]
    assert got == {"USD": want}
