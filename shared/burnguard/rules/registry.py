"""Actions by name: the executor of each action the policy may name, registered against its
spec (:mod:`burnguard.core.actions`: policy options, cloud permissions, dry-run).

An executor acts only through ports (instance controllers, the ledger's effect log, the
notifier behind :meth:`ActionRun.announce`), handed to it by the guardrail service as an
:class:`ActionRun`; the service asks :data:`actions` what to run and never names an action.
Every effect on an instance is recorded pending before it is done and done after
(:meth:`ActionRun.begin`, :meth:`ActionRun.complete`), so an attempt that fails half way is
resumed by the next one and repeats nothing.
Learned from Cloud Custodian's ``@actions.register('stop')`` classes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Protocol

from burnguard.core.actions import ACTIONS, NOTIFY, STOP, ActionCatalog, ActionSpec
from burnguard.core.instances import Instance
from burnguard.core.ledger import StopRecord
from burnguard.core.money import Money
from burnguard.core.policy import Safety
from burnguard.ports.instances import ActionError, InstanceController
from burnguard.rules.actions import FailCode, Reason, Skipped, select_for_stop
from burnguard.rules.decisions import Decision


class Outcome(Protocol):
    """What an execution records (the service's ``ExecutionReport``; the renderers of
    :mod:`burnguard.notify` read it through this protocol)."""

    decision: Decision
    dry_run: bool
    stopped: list[Instance]
    failed: list[tuple[Instance, str]]
    skipped: list[Skipped]
    uncontrolled: list[str]

    @property
    def hourly_saving(self) -> Money | None:
        """What the stopped instances cost per hour (in the currency of the first priced one)."""
        ...


class ResumeOutcome(Protocol):
    """What a resume did (the service's ``ResumeReport``)."""

    guardrail: str
    started: list[StopRecord]
    failed: list[tuple[StopRecord, str]]


class ActionRun(Protocol):
    """One decision being executed: the ports an executor may use, and where it reports."""

    @property
    def decision(self) -> Decision: ...

    @property
    def report(self) -> Outcome: ...

    @property
    def now(self) -> datetime: ...

    @property
    def budget(self) -> int:
        """How many stops this run may still make (the cap minus the stops already made)."""
        ...

    @property
    def safety(self) -> Safety: ...

    @property
    def controllers(self) -> Mapping[str, InstanceController]: ...

    @property
    def done(self) -> Mapping[str, Mapping[str, Any]]:
        """The effects an earlier attempt of this crossing recorded (pending or done), by id."""
        ...

    def clouds(self) -> tuple[str, ...]:
        """The clouds of the decision's guardrail."""
        ...

    def begin(self, effect: str, details: Mapping[str, Any]) -> bool:
        """Record ``effect`` pending before doing it; ``False``: another attempt began it."""
        ...

    def complete(self, action: str, effect: str, outcome: str, details: Mapping[str, Any],
                 audit: Mapping[str, object], stop: StopRecord | None = None) -> None:
        """Record ``effect`` done, with its audit event (``audit`` details) and stop record, at
        once; nothing if it is done already."""
        ...

    def error(self, text: str) -> None:
        """An unexpected error: the run goes on, and the message fails afterwards (retried)."""
        ...

    def announce(self) -> None:
        """Tell the guardrail's channel about the decision and what was done (once everything
        was done: a run with errors announces at its retry)."""
        ...


class Action:
    """An executor: ``spec`` names it; :meth:`process` runs it (dry-run included)."""

    spec: ClassVar[ActionSpec]
    #: It tells people about the decision (so the registry need not announce again).
    announces: ClassVar[bool] = False

    @property
    def name(self) -> str:
        return self.spec.name

    def get_permissions(self, clouds: Iterable[str] | None = None) -> tuple[str, ...]:
        """The cloud permissions the action needs on ``clouds`` (default: every cloud)."""
        wanted = self.spec.permissions if clouds is None else {c: self.spec.permissions.get(c, ()) for c in clouds}
        return tuple(p for perms in wanted.values() for p in perms)

    def process(self, run: ActionRun) -> None:
        raise NotImplementedError


class ActionRegistry:
    """Executors by action name, each registered against a spec of ``catalog``."""

    def __init__(self, catalog: ActionCatalog = ACTIONS) -> None:
        self.catalog = catalog
        self._actions: dict[str, Action] = {}

    def register(self, spec: ActionSpec) -> Callable[[type[Action]], type[Action]]:
        """Class decorator: ``@actions.register(STOP)`` makes the class the executor of ``spec``."""
        def add(cls: type[Action]) -> type[Action]:
            if spec.name not in self.catalog or self.catalog[spec.name] is not spec:
                raise ValueError(f"action {spec.name!r} is not declared in the catalogue (burnguard.core.actions)")
            if spec.name in self._actions:
                raise ValueError(f"action {spec.name!r} has an executor already")
            cls.spec = spec
            self._actions[spec.name] = cls()
            return cls
        return add

    def __getitem__(self, name: str) -> Action:
        return self._actions[name]

    def __contains__(self, name: object) -> bool:
        return name in self._actions

    def names(self) -> tuple[str, ...]:
        return tuple(self._actions)

    def permissions(self, clouds: Iterable[str] | None = None) -> dict[str, tuple[str, ...]]:
        """Per action, the cloud permissions it needs (for deployment and documentation)."""
        wanted = None if clouds is None else tuple(clouds)
        return {name: action.get_permissions(wanted) for name, action in self._actions.items()}

    def execute(self, names: Iterable[str], run: ActionRun) -> None:
        """Run the actions ``names`` of a decision in their order. What an action did to
        instances (stopped or failed) is always announced, even when no announcing action is
        named."""
        todo = [self._actions[spec.name] for spec in self.catalog.ordered(set(names))]
        for action in todo:
            action.process(run)
        if (run.report.stopped or run.report.failed) and not any(a.announces for a in todo):
            run.announce()


actions = ActionRegistry()


@actions.register(STOP)
class StopAction(Action):
    """Stop the selected instances (:func:`select_for_stop`); dry-run selects and records only.
    Stops an earlier attempt began and did not record are done again (stopping is idempotent);
    instances it already stopped or skipped are not looked at again."""

    def process(self, run: ActionRun) -> None:
        report, decision = run.report, run.decision
        redo = [instance_from(e["details"]["instance"]) for eid, e in run.done.items()
                if eid.startswith("stop:") and e["state"] == "pending"]
        known = {eid.split(":", 1)[1] for eid in run.done if eid.startswith(("stop:", "skip:"))}
        fresh = [c for c in self._candidates(run) if c.ref not in known]
        selection = select_for_stop(fresh, decision.scope, run.safety,
                                    budget=run.budget - len(report.stopped) - len(redo))
        for inst in [*redo, *selection.stop]:
            try:
                self._stop(run, inst)
            except Exception as exc:
                run.error(f"stopping {inst.ref}: {type(exc).__name__}: {exc}")
        for skip in selection.skipped:
            why = {"reason": str(skip.reason), "code": str(skip.code)}
            try:
                run.complete(self.name, f"skip:{skip.instance.ref}", "skipped",
                             {"instance": instance_details(skip.instance), **why},
                             {"instance": skip.instance.ref, **why})
                report.skipped.append(skip)
            except Exception as exc:
                run.error(f"recording the skip of {skip.instance.ref}: {type(exc).__name__}: {exc}")

    def _stop(self, run: ActionRun, inst: Instance) -> None:
        report, decision = run.report, run.decision
        eid = f"stop:{inst.ref}"
        details: dict[str, Any] = {"instance": instance_details(inst)}
        if eid not in run.done and not run.begin(eid, details):
            return  # a concurrent run of the same crossing is stopping it
        outcome = "dry-run"
        if not report.dry_run:
            try:
                run.controllers[inst.cloud].stop(inst)
                outcome = "ok"
            except ActionError as exc:
                reason = Reason(FailCode.ACTION_FAILED, str(exc))
                why = {"reason": str(reason), "code": str(reason.code)}
                run.complete(self.name, eid, "failed", {**details, **why}, {"instance": inst.ref, **why})
                report.failed.append((inst, reason))
                return
        run.complete(self.name, eid, outcome, details, {"instance": inst.ref, "type": inst.instance_type},
                     stop=StopRecord(decision.guardrail, str(decision.scope), inst.cloud, inst.instance_id, inst.name,
                                     inst.location, inst.instance_type, run.now, report.dry_run, inst.hourly_cost,
                                     inst.currency))
        report.stopped.append(inst)

    @staticmethod
    def _candidates(run: ActionRun) -> list[Instance]:
        report, scope = run.report, run.decision.scope
        candidates: list[Instance] = []
        for cloud in run.clouds():
            controller = run.controllers.get(cloud)
            if controller is None:
                report.uncontrolled.append(cloud)
                continue
            try:
                candidates += controller.find(scope.key, scope.value)
            except ActionError as exc:
                report.failed.append((Instance(cloud, "*", "*", "", "", "unknown"),
                                      Reason(FailCode.CANNOT_LIST, f"cannot list instances: {exc}")))
            except Exception as exc:
                run.error(f"listing {cloud} instances: {type(exc).__name__}: {exc}")
        return candidates


@actions.register(NOTIFY)
class NotifyAction(Action):
    """Post the decision to Slack (a dry run is marked as one by the message itself)."""

    announces = True

    def process(self, run: ActionRun) -> None:
        run.announce()

def instance_details(inst: Instance) -> dict[str, Any]:
    """An instance as an effect records it (enough to stop it again, or to report it)."""
    return {"cloud": inst.cloud, "id": inst.instance_id, "name": inst.name, "location": inst.location,
            "type": inst.instance_type, "state": inst.state,
            "hourly_cost": str(inst.hourly_cost) if inst.hourly_cost is not None else None,
            "currency": inst.currency, "tags": dict(inst.tags)}


def instance_from(d: Mapping[str, Any]) -> Instance:
    return Instance(d["cloud"], d["id"], d.get("name", ""), d.get("location", ""), d.get("type", ""),
                    d.get("state", ""), tags=dict(d.get("tags") or {}),
                    hourly_cost=Decimal(d["hourly_cost"]) if d.get("hourly_cost") is not None else None,
                    currency=d.get("currency"))
