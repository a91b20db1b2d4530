"""Decisions and their outcomes as messages people act on: Slack Block Kit blocks (built by
:mod:`burnguard.notify.blocks`) with this module's plain text as the fallback Slack requires next
to them. Pure: data in, :class:`~burnguard.ports.instances.Notification` out."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from burnguard.core.clouds import cloud_name
from burnguard.core.ledger import ResourceRow, Window
from burnguard.core.money import Money, cents
from burnguard.notify.blocks import decision_blocks, failure_blocks, resume_blocks
from burnguard.notify.saving import Saving, estimate, rate_window
from burnguard.ports.ledger import ContextView
from burnguard.ports.notify import Notification
from burnguard.rules.actions import SkipCode

if TYPE_CHECKING:
    from burnguard.core.policy import Guardrail, Policy
    from burnguard.rules.decisions import Decision
    from burnguard.rules.registry import Outcome, ResumeOutcome

TOP = 5


def money(m: Money | None) -> str:
    return f"{cents(m.amount):,} {m.currency}" if m is not None else "n/a"


def context(decision: Decision, view: ContextView | None, guardrail: Guardrail | None = None,
            ) -> tuple[list[ResourceRow], dict[str, Decimal]]:
    """Top resources of the decision's scope and window, and its spend per cloud.

    A budget decision looks at its period (all spend, monthly charges included); a burn-rate
    decision at the hours of its window, GPU spend only, in the guardrail's cost basis and
    clouds: the figures its headline's burn is made of.
    """
    if view is None or decision.window_start is None or decision.window_end is None:
        return [], {}
    per_cloud: dict[str, Decimal] = defaultdict(Decimal)
    if decision.kind == "burn-rate":
        rows = burn_rows(decision, view, guardrail)
        currency = decision.spend.currency if decision.spend is not None else None
        for r in rows:
            if currency is None or r.currency == currency:
                per_cloud[r.cloud] += r.amount
        # The hourly facts keep no instance type: the days of the window have it.
        days = Window(decision.window_start.date(), decision.window_end.date() + timedelta(days=1))
        types = {(r.resource_id, r.cloud): r.instance_type
                 for r in view.top_resources(decision.scope, days, limit=50, gpu_only=True)}
        top = [replace(r, instance_type=types.get((r.resource_id, r.cloud), "")) for r in rows[:TOP]]
        return top, dict(per_cloud)
    window = Window(decision.window_start.date(), decision.window_end.date(),
                    (decision.period,) if len(decision.period) == 7 else ())
    for s in view.by_service(decision.scope, window):
        per_cloud[s.cloud] += s.amount
    return view.top_resources(decision.scope, window, limit=TOP), dict(per_cloud)


def burn_rows(decision: Decision, view: ContextView, guardrail: Guardrail | None) -> list[ResourceRow]:
    """GPU spend per resource over the decision's window: a burn-rate decision's own hours, else
    the last hour of billing data (:func:`burnguard.notify.saving.rate_window`)."""
    window = rate_window(decision)
    if window is None:
        return []
    return view.gpu_by_resource(decision.scope, *window, basis=guardrail.cost if guardrail else "effective",
                                clouds=guardrail.clouds if guardrail else None)


def saving_of(report: Outcome, view: ContextView | None, guardrail: Guardrail | None = None) -> Saving:
    """The stop's hourly saving, from each instance's effective cost in the billing data when
    the ledger has it (:mod:`burnguard.notify.saving`)."""
    if not report.stopped:
        return Saving(None)
    rows = burn_rows(report.decision, view, guardrail) if view is not None else None
    return estimate(report, rows)


def headline(decision: Decision) -> str:
    scope = str(decision.scope)
    if decision.kind == "threshold":
        return f"{decision.guardrail}: {scope} crossed {decision.label} of its budget"
    if decision.kind == "forecast":
        return f"{decision.guardrail}: {scope} is forecast to cross {decision.label.removeprefix('forecast ')}"
    if decision.kind == "currency":
        return (f"{decision.guardrail}: {scope} has spend in {decision.spend.currency if decision.spend else '?'},"
                f" not the budget's {decision.budget.currency if decision.budget else '?'}")
    if decision.kind == "burn-rate":
        return f"{decision.guardrail}: {scope} burns {money(decision.rate)}/h of GPU (limit {money(decision.limit)}/h)"
    return f"{decision.guardrail}: native budget alert ({decision.label}) for {scope}"


def render_decision(report: Outcome, policy: Policy, view: ContextView | None = None) -> Notification:
    d = report.decision
    guardrail = policy.guardrail(d.guardrail)
    lines = [headline(d), *_spend_lines(d)]
    top, per_cloud = context(d, view, guardrail)
    saving = saving_of(report, view, guardrail)
    if per_cloud:
        lines.append("Per cloud: " + ", ".join(f"{cloud_name(c)} {cents(a):,}" for c, a in
                                                sorted(per_cloud.items(), key=lambda kv: -kv[1])))
    if top:
        lines.append("Top resources: " + "; ".join(
            f"{r.resource_id} ({r.instance_type or r.cloud}) {cents(r.amount):,} {r.currency}" for r in top))
    lines += _stop_lines(report, saving)
    kind = "stop" if report.stopped else d.kind
    return Notification(policy.channel_for(guardrail), "\n".join(lines),
                        decision_blocks(report, top, per_cloud, saving), kind=kind)


def _spend_lines(d: Decision) -> list[str]:
    """What was crossed: spend against the budget, the burn rate, the native alert."""
    lines = []
    if d.kind in ("threshold", "forecast", "native-budget"):
        used = f" ({d.percent_used}% used)" if d.percent_used is not None else ""
        lines.append(f"Spend {money(d.spend)} of {money(d.budget)}{used}, period {d.period}")
        if d.estimated is not None:
            lines.append(estimated_line(d))
        if d.projection is not None:
            lines.append(f"Projection: {d.projection}")
        if d.forecast is not None:
            lines.append(f"Forecast for the period: {money(d.forecast)}")
        if len(d.crossed) > 1:
            lines.append(f"Crossed at once: {', '.join(d.crossed)}")
    if d.kind == "currency":
        lines.append(f"Spend {money(d.spend)} in period {d.period}, budget {money(d.budget)}")
        lines += list(d.notes)
    if d.kind == "burn-rate" and d.window_start and d.window_end:
        lines.append(f"GPU spend {money(d.spend)} over {d.window_start:%Y-%m-%d %H:%M}–{d.window_end:%H:%M} UTC")
    if d.alert is not None:
        lines.append(f"From {d.alert.provider.upper()} budget {d.alert.budget_name!r}"
                     + (f" (account {d.alert.account})" if d.alert.account else ""))
    return lines


def estimated_line(d: Decision) -> str:
    """What part of a crossing rests on the live estimate (running instances not billed yet)."""
    since = f" since {d.data_until:%Y-%m-%d %H:%M} UTC" if d.data_until is not None else ""
    return (f"Triggered with estimates: {money(d.estimated)} ({d.estimated_share}%) is the live estimate of"
            f" running instances{since}, not billed yet")


def _stop_lines(report: Outcome, saving: Saving | None = None) -> list[str]:
    """What the stop action did: stopped (or would have), nothing to stop, where it cannot."""
    d = report.decision
    lines = []
    if report.stopped:
        verb = "Would stop (dry-run)" if report.dry_run else "Stopped"
        lines.append(f"{verb} {len(report.stopped)} GPU instance(s): " + ", ".join(
            f"{cloud_name(i.cloud)} {i.name or i.instance_id} ({i.instance_type})"
            for i in report.stopped))
        lines += saving_lines(saving or estimate(report, None))
        if not report.dry_run:
            lines.append(f"Resume with: burnguard resume {d.guardrail}  (or /burnguard resume {d.guardrail})")
    elif "stop" in d.actions:
        lines.append("No instance to stop in scope" + (f" ({len(report.skipped)} skipped)" if report.skipped else ""))
    if "stop" in d.actions and report.uncontrolled:
        lines.append("Cannot stop on " + ", ".join(cloud_name(c) for c in report.uncontrolled)
                     + ": no instance controller configured in this deployment")
    protected = [s for s in report.skipped if s.code is SkipCode.PROTECTED]
    if protected:
        lines.append("Protected, left running: " + ", ".join(s.instance.name or s.instance.instance_id
                                                             for s in protected))
    return lines


def saving_lines(saving: Saving) -> list[str]:
    """The saving, and how the instances were priced when not all from the billing data."""
    lines = []
    if saving.amount is not None:
        how = (" (effective cost from the billing data)" if saving.measured and not saving.listed
               else f" ({len(saving.listed)} instance(s) at the on-demand price: not in the billing data)"
               if saving.listed and saving.measured else " (on-demand prices)" if saving.listed else "")
        lines.append(f"Estimated saving: {money(saving.amount)}/h{how}")
    if saving.outside:
        lines.append("No GPU spend in the window (not part of the burn, not in the saving): " + ", ".join(
            f"{name}" + (f" (on-demand {money(price)}/h)" if price is not None else "")
            for name, price in saving.outside))
    return lines


def render_failures(report: Outcome, policy: Policy) -> Notification:
    d = report.decision
    lines = [f"{d.guardrail}: could not stop {len(report.failed)} instance(s) for {d.scope}"]
    lines += [f"- {i.cloud} {i.name or i.instance_id}: {reason}" for i, reason in report.failed]
    lines.append("The other instances were handled; check permissions and the instances' state.")
    return Notification(policy.channel_for(policy.guardrail(d.guardrail)), "\n".join(lines), failure_blocks(report),
                        kind="failure")


def render_resume(report: ResumeOutcome, policy: Policy, actor: str) -> Notification:
    lines = [f"{report.guardrail}: {actor} resumed {len(report.started)} instance(s)"]
    lines += [f"- {r.cloud} {r.name or r.instance_id} ({r.instance_type})" for r in report.started]
    lines += [f"- FAILED {r.cloud} {r.name or r.instance_id}: {reason}" for r, reason in report.failed]
    return Notification(policy.channel_for(policy.guardrail(report.guardrail)), "\n".join(lines),
                        resume_blocks(report, actor), kind="resume")


def render_dead_letter(message_id: str, kind: str, reason: str, pending: dict[str, dict[str, Any]],
                       policy: Policy) -> Notification:
    """A message the guardrail gave up on, and the crossings left unsettled with what was done."""
    lines = [f"burnguard could not handle a {kind or 'queue'} message ({message_id}) and set it aside: {reason}"]
    for key, claim in pending.items():
        done = [f"{eid} {e['outcome']}" for eid, e in sorted(claim["effects"].items()) if e["state"] == "done"]
        begun = [eid for eid, e in sorted(claim["effects"].items()) if e["state"] != "done"]
        lines.append(f"- unsettled {key}: done [{', '.join(done) or 'nothing'}]"
                     + (f", begun and not recorded [{', '.join(begun)}]" if begun else ""))
    lines.append("It is in the dead-letter queue with its reason; fix the cause and redeliver it.")
    return Notification(policy.slack.channel, "\n".join(lines), kind="failure")
