"""Spend questions across clouds, answered from the ledger (CLI ``spend`` and ``/burnguard
spend``, ``top``): a scope, a period, totals per currency, per cloud and service, top resources."""

from __future__ import annotations

from datetime import datetime

from pydantic_core import PydanticCustomError

from burnguard.core.errors import InputError
from burnguard.core.ledger import CostBasis, Scope, Window
from burnguard.core.periods import parse_query_period
from burnguard.core.policy import parse_selector
from burnguard.core.reports import SpendReport
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



def spend_report(ledger: Ledger, tag: str, period: str | None, *, now: datetime, basis: CostBasis = "effective",
                 top: int = 5) -> SpendReport:
    scope = parse_scope(tag)
    window, label = parse_period(period, now)
    rows = ledger.spend(scope, window, basis=basis)
    return SpendReport(scope, label, rows, ledger.by_service(scope, window, basis=basis),
                       ledger.top_resources(scope, window, limit=top, basis=basis))


__all__ = ["SpendReport", "parse_period", "parse_scope", "spend_report"]
