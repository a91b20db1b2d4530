"""Spend questions across clouds, answered from the ledger (CLI ``spend`` and ``/burnguard
spend``, ``top``): a scope, a period, totals per currency, per cloud and service, top resources."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from pydantic_core import PydanticCustomError

from burnguard.core.clouds import cloud_name
from burnguard.core.errors import InputError
from burnguard.core.ledger import CostBasis, ResourceRow, Scope, ServiceRow, SpendRow, Window
from burnguard.core.money import cents
from burnguard.core.periods import parse_query_period
from burnguard.core.policy import parse_selector
from burnguard.ports.ledger import Ledger


def parse_scope(text: str) -> Scope:
    """A query's tag scope, in the policy's grammar (:func:`burnguard.core.policy.parse_selector`)."""
    try:
        selector = parse_selector(text)
    except PydanticCustomError as exc:
        raise InputError(f"a tag scope is key=value or key=*; {text!r} {exc.message()}", field="tag") from None
    return Scope(selector.key, selector.value)


def parse_period(text: str | None, now: datetime) -> tuple[Window, str]:
    """A query's period (:func:`burnguard.core.periods.parse_query_period`)."""
    return parse_query_period(text, now)


@dataclass
class SpendReport:
    scope: Scope
    period: str
    rows: list[SpendRow]
    services: list[ServiceRow] = field(default_factory=list)
    top: list[ResourceRow] = field(default_factory=list)

    def totals(self) -> dict[str, tuple[Decimal, Decimal]]:
        out: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        for r in self.rows:
            out[r.currency][0] += r.amount
            out[r.currency][1] += r.gpu_amount
        return {c: (a, g) for c, (a, g) in out.items()}

    def per_cloud(self) -> dict[tuple[str, str], Decimal]:
        out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for s in self.services:
            out[(s.cloud, s.currency)] += s.amount
        return dict(out)

    def text(self) -> str:
        lines = [f"Spend of {self.scope} in {self.period}"]
        if not self.rows:
            lines.append("  no spend recorded")
            return "\n".join(lines)
        for cur, (amount, gpu) in sorted(self.totals().items()):
            lines.append(f"  total {cents(amount):,} {cur} (GPU {cents(gpu):,} {cur})")
        if self.scope.value is None:
            lines.append("  per value:")
            for r in sorted(self.rows, key=lambda r: -r.amount):
                lines.append(f"    {self.scope.key}={r.scope_value}: {cents(r.amount):,} {r.currency}")
        clouds = self.per_cloud()
        if clouds:
            lines.append("  per cloud: " + ", ".join(f"{cloud_name(c)} {cents(a):,} {cur}"
                                                     for (c, cur), a in sorted(clouds.items(), key=lambda kv: -kv[1])))
        if self.services:
            lines.append("  top services:")
            for s in self.services[:8]:
                lines.append(f"    {cloud_name(s.cloud):<13} {s.service[:40]:<40} "
                             f"{cents(s.amount):>12,} {s.currency}")
        if self.top:
            lines.append("  top resources:")
            for res in self.top:
                kind = f"{res.instance_type}{' GPU' if res.gpu else ''}".strip()
                lines.append(f"    {cloud_name(res.cloud):<13} {res.resource_id[-48:]:<48} {kind:<26} "
                             f"{cents(res.amount):>12,} {res.currency}")
        return "\n".join(lines)


def spend_report(ledger: Ledger, tag: str, period: str | None, *, now: datetime, basis: CostBasis = "effective",
                 top: int = 5) -> SpendReport:
    scope = parse_scope(tag)
    window, label = parse_period(period, now)
    rows = ledger.spend(scope, window, basis=basis)
    return SpendReport(scope, label, rows, ledger.by_service(scope, window, basis=basis),
                       ledger.top_resources(scope, window, limit=top, basis=basis))
