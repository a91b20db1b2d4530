"""Instance state-change events of the three clouds → :class:`StateChange` (pure).

They start and stop an instance's accrual the moment it happens (the meter reads at the event
and takes the event's time as the start or stop time the API may not give, e.g. EC2 has no
stop time), and at a start the guardrail projects the crossing. The periodic meter reconciles
and catches events that were missed. Shapes:

* AWS: EventBridge ``EC2 Instance State-change Notification`` (``source`` ``aws.ec2``,
  ``detail.instance-id``, ``detail.state``, ``time``);
* Google Cloud: a Cloud Audit Log entry through Eventarc (``google.cloud.audit.log.v1.written``):
  ``protoPayload.methodName`` ``v1.compute.instances.start|stop|insert|delete|suspend|resume``
  (or ``beta.``), ``protoPayload.resourceName``, ``timestamp``; only the entry that ends the
  operation (``operation.last``) or one without an operation counts; and the system event
  ``compute.instances.preempted``;
* Azure: Event Grid resource events (``Microsoft.Resources.ResourceActionSuccess``) whose
  ``data.operationName`` is ``Microsoft.Compute/virtualMachines/start|restart|deallocate|powerOff/action``,
  ``subject`` the VM's resource id, ``eventTime``.

Anything else returns ``None`` (not a state change: ignored); a malformed event raises
:class:`~burnguard.core.errors.InputError` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from burnguard.core.errors import InputError
from burnguard.core.estimates import as_utc

State = Literal["running", "stopped"]

EC2_STATES: dict[str, State] = {"running": "running", "stopping": "stopped", "stopped": "stopped",
                                "shutting-down": "stopped", "terminated": "stopped"}
GCE_METHODS: dict[str, State] = {"start": "running", "resume": "running", "insert": "running",
                                 "stop": "stopped", "suspend": "stopped", "delete": "stopped"}
AZURE_OPERATIONS: dict[str, State] = {"start": "running", "restart": "running", "deallocate": "stopped",
                                      "poweroff": "stopped"}


@dataclass(frozen=True)
class StateChange:
    cloud: str
    instance_id: str  # as the cloud's controller names it (EC2 id, GCE ref, Azure resource id)
    state: State
    at: datetime


def _field(event: Mapping[str, Any], *path: str) -> Any:
    value: Any = event
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            raise InputError(f"state-change event lacks {'.'.join(path)}", field=".".join(path))
        value = value[key]
    return value


def _time(event: Mapping[str, Any], *path: str) -> datetime:
    at = as_utc(_field(event, *path))
    if at is None:
        raise InputError(f"{'.'.join(path)} is not an RFC 3339 time", field=".".join(path))
    return at


def from_ec2(event: Mapping[str, Any]) -> StateChange | None:
    if event.get("source") != "aws.ec2" or event.get("detail-type") != "EC2 Instance State-change Notification":
        return None
    state = EC2_STATES.get(str(_field(event, "detail", "state")))
    if state is None:  # pending: not running yet
        return None
    return StateChange("aws", str(_field(event, "detail", "instance-id")), state, _time(event, "time"))


def from_gce_audit(entry: Mapping[str, Any]) -> StateChange | None:
    payload = _field(entry, "protoPayload")
    method = str(payload.get("methodName", ""))
    if method == "compute.instances.preempted":
        state: State | None = "stopped"
    else:
        version, _, rest = method.partition(".")
        if version not in ("v1", "beta") or not rest.startswith("compute.instances."):
            return None
        state = GCE_METHODS.get(rest.removeprefix("compute.instances."))
    if state is None:
        return None
    operation = entry.get("operation")
    if isinstance(operation, Mapping) and operation and not operation.get("last"):
        return None  # the entry that begins the operation: it has not happened yet
    resource = str(_field(entry, "protoPayload", "resourceName")).strip("/")
    return StateChange("gcp", resource, state, _time(entry, "timestamp"))


def from_azure_event_grid(event: Mapping[str, Any]) -> StateChange | None:
    kind = event.get("eventType") or event.get("type")  # Event Grid schema, or CloudEvents
    if kind != "Microsoft.Resources.ResourceActionSuccess":
        return None
    operation = str(_field(event, "data", "operationName"))
    prefix = "microsoft.compute/virtualmachines/"
    if not operation.lower().startswith(prefix) or not operation.lower().endswith("/action"):
        return None
    state = AZURE_OPERATIONS.get(operation.lower()[len(prefix):-len("/action")])
    if state is None:
        return None
    subject = str(_field(event, "subject"))
    at = _time(event, "eventTime") if "eventTime" in event else _time(event, "time")
    return StateChange("azure", subject, state, at)


def parse_state_change(cloud: str, event: Mapping[str, Any]) -> StateChange | None:
    """The state change an event of ``cloud`` announces, or ``None`` if it announces none."""
    if not isinstance(event, Mapping):
        raise InputError("state-change event is not a JSON object")
    parsers = {"aws": from_ec2, "gcp": from_gce_audit, "azure": from_azure_event_grid}
    if cloud not in parsers:
        raise InputError(f"unknown cloud {cloud!r}", field="cloud")
    return parsers[cloud](event)
