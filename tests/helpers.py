"""Helpers shared by the tests: fixture paths and an independent reading of raw files.

The golden tests compare the normalizer with a computation written here with the ``csv``
module and ``Decimal`` (never with the normalizer's own code), to the cent, per currency.
"""

from __future__ import annotations

import csv
import gzip
from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "public"
EVENTS = Path(__file__).parents[1] / "events"
CENT = Decimal("0.01")


def fixture(relative: str) -> Path:
    path = FIXTURES / relative
    assert path.exists(), f"missing fixture {relative}"
    return path


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV (gzip or not, BOM or not) with the csv module."""
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = [dict(zip(header, row, strict=False)) for row in reader]
    return header, rows


def dec(text: str | None) -> Decimal:
    text = (text or "").strip()
    if text in ("", "NULL", "null"):
        return Decimal(0)
    return Decimal(text)


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def totals_by_currency(items: list[tuple[str, Decimal, Decimal]]) -> dict[str, tuple[Decimal, Decimal]]:
    """Sum (currency, billed, effective) triples per currency, rounded to the cent."""
    acc: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for currency, billed, effective in items:
        acc[currency][0] += billed
        acc[currency][1] += effective
    return {c: (cents(b), cents(e)) for c, (b, e) in acc.items()}


def normalized_totals(path: Path, **kwargs: Any) -> tuple[dict[str, tuple[Decimal, Decimal]], Any]:
    """Totals of the normalizer's output per currency, and its stats."""
    from burnguard.normalize import Normalizer

    normalizer = Normalizer.from_path(path, **kwargs)
    items: list[tuple[str, Decimal, Decimal]] = []
    for table in normalizer.batches():
        for currency, billed, effective in zip(
            table.column("BillingCurrency").to_pylist(),
            table.column("BilledCost").to_pylist(),
            table.column("EffectiveCost").to_pylist(),
            strict=True,
        ):
            items.append((currency, billed, effective))
    return totals_by_currency(items), normalizer.stats
