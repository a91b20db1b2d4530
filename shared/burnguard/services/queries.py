"""Spend questions across clouds, answered from the ledger (CLI ``spend`` and ``/burnguard
spend``, ``top``): a scope, a period, totals per currency, per cloud and service, top resources."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from burnguard.core.errors import InputError
from burnguard.core.ledger import CostBasis, ResourceRow, Scope, ServiceRow, SpendRow, Window
from burnguard.core.money import cents
from burnguard.ports.ledger import Ledger

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MIN_YEAR, MAX_YEAR = 1970, 9998  # a period's end must still be a date
CLOUD_NAMES = {"aws": "AWS", "gcp": "Google Cloud", "azure": "Azure", "other": "other"}


def parse_scope(text: str) -> Scope:
    key, sep, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key or not value:
        raise InputError(f"a tag scope is key=value or key=*, not {text!r}", field="tag")
    return Scope(key, None if value == "*" else value)


def parse_period(text: str | None, now: datetime) -> tuple[Window, str]:
    """``YYYY-MM`` (a month, with its monthly charges), ``YYYY-MM-DD`` (a day), ``7d`` (the
    last days), or the month of ``now``."""
    if not text:
        text = now.strftime("%Y-%m")
    text = text.strip()
    m = _MONTH.match(text)
    if m:
        year, month = int(m.group(1)), int(m.group(2))
        if not 1 <= month <= 12:
            raise InputError(f"month {month} does not exist", field="period")
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise InputError(f"year {year} is out of range ({MIN_YEAR}-{MAX_YEAR})", field="period")
        start = date(year, month, 1)
        end = date(year + month // 12, month % 12 + 1, 1)
        return Window(start, end, (text,)), text
    if _DAY.match(text):
        try:
            day = date.fromisoformat(text)
        except ValueError as exc:
            raise InputError(f"{text!r} is not a date ({exc})", field="period") from None
        if not MIN_YEAR <= day.year <= MAX_YEAR:
            raise InputError(f"year {day.year} is out of range ({MIN_YEAR}-{MAX_YEAR})", field="period")
        return Window(day, day + timedelta(days=1)), text
    m = re.match(r"^(\d{1,3})d$", text)
    if m:
        days = int(m.group(1))
        if days < 1:
            raise InputError("a period of 0 days is empty: write 1d or more", field="period")
        end = now.date() + timedelta(days=1)
        return Window(end - timedelta(days=days), end), f"last {days} days"
    raise InputError(f"a period is YYYY-MM, YYYY-MM-DD or Nd (last N days), not {text!r}", field="period")


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
            lines.append("  per cloud: " + ", ".join(f"{CLOUD_NAMES.get(c, c)} {cents(a):,} {cur}"
                                                     for (c, cur), a in sorted(clouds.items(), key=lambda kv: -kv[1])))
        if self.services:
            lines.append("  top services:")
            for s in self.services[:8]:
                lines.append(f"    {CLOUD_NAMES.get(s.cloud, s.cloud):<13} {s.service[:40]:<40} "
                             f"{cents(s.amount):>12,} {s.currency}")
        if self.top:
            lines.append("  top resources:")
            for res in self.top:
                kind = f"{res.instance_type}{' GPU' if res.gpu else ''}".strip()
                name = _middle(res.resource_id, 48)
                lines.append(f"    {CLOUD_NAMES.get(res.cloud, res.cloud):<13} {name:<48} {kind:<26} "
                             f"{cents(res.amount):>12,} {res.currency}")
        return "\n".join(lines)


def _middle(text: str, width: int) -> str:
    """``text`` shortened in the middle, so its distinctive end (the resource's name) stays."""
    if len(text) <= width:
        return text
    tail = text[-(width - 1 - width // 3):]
    cut = tail.find("/")
    tail = tail[cut:] if 0 <= cut < len(tail) // 2 else tail
    return text[:width - 1 - len(tail)] + "…" + tail


def spend_report(ledger: Ledger, tag: str, period: str | None, *, now: datetime, basis: CostBasis = "effective",
                 top: int = 5) -> SpendReport:
    scope = parse_scope(tag)
    window, label = parse_period(period, now)
    rows = ledger.spend(scope, window, basis=basis)
    return SpendReport(scope, label, rows, ledger.by_service(scope, window, basis=basis),
                       ledger.top_resources(scope, window, limit=top, basis=basis))
