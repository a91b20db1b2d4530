"""Compute Engine instances: :class:`~burnguard.ports.instances.InstanceController` on
``google.cloud.compute_v1.InstancesClient``.

* **find**: ``instances.aggregatedList`` per project, filtered by label server-side
  (``labels.<key>`` — label keys are lower case on Compute Engine, so the tag key is folded),
  across every zone, every page of the largest size (``maxResults`` 500; the SDK's pager
  follows ``nextPageToken``); a zone's warning
  (unreachable) is logged, not fatal.
* **GPUs**: from ``guestAccelerators`` (N1 with attached T4/V100/P100…) and from the
  accelerator-optimized machine families (a2, a3, a4, g2, g4…) whose GPUs come with the
  machine type (:mod:`burnguard.core.accelerators`).
* **stop / start**: ``instances.stop`` / ``instances.start``; the zone operation is awaited
  (``ExtendedOperation.result``, polling ``zoneOperations.get``) within ``timeout`` seconds.
* **Local SSDs** (``disks[].type == SCRATCH``): stopping such an instance loses the SSD data,
  so what happens is a policy choice (:data:`LOCAL_SSD_POLICIES`, ``BURNGUARD_GCE_LOCAL_SSD``):
  ``refuse`` (default: the stop fails with the reason, the guardrail reports it),
  ``discard`` (stop with ``discardLocalSsd=true``: the data is lost), ``suspend``
  (``instances.suspend`` with ``discardLocalSsd=false``: memory and SSD data preserved where
  Compute Engine supports it; it refuses otherwise, and the guardrail reports that).
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from burnguard.core.estimates import as_utc
from burnguard.core.instances import Instance
from burnguard.ports.instances import ActionError

log = logging.getLogger(__name__)

#: Actions the controller calls (a custom role on the guarded projects; no delete, no create).
PERMISSIONS = (
    "compute.instances.list",
    "compute.instances.get",
    "compute.instances.stop",
    "compute.instances.start",
    "compute.instances.suspend",
    "compute.zoneOperations.get",
)
#: instances per aggregatedList page: Compute Engine's maximum (fewer round trips per listing)
MAX_RESULTS = 500
LocalSsdPolicy = Literal["refuse", "discard", "suspend"]
LOCAL_SSD_POLICIES: tuple[LocalSsdPolicy, ...] = ("refuse", "discard", "suspend")
STATES = {
    "PROVISIONING": "pending", "STAGING": "pending", "RUNNING": "running", "STOPPING": "stopping",
    "SUSPENDING": "stopping", "SUSPENDED": "suspended", "TERMINATED": "stopped", "REPAIRING": "pending",
}


def local_ssd_policy(value: str) -> LocalSsdPolicy:
    folded = value.strip().lower()
    for policy in LOCAL_SSD_POLICIES:
        if folded == policy:
            return policy
    raise ValueError(f"BURNGUARD_GCE_LOCAL_SSD must be one of {', '.join(LOCAL_SSD_POLICIES)}, not {value!r}")


def _last(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1] if url else ""


def _segment(url: str, name: str) -> str:
    """The path segment after ``name`` in a resource URL (``projects`` → the project id)."""
    parts = url.split("/")
    return parts[parts.index(name) + 1] if name in parts else ""


def instance_ref(project: str, zone: str, name: str) -> str:
    return f"projects/{project}/zones/{zone}/instances/{name}"


def parse_ref(instance_id: str) -> tuple[str, str, str]:
    parts = instance_id.strip("/").split("/")
    if len(parts) != 6 or parts[0] != "projects" or parts[2] != "zones" or parts[4] != "instances":
        raise ActionError(f"{instance_id!r} is not projects/<p>/zones/<z>/instances/<name>")
    return parts[1], parts[3], parts[5]


class GceController:
    """Compute Engine instances of ``projects``. ``clients`` is an ``InstancesClient`` (REST
    transport; built lazily with the function's credentials when ``None``)."""

    cloud = "gcp"

    def __init__(self, projects: Sequence[str], *, clients: Any = None, operations: Any = None,
                 local_ssd: LocalSsdPolicy = "refuse", timeout: float = 300.0):
        if local_ssd not in LOCAL_SSD_POLICIES:
            raise ValueError(f"local_ssd must be one of {LOCAL_SSD_POLICIES}")
        self.projects = list(projects)
        self._client = clients
        self._operations = operations
        self.local_ssd = local_ssd
        self.timeout = timeout
        #: instance ref → has local SSDs, from the last listing (saves a get before a stop)
        self._scratch: dict[str, bool] = {}

    @property
    def client(self) -> Any:
        if self._client is None:
            from google.cloud import compute_v1

            self._client = compute_v1.InstancesClient(transport="rest")
        return self._client

    @property
    def operations(self) -> Any:
        """The ``ZoneOperationsClient`` that operations are polled with (given explicitly: the
        one an ``InstancesClient`` builds for itself ignores a custom endpoint)."""
        if self._operations is None:
            from google.cloud import compute_v1

            self._operations = compute_v1.ZoneOperationsClient(transport="rest")
        return self._operations

    # -- find -------------------------------------------------------------------------------
    def find(self, key: str, value: str | None) -> list[Instance]:
        from google.api_core.exceptions import GoogleAPICallError
        from google.cloud import compute_v1

        label = key.lower()
        wanted = value.lower() if value is not None else None
        found: list[Instance] = []
        for project in self.projects:
            expression = f'labels.{label} = "{value}"' if value is not None else f"labels.{label}:*"
            request = compute_v1.AggregatedListInstancesRequest(project=project, filter=expression,
                                                                max_results=MAX_RESULTS)
            try:
                for scope, scoped in self.client.aggregated_list(request=request):
                    if scoped.warning and scoped.warning.code and scoped.warning.code != "NO_RESULTS_ON_PAGE":
                        log.warning("Compute Engine %s %s: %s", project, scope, scoped.warning.message)
                    for inst in scoped.instances:
                        labels = dict(inst.labels)
                        if label not in labels or (wanted is not None and labels[label].lower() != wanted):
                            continue
                        found.append(self._instance(project, inst))
            except GoogleAPICallError as exc:
                raise ActionError(f"cannot list instances of project {project}: {exc.message}") from None
        return found

    def _instance(self, project: str, inst: Any) -> Instance:
        zone = _last(inst.zone)
        ref = instance_ref(project, zone, inst.name)
        self._scratch[ref] = _has_local_ssd(inst.disks)
        accelerators = tuple(_last(a.accelerator_type) for a in inst.guest_accelerators
                             for _ in range(max(1, a.accelerator_count)))
        scheduling = inst.scheduling
        spot = bool(scheduling and (scheduling.preemptible or scheduling.provisioning_model == "SPOT"))
        state = STATES.get(inst.status, inst.status.lower())
        return Instance("gcp", ref, inst.name, zone, _last(inst.machine_type), state,
                        tags=dict(inst.labels), accelerators=accelerators, spot=spot,
                        started_at=as_utc(getattr(inst, "last_start_timestamp", None)),
                        stopped_at=as_utc(getattr(inst, "last_stop_timestamp", None)),
                        billing_id=str(inst.id) if getattr(inst, "id", None) else None,
                        account=project)  # the billing export's project.id

    # -- stop and start ---------------------------------------------------------------------
    def stop(self, instance: Instance) -> None:
        from google.cloud import compute_v1

        project, zone, name = parse_ref(instance.instance_id)
        scratch = self._scratch.get(instance.instance_id)
        if scratch is None:
            scratch = self._local_ssd_now(project, zone, name)
        if scratch and self.local_ssd == "refuse":
            raise ActionError(f"{name} has local SSDs whose data a stop would discard; not stopped "
                              "(BURNGUARD_GCE_LOCAL_SSD=refuse; choose discard or suspend to allow it)")
        if scratch and self.local_ssd == "suspend":
            request = compute_v1.SuspendInstanceRequest(project=project, zone=zone, instance=name,
                                                        discard_local_ssd=False)
            self._await(lambda: self.client.suspend_unary(request=request), "suspend", name)
            return
        stop = compute_v1.StopInstanceRequest(project=project, zone=zone, instance=name)
        if scratch:
            stop.discard_local_ssd = True
        self._await(lambda: self.client.stop_unary(request=stop), "stop", name)

    def start(self, instance: Instance) -> None:
        project, zone, name = parse_ref(instance.instance_id)
        if instance.state == "suspended":
            self._await(lambda: self.client.resume_unary(project=project, zone=zone, instance=name), "resume", name)
            return
        self._await(lambda: self.client.start_unary(project=project, zone=zone, instance=name), "start", name)

    def _extended(self, operation: Any) -> Any:
        """The zone operation as the SDK's ``ExtendedOperation`` (its polling and error
        mapping), polled through :attr:`operations` — what ``InstancesClient.stop`` returns,
        with the operations client of our choosing."""
        import functools

        from google.api_core import extended_operation
        from google.cloud import compute_v1

        request = compute_v1.GetZoneOperationRequest(project=_segment(operation.zone, "projects"),
                                                     zone=_last(operation.zone), operation=operation.name)

        class ZoneOperation(extended_operation.ExtendedOperation):
            @property
            def error_message(self) -> Any:
                op = self._extended_operation
                details = "; ".join(f"{e.code}: {e.message}" for e in op.error.errors) if op.error else ""
                return details or op.http_error_message

            @property
            def error_code(self) -> Any:
                return self._extended_operation.http_error_status_code

        return ZoneOperation.make(functools.partial(self.operations.get, request), lambda: None,  # type: ignore[no-untyped-call]
                                  operation)

    def _local_ssd_now(self, project: str, zone: str, name: str) -> bool:
        from google.api_core.exceptions import GoogleAPICallError

        try:
            inst = self.client.get(project=project, zone=zone, instance=name)
        except GoogleAPICallError as exc:
            raise ActionError(f"cannot read {name}: {exc.message}") from None
        return _has_local_ssd(inst.disks)

    def _await(self, send: Callable[[], Any], verb: str, name: str) -> None:
        """Send the request, then wait for its zone operation (at most ``timeout`` seconds)."""
        from google.api_core.exceptions import GoogleAPICallError

        try:
            call = self._extended(send())
            call.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            raise ActionError(f"{verb} of {name} did not finish within {self.timeout:g} s") from None
        except GoogleAPICallError as exc:
            raise ActionError(f"{verb} of {name} failed: {exc.message}") from None
        if getattr(call, "error_code", None):
            raise ActionError(f"{verb} of {name} failed: {call.error_code} {call.error_message}")


def _has_local_ssd(disks: Iterable[Any]) -> bool:
    return any(getattr(d, "type_", "") == "SCRATCH" for d in disks)


def describe(instances: Iterable[Instance]) -> list[Mapping[str, Any]]:
    return [{"id": i.instance_id, "type": i.instance_type, "gpu": i.is_gpu, "state": i.state} for i in instances]
