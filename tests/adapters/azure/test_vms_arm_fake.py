"""The Azure VM controller: the real azure-mgmt-compute client against an ARM **fake**
(``arm_fake.py``: ARM has no emulator). 120 VMs in three resource groups of two
subscriptions; the guardrail's own selection rules decide, the controller deallocates: only
the tagged, running (or powered-off but still allocated), unprotected GPU VMs are
deallocated; nothing is powered off alone or deleted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from burnguard.adapters.azure.vms import PERMISSIONS, AzureVmController, Scope, parse_scopes
from burnguard.core.errors import InputError
from burnguard.core.ledger import Scope as TagScope
from burnguard.core.policy import Safety
from burnguard.ports.instances import ActionError
from burnguard.rules.actions import select_for_stop
from tests.emulators import http_server
from tests.fakes.arm import ArmState, FakeVm, compute_client, handler_for

SUB1 = "0b1f6471-1bf0-4dda-aec3-111111111111"
SUB2 = "0b1f6471-1bf0-4dda-aec3-222222222222"
GROUPS = [(SUB1, "rg-train"), (SUB1, "rg-serve"), (SUB2, "rg-lab")]
GPU_SIZES = ["Standard_NC24ads_A100_v4", "Standard_ND96isr_H100_v5", "Standard_NV36ads_A10_v5", "Standard_NC6s_v3",
             "Standard_NC4as_T4_v3", "Standard_ND40rs_v2", "Standard_NV12s_v3"]
CPU_SIZES = ["Standard_D4s_v5", "Standard_E8s_v5", "Standard_F16s_v2"]
TEAM = {"team": "ml-research"}
PROTECT = {"burnguard:protect": "true"}


def fleet() -> tuple[list[FakeVm], set[str]]:
    """120 VMs, 40 per group, in ten kinds; and, written down by hand per kind, which must be
    deallocated (the oracle: never computed by burnguard)."""
    vms: list[FakeVm] = []
    expected: set[str] = set()
    kinds = [
        # (name, size picker, power, tags, priority, deallocate?)
        ("gpu", lambda i: GPU_SIZES[i % len(GPU_SIZES)], "running", TEAM, None, True),
        ("gpuoff", lambda i: GPU_SIZES[i % len(GPU_SIZES)], "stopped", TEAM, None, True),  # allocated: billed
        ("spot", lambda i: GPU_SIZES[i % len(GPU_SIZES)], "running", {"Team": "ml-research"}, "Spot", True),
        ("prot", lambda i: GPU_SIZES[i % len(GPU_SIZES)], "running", {**TEAM, **PROTECT}, None, False),
        ("cpu", lambda i: CPU_SIZES[i % len(CPU_SIZES)], "running", TEAM, None, False),
        ("dealloc", lambda i: GPU_SIZES[i % len(GPU_SIZES)], "deallocated", TEAM, None, False),
        ("starting", lambda i: GPU_SIZES[i % len(GPU_SIZES)], "starting", TEAM, None, False),
        ("untagged", lambda i: GPU_SIZES[i % len(GPU_SIZES)], "running", {}, None, False),
        ("web", lambda i: GPU_SIZES[i % len(GPU_SIZES)], "running", {"team": "web"}, None, False),
        ("protfalse", lambda i: GPU_SIZES[i % len(GPU_SIZES)], "running", {**TEAM, "burnguard:protect": "false"},
         None, True),
    ]
    n = 0
    for sub, group in GROUPS:
        for k in range(40):
            name, size, power, tags, priority, stop = kinds[k % len(kinds)]
            vm = FakeVm(sub, group, f"{name}-{group}-{k:02d}", size(n), power, dict(tags), priority)
            vms.append(vm)
            if stop:
                expected.add(vm.id)
            n += 1
    return vms, expected


@pytest.fixture
def arm() -> Iterator[tuple[ArmState, str]]:
    vms, _ = fleet()
    state = ArmState(vms, page_size=7)
    with http_server(handler_for(state)) as url:
        yield state, url


def controller(url: str, scopes: str, **kwargs: float) -> AzureVmController:
    return AzureVmController(lambda sub: compute_client(url, sub), parse_scopes(scopes), **kwargs)


def test_only_the_right_vms_of_120_are_deallocated(arm: tuple[ArmState, str]) -> None:
    state, url = arm
    _, expected = fleet()
    ctl = controller(url, f"{SUB1}/rg-train,{SUB1}/rg-serve,{SUB2}")
    found = ctl.find("team", "ml-research")
    assert len(found) == 3 * 32  # every VM tagged team=ml-research (any key case), from every page
    assert {i.location for i in found} == {"rg-train", "rg-serve", "rg-lab"}
    selection = select_for_stop(found, TagScope("team", "ml-research"), Safety(dry_run=False), budget=1000)
    for instance in selection.stop:
        ctl.stop(instance)
    assert {vm_id for _, vm_id in state.actions} == expected
    assert {action for action, _ in state.actions} == {"deallocate"}  # never powerOff, never delete
    assert not [r for r in state.requests if r[0] == "DELETE"]
    assert {v.id for v in state.vms if v.power == "deallocated"} == expected | {
        v.id for v in state.vms if v.name.startswith("dealloc-")}
    # the listing went through every page (page size 7) of both listing calls
    lists = [p for m, p in state.requests if m == "GET" and p.endswith("virtualMachines")]
    assert len(lists) == 2 * 6 + 6  # 40 per group: 6 pages each; SUB2 listed subscription-wide


def test_instances_are_described_from_arm(arm: tuple[ArmState, str]) -> None:
    _state, url = arm
    found = {i.name: i for i in controller(url, f"{SUB2}/rg-lab").find("team", None)}
    spot = found["spot-rg-lab-02"]
    assert spot.cloud == "azure" and spot.spot and spot.state == "running" and spot.is_gpu
    assert spot.instance_id == f"/subscriptions/{SUB2}/resourceGroups/rg-lab/providers/Microsoft.Compute/" \
                               "virtualMachines/spot-rg-lab-02"
    assert spot.account == SUB2  # the subscription: the cost export's SubscriptionId (coverage per account)
    # its region (priced there) apart from its resource group (the stop call's location)
    assert (spot.location, spot.region, spot.price_location) == ("rg-lab", "eastus", "eastus")
    assert found["dealloc-rg-lab-05"].state == "stopped" and found["starting-rg-lab-06"].state == "pending"
    assert found["gpuoff-rg-lab-01"].state == "running"  # powered off but allocated: still billed
    assert not found["cpu-rg-lab-04"].is_gpu
    # sizes the SDK knows come back as an Enum: the instance type is the plain ARM name
    assert {i.instance_type for i in found.values()} <= set(GPU_SIZES) | set(CPU_SIZES)
    assert "web-rg-lab-08" in found and "untagged-rg-lab-07" not in found


def test_start_and_failures(arm: tuple[ArmState, str]) -> None:
    state, url = arm
    ctl = controller(url, f"{SUB1}/rg-train", timeout=2)
    by_name = {i.name: i for i in ctl.find("team", None)}
    ctl.start(by_name["dealloc-rg-train-05"])
    assert state.vm("rg-train", "dealloc-rg-train-05").power == "running"  # type: ignore[union-attr]
    state.fail["gpu-rg-train-10"] = (409, "OperationNotAllowed")
    with pytest.raises(ActionError, match=r"deallocate of gpu-rg-train-10 .*409 OperationNotAllowed"):
        ctl.stop(by_name["gpu-rg-train-10"])
    state.stuck.add("gpu-rg-train-20")
    with pytest.raises(ActionError, match="still in progress after 2 s"):
        ctl.stop(by_name["gpu-rg-train-20"])


def test_throttling_is_honoured(arm: tuple[ArmState, str]) -> None:
    state, url = arm
    prefix = f"/subscriptions/{SUB1}/resourceGroups/rg-serve/providers/Microsoft.Compute/virtualMachines"
    state.throttle[prefix] = 2  # the first two listing calls answer 429 with Retry-After: 1
    found = controller(url, f"{SUB1}/rg-serve").find("team", "ml-research")
    assert len(found) == 32 and state.throttle[prefix] == 0
    state.throttle[prefix] = 50  # throttled beyond the client's retries: one clear error
    with pytest.raises(ActionError, match=r"cannot list the VMs of resource group rg-serve .*429"):
        controller(url, f"{SUB1}/rg-serve").find("team", None)


def test_scopes_and_permissions() -> None:
    assert parse_scopes(f" {SUB1}/rg-a , {SUB2} ") == [Scope(SUB1, "rg-a"), Scope(SUB2)]
    with pytest.raises(InputError, match="BURNGUARD_AZURE_SCOPES"):
        parse_scopes(f"{SUB1}/rg/extra")
    with pytest.raises(InputError, match="no subscription"):
        parse_scopes(" , ")
    assert "Microsoft.Compute/virtualMachines/deallocate/action" in PERMISSIONS
    assert not [p for p in PERMISSIONS if "delete" in p.lower() or "powerOff" in p]


def test_the_guardrail_wiring_from_the_environment(arm: tuple[ArmState, str]) -> None:
    from burnguard.app import azure as azure_app
    from tests.fakes.arm import _Bearer, _Token

    _state, url = arm
    env = {azure_app.AZURE_TENANT: "72f988bf-0000-4000-8000-000000000001",
           azure_app.AZURE_CLIENT: "0d7a1c3e-0000-4000-8000-000000000002", azure_app.AZURE_SCOPES: f"{SUB2}/rg-lab"}
    ctl = azure_app.vm_controller(env, _Token(), base_url=url, authentication_policy=_Bearer(), polling_interval=0)
    assert ctl.cloud == "azure" and len(ctl.find("team", "ml-research")) == 32
    # without a credential: Entra federation with a Google ID token (nothing is called until used)
    assert type(azure_app.vm_controller(env)._factory(SUB2)._config.credential).__name__ == \
        "ClientAssertionCredential"
    assert azure_app.vm_controller({}) is None
    with pytest.raises(azure_app.ConfigurationError, match=azure_app.AZURE_CLIENT):
        azure_app.vm_controller({k: v for k, v in env.items() if k != azure_app.AZURE_CLIENT})
    with pytest.raises(azure_app.ConfigurationError, match=azure_app.AZURE_SCOPES):
        azure_app.vm_controller({**env, azure_app.AZURE_SCOPES: "a/b/c"})
