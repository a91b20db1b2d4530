"""Where every guardrail stands now: spend, budget, % used, forecast, state. Shared by the
``burnguard guardrails`` command and the ``/burnguard guardrails`` slash command."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from burnguard.core.ledger import Scope, Window
from burnguard.core.money import Money
from burnguard.core.policy import Guardrail, Policy, project_period_end
from burnguard.core.reports import GuardrailStatus
from burnguard.ports.ledger import EstimateLog, Ledger
from burnguard.rules.decisions import counted_spend, period_window


def guardrail_status(policy: Policy, ledger: Ledger, now: datetime, *,
                     wall: datetime | None = None, estimates: EstimateLog | None = None) -> list[GuardrailStatus]:
    """``now`` is the time the data is judged at; ``wall`` the real time snoozes run against
    (default ``now``; the embedded mode judges sample data at its end). ``estimates``: the live
    estimate, counted with the bill by guardrails whose basis is ``billed+estimated``; their
    rows then say the estimated part, the projected crossing and the estimate's measured error."""
    out: list[GuardrailStatus] = []
    data_until = ledger.latest_data()
    if data_until is not None and data_until > now:
        data_until = now  # as of `now`: later data is not counted (whole days; see _as_of)
    for g in policy.guardrails:
        base_state = _base_state(g, ledger, wall or now)
        if g.budget is not None:
            out += _budget_status(g, ledger, now, data_until, base_state,
                                  estimates if g.basis == "billed+estimated" else None)
        if g.burn_rate is not None and data_until is not None:
            out += _burn_status(g, ledger, data_until, base_state)
    return out


def _as_of(window: Window, now: datetime) -> Window:
    """The window as known at ``now``: days after ``now``'s day are not counted."""
    last = now.date() + timedelta(days=1) if now.time() != datetime.min.time() else now.date()
    end = min(window.end, last)
    return Window(window.start, max(end, window.start), window.periods)


def _base_state(g: Guardrail, ledger: Ledger, now: datetime) -> list[str]:
    """What holds for the whole guardrail: snoozed, instances it keeps stopped."""
    state = []
    snoozed = ledger.snoozed_until(g.name)
    if snoozed is not None and snoozed > now:
        state.append(f"snoozed until {snoozed:%Y-%m-%d %H:%M} UTC")
    stops = len(ledger.stops(g.name))
    if stops:
        state.append(f"{stops} stopped")
    return state


def _budget_status(g: Guardrail, ledger: Ledger, now: datetime, data_until: datetime | None,
                   base_state: list[str], estimates: EstimateLog | None = None) -> list[GuardrailStatus]:
    assert g.budget is not None
    start, end, window, period = period_window(g, now)
    window = _as_of(window, now)
    budget = g.budget.money
    every, estimated = counted_spend(g, ledger, window, estimates)
    rows = [r for r in every if r.currency == budget.currency]
    # Spend in another currency is not converted (no exchange rates): say it is there.
    elsewhere: dict[str | None, list[str]] = {}
    for r in every:
        if r.currency != budget.currency and r.amount:
            elsewhere.setdefault(r.scope_value, []).append(f"{r.amount.quantize(Decimal('0.01'))} {r.currency}")
    out: list[GuardrailStatus] = []
    counted = {r.scope_value for r in rows}
    if not rows and g.scope.value is not None and g.scope.value not in elsewhere:
        out.append(GuardrailStatus(g.name, Scope(g.scope.key, g.scope.value), period,
                                   Money(Decimal(0), budget.currency), budget, Decimal(0), None,
                                   ", ".join(base_state) or "no spend yet"))
    for value in (v for v in elsewhere if v not in counted):
        state = [*base_state, f"no spend in {budget.currency}; {' + '.join(elsewhere[value])}"
                              " not compared (other currency)"]
        out.append(GuardrailStatus(g.name, Scope(g.scope.key, value), period,
                                   Money(Decimal(0), budget.currency), budget, Decimal(0), None, ", ".join(state)))
    for r in rows:
        scope = Scope(g.scope.key, r.scope_value)
        forecast = None
        est = estimated.get((r.scope_value, r.currency))
        if data_until is not None and g.period.kind == "month" and not (est and data_until <= start):
            forecast = Money(project_period_end(r.amount - (est or 0), start, end, data_until), budget.currency)
        percent = (r.amount / budget.amount * 100).quantize(Decimal("0.1"))
        state = [_threshold_state(g, ledger, scope, period, r.amount)]
        if r.scope_value in elsewhere:
            state.append(f"plus {' + '.join(elsewhere[r.scope_value])} not compared (other currency)")
        out.append(GuardrailStatus(g.name, scope, period, Money(r.amount, budget.currency), budget, percent,
                                   forecast, ", ".join(state + base_state),
                                   estimated=Money(est, budget.currency) if est else None))
    if estimates is not None:
        out = _with_estimates(g, out, estimates, now)
    return out


def _with_estimates(g: Guardrail, rows: list[GuardrailStatus], estimates: EstimateLog,
                    now: datetime) -> list[GuardrailStatus]:
    """Rows that say their estimated part, the projected crossing at the current rate, and how
    far the estimates were from the bill so far."""
    from burnguard.services.meter import project_guardrail

    projections = {p.scope: p for p in project_guardrail(g, estimates, now)}
    errors = estimates.estimate_errors()
    est_total = sum((e.estimated for e in errors), Decimal(0))
    billed_total = sum((e.billed for e in errors), Decimal(0))
    accuracy = (f"estimates so far {((est_total - billed_total) / billed_total * 100):+.1f}% vs the bill"
                if billed_total else None)
    out = []
    for s in rows:
        notes = []
        if s.estimated is not None:
            notes.append(f"incl. {s.estimated.amount.quantize(Decimal('0.01'))} {s.estimated.currency} estimated")
        p = projections.get(s.scope)
        if p is not None:
            notes.append(p.text())
        if accuracy and s.estimated is not None:
            notes.append(accuracy)
        out.append(replace(s, state=", ".join([s.state, *notes]), projection=p.text() if p else None))
    return out


def _threshold_state(g: Guardrail, ledger: Ledger, scope: Scope, period: str, amount: Decimal) -> str:
    """The highest threshold announced, else one reached but not yet evaluated, else ok."""
    assert g.budget is not None
    crossed = ledger.announced(f"threshold|{g.name}|{scope}|{period}|")
    labels = sorted((k.rsplit("|", 1)[-1] for k in crossed), key=lambda s: Decimal(s.rstrip("%")))
    if labels:
        return f"crossed {labels[-1]}"
    reached = [t.label for t in sorted(g.thresholds, key=lambda t: t.at) if t.reached_by(amount, g.budget)]
    if reached:  # spend reached a threshold the guardrail has not evaluated yet
        return f"at {reached[-1]}, not yet announced"
    return "ok"


def _burn_status(g: Guardrail, ledger: Ledger, data_until: datetime,
                 base_state: list[str]) -> list[GuardrailStatus]:
    assert g.burn_rate is not None
    limit = g.burn_rate.gpu_per_hour.money
    since = data_until - timedelta(hours=g.burn_rate.window_hours)
    hourly = ledger.gpu_hourly(Scope(g.scope.key, g.scope.value), since, basis=g.cost, clouds=g.clouds)
    values = hourly or {g.scope.value: {}}
    out: list[GuardrailStatus] = []
    for value, hours in sorted(values.items(), key=lambda kv: kv[0] or ""):
        total = sum((a.get(limit.currency, Decimal(0)) for h, a in hours.items() if h < data_until), Decimal(0))
        rate = Money((total / g.burn_rate.window_hours).quantize(Decimal("0.01")), limit.currency)
        over = rate.amount > limit.amount
        burn = f"burn {rate.amount} {rate.currency}/h {'>' if over else '<='} {limit.amount}"
        out.append(GuardrailStatus(g.name, Scope(g.scope.key, value), f"last {g.burn_rate.window_hours}h",
                                   None, None, None, None, ", ".join([burn, *base_state]), rate))
    return out


__all__ = ["GuardrailStatus", "guardrail_status"]
