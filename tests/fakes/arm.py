"""A **fake** of the few Azure Resource Manager endpoints the VM controller calls (ARM has no
emulator), serving the documented response shapes (Compute REST API, virtual machines: List,
List All, Instance View, Deallocate, Start; long-running operations with
``Azure-AsyncOperation`` and ``Location``; 429 with ``Retry-After``). The real
azure-mgmt-compute client is pointed at it. It records every request, so a test can assert
what was (and was not) called."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from azure.core.credentials import AccessToken
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.mgmt.compute import ComputeManagementClient

from tests.emulators import QuietHandler

VMS = "/providers/Microsoft.Compute/virtualMachines"


@dataclass
class FakeVm:
    subscription: str
    group: str
    name: str
    size: str
    power: str = "running"  # PowerState/<power>
    tags: dict[str, str] = field(default_factory=dict)
    priority: str | None = None
    #: when the last operation (start, deallocate) ended: the ProvisioningState status's time
    changed: str = "2026-12-04T18:00:00.0000000+00:00"

    @property
    def id(self) -> str:
        return f"/subscriptions/{self.subscription}/resourceGroups/{self.group}{VMS}/{self.name}"

    def view(self) -> dict[str, Any]:
        """The instance view (``GET …/instanceView``, or ``properties.instanceView`` of a listing
        with ``$expand=instanceView``)."""
        return {"computerName": self.name, "statuses": [
            {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded",
             "time": self.changed},
            {"code": f"PowerState/{self.power}", "level": "Info", "displayStatus": f"VM {self.power}"}]}

    def body(self, *, instance_view: bool = False) -> dict[str, Any]:
        props: dict[str, Any] = {"vmId": f"vm-{self.name}", "hardwareProfile": {"vmSize": self.size},
                                 "provisioningState": "Succeeded"}
        if instance_view:
            props["instanceView"] = self.view()
        if self.priority:
            props["priority"] = self.priority
        return {"id": self.id, "name": self.name, "type": "Microsoft.Compute/virtualMachines",
                "location": "eastus", "tags": self.tags, "properties": props}


class ArmState:
    def __init__(self, vms: list[FakeVm], *, page_size: int = 10):
        self.vms = vms
        self.page_size = page_size
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self.actions: list[tuple[str, str]] = []  # (action, vm id)
        self.throttle: dict[str, int] = {}  # path prefix -> 429s still to answer
        self.fail: dict[str, tuple[int, str]] = {}  # vm name -> (status, ARM error code) for actions
        self.stuck: set[str] = set()  # vm names whose operation never finishes
        self.operations: dict[str, tuple[str, str]] = {}  # op id -> (vm name, action)

    def vm(self, group: str, name: str) -> FakeVm | None:
        return next((v for v in self.vms if v.group.lower() == group.lower() and v.name.lower() == name.lower()),
                    None)


class ArmFakeHandler(QuietHandler):
    state: ArmState

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, {"error": {"code": code, "message": message}})

    def _throttled(self, path: str) -> bool:
        for prefix, left in self.state.throttle.items():
            if path.startswith(prefix) and left > 0:
                self.state.throttle[prefix] = left - 1
                self.send_response(429)
                self.send_header("Retry-After", "1")
                self.send_header("Content-Type", "application/json")
                body = json.dumps({"error": {"code": "TooManyRequests", "message": "throttled"}}).encode()
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return True
        return False

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        with self.state.lock:
            self.state.requests.append(("GET", path))
            if self._throttled(path):
                return
            if path.startswith("/operations/"):
                return self._operation(path)
            m = re.fullmatch(r"/subscriptions/([^/]+)(?:/resourceGroups/([^/]+))?" + VMS, path, re.I)
            if m:
                sub, group = m.groups()
                vms = [v for v in self.state.vms if v.subscription == sub
                       and (group is None or v.group.lower() == group.lower())]
                start = int(query.get("skip", ["0"])[0])
                page = vms[start:start + self.state.page_size]
                expand = query.get("$expand", [""])[0] == "instanceView"
                body: dict[str, Any] = {"value": [v.body(instance_view=expand) for v in page]}
                if start + self.state.page_size < len(vms):
                    body["nextLink"] = (f"http://{self.headers['Host']}{path}?api-version="
                                        f"{query['api-version'][0]}&skip={start + self.state.page_size}"
                                        + ("&$expand=instanceView" if expand else ""))
                return self._send(200, body)
            m = re.fullmatch(r"/subscriptions/[^/]+/resourceGroups/([^/]+)" + VMS + r"/([^/]+)/instanceView", path, re.I)
            if m:
                vm = self.state.vm(*m.groups())
                if vm is None:
                    return self._error(404, "ResourceNotFound", "not found")
                return self._send(200, vm.view())
        self._error(404, "NotFound", f"the ARM fake does not serve GET {path}")

    def _operation(self, path: str) -> None:
        op = path.split("/")[2]
        name, _action = self.state.operations[op]
        if name in self.state.stuck:
            return self._send(200, {"status": "InProgress"}, {"Retry-After": "0"})
        if path.endswith("/result"):
            return self._send(200)
        return self._send(200, {"status": "Succeeded", "name": op})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        with self.state.lock:
            self.state.requests.append(("POST", path))
            if self._throttled(path):
                return
            m = re.fullmatch(r"/subscriptions/[^/]+/resourceGroups/([^/]+)" + VMS + r"/([^/]+)/([A-Za-z]+)", path,
                             re.I)
            if not m:
                return self._error(404, "NotFound", f"the ARM fake does not serve POST {path}")
            group, name, action = m.groups()
            vm = self.state.vm(group, name)
            if vm is None:
                return self._error(404, "ResourceNotFound", f"VM {name} not found")
            self.state.actions.append((action, vm.id))
            if vm.name in self.state.fail:
                status, code = self.state.fail[vm.name]
                return self._error(status, code, f"{action} refused for {name}")
            if vm.name not in self.state.stuck:
                vm.power = {"deallocate": "deallocated", "start": "running", "powerOff": "stopped"}.get(action,
                                                                                                       vm.power)
            op = f"op{len(self.state.operations)}"
            self.state.operations[op] = (vm.name, action)
            base = f"http://{self.headers['Host']}/operations/{op}"
            self._send(202, None, {"Azure-AsyncOperation": f"{base}?api-version=2024-07-01",
                                   "Location": f"{base}/result?api-version=2024-07-01", "Retry-After": "0"})

    def do_DELETE(self) -> None:
        with self.state.lock:
            self.state.requests.append(("DELETE", urlsplit(self.path).path))
        self._error(405, "NotAllowed", "the ARM fake refuses deletes")


def handler_for(state: ArmState) -> type[ArmFakeHandler]:
    return type("BoundArmFake", (ArmFakeHandler,), {"state": state})


class _Token:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("fake-arm-token", 2**31)


class _Bearer(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """Sends a bearer header over the fake's plain HTTP (the real policy insists on TLS)."""

    def on_request(self, request: Any) -> None:
        request.http_request.headers["Authorization"] = "Bearer fake-arm-token"


def compute_client(base_url: str, subscription: str) -> ComputeManagementClient:
    return ComputeManagementClient(_Token(), subscription, base_url=base_url, authentication_policy=_Bearer(),
                                   polling_interval=0, retry_total=3)
