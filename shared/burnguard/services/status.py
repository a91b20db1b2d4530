"""Where every guardrail stands now: spend, budget, % used, forecast, state. Shared by the
``burnguard guardrails`` command and the ``/burnguard guardrails`` slash command."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from burnguard.core.ledger import Scope
from burnguard.core.money import Money
from burnguard.core.policy import Policy, project_period_end
from burnguard.ports.ledger import Ledger
from burnguard.rules.decisions import period_window


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


def guardrail_status(policy: Policy, ledger: Ledger, now: datetime) -> list[GuardrailStatus]:
    out: list[GuardrailStatus] = []
    data_until = ledger.latest_data()
    for g in policy.guardrails:
        snoozed = ledger.snoozed_until(g.name)
        stops = len(ledger.stops(g.name))
        base_state = []
        if snoozed is not None and snoozed > now:
            base_state.append(f"snoozed until {snoozed:%Y-%m-%d %H:%M} UTC")
        if stops:
            base_state.append(f"{stops} stopped")
        if g.budget is not None:
            start, end, window, period = period_window(g, now)
            budget = g.budget.money
            every = ledger.spend(Scope(g.scope.key, g.scope.value), window, basis=g.cost, clouds=g.clouds)
            rows = [r for r in every if r.currency == budget.currency]
            # Spend in another currency is not converted (no exchange rates): say it is there.
            elsewhere: dict[str | None, list[str]] = {}
            for r in every:
                if r.currency != budget.currency and r.amount:
                    elsewhere.setdefault(r.scope_value, []).append(f"{r.amount.quantize(Decimal('0.01'))} {r.currency}")
            counted = {r.scope_value for r in rows}
            only_elsewhere = [v for v in elsewhere if v not in counted]
            if not rows and g.scope.value is not None and g.scope.value not in elsewhere:
                out.append(GuardrailStatus(g.name, Scope(g.scope.key, g.scope.value), period,
                                           Money(Decimal(0), budget.currency), budget, Decimal(0), None,
                                           ", ".join(base_state) or "no spend yet"))
            for value in only_elsewhere:
                state = [*base_state, f"no spend in {budget.currency}; {' + '.join(elsewhere[value])}"
                                      " not compared (other currency)"]
                out.append(GuardrailStatus(g.name, Scope(g.scope.key, value), period,
                                           Money(Decimal(0), budget.currency), budget, Decimal(0), None,
                                           ", ".join(state)))
            for r in rows:
                scope = Scope(g.scope.key, r.scope_value)
                crossed = ledger.announced(f"threshold|{g.name}|{scope}|{period}|")
                labels = sorted((k.rsplit("|", 1)[-1] for k in crossed), key=lambda s: Decimal(s.rstrip("%")))
                forecast = None
                if data_until is not None and g.period.kind == "month":
                    forecast = Money(project_period_end(r.amount, start, end, data_until), budget.currency)
                percent = (r.amount / budget.amount * 100).quantize(Decimal("0.1"))
                reached = [t.label for t in sorted(g.thresholds, key=lambda t: t.at)
                           if t.reached_by(r.amount, g.budget)]
                if labels:
                    state = [f"crossed {labels[-1]}"]
                elif reached:  # spend reached a threshold the guardrail has not evaluated yet
                    state = [f"at {reached[-1]}, not yet announced"]
                else:
                    state = ["ok"]
                if r.scope_value in elsewhere:
                    state.append(f"plus {' + '.join(elsewhere[r.scope_value])} not compared (other currency)")
                out.append(GuardrailStatus(g.name, scope, period, Money(r.amount, budget.currency), budget, percent,
                                           forecast, ", ".join(state + base_state)))
        if g.burn_rate is not None and data_until is not None:
            limit = g.burn_rate.gpu_per_hour.money
            since = data_until - timedelta(hours=g.burn_rate.window_hours)
            hourly = ledger.gpu_hourly(Scope(g.scope.key, g.scope.value), since, basis=g.cost, clouds=g.clouds)
            values = hourly or {g.scope.value: {}}
            for value, hours in sorted(values.items(), key=lambda kv: kv[0] or ""):
                total = sum((a.get(limit.currency, Decimal(0)) for h, a in hours.items() if h < data_until), Decimal(0))
                rate = Money((total / g.burn_rate.window_hours).quantize(Decimal("0.01")), limit.currency)
                over = rate.amount > limit.amount
                burn = f"burn {rate.amount} {rate.currency}/h {'>' if over else '<='} {limit.amount}"
                out.append(GuardrailStatus(g.name, Scope(g.scope.key, value), f"last {g.burn_rate.window_hours}h",
                                           None, None, None, None, ", ".join([burn, *base_state]), rate))
    return out
