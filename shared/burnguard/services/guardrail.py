"""The guardrail function: consume queue messages, keep the ledger, decide, act.

Deciding is :func:`burnguard.rules.decisions.evaluate` (pure); acting goes through ports (a notifier,
one instance controller per cloud), with the safety rules of :mod:`burnguard.rules.actions`. Every
decision and every action is written to the audit log with its outcome. A partial failure (one
instance cannot be stopped) is reported and the rest go on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from burnguard.core.budget import BudgetAlert
from burnguard.core.errors import InputError
from burnguard.core.instances import Instance
from burnguard.core.ledger import AuditEvent, Completion, StopRecord
from burnguard.core.messages import BUDGET_ALERT, DELIVERY_SUMMARY, LINE_ITEMS, Message
from burnguard.core.money import Money
from burnguard.core.policy import Policy, Safety
from burnguard.notify.content import render_decision, render_failures, render_resume
from burnguard.ports.instances import ActionError, InstanceController
from burnguard.ports.ledger import Ledger, StopLog
from burnguard.ports.notify import Notification, Notifier, NotifyError
from burnguard.rules.actions import FailCode, Reason, Skipped
from burnguard.rules.decisions import Decision, decide_budget_alert, evaluate
from burnguard.rules.registry import actions
from burnguard.services.record import record_message


@dataclass
class ExecutionReport:
    decision: Decision
    dry_run: bool
    stopped: list[Instance] = field(default_factory=list)
    failed: list[tuple[Instance, str]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notified: bool = False
    notify_error: str | None = None
    claimed: bool = True
    #: clouds of the guardrail this deployment has no instance controller for
    uncontrolled: list[str] = field(default_factory=list)

    @property
    def hourly_saving(self) -> Money | None:
        costs = [i for i in self.stopped if i.hourly_cost is not None and i.currency]
        if not costs:
            return None
        currency = costs[0].currency
        assert currency is not None
        return Money(sum((i.hourly_cost or Decimal(0) for i in costs if i.currency == currency), Decimal(0)), currency)


@dataclass
class HandleResult:
    kind: str
    completion: Completion | None = None
    reports: list[ExecutionReport] = field(default_factory=list)


@dataclass
class ResumeReport:
    guardrail: str
    started: list[StopRecord] = field(default_factory=list)
    failed: list[tuple[StopRecord, str]] = field(default_factory=list)


@dataclass
class _Run:
    """One decision being executed: what :mod:`burnguard.rules.registry`'s executors may use
    (the ports of the service) and the report they fill."""

    service: GuardrailService
    decision: Decision
    report: ExecutionReport
    now: datetime
    budget: int

    @property
    def safety(self) -> Safety:
        return self.service.policy.safety

    @property
    def controllers(self) -> Mapping[str, InstanceController]:
        return self.service.controllers

    @property
    def stop_log(self) -> StopLog:
        return self.service.ledger

    def clouds(self) -> tuple[str, ...]:
        return tuple(self.service.policy.guardrail(self.decision.guardrail).clouds)

    def audit(self, action: str, outcome: str, details: Mapping[str, object]) -> None:
        self.service._audit("action", "guardrail", outcome, self.decision, {"action": action, **details})

    def announce(self) -> None:
        self.service._notify(self.report)


class GuardrailService:
    def __init__(self, policy: Policy, ledger: Ledger, notifier: Notifier,
                 controllers: Mapping[str, InstanceController], *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 as_of: Callable[[], datetime] | None = None):
        """``clock`` stamps records (audit, stops, snoozes: wall time); ``as_of`` is the time
        the policy is judged at (default the clock; the embedded mode judges sample data at
        the end of the data, so that last September's export is judged in September)."""
        self.policy = policy
        self.ledger = ledger
        self.notifier = notifier
        self.controllers = dict(controllers)
        self.clock = clock
        self.as_of = as_of or clock

    # -- messages -------------------------------------------------------------------------
    def handle(self, message: Message) -> HandleResult:
        """Apply one queue message. Raises :class:`InputError` for a malformed message (the
        caller dead-letters it); anything else raised is transient (the caller retries)."""
        now = self.clock()
        if message.kind in (LINE_ITEMS, DELIVERY_SUMMARY):
            completion = record_message(self.ledger, message, now)
            result = HandleResult(message.kind, completion)
            closed = completion is not None and completion.status in ("rejected", "superseded")
            if completion is not None and closed and message.kind == DELIVERY_SUMMARY:
                self._audit("delivery", "guardrail", completion.status, details={
                    "delivery_id": completion.delivery_id, "reason": completion.reason})
            if completion is not None and completion.switched:
                self._audit("delivery", "guardrail", "ok", details={
                    "delivery_id": completion.delivery_id, "replaced": completion.replaced})
                # Read as_of after the switch: the delivery just counted may have moved it (the
                # embedded mode judges at the end of the counted data).
                result.reports = self.run()
            return result
        if message.kind == BUDGET_ALERT:
            try:
                alert = BudgetAlert.model_validate_json(message.data)
            except ValueError as exc:
                raise InputError(f"budget-alert payload is invalid: {exc}", field="data") from None
            return HandleResult(message.kind, reports=self.take_budget_alert(alert, self.as_of()))
        raise InputError(f"unknown message kind {message.kind!r}", field="kind")

    def take_budget_alert(self, alert: BudgetAlert, now: datetime) -> list[ExecutionReport]:
        decisions = decide_budget_alert(self.policy, alert, self.ledger, now, wall=self.clock())
        if not decisions and alert.is_crossing and not self.policy.guardrails_for_budget_alert(alert):
            self._audit("alert", "guardrail", "skipped", details={
                "alert_id": alert.alert_id, "budget": alert.budget_name, "reason": "no guardrail maps this budget"})
        return self.execute(decisions, now)

    # -- deciding and acting --------------------------------------------------------------
    def run(self, now: datetime | None = None) -> list[ExecutionReport]:
        """Evaluate the whole policy at ``now`` (default ``as_of``) and execute what it decides."""
        return self.execute(evaluate(self.policy, self.ledger, now or self.as_of(), wall=self.clock()), self.clock())

    def execute(self, decisions: Sequence[Decision], now: datetime) -> list[ExecutionReport]:
        budget = self.policy.safety.max_stops_per_run
        reports: list[ExecutionReport] = []
        for decision in decisions:
            report = self._execute(decision, now, budget)
            budget -= len(report.stopped)
            reports.append(report)
        return reports

    def _execute(self, decision: Decision, now: datetime, budget: int) -> ExecutionReport:
        dry_run = self.policy.safety.dry_run
        report = ExecutionReport(decision, dry_run)
        # Claim the crossing first: of two guardrail runs racing on one crossing, one acts.
        if not self.ledger.announce(decision.announce[0], now, {"label": decision.label, "dry_run": dry_run}):
            report.claimed = False
            return report
        for key in decision.announce[1:]:
            self.ledger.announce(key, now, {"label": decision.label, "with": decision.announce[0]})
        self._audit("decision", "guardrail", "ok", decision, {
            "kind": decision.kind, "label": decision.label, "actions": list(decision.actions),
            "spend": str(decision.spend) if decision.spend else None, "crossed": list(decision.crossed)})
        actions.execute(decision.actions, _Run(self, decision, report, now, budget))
        if report.failed:
            self._send(render_failures(report, self.policy), report)
        return report

    def _notify(self, report: ExecutionReport) -> None:
        self._send(render_decision(report, self.policy, self.ledger), report)

    def _send(self, notification: Notification, report: ExecutionReport) -> None:
        try:
            self.notifier.send(notification)
            report.notified = True
            outcome, details = "ok", {}
        except NotifyError as exc:
            report.notify_error = str(exc)
            outcome, details = "failed", {"reason": str(exc)}
        self._audit("notify", "guardrail", outcome, report.decision,
                    {"channel": notification.channel, "kind": notification.kind, **details})

    # -- resume ---------------------------------------------------------------------------
    def resume(self, guardrail: str, actor: str, now: datetime | None = None) -> ResumeReport:
        """Start again every instance ``guardrail`` stopped (not dry-run, not yet resumed)."""
        now = now or self.clock()
        self.policy.guardrail(guardrail)  # KeyError for an unknown name
        report = ResumeReport(guardrail)
        for record in self.ledger.stops(guardrail, active_only=True):
            controller = self.controllers.get(record.cloud)
            instance = Instance(record.cloud, record.instance_id, record.name, record.location,
                                record.instance_type, "stopped")
            if controller is None:
                reason = Reason(FailCode.NO_CONTROLLER, f"no instance controller for {record.cloud}")
            else:
                try:
                    controller.start(instance)
                    reason = None
                except ActionError as exc:
                    reason = Reason(FailCode.ACTION_FAILED, str(exc))
            if reason is not None:
                report.failed.append((record, reason))
                self._audit("action", actor, "failed", None, {"action": "start", "instance": instance.ref,
                                                              "reason": str(reason), "code": str(reason.code)},
                            guardrail=guardrail)
                continue
            self.ledger.mark_resumed(guardrail, record.cloud, record.instance_id, now)
            report.started.append(record)
            self._audit("action", actor, "ok", None, {"action": "start", "instance": instance.ref},
                        guardrail=guardrail)
        if report.started or report.failed:
            try:
                self.notifier.send(render_resume(report, self.policy, actor))
            except NotifyError as exc:
                self._audit("notify", actor, "failed", None, {"reason": str(exc)}, guardrail=guardrail)
        return report

    def _audit(self, kind: str, actor: str, outcome: str, decision: Decision | None = None,
               details: dict[str, object] | None = None, *, guardrail: str | None = None) -> None:
        self.ledger.audit(AuditEvent(
            self.clock(), kind, actor, outcome,
            decision.guardrail if decision else guardrail, str(decision.scope) if decision else None,
            dict(details or {}),
        ))

