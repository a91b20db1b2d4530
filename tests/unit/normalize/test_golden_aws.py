"""Golden totals of every AWS CUR fixture: the normalizer against an independent reading.

The expected side applies AWS's documented amortized-cost definition (the CUR query library's
CASE over ``lineItem/LineItemType``) row by row with the csv module and Decimal.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.helpers import dec, fixture, normalized_totals, read_rows, totals_by_currency

AWS_FILES = [
    "focus-converters/aws-cur-sample-anonymous-export-dataset.truncated.csv",
    "koku/aws/test_cur.csv",
    "koku/aws/2023-06-01.csv",
    "koku/aws/2023-06-01-not-final.csv",
    "koku/aws/2022-07-01-alt-columns.csv",
    "koku/aws-cur-s3-layout/my-prefix/my-report/20180801-20180901/"
    "861af42f-713c-4a42-9562-9158a7625630/my-report-1.csv.gz",
]


def _get(row: dict[str, str], legacy: str, snake: str) -> str:
    return row.get(legacy) or row.get(snake) or ""


def expected_effective(row: dict[str, str]) -> Decimal:
    kind = _get(row, "lineItem/LineItemType", "line_item_line_item_type")
    unblended = dec(_get(row, "lineItem/UnblendedCost", "line_item_unblended_cost"))
    if kind == "SavingsPlanCoveredUsage":
        return dec(_get(row, "savingsPlan/SavingsPlanEffectiveCost", "savings_plan_savings_plan_effective_cost"))
    if kind == "SavingsPlanRecurringFee":
        return dec(_get(row, "savingsPlan/TotalCommitmentToDate", "savings_plan_total_commitment_to_date")) - dec(
            _get(row, "savingsPlan/UsedCommitment", "savings_plan_used_commitment"))
    if kind in ("SavingsPlanNegation", "SavingsPlanUpfrontFee"):
        return Decimal(0)
    if kind == "DiscountedUsage":
        return dec(_get(row, "reservation/EffectiveCost", "reservation_effective_cost"))
    if kind == "RIFee":
        return dec(_get(row, "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod",
                        "reservation_unused_amortized_upfront_fee_for_billing_period")) + dec(
            _get(row, "reservation/UnusedRecurringFee", "reservation_unused_recurring_fee"))
    if kind == "Fee" and _get(row, "reservation/ReservationARN", "reservation_reservation_a_r_n"):
        return Decimal(0)
    return unblended


@pytest.mark.parametrize("relative", AWS_FILES)
def test_aws_totals_match_independent_computation(relative: str) -> None:
    path = fixture(relative)
    _, rows = read_rows(path)
    expected = totals_by_currency([
        (_get(r, "lineItem/CurrencyCode", "line_item_currency_code"),
         dec(_get(r, "lineItem/UnblendedCost", "line_item_unblended_cost")),
         expected_effective(r))
        for r in rows
    ])
    got, stats = normalized_totals(path)
    assert stats.format == "aws-cur"
    assert stats.error_count == 0, stats.errors
    assert stats.rows_normalized == len(rows)
    assert got == expected


def test_savings_plan_covered_usage_is_amortized() -> None:
    got, _ = normalized_totals(fixture("koku/aws/2023-06-01.csv"))
    # Three SavingsPlanCoveredUsage rows of 10 NOK on demand, 0.1 NOK under the plan.
    assert got == {"NOK": (Decimal("30.00"), Decimal("0.30"))}
