"""An instance controller over an inventory file: the embedded mode's stand-in for the clouds.

``events/inventory.json`` lists instances on all three clouds (tags, types, states, hourly
cost). The controller works on a copy of it in the state directory, so stops and starts
persist between runs of the local mode and the sample file stays as it was. It is a real
controller for the local mode, not a mock of a cloud API: the cloud controllers live in
``adapters.aws``, ``adapters.gcp`` and ``adapters.azure``.

An instance may carry ``"fail_stop": "<reason>"`` to play a stop that the cloud refuses (a
permission or state error), so the local mode can show a partial failure.
"""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from burnguard.core.errors import InputError
from burnguard.core.instances import RUNNING, Instance
from burnguard.core.tags import normalize_tags, tag_value
from burnguard.ports.instances import ActionError

STOPPED = "stopped"


class InventoryFile:
    """The inventory state (a JSON file), shared by the three clouds' controllers."""

    def __init__(self, path: str | Path, *, seed: str | Path | None = None):
        self.path = Path(path)
        if not self.path.exists():
            if seed is None:
                raise InputError("inventory file not found", file=str(self.path))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(seed, self.path)
        self._lock = threading.Lock()
        self._data = self._load()

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"inventory is not readable JSON ({exc})", file=str(self.path)) from None
        if not isinstance(data, dict) or not isinstance(data.get("instances"), list):
            raise InputError("inventory must be an object with an 'instances' list", file=str(self.path),
                             field="instances")
        for i, raw in enumerate(data["instances"]):
            for key in ("cloud", "id", "type", "state"):
                if not isinstance(raw.get(key), str):
                    raise InputError(f"instance {i} lacks {key!r}", file=str(self.path), field=f"instances[{i}].{key}")
        return data

    def instances(self, cloud: str) -> list[Instance]:
        with self._lock:
            return [_instance(raw) for raw in self._data["instances"] if raw["cloud"] == cloud]

    def raw(self, cloud: str, instance_id: str) -> dict[str, Any]:
        for raw in self._data["instances"]:
            if raw["cloud"] == cloud and raw["id"] == instance_id:
                return raw  # type: ignore[no-any-return]
        raise ActionError(f"{cloud} instance {instance_id} does not exist")

    def set_state(self, cloud: str, instance_id: str, state: str) -> None:
        with self._lock:
            self.raw(cloud, instance_id)["state"] = state
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._data, indent=2) + "\n")
            tmp.replace(self.path)


def _instance(raw: dict[str, Any]) -> Instance:
    cost = raw.get("hourly_cost")
    return Instance(
        cloud=raw["cloud"], instance_id=raw["id"], name=raw.get("name", ""), location=raw.get("location", ""),
        instance_type=raw["type"], state=raw["state"], tags=normalize_tags(raw["cloud"], raw.get("tags", {})),
        accelerators=tuple(raw.get("accelerators", ())), spot=bool(raw.get("spot", False)),
        hourly_cost=Decimal(str(cost)) if cost is not None else None, currency=raw.get("currency"),
    )


@dataclass
class InventoryController:
    """:class:`~burnguard.ports.instances.InstanceController` of one cloud over an :class:`InventoryFile`."""

    cloud: str
    inventory: InventoryFile

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
        self.inventory.set_state(self.cloud, instance.instance_id, STOPPED)

    def start(self, instance: Instance) -> None:
        raw = self.inventory.raw(self.cloud, instance.instance_id)
        if raw["state"] not in (STOPPED, RUNNING):
            raise ActionError(f"instance is {raw['state']}")
        self.inventory.set_state(self.cloud, instance.instance_id, RUNNING)
