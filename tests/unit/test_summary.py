"""``burnguard normalize --summary`` totals: a file's summary merged into a run's gives what
adding every chunk to the run's would (the CLI sums each chunk once, then merges per file)."""

from __future__ import annotations

import io
from decimal import Decimal

from burnguard.core.summary import Summary
from burnguard.normalize import Normalizer

HEADER = ("identity/LineItemId,lineItem/LineItemType,lineItem/UsageStartDate,lineItem/UnblendedCost,"
          "lineItem/CurrencyCode,resourceTags/user:team\n")
#: (cost, currency, team) per row of two files
FILE_A = [("1.10", "USD", "ml"), ("2.25", "USD", ""), ("3.00", "EUR", "ml")]
FILE_B = [("4.40", "USD", "ml"), ("0.05", "USD", "web"), ("5.00", "EUR", "")]


def _table(rows: list[tuple[str, str, str]]) -> object:
    text = HEADER + "".join(f"id{i},Usage,2024-09-01T00:00:00Z,{c},{cur},{team}\n"
                            for i, (c, cur, team) in enumerate(rows))
    return Normalizer(io.BytesIO(text.encode()), "cur.csv").read_all()


def test_merged_file_summaries_total_as_the_rows_do() -> None:
    run = Summary()
    for rows in (FILE_A, FILE_B):
        file = Summary()
        file.add(_table(rows))  # type: ignore[arg-type]
        run.merge(file)
    everything = FILE_A + FILE_B
    assert run.rows == 6
    # Worked by hand from the rows above.
    assert run.currency_totals() == {"EUR": (Decimal("8.00"), Decimal("8.00")),
                                     "USD": (Decimal("7.80"), Decimal("7.80"))}
    assert {k: (t.rows, t.billed) for k, t in run.by_tag.items()} == {
        ("team", "ml", "USD"): (2, Decimal("5.50")), ("team", "ml", "EUR"): (1, Decimal("3.00")),
        ("team", "web", "USD"): (1, Decimal("0.05"))}
    assert {k: (t.rows, t.billed) for k, t in run.untagged.items()} == {
        "USD": (1, Decimal("2.25")), "EUR": (1, Decimal("5.00"))}
    assert sum(1 for _, _, team in everything if not team) == sum(t.rows for t in run.untagged.values())
