"""A **fake** of the few Compute Engine REST endpoints the GCE controller calls (Compute Engine
has no emulator): ``instances.aggregatedList`` (paged), ``get``, ``stop``, ``start``,
``suspend``, ``resume`` and ``zoneOperations.get``, with the response shapes of the Compute
Engine REST reference. google-cloud-compute's real REST transport (its pager, its
``ExtendedOperation`` polling) is pointed at it. It records every request."""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from tests.emulators import QuietHandler

PAGE = 2  # instances per aggregatedList page: the pager must follow nextPageToken


def vm(project: str, zone: str, name: str, machine: str, labels: dict[str, str], *, status: str = "RUNNING",  # noqa: PLR0913 - one keyword per field a test varies
       accelerators: list[tuple[str, int]] = (), local_ssd: bool = False, spot: bool = False) -> dict[str, Any]:
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


def handler_for(fake: FakeCompute) -> type[QuietHandler]:  # noqa: C901 - one small REST server
    class Handler(QuietHandler):
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
            with fake.lock:
                fake.requests.append(("GET", self.path))
                if parts[4:] == ["aggregated", "instances"]:
                    return self._aggregated(parts[3], query)
                if len(parts) == 8 and parts[6] == "operations":
                    return self._operation(parts[7])
                if len(parts) == 8 and parts[6] == "instances":
                    inst = fake.instances.get((parts[3], parts[5], parts[7]))
                    return self._send(200, inst) if inst else self._not_found()
            return self._not_found()

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            parts = url.path.strip("/").split("/")
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with fake.lock:
                fake.requests.append(("POST", self.path))
                if len(parts) != 9 or parts[6] != "instances":
                    return self._not_found()
                project, zone, name, verb = parts[3], parts[5], parts[7], parts[8]
                if (project, zone, name) not in fake.instances:
                    return self._not_found()
                op_name = f"operation-{len(fake.operations) + 1}-{verb}"
                base = f"https://www.googleapis.com/compute/v1/projects/{project}/zones/{zone}"
                op = {"kind": "compute#operation", "id": str(len(fake.operations) + 1), "name": op_name,
                      "zone": base, "operationType": verb, "targetLink": f"{base}/instances/{name}",
                      "status": "RUNNING", "progress": 0, "selfLink": f"{base}/operations/{op_name}",
                      "_polls": 0, "_key": (project, zone, name), "_verb": verb, "_query": query}
                fake.operations[op_name] = op
                return self._send(200, self._public(op))

        def _public(self, op: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in op.items() if not k.startswith("_")}

        def _operation(self, name: str) -> None:
            op = fake.operations.get(name)
            if op is None:
                return self._not_found()
            op["_polls"] += 1
            if op["status"] != "DONE" and not fake.never_done and op["_polls"] > fake.polls_before_done:
                op["status"], op["progress"] = "DONE", 100
                if fake.fail_next:
                    op["error"] = {"errors": [{"code": "RESOURCE_NOT_READY", "message": fake.fail_next}]}
                    op["httpErrorStatusCode"], op["httpErrorMessage"] = 400, "BAD REQUEST"
                    fake.fail_next = None
                else:
                    new = {"stop": "TERMINATED", "start": "RUNNING", "suspend": "SUSPENDED", "resume": "RUNNING"}
                    fake.instances[op["_key"]]["status"] = new[op["_verb"]]
            return self._send(200, self._public(op))

        def _aggregated(self, project: str, query: dict[str, str]) -> None:
            label_filter = query.get("filter", "")
            listed = [(zone, inst) for (p, zone, _n), inst in sorted(fake.instances.items()) if p == project]
            start = int(query.get("pageToken") or 0)
            # maxResults (at most 500, as Compute Engine), and at most PAGE: fewer than asked is
            # allowed by the API, and makes the controller tests follow nextPageToken
            size = min(int(query.get("maxResults") or 500), 500, PAGE)
            page = listed[start:start + size]
            items: dict[str, Any] = {}
            for zone, inst in page:
                items.setdefault(f"zones/{zone}", {"instances": []})["instances"].append(inst)
            items["zones/asia-east1-a"] = {"warning": {"code": "NO_RESULTS_ON_PAGE", "message": "no results",
                                                       "data": [{"key": "scope", "value": "zones/asia-east1-a"}]}}
            body: dict[str, Any] = {"kind": "compute#instanceAggregatedList", "id": f"projects/{project}/aggregated/"
                                    "instances", "items": items, "_filter": label_filter}
            if start + size < len(listed):
                body["nextPageToken"] = str(start + size)
            body.pop("_filter")
            return self._send(200, body)

        def _not_found(self) -> None:
            self._send(404, {"error": {"code": 404, "message": "The resource was not found",
                                       "errors": [{"message": "not found", "domain": "global", "reason": "notFound"}]}})

    return Handler


def compute_clients(url: str) -> tuple[compute_v1.InstancesClient, compute_v1.ZoneOperationsClient]:
    """The real SDK clients (REST transport, anonymous) pointed at the fake at ``url``."""
    options = {"api_endpoint": url}
    return (compute_v1.InstancesClient(transport="rest", credentials=AnonymousCredentials(), client_options=options),
            compute_v1.ZoneOperationsClient(transport="rest", credentials=AnonymousCredentials(),
                                            client_options=options))
