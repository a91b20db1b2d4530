"""Which instances a stop may touch: the safety rules, as a pure function.

ARCHITECTURE.md rule 5, in order: only running instances that carry the scope tag, that are
GPU instances (unless the policy explicitly allows others), that do not carry the protect
tag; most expensive first, at most the cap of stops per run. Never terminate: the controllers
only know stop (Azure: deallocate) and start.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from burnguard.core.instances import RUNNING, Instance
from burnguard.core.ledger import Scope
from burnguard.core.policy import Safety
from burnguard.core.tags import tag_value


class SkipCode(StrEnum):
    """Why an instance of the scope was left running."""

    OUT_OF_SCOPE = "out-of-scope"
    PROTECTED = "protected"
    NOT_RUNNING = "not-running"
    NOT_GPU = "not-gpu"
    CAP_REACHED = "cap-reached"


class FailCode(StrEnum):
    """Why an action on an instance did not happen."""

    CANNOT_LIST = "cannot-list"
    ACTION_FAILED = "action-failed"
    NO_CONTROLLER = "no-controller"


class Reason(str):
    """The text people read, with the code programs match on (never match the text).

    A ``str`` so that it goes where a reason always went (messages, the audit log's JSON);
    ``code`` is the structured value."""

    code: SkipCode | FailCode

    def __new__(cls, code: SkipCode | FailCode, text: str) -> Reason:
        self = super().__new__(cls, text)
        self.code = code
        return self

    def __repr__(self) -> str:
        return f"Reason({self.code!s}, {str(self)!r})"


@dataclass(frozen=True)
class Skipped:
    instance: Instance
    reason: Reason

    @property
    def code(self) -> SkipCode | FailCode:
        return self.reason.code


@dataclass(frozen=True)
class Selection:
    stop: tuple[Instance, ...]
    skipped: tuple[Skipped, ...]


def select_for_stop(instances: Iterable[Instance], scope: Scope, safety: Safety, *, budget: int) -> Selection:
    """Apply the safety rules to candidate ``instances`` of ``scope``; ``budget`` is how many
    stops this run may still make (the policy's cap minus the stops already made)."""
    eligible: list[Instance] = []
    skipped: list[Skipped] = []
    seen: set[str] = set()
    for inst in instances:
        if inst.ref in seen:
            continue
        seen.add(inst.ref)
        found = tag_value(inst.tags, scope.key)
        if found is None or (scope.value is not None and found != scope.value):
            skipped.append(Skipped(inst, Reason(SkipCode.OUT_OF_SCOPE, f"does not carry {scope}")))
        elif safety.is_protected(inst.tags):
            skipped.append(Skipped(inst, Reason(SkipCode.PROTECTED, f"protected by {safety.protect_tag}")))
        elif inst.state != RUNNING:
            skipped.append(Skipped(inst, Reason(SkipCode.NOT_RUNNING, f"is {inst.state}, not running")))
        elif not inst.is_gpu and (safety.gpu_only or not safety.allow_non_gpu):
            acc = inst.accelerator
            what = f"a {acc.cls} ({acc.family})" if acc else "not a GPU instance"
            skipped.append(Skipped(inst, Reason(SkipCode.NOT_GPU,
                                                f"{inst.instance_type} is {what}; only GPU instances are stopped")))
        else:
            eligible.append(inst)
    eligible.sort(key=lambda i: (-(i.hourly_cost or Decimal(0)), i.cloud, i.instance_id))
    stop = eligible[: max(0, budget)]
    for inst in eligible[len(stop):]:
        skipped.append(Skipped(inst, Reason(SkipCode.CAP_REACHED, "cap of stops per run reached")))
    return Selection(tuple(stop), tuple(skipped))
