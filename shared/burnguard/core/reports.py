"""What the spend and status questions answer (the CLI and the slash commands render them)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from burnguard.core.clouds import cloud_name
from burnguard.core.ledger import ResourceRow, Scope, ServiceRow, SpendRow
from burnguard.core.money import Money, cents


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
                lines.append(f"    {cloud_name(res.cloud):<13} {middle(res.resource_id, 48):<48} {kind:<26} "
                             f"{cents(res.amount):>12,} {res.currency}")
        return "\n".join(lines)


@dataclass(frozen=True)
class GuardrailStatus:
    guardrail: str
    scope: Scope
    period: str
    spend: Money | None
    budget: Money | None
    percent: Decimal | None
    forecast: Money | None
    state: str  # "ok", "crossed 80%", "stopped 3", "snoozed until ...", "burn 12.00 USD/h"
    gpu_rate: Money | None = None
    #: the part of ``spend`` that is the live estimate (hours no bill covers yet)
    estimated: Money | None = None
    #: when the next threshold is crossed at the current rate ("at 57.00 USD/h, 100% at Sat 03:10 UTC")
    projection: str | None = None


def middle(text: str, width: int) -> str:
    """``text`` shortened in the middle, so its distinctive end (the resource's name) stays."""
    if len(text) <= width:
        return text
    tail = text[-(width - 1 - width // 3):]
    cut = tail.find("/")
    tail = tail[cut:] if 0 <= cut < len(tail) // 2 else tail
    return text[:width - 1 - len(tail)] + "…" + tail
