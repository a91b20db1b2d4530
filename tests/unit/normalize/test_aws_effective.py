"""The amortized cost of legacy CUR rows: the Savings Plan and reservation columns count on
the rows of the line item types that use them, and are judged only there."""

from __future__ import annotations

import io
from decimal import Decimal

from burnguard.normalize import Normalizer

HEADER = ("identity/LineItemId,lineItem/LineItemType,lineItem/UsageStartDate,lineItem/UnblendedCost,"
          "lineItem/CurrencyCode,savingsPlan/SavingsPlanEffectiveCost,savingsPlan/TotalCommitmentToDate,"
          "savingsPlan/UsedCommitment,reservation/EffectiveCost,"
          "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod,reservation/UnusedRecurringFee\n")
T = "2024-09-01T00:00:00Z"
#: (id, type, unblended, sp effective, sp total, sp used, ri effective, ri unused upfront, ri unused recurring)
ROWS = [
    ("a", "Usage", "1.00", "", "", "", "n/a", "", ""),  # a column this type does not use: not judged
    ("b", "SavingsPlanCoveredUsage", "2.00", "1.50", "", "", "", "", ""),
    ("c", "SavingsPlanCoveredUsage", "2.00", "", "", "", "", "", ""),  # no effective cost: a bad row
    ("d", "SavingsPlanRecurringFee", "10.00", "", "10.00", "7.25", "", "", ""),
    ("e", "DiscountedUsage", "0.00", "", "", "", "abc", "", ""),  # not a number where it counts
    ("f", "RIFee", "3.00", "", "", "", "", "0.25", ""),
    ("g", "DiscountedUsage", "0.00", "", "", "", "0.80", "", ""),
    ("h", "SavingsPlanNegation", "-2.00", "x", "", "", "", "", ""),
    ("i", "Usage", "4.00", "", "bad", "", "", "", "oops"),
]
#: Worked by hand from AWS's amortized-cost rule: id -> EffectiveCost.
EXPECTED = {"a": "1.00", "b": "1.50", "d": "2.75", "f": "0.25", "g": "0.80", "h": "0", "i": "4.00"}


def test_commitment_costs_count_on_their_rows_and_are_judged_only_there() -> None:
    data = HEADER + "".join(f"{r[0]},{r[1]},{T},{r[2]},USD,{','.join(r[3:])}\n" for r in ROWS)
    n = Normalizer(io.BytesIO(data.encode()), "cur.csv")
    table = n.read_all()
    kept = [ROWS[row - 1][0] for row in table.column("x_SourceRow").to_pylist()]
    assert kept == list(EXPECTED)
    assert table.column("EffectiveCost").to_pylist() == [Decimal(EXPECTED[k]) for k in kept]
    assert [(e.row, e.field) for e in n.stats.errors] == [
        (3, "savingsPlan/SavingsPlanEffectiveCost"), (5, "reservation/EffectiveCost")]
    assert "without a Savings Plan effective cost" in str(n.stats.errors[0])
    assert "'abc'" in str(n.stats.errors[1])
    assert n.stats.rows_skipped == 2
