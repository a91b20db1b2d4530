"""Deciding: a pure function of the ledger's view, the policy and the time → decisions.

Nothing here acts: :mod:`burnguard.services.guardrail` executes decisions through ports, so a
dry run is the same code path minus the last call. Decisions are **edge-triggered**: each
carries the announcement keys of the crossings it reports, and a crossing already announced in
its period is not decided again (ARCHITECTURE.md rule 4). When several thresholds are crossed at
once (a delivery that jumps from 40% to 130%), one decision reports the highest and announces
them all, with the union of their actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from burnguard.core.budget import BudgetAlert
from burnguard.core.estimates import crossing_time
from burnguard.core.ledger import Scope, SpendRow, Window
from burnguard.core.money import Money
from burnguard.core.periods import period_days
from burnguard.core.policy import Guardrail, Policy, project_period_end
from burnguard.ports.ledger import EstimateView, LedgerView

Kind = Literal["threshold", "forecast", "burn-rate", "native-budget", "currency"]


@dataclass(frozen=True)
class Decision:
    kind: Kind
    guardrail: str
    scope: Scope  # with the concrete value the decision is about
    period: str  # "2024-09", "2024-09-14", "rolling:7d", or the native alert's period
    label: str  # "100%", "forecast 100%", "burn rate", "native ACTUAL 80%"
    actions: tuple[str, ...]
    announce: tuple[str, ...]
    spend: Money | None = None
    budget: Money | None = None
    threshold: Money | None = None
    forecast: Money | None = None
    rate: Money | None = None  # per hour
    limit: Money | None = None  # per hour
    window_start: datetime | None = None
    window_end: datetime | None = None
    data_until: datetime | None = None
    crossed: tuple[str, ...] = ()
    alert: BudgetAlert | None = None
    notes: tuple[str, ...] = field(default=())
    #: the part of ``spend`` that is the live estimate (hours no bill covers yet), if any
    estimated: Money | None = None
    #: when the next stopping threshold is crossed at the scope's current rate, if instances run
    projection: str | None = None

    @property
    def estimated_share(self) -> Decimal | None:
        """The estimated part of the spend, in percent (``None`` when nothing is estimated)."""
        if self.estimated is None or self.spend is None or not self.spend.amount:
            return None
        return (self.estimated.amount / self.spend.amount * 100).quantize(Decimal("0.1"))

    @property
    def percent_used(self) -> Decimal | None:
        if self.spend is None or self.budget is None or not self.budget.amount:
            return None
        if self.spend.currency != self.budget.currency:
            return None  # not comparable (burnguard converts no currency)
        return (self.spend.amount / self.budget.amount * 100).quantize(Decimal("0.1"))


def announce_key(kind: str, guardrail: str, scope: Scope, period: str, label: str) -> str:
    return f"{kind}|{guardrail}|{scope}|{period}|{label}"


def period_window(g: Guardrail, now: datetime) -> tuple[datetime, datetime, Window, str]:
    """The guardrail's period holding ``now`` (see :func:`burnguard.core.periods.period_days`)."""
    return period_days(g.period, now)


def evaluate(policy: Policy, view: LedgerView, now: datetime, *, wall: datetime | None = None,
             estimates: EstimateView | None = None) -> list[Decision]:
    """Every decision the policy calls for at ``now`` that was not announced before.

    ``wall`` is the real time, against which snoozes run (default ``now``): the embedded mode
    judges sample data at the end of the data, while a snooze lasts real hours. ``estimates``:
    the live estimate, added to the bill of every budget guardrail whose ``basis`` is
    ``billed+estimated`` (the default; ``billed`` opts out).
    """
    decisions: list[Decision] = []
    data_until = view.latest_data()
    for g in policy.guardrails:
        snoozed = view.snoozed_until(g.name)
        if snoozed is not None and snoozed > (wall or now):
            continue
        if g.budget is not None and (g.thresholds or g.forecast_thresholds):
            decisions += _budget_decisions(g, view, now, data_until,
                                           estimates if g.basis == "billed+estimated" else None)
        if g.burn_rate is not None and data_until is not None:
            decisions += _burn_decisions(g, view, data_until, now)
    return decisions


def counted_spend(g: Guardrail, view: LedgerView, window: Window,
                  estimates: EstimateView | None) -> tuple[list[SpendRow], dict[tuple[str | None, str], Decimal]]:
    """The guardrail's spend rows (billed, plus the live estimate when ``estimates`` is given)
    and the estimated part of each (scope value, currency)."""
    selector = Scope(g.scope.key, g.scope.value)
    billed = view.spend(selector, window, basis=g.cost, clouds=g.clouds)
    if estimates is None:
        return billed, {}
    est = {(r.scope_value, r.currency): r.amount
           for r in estimates.estimated_spend(selector, window, clouds=g.clouds) if r.amount}
    if not est:
        return billed, {}
    rows: dict[tuple[str | None, str], SpendRow] = {(r.scope_value, r.currency): r for r in billed}
    for key, amount in est.items():
        old = rows.get(key, SpendRow(key[0], key[1], Decimal(0)))
        rows[key] = SpendRow(key[0], key[1], old.amount + amount, old.gpu_amount + amount)
    return sorted(rows.values(), key=lambda r: (r.scope_value or "", r.currency)), est


def projection(g: Guardrail, estimates: EstimateView | None, scope: Scope, spent: Decimal,
               now: datetime) -> str | None:
    """"at 57.00 USD/h, 100% at Sat 03:10 UTC": when the first threshold ahead that stops (else
    the highest ahead) is crossed at the rate of the scope's running instances."""
    if estimates is None or g.budget is None:
        return None
    budget = g.budget.money
    rate = next((r.amount for r in estimates.running_rate(scope, clouds=g.clouds)
                 if r.currency == budget.currency and r.scope_value == scope.value), None)
    ahead = [t for t in sorted(g.thresholds, key=lambda t: t.at) if not t.reached_by(spent, g.budget)]
    if not rate or not ahead:
        return None
    target = next((t for t in ahead if "stop" in t.actions), ahead[-1])
    at = crossing_time(now, spent, target.amount(g.budget).amount, rate)
    when = f"{at:%a %Y-%m-%d %H:%M} UTC" if at is not None else "never at this rate"
    return f"at {rate.quantize(Decimal('0.01'))} {budget.currency}/h, {target.label} at {when}"


def _budget_decisions(g: Guardrail, view: LedgerView, now: datetime, data_until: datetime | None,
                      estimates: EstimateView | None = None) -> list[Decision]:
    assert g.budget is not None
    start, end, window, period = period_window(g, now)
    budget = g.budget.money
    out: list[Decision] = []
    every, estimated = counted_spend(g, view, window, estimates)
    rows = [r for r in every if r.currency == budget.currency]
    # Spend in another currency cannot be compared (no exchange rates): said once per period,
    # scope value and currency, so a budget never stays silent about spend it cannot see.
    for other in every:
        if other.currency == budget.currency or not other.amount:
            continue
        scope = Scope(g.scope.key, other.scope_value)
        key = announce_key("currency", g.name, scope, period, other.currency)
        if key not in view.announced(key):
            out.append(Decision(
                "currency", g.name, scope, period, f"spend in {other.currency}", ("notify",), (key,),
                spend=Money(other.amount, other.currency), budget=budget, window_start=start, window_end=end,
                data_until=data_until,
                notes=(f"{other.amount} {other.currency} of spend is not compared with the {budget.currency} budget:"
                       " burnguard converts no currency",),
            ))
    for row in rows:
        scope = Scope(g.scope.key, row.scope_value)
        spent = Money(row.amount, budget.currency)
        est = estimated.get((row.scope_value, row.currency))
        est_money = Money(est, budget.currency) if est else None
        announced = view.announced(f"threshold|{g.name}|{scope}|{period}|")
        crossed = [t for t in sorted(g.thresholds, key=lambda t: t.at) if t.reached_by(row.amount, g.budget)]
        new = [t for t in crossed if announce_key("threshold", g.name, scope, period, t.label) not in announced]
        forecast = None
        if data_until is not None and g.period.kind == "month" and not (est and data_until <= start):
            # projected from the bill alone: the estimate runs past the data's end (and with no
            # bill in the period yet, there is nothing to project from)
            forecast = Money(project_period_end(row.amount - (est or 0), start, end, data_until), budget.currency)
        if new:
            top = new[-1]
            actions = tuple(dict.fromkeys(a for t in new for a in t.actions))
            out.append(Decision(
                "threshold", g.name, scope, period, top.label, actions,
                tuple(announce_key("threshold", g.name, scope, period, t.label) for t in new),
                spend=spent, budget=budget, threshold=top.amount(g.budget), forecast=forecast,
                window_start=start, window_end=end, data_until=data_until, crossed=tuple(t.label for t in new),
                estimated=est_money, projection=projection(g, estimates, scope, row.amount, now),
            ))
        if forecast is not None and g.forecast_thresholds:
            done = view.announced(f"forecast|{g.name}|{scope}|{period}|")
            fnew = [t for t in sorted(g.forecast_thresholds, key=lambda t: t.at)
                    if t.reached_by(forecast.amount, g.budget)
                    and announce_key("forecast", g.name, scope, period, t.label) not in done]
            if fnew:
                top = fnew[-1]
                out.append(Decision(
                    "forecast", g.name, scope, period, f"forecast {top.label}",
                    tuple(dict.fromkeys(a for t in fnew for a in t.actions)),
                    tuple(announce_key("forecast", g.name, scope, period, t.label) for t in fnew),
                    spend=spent, budget=budget, threshold=top.amount(g.budget), forecast=forecast,
                    window_start=start, window_end=end, data_until=data_until,
                    crossed=tuple(f"forecast {t.label}" for t in fnew),
                ))
    return out


def _burn_decisions(g: Guardrail, view: LedgerView, data_until: datetime, now: datetime) -> list[Decision]:
    """GPU spend per hour over the last ``window_hours`` of data, per scope value. Announced
    at most once per scope value per UTC day of evaluation while it stays above the limit
    (data of several clouds ending on either side of midnight does not make it twice)."""
    burn = g.burn_rate
    assert burn is not None
    limit = burn.gpu_per_hour.money
    since = data_until - timedelta(hours=burn.window_hours)
    selector = Scope(g.scope.key, g.scope.value)
    hourly = view.gpu_hourly(selector, since, basis=g.cost, clouds=g.clouds)
    period = now.strftime("%Y-%m-%d")
    out: list[Decision] = []
    for value, hours in sorted(hourly.items(), key=lambda kv: kv[0] or ""):
        total = sum((amounts.get(limit.currency, Decimal(0)) for h, amounts in hours.items() if h < data_until),
                    Decimal(0))
        rate = total / burn.window_hours
        if rate <= limit.amount:
            continue
        scope = Scope(g.scope.key, value)
        key = announce_key("burn-rate", g.name, scope, period, "burn rate")
        if key in view.announced(key):
            continue
        out.append(Decision(
            "burn-rate", g.name, scope, period, "burn rate", tuple(burn.actions), (key,),
            rate=Money(rate.quantize(Decimal("0.01")), limit.currency), limit=limit,
            spend=Money(total, limit.currency), window_start=since, window_end=data_until, data_until=data_until,
        ))
    return out


def decide_budget_alert(policy: Policy, alert: BudgetAlert, view: LedgerView, now: datetime, *,
                        wall: datetime | None = None) -> list[Decision]:
    """Decisions for a native budget notification mapped to guardrails by the policy. The same
    notification received ten times gives one decision (its dedupe id is the announcement)."""
    if not alert.is_crossing:
        return []  # a state update (GCP sends them many times a day), not a crossing
    out: list[Decision] = []
    for g in policy.guardrails_for_budget_alert(alert):
        snoozed = view.snoozed_until(g.name)
        if snoozed is not None and snoozed > (wall or now):
            continue
        assert g.budget_notifications is not None
        key = f"native-budget|{g.name}|{alert.alert_id}"
        if view.announced(key):
            continue
        scope = Scope(g.scope.key, g.scope.value)
        label = f"{alert.kind} " + (
            f"{(alert.threshold * 100).normalize():f}%" if alert.threshold is not None else "threshold")
        period = alert.billing_month or (alert.received_at or now).strftime("%Y-%m")
        out.append(Decision(
            "native-budget", g.name, scope, period, label, tuple(g.budget_notifications.actions_for(alert)),
            (key,), spend=alert.spent, budget=alert.budget_amount, threshold=alert.threshold_amount,
            forecast=alert.forecast, alert=alert,
        ))
    return out
