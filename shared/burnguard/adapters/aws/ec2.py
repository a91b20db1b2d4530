"""EC2 as an :class:`~burnguard.ports.instances.InstanceController`: find instances by tag in the
configured regions, stop them (never terminate), start them again for resume.

* **Tag rule** (``core.tags.tag_value``): the key compared without regard to case, the value
  exactly. EC2's ``tag:<key>`` filter compares keys with case, so the server-side filter is
  the exact *value* (``tag-value``) and the key is matched here; every page is read
  (botocore's paginator, pages of 1,000), the regions at the same time.
* **GPU**: by instance family (``core.accelerators``); a family the table does not know is
  asked of ``DescribeInstanceTypes`` once per type, and its ``GpuInfo`` (manufacturer and
  name) becomes the instance's accelerator.
* **Cannot be stopped**: an instance-store-backed instance (its root volume would be lost:
  AWS only terminates it) is refused before any call; a one-time spot instance, which EC2
  refuses with ``UnsupportedOperation``, and every other refusal become an
  :class:`~burnguard.ports.instances.ActionError` with EC2's reason, per instance.
* **Throttling**: the clients use botocore's ``adaptive`` retry mode (client-side rate
  limiting on top of standard retries with backoff) unless given clients say otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from burnguard.core.accelerators import classify_instance_type
from burnguard.core.estimates import as_utc
from burnguard.core.instances import Instance
from burnguard.core.tags import tag_value
from burnguard.ports.instances import ActionError

#: Actions the controller calls (the Terraform issue checks the role against this list).
PERMISSIONS: tuple[str, ...] = (
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceTypes",
    "ec2:StopInstances",
    "ec2:StartInstances",
)
RETRY_MODE = "adaptive"
MAX_ATTEMPTS = 8
#: DescribeInstances' largest page (MaxResults): fewer round trips per listing
PAGE_SIZE = 1000
MAX_REGION_THREADS = 8
_LIVE_STATES = ["pending", "running", "stopping", "stopped"]


def default_client(region: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("ec2", region_name=region,
                        config=Config(retries={"mode": RETRY_MODE, "max_attempts": MAX_ATTEMPTS}))


@dataclass(frozen=True)
class _Facts:
    region: str
    root_device_type: str
    lifecycle: str | None  # "spot", "scheduled", "capacity-block" or None (on-demand)


class Ec2Controller:
    """``regions``: where to look; ``client_for(region)`` gives a boto3 EC2 client (default:
    one per region with adaptive retries, built when first needed)."""

    cloud = "aws"

    def __init__(self, regions: Sequence[str], client_for: Callable[[str], Any] | None = None):
        if not regions:
            raise ValueError("Ec2Controller needs at least one region")
        self.regions = list(dict.fromkeys(r.strip() for r in regions if r.strip()))
        self._client_for = client_for or default_client
        self._clients: dict[str, Any] = {}
        self._facts: dict[str, _Facts] = {}
        self._gpu_types: dict[str, tuple[str, ...]] = {}

    def client(self, region: str) -> Any:
        if region not in self._clients:
            self._clients[region] = self._client_for(region)
        return self._clients[region]

    # -- find ---------------------------------------------------------------------------------
    def find(self, key: str, value: str | None) -> list[Instance]:
        """The instances tagged ``key`` (``=value``) in every region; the regions are listed at
        the same time (boto3 clients are thread-safe), the result in the regions' order."""
        if len(self.regions) == 1:
            return self._find_in(self.regions[0], key, value)
        for region in self.regions:  # clients built here, not concurrently in the threads
            self.client(region)
        with ThreadPoolExecutor(max_workers=min(len(self.regions), MAX_REGION_THREADS),
                                thread_name_prefix="ec2-find") as pool:
            listed = list(pool.map(lambda region: self._find_in(region, key, value), self.regions))
        return [instance for instances in listed for instance in instances]

    def _find_in(self, region: str, key: str, value: str | None) -> list[Instance]:
        client = self.client(region)
        filters = [{"Name": "instance-state-name", "Values": _LIVE_STATES}]
        if value is not None:
            filters.append({"Name": "tag-value", "Values": [value]})
        raw: list[tuple[str | None, Mapping[str, Any]]] = []
        for page in client.get_paginator("describe_instances").paginate(
                Filters=filters, PaginationConfig={"PageSize": PAGE_SIZE}):
            for reservation in page.get("Reservations", []):
                for inst in reservation.get("Instances", []):
                    tags = {t["Key"]: t.get("Value", "") for t in inst.get("Tags", []) or []}
                    found = tag_value(tags, key)
                    if found is None or (value is not None and found != value):
                        continue
                    raw.append((reservation.get("OwnerId"), inst))
        self._learn_gpu_types(client, {str(i["InstanceType"]) for _o, i in raw})
        return [self._instance(region, inst, owner) for owner, inst in raw]

    def _learn_gpu_types(self, client: Any, types: Iterable[str]) -> None:
        unknown = sorted(t for t in types if t not in self._gpu_types and classify_instance_type("aws", t) is None)
        for start in range(0, len(unknown), 100):
            batch = unknown[start:start + 100]
            for page in client.get_paginator("describe_instance_types").paginate(InstanceTypes=batch):
                for info in page.get("InstanceTypes", []):
                    gpus = (info.get("GpuInfo") or {}).get("Gpus") or []
                    self._gpu_types[info["InstanceType"]] = tuple(
                        f"{g.get('Manufacturer', 'gpu')}-{g.get('Name', 'unknown')}".lower().replace(" ", "-")
                        for g in gpus)
            for t in batch:
                self._gpu_types.setdefault(t, ())

    def _instance(self, region: str, inst: Mapping[str, Any], owner: str | None = None) -> Instance:
        tags = {t["Key"]: t.get("Value", "") for t in inst.get("Tags", []) or []}
        instance_id = str(inst["InstanceId"])
        itype = str(inst["InstanceType"])
        lifecycle = inst.get("InstanceLifecycle")
        self._facts[instance_id] = _Facts(region, str(inst.get("RootDeviceType", "ebs")), lifecycle)
        return Instance(
            cloud="aws", instance_id=instance_id, name=tag_value(tags, "Name") or instance_id, location=region,
            instance_type=itype, state=str(inst.get("State", {}).get("Name", "unknown")).lower(), tags=tags,
            accelerators=self._gpu_types.get(itype, ()), spot=lifecycle == "spot",
            started_at=as_utc(inst.get("LaunchTime")),  # EC2 moves LaunchTime to each start
            account=str(owner) if owner else None,  # the reservation's owner: the CUR's usage account
        )

    # -- stop / start -------------------------------------------------------------------------
    def _region(self, instance: Instance) -> str:
        facts = self._facts.get(instance.instance_id)
        return facts.region if facts else instance.location

    def stop(self, instance: Instance) -> None:
        facts = self._facts.get(instance.instance_id)
        if facts is not None and facts.root_device_type == "instance-store":
            raise ActionError(f"{instance.instance_id} has an instance-store root volume: EC2 can only terminate it, "
                              "which burnguard never does; stop it by hand or move it to EBS")
        self._call("stop_instances", instance, "stop")

    def start(self, instance: Instance) -> None:
        self._call("start_instances", instance, "start")

    def _call(self, operation: str, instance: Instance, verb: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        region = self._region(instance)
        try:
            getattr(self.client(region), operation)(InstanceIds=[instance.instance_id])
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = error.get("Code", "Error"), error.get("Message", str(exc))
            hint = ""
            if code == "UnsupportedOperation" and instance.spot:
                hint = " (a one-time spot instance cannot be stopped; EC2 can only terminate it)"
            raise ActionError(f"could not {verb} {instance.instance_id} in {region}: {code}: {message}{hint}") from None
        except BotoCoreError as exc:
            raise ActionError(f"could not {verb} {instance.instance_id} in {region}: {exc}") from None
