"""What stopping instances saves per hour, from the billing data where it tells (pure).

The inventory's ``hourly_cost`` is the on-demand price; an instance covered by a Savings Plan, a
reservation or a committed-use discount costs less, and the billing data says how much. So each
stopped instance is priced, in the decision's currency:

* **burn-rate decision**: its share of the burn, its GPU spend over the alert's window divided by
  the window's hours. The shares of the stopped instances add up to at most the burn rate: the
  saving never exceeds the burn it stops. An instance with no GPU spend in that window adds
  nothing to the burn, so nothing to the saving: it is named apart with its on-demand price.
* **other decisions**: its GPU spend in the last hour of billing data (its effective hourly
  cost); when the billing data does not have it, its on-demand price, said so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from burnguard.core.money import Money

if TYPE_CHECKING:
    from burnguard.core.instances import Instance
    from burnguard.core.ledger import ResourceRow
    from burnguard.rules.decisions import Decision
    from burnguard.rules.registry import Outcome


@dataclass(frozen=True)
class Saving:
    """The estimated hourly saving of a stop and how each instance was priced (names)."""

    amount: Money | None
    #: priced from the billing data (effective cost)
    measured: tuple[str, ...] = ()
    #: priced at the inventory's on-demand price (not in the billing data)
    listed: tuple[str, ...] = ()
    #: burn-rate only: not in the window's billing data, so not part of the burn; not counted
    outside: tuple[tuple[str, Money | None], ...] = ()


def rate_window(d: Decision) -> tuple[datetime, datetime] | None:
    """The hours the billing data prices the stopped instances over (see the module)."""
    if d.kind == "burn-rate":
        return (d.window_start, d.window_end) if d.window_start and d.window_end else None
    return (d.data_until - timedelta(hours=1), d.data_until) if d.data_until is not None else None


def billed_as(instance: Instance, row: ResourceRow) -> bool:
    """Whether a billing resource is the instance: the same id (Azure ARM ids in any case), or a
    path ending in it (Google Cloud bills ``//compute.googleapis.com/.../instances/<id>``)."""
    if row.cloud != instance.cloud:
        return False
    rid, iid = row.resource_id.casefold(), instance.instance_id.casefold()
    if rid == iid or rid.endswith("/" + iid):
        return True
    return instance.cloud == "gcp" and bool(instance.name) and rid.endswith("/instances/" + instance.name.casefold())


def _currency(report: Outcome) -> str | None:
    d = report.decision
    for m in (d.rate, d.spend, d.budget):
        if m is not None:
            return m.currency
    return next((i.currency for i in report.stopped if i.currency), None)


def _on_demand(i: Instance, currency: str) -> Money | None:
    return Money(i.hourly_cost, currency) if i.hourly_cost is not None and i.currency == currency else None


def estimate(report: Outcome, rows: Sequence[ResourceRow] | None) -> Saving:
    """The saving of ``report``'s stopped instances; ``rows``: GPU spend per resource over
    :func:`rate_window` (``None`` when the ledger could not be asked: on-demand prices only)."""
    currency = _currency(report)
    window = rate_window(report.decision)
    if currency is None:
        return Saving(None)
    if rows is None or window is None:
        priced = [(i, m) for i in report.stopped if (m := _on_demand(i, currency)) is not None]
        total = sum((m.amount for _, m in priced), Decimal(0))
        return Saving(Money(total, currency) if priced else None, listed=tuple(_name(i) for i, _ in priced))
    hours = Decimal(int((window[1] - window[0]).total_seconds())) / 3600
    burn = report.decision.kind == "burn-rate"
    total, measured, listed, outside = Decimal(0), [], [], []
    for inst in report.stopped:
        spent = [r.amount for r in rows if r.currency == currency and billed_as(inst, r)]
        listed_price = _on_demand(inst, currency)
        if spent and hours > 0:
            total += sum(spent, Decimal(0)) / hours
            measured.append(_name(inst))
        elif burn:
            outside.append((_name(inst), listed_price))
        elif listed_price is not None:
            total += listed_price.amount
            listed.append(_name(inst))
    known = bool(measured or listed)
    return Saving(Money(total, currency) if known else None, tuple(measured), tuple(listed), tuple(outside))


def _name(i: Instance) -> str:
    return i.name or i.instance_id


__all__ = ["Saving", "billed_as", "estimate", "rate_window"]
