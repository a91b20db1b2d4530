"""The guardrail function: consume queue messages, keep the ledger, decide, act.

Deciding is :func:`burnguard.rules.decisions.evaluate` (pure); acting goes through ports (a notifier,
one instance controller per cloud), with the safety rules of :mod:`burnguard.rules.actions`. Every
decision and every action is written to the audit log with its outcome. A partial failure (one
instance cannot be stopped) is reported and the rest go on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from burnguard.core.budget import BudgetAlert
from burnguard.core.errors import InputError
from burnguard.core.instances import Instance
from burnguard.core.ledger import AuditEvent, Completion, StopRecord
from burnguard.core.messages import BUDGET_ALERT, DELIVERY_SUMMARY, LINE_ITEMS, Message
from burnguard.core.money import Money
from burnguard.core.policy import Policy, Safety
from burnguard.notify.content import render_dead_letter, render_decision, render_failures, render_resume
from burnguard.ports.instances import ActionError, InstanceController
from burnguard.ports.ledger import EstimateView, Ledger
from burnguard.ports.notify import Notification, Notifier, NotifyError
from burnguard.rules.actions import FailCode, Reason, SkipCode, Skipped
from burnguard.rules.decisions import Decision, decide_budget_alert, evaluate
from burnguard.rules.registry import actions, instance_from
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
    (the ports of the service, the claim's effect log) and the report they fill."""

    service: GuardrailService
    decision: Decision
    report: ExecutionReport
    now: datetime
    budget: int
    key: str
    done: dict[str, dict[str, Any]]
    errors: list[str] = field(default_factory=list)
    wants_announce: bool = False

    @property
    def safety(self) -> Safety:
        return self.service.policy.safety

    @property
    def controllers(self) -> Mapping[str, InstanceController]:
        return self.service.controllers

    def clouds(self) -> tuple[str, ...]:
        return tuple(self.service.policy.guardrail(self.decision.guardrail).clouds)

    def begin(self, effect: str, details: Mapping[str, Any]) -> bool:
        return self.service.ledger.begin_effect(self.key, effect, self.now, details)

    def complete(self, action: str, effect: str, outcome: str, details: Mapping[str, Any],
                 audit: Mapping[str, object], stop: StopRecord | None = None) -> None:
        self.service._effect(self.key, effect, outcome, self.now, details=dict(details), done=self.done,
                             event=self.service._event("action", "guardrail", outcome, self.decision,
                                                       {"action": action, **audit}), stop=stop)

    def error(self, text: str) -> None:
        self.errors.append(text)

    def announce(self) -> None:
        self.wants_announce = True


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
        #: the live estimate counted with the bill (``None``: the bill alone); the composition
        #: root of a metered deployment sets it (the embedded mode's ``burnguard meter``)
        self.estimates: EstimateView | None = None

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
            if completion is not None and completion.status == "complete":
                # Recorded once per delivery through the effect log, so that a failure between the
                # switch and here is made good by the redelivery (which finds it complete).
                key = f"delivery|{completion.delivery_id}"
                if self.ledger.claim(key, now, {"delivery_id": completion.delivery_id}) != "settled":
                    self.ledger.complete_effect(key, "counted", "ok", now, details={}, audit=self._event(
                        "delivery", "guardrail", "ok", details={
                            "delivery_id": completion.delivery_id, "replaced": completion.replaced}))
                    self.ledger.settle(key, now)
                # Evaluated on every message that finds its delivery counted, not only on the one
                # that switched it: a failure after the switch is retried, and evaluating is
                # edge-triggered. Read as_of after the switch: the delivery just counted may have
                # moved it (the embedded mode judges at the end of the counted data).
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
        return self.execute(evaluate(self.policy, self.ledger, now or self.as_of(), wall=self.clock(),
                                     estimates=self.estimates), self.clock())

    def execute(self, decisions: Sequence[Decision], now: datetime) -> list[ExecutionReport]:
        """Act on ``decisions``. A failure in one decision never drops the others: every decision
        is carried as far as it goes, then :class:`GuardrailFault` is raised if any failed
        unexpectedly (the caller's message fails and is retried; the effect log lets the retry
        resume each crossing where it stopped)."""
        budget = self.policy.safety.max_stops_per_run
        reports: list[ExecutionReport] = []
        errors: list[str] = []
        for decision in decisions:
            report = ExecutionReport(decision, self.policy.safety.dry_run)
            try:
                self._execute(decision, now, budget, report)
            except Exception as exc:
                errors += exc.errors if isinstance(exc, GuardrailFault) else [
                    f"{decision.guardrail} {decision.scope} {decision.label}: {type(exc).__name__}: {exc}"]
            budget -= len(report.stopped)
            reports.append(report)
        if errors:
            raise GuardrailFault(errors, reports)
        return reports

    def _execute(self, decision: Decision, now: datetime, budget: int, report: ExecutionReport) -> None:
        """One decision, as a claim of its crossing in the effect log: each effect is recorded
        pending before it is done and done (with its audit event, atomically) after, and the
        claim is settled (the crossing announced) only when everything was done. A claim an
        earlier attempt left pending is resumed: what is done is not done again."""
        key = decision.announce[0]
        state = self.ledger.claim(key, now, {"label": decision.label, "dry_run": report.dry_run,
                                             "with": list(decision.announce[1:])})
        if state == "settled":
            # Of two guardrail runs racing on one crossing, one settles it; the other stops here.
            report.claimed = False
            return
        done = self.ledger.effects(key) if state == "pending" else {}
        _restore(report, done)
        self._effect(key, "decision", "ok", now, details={}, done=done, event=self._event(
            "decision", "guardrail", "ok", decision, {
                "kind": decision.kind, "label": decision.label, "actions": list(decision.actions),
                "spend": str(decision.spend) if decision.spend else None, "crossed": list(decision.crossed)}))
        run = _Run(self, decision, report, now, budget, key, done)
        actions.execute(decision.actions, run)
        if run.errors:
            # Not announced: the retry finishes what is left, then tells everything at once.
            raise GuardrailFault([f"{decision.guardrail} {decision.scope} {decision.label}: {e}" for e in run.errors])
        if run.wants_announce:
            self._send(key, "notify", lambda: render_decision(report, self.policy, self.ledger), report,
                       now=now, done=done)
        if report.failed:
            self._send(key, "notify-failures", lambda: render_failures(report, self.policy), report,
                       now=now, done=done)
        self.ledger.settle(key, now, decision.announce[1:])

    def _effect(self, key: str, effect: str, outcome: str, now: datetime, *, details: dict[str, Any],
                done: dict[str, dict[str, Any]], event: AuditEvent, stop: StopRecord | None = None) -> None:
        """Record an effect done (with its audit event and stop record) unless it already is."""
        if done.get(effect, {}).get("state") == "done":
            return
        self.ledger.complete_effect(key, effect, outcome, now, details=details, audit=event, stop=stop)
        done[effect] = {"state": "done", "outcome": outcome, "details": details}

    def _send(self, key: str, effect: str, render: Callable[[], Notification], report: ExecutionReport, *,
              now: datetime, done: dict[str, dict[str, Any]]) -> None:
        """Send a notification once per claim. It is recorded pending before sending; a notifier
        that raises did not deliver (the port's contract), so the pending record is dropped and
        the message fails (retried; the failure audited each time). A pending record found by a
        later attempt means an attempt died between sending and recording: it is taken as sent
        (at most once in that window, rather than twice)."""
        previous = done.get(effect, {})
        if previous.get("state") == "done":
            report.notified = True
            return
        notification = render()
        details: dict[str, Any] = {"kind": notification.kind}
        if previous.get("state") == "pending":
            details["unconfirmed"] = "an earlier attempt sent it and stopped before recording it"
        else:
            try:
                if not self.ledger.begin_effect(key, effect, now, details):
                    return  # a concurrent run of the same crossing is sending it
            except Exception:
                # Nothing was sent: make sure no pending record says otherwise (it may have been
                # written before the error came back).
                self.ledger.drop_effect(key, effect)
                raise
            done[effect] = {"state": "pending", "outcome": "", "details": details}
            try:
                self.notifier.send(notification)
            except Exception as exc:
                report.notify_error = str(exc)
                self.ledger.drop_effect(key, effect)
                done.pop(effect, None)
                self._audit("notify", "guardrail", "failed", report.decision,
                            {"channel": notification.channel, "kind": notification.kind, "reason": str(exc)})
                raise
        report.notified = True
        self._effect(key, effect, "ok", now, details=details, done=done, event=self._event(
            "notify", "guardrail", "ok", report.decision, {"channel": notification.channel, "kind": notification.kind}))

    # -- giving up ------------------------------------------------------------------------
    def dead_lettered(self, message: Message, reason: str) -> None:
        """A message was set aside for good (bad input, or retries exhausted): audit it with its
        reason and send a failure alert naming it and the crossings left unsettled. Never raises
        (it runs on the failure path)."""
        details: dict[str, object] = {"message_id": message.message_id, "kind": message.kind, "reason": reason}
        try:
            pending = self.ledger.pending_claims()
            details["unsettled"] = sorted(pending)
        except Exception as exc:  # the failure alert still goes out
            pending, details["unsettled_error"] = {}, f"{type(exc).__name__}: {exc}"
        try:
            self.notifier.send(render_dead_letter(message.message_id, message.kind, reason, pending, self.policy))
            details["alerted"] = True
        except Exception as exc:
            details["alerted"], details["alert_error"] = False, f"{type(exc).__name__}: {exc}"
        with suppress(Exception):  # the ledger may be what failed
            self._audit("dead-letter", "guardrail", "failed", details=details)

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
        self.ledger.audit(self._event(kind, actor, outcome, decision, details, guardrail=guardrail))

    def _event(self, kind: str, actor: str, outcome: str, decision: Decision | None = None,
               details: dict[str, object] | None = None, *, guardrail: str | None = None) -> AuditEvent:
        details = dict(details or {})
        if decision is not None and decision.estimated is not None:
            # triggered with the live estimate: every event of the decision says so, and how much
            details |= {"estimated": str(decision.estimated), "estimated_share": str(decision.estimated_share)}
        return AuditEvent(
            self.clock(), kind, actor, outcome,
            decision.guardrail if decision else guardrail, str(decision.scope) if decision else None, details,
        )


class GuardrailFault(Exception):
    """Decisions could not be carried through (unexpected errors while acting). Transient by
    nature: the message fails, is retried, and the retry resumes each crossing from the effect
    log. ``reports`` holds what this attempt did."""

    def __init__(self, errors: list[str], reports: list[ExecutionReport] | None = None):
        super().__init__("; ".join(errors))
        self.errors = errors
        self.reports = reports or []


def _restore(report: ExecutionReport, done: Mapping[str, Mapping[str, Any]]) -> None:
    """What an earlier attempt of this claim did, into this attempt's report."""
    for eid, e in sorted(done.items()):
        if e["state"] != "done":
            continue
        if eid.startswith("stop:"):
            inst = instance_from(e["details"]["instance"])
            if e["outcome"] == "failed":
                report.failed.append((inst, Reason(FailCode(e["details"].get("code", FailCode.ACTION_FAILED)),
                                                   str(e["details"].get("reason", "")))))
            else:
                report.stopped.append(inst)
        elif eid.startswith("skip:"):
            d = e["details"]
            report.skipped.append(Skipped(instance_from(d["instance"]),
                                          Reason(SkipCode(d.get("code", SkipCode.OUT_OF_SCOPE)), str(d["reason"]))))

