"""The Compute Engine controller, with google-cloud-compute's REST transport pointed at a FAKE:
Compute Engine has no emulator, so a local HTTP server serves the few endpoints the controller
uses (``instances.aggregatedList``, ``get``, ``stop``, ``start``, ``suspend``, ``resume``,
``zoneOperations.get``) with the response shapes of the Compute Engine REST reference. The SDK
(its pager, its ``ExtendedOperation`` polling) is the real one."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from burnguard.adapters.gcp.compute import GceController, instance_ref
from burnguard.app import gcp as app_gcp
from burnguard.app.slack import ConfigurationError
from burnguard.core.instances import Instance
from burnguard.ports.instances import ActionError
from tests.emulators import QuietHandler, http_server

PAGE = 2  # instances per aggregatedList page: the pager must follow nextPageToken


def vm(project: str, zone: str, name: str, machine: str, labels: dict[str, str], *, status: str = "RUNNING",
       accelerators: list[tuple[str, int]] = (), **flags: bool) -> dict[str, Any]:
    """An instance resource; flags: local_ssd (a SCRATCH disk), spot (provisioning model SPOT)."""
    assert set(flags) <= {"local_ssd", "spot"}, flags
    local_ssd, spot = flags.get("local_ssd", False), flags.get("spot", False)
    base = f"https://www.googleapis.com/compute/v1/projects/{project}/zones/{zone}"
    disks = [{"type": "PERSISTENT", "boot": True, "deviceName": "boot"}]
    if local_ssd:
        disks.append({"type": "SCRATCH", "interface": "NVME", "deviceName": "local-ssd-0"})
    return {"kind": "compute#instance", "id": str(abs(hash(name)) % 10**18), "name": name,
            "zone": base, "machineType": f"{base}/machineTypes/{machine}", "status": status, "labels": labels,
            "guestAccelerators": [{"acceleratorType": f"{base}/acceleratorTypes/{t}", "acceleratorCount": n}
                                  for t, n in accelerators],
            "disks": disks, "scheduling": {"provisioningModel": "SPOT" if spot else "STANDARD", "preemptible": False},
            "selfLink": f"{base}/instances/{name}"}


class FakeCompute:
    """State of the fake: instances by (project, zone, name), operations, requests seen."""

    def __init__(self) -> None:
        self.instances: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.operations: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.polls_before_done = 1
        self.fail_next: str | None = None
        self.never_done = False
        self.lock = threading.Lock()

    def add(self, instance: dict[str, Any]) -> None:
        project = instance["zone"].split("/projects/")[1].split("/")[0]
        self.instances[(project, instance["zone"].rsplit("/", 1)[-1], instance["name"])] = instance


class ComputeHandler(QuietHandler):
    """The Compute Engine FAKE's HTTP side: the documented response shapes of instances,
    aggregatedList and zone operations, over the state of ``fake``."""

    fake: FakeCompute

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")  # compute v1 projects P ...
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self.fake.lock:
            self.fake.requests.append(("GET", self.path))
            if parts[4:] == ["aggregated", "instances"]:
                return self._aggregated(parts[3], query)
            if len(parts) == 8 and parts[6] == "operations":
                return self._operation(parts[7])
            if len(parts) == 8 and parts[6] == "instances":
                inst = self.fake.instances.get((parts[3], parts[5], parts[7]))
                return self._send(200, inst) if inst else self._not_found()
        return self._not_found()

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.fake.lock:
            self.fake.requests.append(("POST", self.path))
            if len(parts) != 9 or parts[6] != "instances":
                return self._not_found()
            project, zone, name, verb = parts[3], parts[5], parts[7], parts[8]
            if (project, zone, name) not in self.fake.instances:
                return self._not_found()
            op_name = f"operation-{len(self.fake.operations) + 1}-{verb}"
            base = f"https://www.googleapis.com/compute/v1/projects/{project}/zones/{zone}"
            op = {"kind": "compute#operation", "id": str(len(self.fake.operations) + 1), "name": op_name,
                  "zone": base, "operationType": verb, "targetLink": f"{base}/instances/{name}",
                  "status": "RUNNING", "progress": 0, "selfLink": f"{base}/operations/{op_name}",
                  "_polls": 0, "_key": (project, zone, name), "_verb": verb, "_query": query}
            self.fake.operations[op_name] = op
            return self._send(200, self._public(op))

    def _public(self, op: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in op.items() if not k.startswith("_")}

    def _operation(self, name: str) -> None:
        op = self.fake.operations.get(name)
        if op is None:
            return self._not_found()
        op["_polls"] += 1
        if op["status"] != "DONE" and not self.fake.never_done and op["_polls"] > self.fake.polls_before_done:
            op["status"], op["progress"] = "DONE", 100
            if self.fake.fail_next:
                op["error"] = {"errors": [{"code": "RESOURCE_NOT_READY", "message": self.fake.fail_next}]}
                op["httpErrorStatusCode"], op["httpErrorMessage"] = 400, "BAD REQUEST"
                self.fake.fail_next = None
            else:
                new = {"stop": "TERMINATED", "start": "RUNNING", "suspend": "SUSPENDED", "resume": "RUNNING"}
                self.fake.instances[op["_key"]]["status"] = new[op["_verb"]]
        return self._send(200, self._public(op))

    def _aggregated(self, project: str, query: dict[str, str]) -> None:
        label_filter = query.get("filter", "")
        listed = [(zone, inst) for (p, zone, _n), inst in sorted(self.fake.instances.items()) if p == project]
        start = int(query.get("pageToken") or 0)
        page = listed[start:start + PAGE]
        items: dict[str, Any] = {}
        for zone, inst in page:
            items.setdefault(f"zones/{zone}", {"instances": []})["instances"].append(inst)
        items["zones/asia-east1-a"] = {"warning": {"code": "NO_RESULTS_ON_PAGE", "message": "no results",
                                                   "data": [{"key": "scope", "value": "zones/asia-east1-a"}]}}
        body: dict[str, Any] = {"kind": "compute#instanceAggregatedList", "id": f"projects/{project}/aggregated/"
                                "instances", "items": items, "_filter": label_filter}
        if start + PAGE < len(listed):
            body["nextPageToken"] = str(start + PAGE)
        body.pop("_filter")
        return self._send(200, body)

    def _not_found(self) -> None:
        self._send(404, {"error": {"code": 404, "message": "The resource was not found",
                                   "errors": [{"message": "not found", "domain": "global", "reason": "notFound"}]}})


def handler_for(fake: FakeCompute) -> type[QuietHandler]:
    return type("Handler", (ComputeHandler,), {"fake": fake})


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
    assert found["infer-g2"].state == "stopped" and found["infer-g2"].spot
    pages = [p for m, p in fake[0].requests if "aggregated" in p]
    assert len(pages) >= 4 and any("pageToken" in p for p in pages)  # 5 + 2 instances, 2 per page
    assert all("filter=labels.team" in p.replace("%20", " ").replace("+", " ") or "labels.team" in p for p in pages)
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
    controllers["gcp"]._operations = fake[2]  # type: ignore[attr-defined]
    assert set(controllers) == {"gcp"}
    gce = controllers["gcp"]
    assert isinstance(gce, GceController) and gce.local_ssd == "discard"
    assert len(gce.find("team", "ml-research")) == 5
    with pytest.raises(ConfigurationError, match="BURNGUARD_GCE_LOCAL_SSD"):
        app_gcp.cloud_controllers({"BURNGUARD_GCP_PROJECTS": "p-123456", "BURNGUARD_GCE_LOCAL_SSD": "yolo"})
    with pytest.raises(ConfigurationError, match="BURNGUARD_GCP_PROJECTS"):
        app_gcp.cloud_controllers({"BURNGUARD_GCP_PROJECTS": "Not A Project"})
    with pytest.raises(ConfigurationError, match="BURNGUARD_AWS_REGIONS"):
        app_gcp.cloud_controllers({"BURNGUARD_AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/burnguard"})
