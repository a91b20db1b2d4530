"""Streaming totals over canonical line items: per currency, and per tag key and value.

Used by ``burnguard normalize --summary`` and by ingestion, whose closing message of a
delivery carries the same row count and cost sums so the guardrail can check that every chunk
arrived (ARCHITECTURE.md rule 2). Vectorized: one Arrow group-by per chunk, Decimal merging.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from burnguard.core.columnar import currency_sums, tag_counts, tag_entries
from burnguard.core.lineitem import wide_money
from burnguard.core.money import cents

ZERO = Decimal(0)


@dataclass
class CostTotals:
    rows: int = 0
    billed: Decimal = ZERO
    effective: Decimal = ZERO

    def add(self, rows: int, billed: Decimal | None, effective: Decimal | None) -> None:
        self.rows += rows
        self.billed += billed or ZERO
        self.effective += effective or ZERO

    def as_dict(self) -> dict[str, object]:
        return {"rows": self.rows, "BilledCost": str(cents(self.billed)), "EffectiveCost": str(cents(self.effective))}


@dataclass
class Summary:
    """Accumulates line item chunks; :meth:`add` is cheap, :meth:`as_dict` reports."""

    rows: int = 0
    by_currency: dict[str, CostTotals] = field(default_factory=lambda: defaultdict(CostTotals))
    by_tag: dict[tuple[str, str, str], CostTotals] = field(default_factory=lambda: defaultdict(CostTotals))
    untagged: dict[str, CostTotals] = field(default_factory=lambda: defaultdict(CostTotals))

    def add(self, table: pa.Table | pa.RecordBatch) -> None:
        if table.num_rows == 0:
            return
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        self.rows += table.num_rows
        for s in currency_sums(table):
            self.by_currency[s.currency].add(s.rows, s.billed, s.effective)
        self._add_tags(table)

    def _add_tags(self, table: pa.Table) -> None:
        tags = table.column("Tags")
        parents, keys, values = tag_entries(tags)
        untagged = pa.array(tag_counts(tags) == 0)
        if pc.any(untagged).as_py():
            money = table.select(["BillingCurrency", "BilledCost", "EffectiveCost"])  # not every column filtered
            for s in currency_sums(money.filter(untagged)):
                self.untagged[s.currency].add(s.rows, s.billed, s.effective)
        if len(keys) == 0:
            return
        exploded = pa.table({
            "key": keys,
            "value": values,
            "currency": table.column("BillingCurrency").take(parents),
            "billed": wide_money(table.column("BilledCost").take(parents)),
            "effective": wide_money(table.column("EffectiveCost").take(parents)),
        })
        grouped = exploded.group_by(["key", "value", "currency"]).aggregate(
            [("billed", "sum"), ("effective", "sum"), ([], "count_all")]
        )
        cols = [grouped.column(name).to_pylist() for name in
                ("key", "value", "currency", "billed_sum", "effective_sum", "count_all")]
        for key, value, currency, billed, effective, count in zip(*cols, strict=True):
            self.by_tag[(key, value, currency)].add(count, billed, effective)

    def merge(self, other: Summary) -> None:
        """Add another summary's totals (a file's, into a run's): the same as adding its chunks."""
        self.rows += other.rows
        for mine, theirs in ((self.by_currency, other.by_currency), (self.by_tag, other.by_tag),
                             (self.untagged, other.untagged)):
            for key, totals in theirs.items():
                mine[key].add(totals.rows, totals.billed, totals.effective)  # type: ignore[index]

    def currency_totals(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Exact (unrounded) BilledCost and EffectiveCost sums per currency."""
        return {c: (t.billed, t.effective) for c, t in sorted(self.by_currency.items())}

    def as_dict(self, *, tag_limit: int | None = None) -> dict[str, object]:
        tags: dict[str, dict[str, dict[str, object]]] = defaultdict(dict)
        ordered = sorted(self.by_tag.items(), key=lambda kv: (kv[0][0], -kv[1].effective, kv[0][1], kv[0][2]))
        for (key, value, currency), totals in ordered:
            per_value = tags[key]
            if tag_limit is not None and len(per_value) >= tag_limit and value not in per_value:
                continue
            per_value.setdefault(value, {})[currency] = totals.as_dict()
        return {
            "rows": self.rows,
            "totals": {c: t.as_dict() for c, t in sorted(self.by_currency.items())},
            "untagged": {c: t.as_dict() for c, t in sorted(self.untagged.items())},
            "tags": dict(sorted(tags.items())),
        }
