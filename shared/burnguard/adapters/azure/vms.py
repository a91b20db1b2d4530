"""Azure virtual machines as an :class:`~burnguard.ports.instances.InstanceController`
(azure-mgmt-compute).

* ``find``: the VMs of every configured scope (a subscription, or one resource group of it),
  paged by the SDK (``nextLink``), filtered on the tag (keys case-insensitive, as ARM treats
  them); the power state of each tagged VM is read from its instance view.
* ``stop`` **deallocates** (``begin_deallocate``): a VM that is only powered off keeps its
  compute allocation and is still billed, so burnguard never powers off alone, and never
  deletes. ``start`` starts it again. Both are long-running operations, awaited up to
  ``timeout`` seconds (the SDK polls ``Azure-AsyncOperation``/``Location``); a VM still
  deallocating then is reported as an :class:`ActionError` saying so.
* Throttling: ARM answers 429 with ``Retry-After``; the SDK's retry policy (azure-core
  ``RetryPolicy``) waits what the header says and retries, up to the client's ``retry_total``.

A VM powered off but not deallocated (``PowerState/stopped``) is still billed for its compute,
so it is reported as ``running``: the guardrail deallocates it like a running one.

``clients(subscription_id)`` returns an ``azure.mgmt.compute.ComputeManagementClient`` for the
subscription (the guardrail's identity: a federated credential; tests point it at an ARM fake).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from burnguard.core.errors import InputError
from burnguard.core.estimates import as_utc
from burnguard.core.instances import RUNNING, Instance
from burnguard.core.tags import normalize_tags, tag_value
from burnguard.ports.instances import ActionError

#: Actions the controller calls (a custom role scoped to the configured subscriptions/groups).
PERMISSIONS: tuple[str, ...] = (
    "Microsoft.Compute/virtualMachines/read",
    "Microsoft.Compute/virtualMachines/instanceView/read",
    "Microsoft.Compute/virtualMachines/deallocate/action",
    "Microsoft.Compute/virtualMachines/start/action",
)

#: ``PowerState/<code>`` of the instance view → burnguard's normalized state.
POWER_STATES = {
    "running": RUNNING,
    "starting": "pending",
    "stopping": "stopping",
    "stopped": RUNNING,  # powered off, still allocated and billed: deallocate it
    "deallocating": "stopping",
    "deallocated": "stopped",
}

_ID = re.compile(r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)"
                 r"/providers/Microsoft\.Compute/virtualMachines/([^/]+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Scope:
    """Where VMs are looked for: a subscription, or one resource group of it."""

    subscription: str
    resource_group: str | None = None

    @classmethod
    def parse(cls, text: str, *, field: str = "BURNGUARD_AZURE_SCOPES") -> Scope:
        parts = [p.strip() for p in text.strip().strip("/").split("/")]
        if len(parts) == 1 and parts[0]:
            return cls(parts[0])
        if len(parts) == 2 and all(parts):
            return cls(parts[0], parts[1])
        raise InputError(f"scope {text!r} is not <subscriptionId> or <subscriptionId>/<resourceGroup>", field=field)


def parse_scopes(text: str, *, field: str = "BURNGUARD_AZURE_SCOPES") -> list[Scope]:
    """``sub[/rg],sub[/rg],…``; at least one."""
    scopes = [Scope.parse(part, field=field) for part in text.split(",") if part.strip()]
    if not scopes:
        raise InputError("no subscription given", field=field)
    return scopes


def power_state(statuses: Iterable[Any]) -> str:
    """The normalized state from instance view statuses (``code`` ``PowerState/…``)."""
    for status in statuses or ():
        code = getattr(status, "code", None) or ""
        if code.lower().startswith("powerstate/"):
            raw = code.split("/", 1)[1].lower()
            return POWER_STATES.get(raw, raw)
    return "unknown"


def state_time(statuses: Iterable[Any]) -> datetime | None:
    """When the VM's last operation (start, deallocate...) ended: the instance view's
    ``ProvisioningState/…`` status ``time`` (the power state status carries none)."""
    for status in statuses or ():
        code = getattr(status, "code", None) or ""
        if code.lower().startswith("provisioningstate/"):
            return as_utc(getattr(status, "time", None))
    return None


def _split_id(instance_id: str) -> tuple[str, str, str]:
    m = _ID.match(instance_id)
    if not m:
        raise ActionError(f"{instance_id!r} is not an Azure VM resource id")
    return m.group(1), m.group(2), m.group(3)


class AzureVmController:
    """``clients(subscription)`` → ``ComputeManagementClient``; ``scopes`` where to look."""

    cloud = "azure"

    def __init__(self, clients: Callable[[str], Any], scopes: Sequence[Scope], *, timeout: float = 600.0):
        self._factory = clients
        self._clients: dict[str, Any] = {}
        self.scopes = list(scopes)
        self.timeout = timeout

    def _client(self, subscription: str) -> Any:
        key = subscription.lower()
        if key not in self._clients:
            self._clients[key] = self._factory(subscription)
        return self._clients[key]

    def _listing(self, scope: Scope) -> Iterable[Any]:
        vms = self._client(scope.subscription).virtual_machines
        # $expand=instanceView: each VM's power state comes in the listing, one call per page
        # instead of one per VM (ARM's read limits; the meter lists every few minutes)
        listing: Iterable[Any] = (vms.list(scope.resource_group, expand="instanceView") if scope.resource_group
                                  else vms.list_all(expand="instanceView"))
        return listing

    def find(self, key: str, value: str | None) -> list[Instance]:
        from azure.core.exceptions import HttpResponseError

        found: dict[str, Instance] = {}
        for scope in self.scopes:
            try:
                for vm in self._listing(scope):
                    tags = normalize_tags("azure", vm.tags or {})
                    have = tag_value(tags, key)
                    if have is None or (value is not None and have != value):
                        continue
                    instance = self._instance(vm, tags)
                    found.setdefault(instance.instance_id.lower(), instance)
            except HttpResponseError as exc:
                raise ActionError(f"cannot list the VMs of {self._where(scope)}: {_reason(exc)}") from None
        return sorted(found.values(), key=lambda i: i.instance_id.lower())

    @staticmethod
    def _where(scope: Scope) -> str:
        return (f"resource group {scope.resource_group} of subscription {scope.subscription}" if scope.resource_group
                else f"subscription {scope.subscription}")

    def _instance(self, vm: Any, tags: dict[str, str]) -> Instance:
        subscription, group, name = _split_id(vm.id)
        view = vm.instance_view  # listed with $expand=instanceView
        if view is None or not view.statuses:  # a listing without it: ask for this VM's
            view = self._client(subscription).virtual_machines.instance_view(group, name)
        size = vm.hardware_profile.vm_size if vm.hardware_profile is not None else ""
        size = getattr(size, "value", size)  # known sizes come back as VirtualMachineSizeTypes (a str Enum)
        state = power_state(view.statuses)
        changed = state_time(view.statuses)
        return Instance(cloud=self.cloud, instance_id=vm.id, name=vm.name or name, location=group,
                        instance_type=str(size or ""), state=state,
                        tags=tags, spot=str(getattr(vm.priority, "value", vm.priority) or "").lower() == "spot",
                        started_at=changed if state == RUNNING else None,
                        stopped_at=changed if state != RUNNING else None,
                        account=subscription or None,  # the cost export's SubscriptionId
                        region=str(vm.location or "").casefold() or None)  # ARM's region name: eastus

    def _await(self, verb: str, instance: Instance) -> None:
        from azure.core.exceptions import HttpResponseError

        subscription, group, name = _split_id(instance.instance_id)
        vms = self._client(subscription).virtual_machines
        try:
            poller = vms.begin_deallocate(group, name) if verb == "deallocate" else vms.begin_start(group, name)
            poller.result(timeout=self.timeout)
        except HttpResponseError as exc:
            raise ActionError(f"{verb} of {name} (resource group {group}) failed: {_reason(exc)}") from None
        if not poller.done():
            raise ActionError(f"{verb} of {name} (resource group {group}) still in progress after "
                              f"{self.timeout:g} s ({poller.status()})")
        if poller.status().lower() not in ("succeeded",):
            raise ActionError(f"{verb} of {name} (resource group {group}) ended {poller.status()}")

    def stop(self, instance: Instance) -> None:
        self._await("deallocate", instance)

    def start(self, instance: Instance) -> None:
        self._await("start", instance)


def _reason(exc: Any) -> str:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    status = getattr(exc, "status_code", None)
    message = getattr(error, "message", None) or getattr(exc, "reason", None) or str(exc).splitlines()[0]
    return " ".join(str(p) for p in (status, code, message) if p)
