"""Actions by name: the executor of each action the policy may name, registered against its
spec (:mod:`burnguard.core.actions`: policy options, cloud permissions, dry-run).

An executor acts only through ports (instance controllers, the ledger's stop log, the
notifier behind :meth:`ActionRun.announce`), handed to it by the guardrail service as an
:class:`ActionRun`; the service asks :data:`actions` what to run and never names an action.
Learned from Cloud Custodian's ``@actions.register('stop')`` classes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import ClassVar, Protocol

from burnguard.core.actions import ACTIONS, NOTIFY, STOP, ActionCatalog, ActionSpec
from burnguard.core.instances import Instance
from burnguard.core.ledger import StopRecord
from burnguard.core.money import Money
from burnguard.core.policy import Safety
from burnguard.ports.instances import ActionError, InstanceController
from burnguard.ports.ledger import StopLog
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
    def stop_log(self) -> StopLog: ...

    def clouds(self) -> tuple[str, ...]:
        """The clouds of the decision's guardrail."""
        ...

    def audit(self, action: str, outcome: str, details: Mapping[str, object]) -> None: ...

    def announce(self) -> None:
        """Tell the guardrail's channel about the decision and what was done."""
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
    """Stop the selected instances (:func:`select_for_stop`); dry-run selects and records only."""

    def process(self, run: ActionRun) -> None:
        report, decision = run.report, run.decision
        selection = select_for_stop(self._candidates(run), decision.scope, run.safety, budget=run.budget)
        report.skipped = list(selection.skipped)
        for inst in selection.stop:
            outcome = "dry-run"
            if not report.dry_run:
                try:
                    run.controllers[inst.cloud].stop(inst)
                    outcome = "ok"
                except ActionError as exc:
                    reason = Reason(FailCode.ACTION_FAILED, str(exc))
                    report.failed.append((inst, reason))
                    run.audit(self.name, "failed", {"instance": inst.ref, "reason": str(reason),
                                                          "code": str(reason.code)})
                    continue
            report.stopped.append(inst)
            run.stop_log.record_stop(StopRecord(
                decision.guardrail, str(decision.scope), inst.cloud, inst.instance_id, inst.name, inst.location,
                inst.instance_type, run.now, report.dry_run, inst.hourly_cost, inst.currency))
            run.audit(self.name, outcome, {"instance": inst.ref, "type": inst.instance_type})
        for skip in selection.skipped:
            run.audit(self.name, "skipped", {"instance": skip.instance.ref, "reason": str(skip.reason),
                                               "code": str(skip.code)})

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
        return candidates


@actions.register(NOTIFY)
class NotifyAction(Action):
    """Post the decision to Slack (a dry run is marked as one by the message itself)."""

    announces = True

    def process(self, run: ActionRun) -> None:
        run.announce()
