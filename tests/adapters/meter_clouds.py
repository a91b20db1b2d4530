"""The three clouds' controllers for the meter's tests and benchmark: EC2 on moto's server, and
the real Compute Engine and Azure Resource Manager SDKs pointed at the FAKES of
``tests/adapters/gcp/test_compute_controller.py`` and ``tests/adapters/azure/arm_fake.py``
(those clouds have no emulator; the fakes serve the documented response shapes)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from burnguard.adapters.aws.ec2 import Ec2Controller
from burnguard.adapters.azure.vms import AzureVmController, parse_scopes
from burnguard.adapters.gcp.compute import GceController
from burnguard.ports.instances import InstanceController
from tests.emulators import http_server
from tests.fakes.arm import ArmState, FakeVm, compute_client
from tests.fakes.arm import handler_for as arm_handler
from tests.fakes.compute import FakeCompute, vm
from tests.fakes.compute import handler_for as gce_handler

AMI = "ami-12c6146b"
STARTED = "2026-12-04T18:00:00Z"
PROJECT, SUBSCRIPTION, GROUP = "ml-research-prod", "00000000-0000-0000-0000-000000000001", "gpu"


@dataclass
class Clouds:
    controllers: dict[str, InstanceController]
    gce: FakeCompute
    arm: ArmState


def launch_ec2(count: int, itype: str, tags: dict[str, str], region: str = "us-east-1") -> list[str]:
    ec2 = boto3.client("ec2", region_name=region)
    out: list[str] = []
    while len(out) < count:
        n = min(500, count - len(out))
        out += [i["InstanceId"] for i in ec2.run_instances(
            ImageId=AMI, MinCount=n, MaxCount=n, InstanceType=itype,
            TagSpecifications=[{"ResourceType": "instance",
                                "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])["Instances"]]
    return out


@contextmanager
def three_clouds(gce_vms: list[dict[str, Any]], arm_vms: list[FakeVm], *, arm_page: int = 100) -> Iterator[Clouds]:
    """Controllers of the three clouds (EC2 on the moto server the ``aws`` fixture set up)."""
    gce = FakeCompute()
    for v in gce_vms:
        gce.add(v)
    arm = ArmState(arm_vms, page_size=arm_page)
    with ExitStack() as stack:
        gurl = stack.enter_context(http_server(gce_handler(gce)))
        aurl = stack.enter_context(http_server(arm_handler(arm)))
        opts = {"api_endpoint": gurl}
        gce_ctl = GceController([PROJECT], clients=compute_v1.InstancesClient(
            transport="rest", credentials=AnonymousCredentials(), client_options=opts),
            operations=compute_v1.ZoneOperationsClient(transport="rest", credentials=AnonymousCredentials(),
                                                       client_options=opts))
        arm_ctl = AzureVmController(lambda sub: compute_client(aurl, sub), parse_scopes(f"{SUBSCRIPTION}/{GROUP}"))
        yield Clouds({"aws": Ec2Controller(["us-east-1"]), "gcp": gce_ctl, "azure": arm_ctl}, gce, arm)


def gce_vm(name: str, machine: str, labels: dict[str, str], *, status: str = "RUNNING",
           started: str = STARTED) -> dict[str, Any]:
    out = vm(PROJECT, "us-central1-a", name, machine, labels, status=status)
    out["lastStartTimestamp"] = started
    return out


def arm_vm(name: str, size: str, tags: dict[str, str], *, power: str = "running",
           changed: str = STARTED) -> FakeVm:
    return FakeVm(SUBSCRIPTION, GROUP, name, size, power=power, tags=tags, changed=changed)
