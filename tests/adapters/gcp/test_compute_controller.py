"""The Compute Engine controller, with google-cloud-compute's REST transport pointed at a FAKE:
Compute Engine has no emulator, so a local HTTP server serves the few endpoints the controller
uses (``instances.aggregatedList``, ``get``, ``stop``, ``start``, ``suspend``, ``resume``,
``zoneOperations.get``) with the response shapes of the Compute Engine REST reference. The SDK
(its pager, its ``ExtendedOperation`` polling) is the real one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from burnguard.adapters.gcp.compute import GceController, instance_ref
from burnguard.app import gcp as app_gcp
from burnguard.app.slack import ConfigurationError
from burnguard.core.instances import Instance
from burnguard.ports.instances import ActionError
from burnguard.services.pricing import ListPricedController
from tests.emulators import http_server
from tests.fakes.compute import FakeCompute, handler_for, vm


@pytest.fixture
def fake() -> Iterator[tuple[FakeCompute, Any, Any]]:
    state = FakeCompute()
    p1, p2 = "ml-research-prod", "inference-prod"
    state.add(vm(p1, "us-central1-a", "trainer-t4", "n1-standard-8", {"team": "ml-research"},
                 accelerators=[("nvidia-tesla-t4", 2)]))
    state.add(vm(p1, "us-central1-a", "trainer-a2", "a2-highgpu-1g", {"team": "ml-research"}))
    state.add(vm(p1, "us-central1-b", "ssd-box", "a3-highgpu-8g", {"team": "ml-research"}, local_ssd=True))
    state.add(vm(p1, "europe-west4-b", "web", "e2-standard-4", {"team": "ml-research"}))
    state.add(vm(p1, "europe-west4-b", "other-team", "g2-standard-4", {"team": "vision"}))
    state.add(vm(p2, "us-east1-c", "infer-g2", "g2-standard-8", {"team": "ml-research"}, spot=True,
                 status="TERMINATED"))
    state.add(vm(p2, "us-east1-c", "unlabelled", "a2-highgpu-2g", {}))
    with http_server(handler_for(state)) as url:
        client = compute_v1.InstancesClient(transport="rest", credentials=AnonymousCredentials(),
                                            client_options={"api_endpoint": url})
        operations = compute_v1.ZoneOperationsClient(transport="rest", credentials=AnonymousCredentials(),
                                                     client_options={"api_endpoint": url})
        yield state, client, operations


def controller(fake: tuple[FakeCompute, Any, Any], **kwargs: Any) -> GceController:
    return GceController(["ml-research-prod", "inference-prod"], clients=fake[1], operations=fake[2], **kwargs)


def test_find_lists_every_zone_and_page_and_recognises_gpus(fake: tuple[FakeCompute, Any, Any]) -> None:
    found = {i.name: i for i in controller(fake).find("Team", "ml-research")}
    assert set(found) == {"trainer-t4", "trainer-a2", "ssd-box", "web", "infer-g2"}
    assert {n for n, i in found.items() if i.is_gpu} == {"trainer-t4", "trainer-a2", "ssd-box", "infer-g2"}
    t4 = found["trainer-t4"]
    assert t4.accelerators == ("nvidia-tesla-t4", "nvidia-tesla-t4") and t4.instance_type == "n1-standard-8"
    assert t4.instance_id == "projects/ml-research-prod/zones/us-central1-a/instances/trainer-t4"
    assert t4.location == "us-central1-a" and t4.state == "running" and t4.tags == {"team": "ml-research"}
    assert t4.account == "ml-research-prod"  # the project: the billing export's project.id (coverage per account)
    assert found["infer-g2"].state == "stopped" and found["infer-g2"].spot
    pages = [p for m, p in fake[0].requests if "aggregated" in p]
    assert len(pages) >= 4 and any("pageToken" in p for p in pages)  # 5 + 2 instances, 2 per page
    assert all("filter=labels.team" in p.replace("%20", " ").replace("+", " ") or "labels.team" in p for p in pages)
    assert all("maxResults=500" in p for p in pages)  # the largest page; the fake answers 2 at a time
    everyone = controller(fake).find("team", None)
    assert {i.name for i in everyone} == set(found) | {"other-team"}


def test_stop_and_start_await_their_zone_operations(fake: tuple[FakeCompute, Any, Any]) -> None:
    state = fake[0]
    state.polls_before_done = 2
    ctl = controller(fake)
    [a2] = [i for i in ctl.find("team", "ml-research") if i.name == "trainer-a2"]
    ctl.stop(a2)
    assert state.instances[("ml-research-prod", "us-central1-a", "trainer-a2")]["status"] == "TERMINATED"
    polls = [p for m, p in state.requests if "/operations/" in p]
    assert len(polls) >= 3  # RUNNING, RUNNING, DONE: the stop returned only when it was done
    ctl.start(a2)
    assert state.instances[("ml-research-prod", "us-central1-a", "trainer-a2")]["status"] == "RUNNING"
    stops = [p for m, p in state.requests if m == "POST" and p.split("?")[0].endswith("/stop")]
    assert len(stops) == 1 and "discardLocalSsd" not in stops[0]


def test_local_ssd_policy_refuse_discard_or_suspend(fake: tuple[FakeCompute, Any, Any]) -> None:
    state = fake[0]
    key = ("ml-research-prod", "us-central1-b", "ssd-box")
    refusing = controller(fake)
    [box] = [i for i in refusing.find("team", "ml-research") if i.name == "ssd-box"]
    with pytest.raises(ActionError, match="local SSDs"):
        refusing.stop(box)
    assert state.instances[key]["status"] == "RUNNING" and not [r for r in state.requests if r[0] == "POST"]
    # Known from a fresh controller too (it reads the instance before stopping).
    with pytest.raises(ActionError, match="local SSDs"):
        controller(fake).stop(box)
    controller(fake, local_ssd="suspend").stop(box)
    assert state.instances[key]["status"] == "SUSPENDED"
    [suspend] = [p for m, p in state.requests if m == "POST" and "/suspend" in p]
    assert "discardLocalSsd=false" in suspend
    controller(fake).start(Instance("gcp", box.instance_id, box.name, box.location, box.instance_type, "suspended"))
    assert state.instances[key]["status"] == "RUNNING"
    controller(fake, local_ssd="discard").stop(box)
    [stop] = [p for m, p in state.requests if m == "POST" and p.split("?")[0].endswith("/stop")]
    assert "discardLocalSsd=true" in stop and state.instances[key]["status"] == "TERMINATED"


def test_failures_name_the_instance_and_the_reason(fake: tuple[FakeCompute, Any, Any]) -> None:
    state = fake[0]
    ctl = controller(fake, timeout=1.5)
    [a2] = [i for i in ctl.find("team", "ml-research") if i.name == "trainer-a2"]
    state.fail_next = "The instance is being repaired"
    with pytest.raises(ActionError, match=r"stop of trainer-a2 failed: .*being repaired"):
        ctl.stop(a2)
    state.never_done = True
    with pytest.raises(ActionError, match=r"did not finish within 1\.5 s"):
        ctl.stop(a2)
    ghost = Instance("gcp", instance_ref("ml-research-prod", "us-central1-a", "ghost"), "ghost", "us-central1-a",
                     "a2-highgpu-1g", "running")
    with pytest.raises(ActionError, match="ghost"):
        ctl.stop(ghost)
    with pytest.raises(ActionError, match="not projects/"):
        ctl.stop(Instance("gcp", "i-123", "x", "z", "a2-highgpu-1g", "running"))


def test_the_guardrail_factory_builds_the_controller_from_the_environment(fake: tuple[FakeCompute, Any, Any]) -> None:
    controllers = app_gcp.cloud_controllers({"BURNGUARD_GCP_PROJECTS": "ml-research-prod, inference-prod",
                                             "BURNGUARD_GCE_LOCAL_SSD": "discard"}, compute_clients=fake[1])
    assert set(controllers) == {"gcp"}
    assert isinstance(controllers["gcp"], ListPricedController)  # list prices: the API gives none
    gce = controllers["gcp"].inner
    gce._operations = fake[2]  # type: ignore[attr-defined]
    assert isinstance(gce, GceController) and gce.local_ssd == "discard"
    assert len(gce.find("team", "ml-research")) == 5
    with pytest.raises(ConfigurationError, match="BURNGUARD_GCE_LOCAL_SSD"):
        app_gcp.cloud_controllers({"BURNGUARD_GCP_PROJECTS": "p-123456", "BURNGUARD_GCE_LOCAL_SSD": "yolo"})
    with pytest.raises(ConfigurationError, match="BURNGUARD_GCP_PROJECTS"):
        app_gcp.cloud_controllers({"BURNGUARD_GCP_PROJECTS": "Not A Project"})
    with pytest.raises(ConfigurationError, match="BURNGUARD_AWS_REGIONS"):
        app_gcp.cloud_controllers({"BURNGUARD_AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/burnguard"})
