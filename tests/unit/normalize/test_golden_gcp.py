"""Golden totals of every Google Cloud billing export fixture and sample: the normalizer
against an independent reading of the raw file.

The expected side never uses burnguard: koku's pandas-flattened CSV is read with the csv module
and its Python-literal credits with ``ast.literal_eval`` (a float literal's ``repr`` is the text
it was written as); JSON lines with ``json.loads(parse_float=Decimal)``; Parquet with DuckDB,
casting each DOUBLE to a DECIMAL before summing. BilledCost is ``cost``; EffectiveCost is
``cost + SUM(credits.amount)``. Totals are compared to the cent, per currency, and where the
raw amounts are exact decimals, exactly.
"""

from __future__ import annotations

import ast
import gzip
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.helpers import EVENTS, cents, dec, fixture, normalized_totals, read_rows, totals_by_currency

KOKU_FILES = [
    "koku/gcp/202011_30c31bca571d9b7f3b2c8459dd8bc34a_2020-11-08_2020-11-11.csv",
    "koku/gcp/2022-08-01_5.csv",
]
SAMPLES = EVENTS / "samples" / "gcp"
JSONL = SAMPLES / "billing-export-202409.jsonl"
JSONL_GZ = SAMPLES / "billing-export-202409.jsonl.gz"
PARQUET = SAMPLES / "billing-export-202409.parquet"


def exact_totals(path: Path) -> dict[str, tuple[Decimal, Decimal]]:
    """The normalizer's totals per currency, not rounded."""
    from burnguard.normalize import Normalizer

    acc: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for table in Normalizer.from_path(path).batches():
        for c, b, e in zip(table.column("BillingCurrency").to_pylist(), table.column("BilledCost").to_pylist(),
                           table.column("EffectiveCost").to_pylist(), strict=True):
            acc[c][0] += b
            acc[c][1] += e
    return {c: (b, e) for c, (b, e) in acc.items()}


# -- koku's flattened CSV ------------------------------------------------------------------------

def koku_credits(text: str) -> Decimal:
    credits = ast.literal_eval(text) if text.strip() else []
    return sum((Decimal(repr(c["amount"])) for c in credits), Decimal(0))


@pytest.mark.parametrize("relative", KOKU_FILES)
def test_koku_totals_match_independent_computation(relative: str) -> None:
    path = fixture(relative)
    _, rows = read_rows(path)
    items = [(r["currency"], dec(r["cost"]), dec(r["cost"]) + koku_credits(r["credits"])) for r in rows]
    got, stats = normalized_totals(path)
    assert stats.format == "gcp-billing"
    assert stats.error_count == 0, stats.errors
    assert stats.rows_normalized == len(rows)
    assert got == totals_by_currency(items)
    exact: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for currency, billed, effective in items:
        exact[currency][0] += billed
        exact[currency][1] += effective
    assert exact_totals(path) == {c: (b, e) for c, (b, e) in exact.items()}


def test_koku_promotion_credits_reduce_effective_cost() -> None:
    path = fixture(KOKU_FILES[0])
    _, rows = read_rows(path)
    with_credit = [r for r in rows if "PROMOTION" in r["credits"]]
    assert with_credit, "fixture has PROMOTION credits"
    got = exact_totals(path)["USD"]
    assert got[1] < got[0]  # credits are negative
    assert got[0] - got[1] == -sum((koku_credits(r["credits"]) for r in rows), Decimal(0))


# -- the samples: JSON lines (plain and gzip) and Parquet ----------------------------------------

def jsonl_records(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line, parse_float=Decimal, parse_int=Decimal) for line in fh if line.strip()]


def json_money(value: Any) -> Decimal:
    # A JSON number arrives as Decimal; an INT64/NUMERIC arrives as its string.
    return Decimal(str(value)) if value is not None else Decimal(0)


@pytest.mark.parametrize("path", [JSONL, JSONL_GZ], ids=lambda p: p.name)
def test_jsonl_sample_totals_match_independent_computation(path: Path) -> None:
    records = jsonl_records(path)
    items = [(r["currency"], json_money(r["cost"]),
              json_money(r["cost"]) + sum((json_money(c["amount"]) for c in r.get("credits") or []), Decimal(0)))
             for r in records]
    got, stats = normalized_totals(path)
    assert stats.format == "gcp-billing"
    assert stats.variant == "gcp-billing-detailed"
    assert stats.error_count == 0, stats.errors
    assert stats.rows_normalized == len(records) > 100
    assert got == totals_by_currency(items)
    exact = {"USD": (sum((b for _, b, _ in items), Decimal(0)), sum((e for _, _, e in items), Decimal(0)))}
    assert exact_totals(path) == exact
    assert exact["USD"][1] < exact["USD"][0]  # the sample has credits


def test_parquet_sample_totals_match_duckdb() -> None:
    query = """
        SELECT currency,
               SUM(CAST(cost AS DECIMAL(38, 9))) AS billed,
               SUM(CAST(cost AS DECIMAL(38, 9))
                   + COALESCE(list_sum(list_transform(credits, lambda c: CAST(c.amount AS DECIMAL(38, 9)))), 0)) AS eff,
               COUNT(*) AS n
        FROM read_parquet(?) GROUP BY currency
    """
    rows = duckdb.execute(query, [str(PARQUET)]).fetchall()
    expected = {currency: (cents(Decimal(billed)), cents(Decimal(eff))) for currency, billed, eff, _ in rows}
    got, stats = normalized_totals(PARQUET)
    assert stats.format == "gcp-billing"
    assert stats.error_count == 0, stats.errors
    assert stats.rows_normalized == sum(n for *_, n in rows)
    assert got == expected
    # The sample's amounts have 6 decimal places: the DOUBLE's shortest text is exact.
    assert exact_totals(PARQUET) == {c: (Decimal(b), Decimal(e)) for c, b, e, _ in rows}


def test_three_containers_give_the_same_line_items() -> None:
    from burnguard.normalize import Normalizer

    tables = [Normalizer.from_path(p).read_all().drop_columns(["x_SourceFile"]) for p in (JSONL, JSONL_GZ, PARQUET)]
    assert tables[0].num_rows == len(jsonl_records(JSONL))
    assert tables[0].equals(tables[1])
    assert tables[0].equals(tables[2])
