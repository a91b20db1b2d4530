"""The actions a guardrail may take, declared by name: what each one's policy options are,
which cloud permissions it needs, what dry-run means for it. Pure data.

The policy validates action names (and their options) against :data:`ACTIONS`; the guardrail
runs an action through the executor :mod:`burnguard.rules.registry` registers for the same
name (``@actions.register(STOP)``), and a test checks that both lists agree. Adding an action
is one :class:`ActionSpec` here and one executor class there (ARCHITECTURE.md, "Adding an
action").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from burnguard.core.clouds import AWS, AZURE, GCP


class NoOptions(BaseModel):
    """The options of an action that takes none (today every action: a policy names it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class ActionSpec:
    name: str
    #: One line for the policy reference and ``burnguard policy schema``.
    summary: str
    #: What dry-run (``safety.dry_run``) does with it.
    dry_run: str
    #: The policy options of the action (a pydantic model; :class:`NoOptions` when none).
    options: type[BaseModel] = NoOptions
    #: Cloud actions its executor calls through the instance controllers, per cloud (the
    #: deployment grants them to the guardrail's identity; each controller module declares
    #: the same in its own ``PERMISSIONS``).
    permissions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: It acts on instances: the safety rules (GPU only, protect tag, cap per run) apply and
    #: the policy checks ``safety.gpu_only``/``allow_non_gpu`` against it.
    touches_instances: bool = False
    #: It speaks in a Slack channel: the guardrail, or the policy's ``slack``, must name one.
    needs_channel: bool = False
    #: Run order among the actions of one decision (acting before telling what was done).
    order: int = 0

    def json_schema(self) -> dict[str, Any]:
        return {"name": self.name, "summary": self.summary, "dry_run": self.dry_run,
                "options": self.options.model_json_schema(),
                "permissions": {cloud: list(p) for cloud, p in self.permissions.items()}}


class ActionCatalog:
    """Action specs by name, in declaration order."""

    def __init__(self) -> None:
        self._specs: dict[str, ActionSpec] = {}

    def declare(self, spec: ActionSpec) -> ActionSpec:
        if spec.name in self._specs:
            raise ValueError(f"action {spec.name!r} is declared twice")
        self._specs[spec.name] = spec
        return spec

    def __getitem__(self, name: str) -> ActionSpec:
        return self._specs[name]

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[ActionSpec]:
        return iter(self._specs.values())

    def names(self) -> tuple[str, ...]:
        return tuple(self._specs)

    def ordered(self, names: Iterable[str]) -> list[ActionSpec]:
        """The specs of ``names`` in run order (unknown names are an error of the caller)."""
        return sorted((self._specs[n] for n in names), key=lambda s: (s.order, s.name))

    def choices(self) -> str:
        """The names as a policy error lists them: ``'notify' or 'stop'``."""
        quoted = [repr(n) for n in self._specs]
        return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


ACTIONS = ActionCatalog()

NOTIFY = ACTIONS.declare(ActionSpec(
    "notify",
    "post the decision (spend, budget, top resources, what was stopped) to the guardrail's Slack channel",
    "sent as usual, marked as a dry run",
    needs_channel=True,
    order=20,
))

STOP = ACTIONS.declare(ActionSpec(
    "stop",
    "stop (Azure: deallocate) the running GPU instances of the scope, most expensive first; never terminate",
    "the instances it would stop are selected, recorded and announced as a dry run; none is stopped",
    permissions={
        AWS: ("ec2:DescribeInstances", "ec2:StopInstances", "ec2:StartInstances"),
        GCP: ("compute.instances.list", "compute.instances.stop", "compute.instances.start"),
        AZURE: ("Microsoft.Compute/virtualMachines/read", "Microsoft.Compute/virtualMachines/deallocate/action",
                "Microsoft.Compute/virtualMachines/start/action"),
    },
    touches_instances=True,
    order=10,
))
