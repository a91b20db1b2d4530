"""Ports of the guardrail: what it needs from the outside world, named by role.

Adapters implement them per technology: ``adapters.local`` (inventory file, console),
``adapters.aws`` (EC2), ``adapters.gcp`` (Compute Engine), ``adapters.azure`` (VMs),
``adapters.slack`` (Slack Web API). Each takes its SDK client as a parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from .accelerators import Accelerator, classify_gcp_accelerator_type, classify_instance_type
from .errors import BurnguardError

RUNNING = "running"


@dataclass(frozen=True)
class Instance:
    """A virtual machine as an instance controller sees it (state normalized: ``running``,
    ``stopped``, ``stopping``, ``pending``, ``terminated``...)."""

    cloud: str
    instance_id: str
    name: str
    location: str  # region/zone, or resource group for Azure
    instance_type: str
    state: str
    tags: Mapping[str, str] = field(default_factory=dict)
    #: accelerators attached to the instance (GCE ``guestAccelerators`` types)
    accelerators: tuple[str, ...] = ()
    spot: bool = False
    hourly_cost: Decimal | None = None
    currency: str | None = None

    @property
    def accelerator(self) -> Accelerator | None:
        """GPU (or other accelerator) class, from the type or the attached accelerators."""
        found = classify_instance_type(self.cloud, self.instance_type)
        if found is None and self.accelerators:
            found = classify_gcp_accelerator_type(self.accelerators[0])
        return found

    @property
    def is_gpu(self) -> bool:
        acc = self.accelerator
        return acc is not None and acc.is_gpu

    @property
    def ref(self) -> str:
        return f"{self.cloud}:{self.instance_id}"


class ActionError(BurnguardError):
    """An instance could not be stopped or started (the reason is the message)."""


class NotifyError(BurnguardError):
    """A notification could not be delivered (after the notifier's own retries)."""


class InstanceController(Protocol):
    """Finds, stops and starts instances of one cloud. Never terminates."""

    cloud: str

    def find(self, key: str, value: str | None) -> list[Instance]:
        """Instances carrying tag ``key`` (case-insensitive) with ``value`` (any if ``None``)."""
        ...

    def stop(self, instance: Instance) -> None:
        """Stop (Azure: deallocate) ``instance``; raise :class:`ActionError` on failure."""
        ...

    def start(self, instance: Instance) -> None:
        """Start ``instance`` again; raise :class:`ActionError` on failure."""
        ...


@dataclass(frozen=True)
class Notification:
    """A message for people: plain text always, Slack Block Kit blocks when rendered."""

    channel: str | None
    text: str
    blocks: Sequence[Mapping[str, Any]] = ()
    kind: str = "info"  # threshold | forecast | burn-rate | native-budget | stop | failure | resume | info


class Notifier(Protocol):
    def send(self, notification: Notification) -> None:
        """Deliver; raise :class:`NotifyError` when it cannot be delivered."""
        ...
