"""Golden totals of every AWS CUR fixture: the normalizer against an independent reading.

The expected side applies AWS's documented amortized-cost definition (the CUR query library's
CASE over ``lineItem/LineItemType``) row by row with the csv module and Decimal.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

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


def test_every_line_item_type_against_the_amortized_cost_definition(tmp_path: Path) -> None:
    """No public CUR holds RIFee, DiscountedUsage, SavingsPlanNegation, Credit, Refund, Fee or
    the plan fees (formats.md §9): the benchmark generator writes them all, with their cost
    columns, and the expected side is the same CASE as above, row by row."""
    from tests.bench.gen_cur import LINE_ITEM_TYPES, write_cur

    path = write_cur(tmp_path / "cur.csv.gz", 6000, seed=11)
    _, rows = read_rows(path)
    kinds = {r["lineItem/LineItemType"] for r in rows}
    assert kinds == {t for t, _ in LINE_ITEM_TYPES}
    expected = totals_by_currency([("USD", dec(r["lineItem/UnblendedCost"]), expected_effective(r)) for r in rows])
    got, stats = normalized_totals(path)
    assert stats.error_count == 0 and got == expected
    # and per type, to the cent: a wrong rule for one type cannot hide behind the others
    from burnguard.normalize import Normalizer

    table = Normalizer.from_path(path).read_all()
    by_row = dict(zip(table.column("x_SourceRow").to_pylist(), table.column("EffectiveCost").to_pylist(), strict=True))
    for kind in kinds:
        want = sum((expected_effective(r) for r in rows if r["lineItem/LineItemType"] == kind), Decimal(0))
        have = sum((by_row[i + 1] for i, r in enumerate(rows) if r["lineItem/LineItemType"] == kind), Decimal(0))
        assert abs(have - want) < Decimal("0.000001"), kind


def test_legacy_cur_in_parquet_with_athena_names(tmp_path: Path) -> None:
    """The Athena/Parquet CUR: snake_case names, one column per tag (``resource_tags_user_team``),
    DOUBLE costs read through their shortest decimal text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from burnguard.normalize import Normalizer

    table = pa.table({
        "line_item_line_item_type": ["Usage", "DiscountedUsage", "Tax"],
        "line_item_usage_start_date": pa.array([1725148800000] * 3, pa.timestamp("ms")),
        "line_item_unblended_cost": pa.array([0.1, 0.0, 2.5], pa.float64()),
        "line_item_currency_code": ["USD"] * 3,
        "reservation_effective_cost": pa.array([None, 0.7, None], pa.float64()),
        "product_instance_type": ["g5.xlarge", "p4d.24xlarge", None],
        "resource_tags_user_team": ["ml-research", "", None],
        "resource_tags_user_project": [None, "llm", None],
    })
    pq.write_table(table, tmp_path / "cur.snappy.parquet")
    n = Normalizer.from_path(tmp_path / "cur.snappy.parquet")
    out = n.read_all()
    assert n.stats.format == "aws-cur" and n.stats.variant == "aws-cur"
    assert out.column("BilledCost").to_pylist() == [Decimal("0.1"), Decimal(0), Decimal("2.5")]
    assert out.column("EffectiveCost").to_pylist() == [Decimal("0.1"), Decimal("0.7"), Decimal("2.5")]
    assert [dict(t) for t in out.column("Tags").to_pylist()] == [{"team": "ml-research"}, {"project": "llm"}, {}]
    assert out.column("ChargeCategory").to_pylist() == ["Usage", "Usage", "Tax"]
