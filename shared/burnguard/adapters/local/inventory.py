"""An instance controller over an inventory file: the embedded mode's stand-in for the clouds.

``events/inventory.json`` lists instances on all three clouds (tags, types, states, hourly
cost). The controller works on a copy of it in the state directory, so stops and starts
persist between runs of the local mode and the sample file stays as it was. It is a real
controller for the local mode, not a mock of a cloud API: the cloud controllers live in
``adapters.aws``, ``adapters.gcp`` and ``adapters.azure``.

An instance may carry ``"started_at"`` and ``"stopped_at"`` (ISO 8601 UTC): when it last started
and stopped, where the live estimate (``burnguard meter``) accrues from and to. A controller
given a clock stamps them on every stop and start.

An instance may carry ``"fail_stop": "<reason>"`` to play a stop that the cloud refuses (a
permission or state error), so the local mode can show a partial failure.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from burnguard.core.errors import BurnguardError, InputError
from burnguard.core.instances import RUNNING, Instance
from burnguard.core.tags import normalize_tags, tag_value
from burnguard.ports.instances import ActionError

STOPPED = "stopped"


class InventoryFile:
    """The inventory state (a JSON file), shared by the three clouds' controllers.

    One writer at a time, across threads and processes (``burnguard serve`` and a concurrent
    ``burnguard ingest``): every change takes an exclusive lock on ``<file>.lock``, reads the
    file fresh, changes it and replaces it atomically. Reads are always fresh too, so nothing
    ever writes back a stale copy. A missing file is an error (never an empty inventory).
    """

    def __init__(self, path: str | Path, *, seed: str | Path | None = None, replace: bool = False):
        """``seed``: the file to start from when the state file does not exist yet (or always,
        with ``replace``: the user gave a new inventory). A seed that does not exist is an error."""
        self.path = Path(path)
        if seed is not None and not Path(seed).is_file():
            raise InputError("inventory file not found", file=str(seed))
        if seed is not None and (replace or not self.path.exists()):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._locked():
                tmp = self.path.with_name(self.path.name + ".tmp")
                shutil.copyfile(seed, tmp)
                tmp.replace(self.path)
        if not self.path.exists():
            raise InputError("inventory file not found", file=str(self.path))
        self._lock = threading.Lock()
        #: entries that cannot be read (named, skipped; the others go on), from the last read
        self.problems: list[str] = []
        self._load()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.path.with_name(self.path.name + ".lock"), "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            raise InputError("inventory file not found", file=str(self.path)) from None
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"inventory is not readable JSON ({exc})", file=str(self.path)) from None
        if not isinstance(data, dict) or not isinstance(data.get("instances"), list):
            raise InputError("inventory must be an object with an 'instances' list", file=str(self.path),
                             field="instances")
        problems = []
        for i, raw in enumerate(data["instances"]):
            why = _problem(raw)
            if why is not None:
                problems.append(f"{self.path}: instances[{i}]: {why}")
        self.problems = problems
        return data

    def instances(self, cloud: str) -> list[Instance]:
        """The readable instances of ``cloud``, read fresh (unreadable entries are skipped and
        listed in :attr:`problems`)."""
        with self._lock:
            data = self._load()
        return [_instance(raw) for raw in data["instances"] if _problem(raw) is None and raw["cloud"] == cloud]

    def raw(self, cloud: str, instance_id: str) -> dict[str, Any]:
        with self._lock:
            return _find(self._load(), cloud, instance_id)

    def set_state(self, cloud: str, instance_id: str, state: str, at: datetime | None = None) -> None:
        """Set the state; with ``at``, stamp ``started_at`` (running) or ``stopped_at`` (stopped)."""
        with self._lock, self._locked():
            data = self._load()
            raw = _find(data, cloud, instance_id)
            if at is not None and raw["state"] != state:
                raw["started_at" if state == RUNNING else "stopped_at"] = _iso(at)
            raw["state"] = state
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(data, indent=2) + "\n")
            tmp.replace(self.path)


def _find(data: dict[str, Any], cloud: str, instance_id: str) -> dict[str, Any]:
    for raw in data["instances"]:
        if isinstance(raw, dict) and raw.get("cloud") == cloud and raw.get("id") == instance_id:
            return raw
    raise ActionError(f"{cloud} instance {instance_id} does not exist")


def _problem(raw: Any) -> str | None:
    """Why an inventory entry cannot be used as an instance, or None."""
    if not isinstance(raw, dict):
        return "not an object"
    for key in ("cloud", "id", "type", "state"):
        if not isinstance(raw.get(key), str):
            return f"lacks {key!r}"
    if not isinstance(raw.get("tags", {}), dict):
        return "'tags' is not an object"
    try:
        _instance(raw)
    except (ValueError, TypeError, ArithmeticError, BurnguardError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(raw: dict[str, Any], key: str) -> datetime | None:
    """An ISO 8601 time of the entry (naive means UTC); a bad one is the entry's problem."""
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key!r} is not an ISO 8601 time")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _cost(raw: dict[str, Any]) -> Decimal | None:
    """The hourly cost, or None when absent or not a number (it only orders stops; an instance
    whose cost is unreadable is still stopped, last)."""
    cost = raw.get("hourly_cost")
    if cost is None or isinstance(cost, bool):
        return None
    try:
        value = Decimal(str(cost))
    except ArithmeticError:
        return None
    return value if value.is_finite() else None


def _instance(raw: dict[str, Any]) -> Instance:
    cost = _cost(raw)
    currency = raw.get("currency")
    return Instance(
        cloud=raw["cloud"], instance_id=raw["id"], name=str(raw.get("name", "")), location=str(raw.get("location", "")),
        instance_type=raw["type"], state=raw["state"], tags=normalize_tags(raw["cloud"], raw.get("tags", {})),
        accelerators=tuple(raw.get("accelerators", ())), spot=bool(raw.get("spot", False)),
        hourly_cost=cost, currency=currency if isinstance(currency, str) and cost is not None else None,
        started_at=_time(raw, "started_at"), stopped_at=_time(raw, "stopped_at"),
        account=str(raw["account"]) if raw.get("account") else None,
    )


@dataclass
class InventoryController:
    """:class:`~burnguard.ports.instances.InstanceController` of one cloud over an :class:`InventoryFile`."""

    cloud: str
    inventory: InventoryFile
    #: stamps start and stop times (``None``: the state alone changes)
    clock: Callable[[], datetime] | None = None

    def find(self, key: str, value: str | None) -> list[Instance]:
        out = []
        for inst in self.inventory.instances(self.cloud):
            found = tag_value(inst.tags, key)
            if found is not None and (value is None or found == value):
                out.append(inst)
        return out

    def stop(self, instance: Instance) -> None:
        raw = self.inventory.raw(self.cloud, instance.instance_id)
        if raw.get("fail_stop"):
            raise ActionError(str(raw["fail_stop"]))
        if raw["state"] == "terminated":
            raise ActionError("instance is terminated")
        self._set(instance, STOPPED)

    def start(self, instance: Instance) -> None:
        raw = self.inventory.raw(self.cloud, instance.instance_id)
        if raw["state"] not in (STOPPED, RUNNING):
            raise ActionError(f"instance is {raw['state']}")
        self._set(instance, RUNNING)

    def _set(self, instance: Instance, state: str) -> None:
        if self.clock is None:  # the state alone (as inventories written before start/stop times)
            self.inventory.set_state(self.cloud, instance.instance_id, state)
        else:
            self.inventory.set_state(self.cloud, instance.instance_id, state, self.clock())
