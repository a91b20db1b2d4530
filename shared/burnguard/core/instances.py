"""Ports of the guardrail: what it needs from the outside world, named by role.

Adapters implement them per technology: ``adapters.local`` (inventory file, console),
``adapters.aws`` (EC2), ``adapters.gcp`` (Compute Engine), ``adapters.azure`` (VMs),
``adapters.slack`` (Slack Web API). Each takes its SDK client as a parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from burnguard.core.accelerators import Accelerator, classify_gcp_accelerator_type, classify_instance_type

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
    #: when it last started running (EC2 ``LaunchTime``, GCE ``lastStartTimestamp``, Azure
    #: instance view), and when it last stopped: where the live estimate backfills from
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    #: the id billing exports name it by, where it differs from ``instance_id`` (GCE's numeric id)
    billing_id: str | None = None
    #: the account it runs in, as billing names it (``SubAccountId``): the EC2 owner id, the
    #: Google Cloud project, the Azure subscription; ``None`` when not known
    account: str | None = None
    #: the region it runs (and is priced and billed) in, where ``location`` is not it: an Azure
    #: VM's ARM ``location`` (its ``location`` here is the resource group the stop call needs)
    region: str | None = None

    @property
    def price_location(self) -> str:
        """Where the instance is priced: its region if known, else its location (a region or
        zone on AWS and Google Cloud; ``""`` for an Azure VM whose region is not known)."""
        if self.region:
            return self.region
        return "" if self.cloud == "azure" else self.location

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


