"""Golden totals of every Azure cost export fixture: the normalizer against an independent reading.

The expected side reads each raw file with the csv module and ``Decimal``: it finds the cost and
currency columns itself (case-insensitively, seeing through localized ``Name (EnglishName)``
headers), decides the file's cost basis from its rows, and applies the FOCUS definitions of
``BilledCost`` / ``EffectiveCost`` documented in ``burnguard.normalize.azure`` row by row. Rows
with an empty cost (or no currency) must come back as bad rows naming file, row and field.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, cents, dec, fixture, normalized_totals, read_rows, totals_by_currency

AZURE_FILES = sorted(
    str(p.relative_to(FIXTURES))
    for pattern in ("finops-toolkit/EA_*.csv", "focus-converters/azure-ea-*.csv", "koku/azure/*.csv",
                    "opencost-azure-billingexports/**/*.csv")
    for p in FIXTURES.glob(pattern)
)
#: Files whose header has no currency column: they are read with this default currency.
DEFAULT_CURRENCY = "USD"

COST_NAMES = ("costinbillingcurrency", "cost", "pretaxcost")
CURRENCY_NAMES = ("billingcurrencycode", "billingcurrency", "currency")
_PAREN = re.compile(r"\(([^()]+)\)\s*$")


def test_every_azure_fixture_is_covered() -> None:
    # 3 finops-toolkit + 1 focus-converters + 4 koku + 9 opencost files.
    assert len(AZURE_FILES) == 17, AZURE_FILES
    for must in ("finops-toolkit/EA_NoRows.csv", "opencost-azure-billingexports/headersets/BOM.csv",
                 "opencost-azure-billingexports/headersets/German.csv",
                 "opencost-azure-billingexports/values/Template.csv"):
        assert must in AZURE_FILES


def _key(name: str) -> str:
    m = _PAREN.search(name)
    return (m.group(1) if m else name).strip().casefold()


def _column(header: list[str], candidates: tuple[str, ...]) -> str | None:
    keys = {_key(h): h for h in reversed(header)}
    for c in candidates:
        if c in keys:
            return keys[c]
    return None


def _field(row: dict[str, str], header: list[str], name: str) -> str:
    col = _column(header, (name.casefold(),))
    return (row.get(col) or "").strip() if col else ""


def expected(path: Path) -> tuple[dict[str, tuple[Decimal, Decimal]], list[tuple[int, str]], int, str | None]:
    """(totals per currency, bad rows as (row, field), good row count, default currency used)."""
    header, rows = read_rows(path)
    cost_col = _column(header, COST_NAMES)
    currency_col = _column(header, CURRENCY_NAMES)
    assert cost_col is not None, f"{path.name}: no cost column in {header}"
    default = None if currency_col else DEFAULT_CURRENCY

    def kind(row: dict[str, str]) -> tuple[str, str]:
        return _field(row, header, "ChargeType").casefold(), _field(row, header, "PricingModel").casefold()

    def covered(row: dict[str, str]) -> bool:
        charge, model = kind(row)
        return charge in ("", "usage") and model in ("reservation", "savingsplan")

    def unused(row: dict[str, str]) -> bool:
        return kind(row)[0] in ("unusedreservation", "unusedsavingsplan")

    def commitment_purchase(row: dict[str, str]) -> bool:
        charge, model = kind(row)
        return charge in ("purchase", "refund") and (
            model in ("reservation", "savingsplan") or bool(_field(row, header, "ReservationId")))

    good: list[dict[str, str]] = []
    bad: list[tuple[int, str]] = []
    for number, row in enumerate(rows, start=1):
        if not (row.get(cost_col) or "").strip():
            bad.append((number, cost_col))
        elif currency_col and not re.fullmatch(r"[A-Z]{3}", (row.get(currency_col) or "").strip()):
            bad.append((number, currency_col))  # empty, or not an ISO 4217 code (koku's "MC")
        else:
            good.append(row)

    amortized = any(unused(r) or (covered(r) and dec(r[cost_col]) != 0) for r in good)
    items = []
    for r in good:
        cost = dec(r[cost_col])
        billed = effective = cost
        if amortized:
            billed = Decimal(0) if covered(r) or unused(r) else cost
            effective = Decimal(0) if commitment_purchase(r) else cost
        items.append(((r.get(currency_col) or "").strip() if currency_col else DEFAULT_CURRENCY, billed, effective))
    return totals_by_currency(items), bad, len(good), default


@pytest.mark.parametrize("relative", AZURE_FILES)
def test_azure_totals_match_independent_computation(relative: str) -> None:
    path = fixture(relative)
    want, bad, good_rows, default = expected(path)
    got, stats = normalized_totals(path, default_currency=default)
    assert stats.format == "azure-cost"
    assert stats.variant.startswith("azure-")
    assert stats.rows_read == good_rows + len(bad)
    assert stats.rows_normalized == good_rows
    assert stats.error_count == len(bad), [str(e) for e in stats.errors]
    assert [(e.file, e.row, e.field) for e in stats.errors] == [(path.name, row, field) for row, field in bad]
    assert got == want


def test_bom_file_empty_cost_is_a_bad_row_not_a_zero() -> None:
    path = fixture("opencost-azure-billingexports/headersets/BOM.csv")
    got, stats = normalized_totals(path)
    assert got == {}
    assert stats.rows_read == 1
    assert stats.rows_normalized == 0
    assert stats.error_count == 1
    err = stats.errors[0]
    assert (err.file, err.row, err.field) == ("BOM.csv", 1, "PreTaxCost")
    assert "empty" in err.reason


def test_amortized_fixture_has_billed_below_effective() -> None:
    # The amortized EA file has reservation and savings plan usage with a cost: billed 0 there.
    path = fixture("finops-toolkit/EA_AmortizedCost_Small.csv")
    _, rows = read_rows(path)
    covered = sum((dec(r["Cost"]) for r in rows if r["PricingModel"] in ("Reservation", "SavingsPlan")), Decimal(0))
    assert covered > 0
    got, stats = normalized_totals(path)
    billed, effective = got["USD"]
    assert effective - billed == cents(covered)
    assert any("inferred as amortized" in w for w in stats.warnings)


def test_actual_fixture_counts_the_reservation_purchase_in_both_costs() -> None:
    path = fixture("finops-toolkit/EA_ActualCost_Small.csv")
    _, rows = read_rows(path)
    total = sum((dec(r["Cost"]) for r in rows), Decimal(0))
    assert any(r["ChargeType"] == "Purchase" and r["ReservationId"] and dec(r["Cost"]) for r in rows)
    got, stats = normalized_totals(path)
    assert got == {"USD": (cents(total), cents(total))}
    assert any("inferred as actual" in w for w in stats.warnings)


def test_scientific_notation_costs_are_exact() -> None:
    path = fixture("focus-converters/azure-ea-sample-anonymous-export-dataset.csv")
    _, rows = read_rows(path)
    assert any("E-" in r["CostInBillingCurrency"] for r in rows)
    from burnguard.normalize import Normalizer

    table = Normalizer.from_path(path).read_all()
    by_row = dict(zip(table.column("x_SourceRow").to_pylist(), table.column("BilledCost").to_pylist(), strict=True))
    for number, r in enumerate(rows, start=1):
        assert by_row[number] == Decimal(r["CostInBillingCurrency"])
