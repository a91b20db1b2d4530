"""The meter's listing (``MeterService.scan``): the clouds are listed at the same time (each
cloud's first listing waits at a barrier for the others); one cloud failing is reported and the others still count; a value scope that a
wildcard of the same key covers is not listed twice. Controllers: the embedded mode's
inventory (a real local JSON file), one wrapped to count its calls, one refusing."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

from burnguard.adapters.local.inventory import InventoryController, InventoryFile
from burnguard.adapters.local.ledger import SqliteLedger
from burnguard.adapters.local.notifier import ConsoleNotifier
from burnguard.app.estimates_cli import load_prices
from burnguard.core.instances import Instance
from burnguard.core.policy import load_policy
from burnguard.ports.instances import ActionError, InstanceController
from burnguard.services.guardrail import GuardrailService
from burnguard.services.meter import MeterService, TickReport

POLICY = """
version: 1
slack: {channel: "#gpu"}
guardrails:
  - {name: all, scope: team=*, budget: 100000 USD, thresholds: [{at: 100%, actions: [notify]}]}
  - {name: ml, scope: Team=ml, budget: 1000 USD, thresholds: [{at: 100%, actions: [notify]}]}
  - {name: cc, scope: cost-center=42, budget: 1000 USD, thresholds: [{at: 100%, actions: [notify]}]}
"""


#: each cloud's first listing waits here for the other two: listed one after the other, the
#: barrier would break (after 10 s) and the listing fail
TOGETHER = threading.Barrier(3, timeout=10)


class Counted:
    def __init__(self, inner: InstanceController):
        self.inner, self.cloud = inner, inner.cloud
        self.calls: list[tuple[str, str | None, str]] = []

    def find(self, key: str, value: str | None) -> list[Instance]:
        self.calls.append((key, value, threading.current_thread().name))
        if len(self.calls) == 1:
            TOGETHER.wait()
        return self.inner.find(key, value)

    def stop(self, instance: Instance) -> None:
        self.inner.stop(instance)

    def start(self, instance: Instance) -> None:
        self.inner.start(instance)


class Refusing(Counted):
    def find(self, key: str, value: str | None) -> list[Instance]:
        super().find(key, value)
        raise ActionError("401 AuthenticationFailed: the federated token expired")


def test_clouds_are_listed_at_once_and_a_failing_one_is_reported(tmp_path: Path) -> None:
    seed = tmp_path / "inventory.json"
    seed.write_text(json.dumps({"instances": [
        {"cloud": "aws", "id": "i-1", "type": "p5.48xlarge", "state": "running", "tags": {"team": "ml"}},
        {"cloud": "aws", "id": "i-2", "type": "g5.xlarge", "state": "running", "tags": {"cost-center": "42"}},
        {"cloud": "aws", "id": "i-3", "type": "m5.large", "state": "running", "tags": {"team": "web"}},
        {"cloud": "gcp", "id": "projects/p/zones/us-central1-a/instances/a2", "type": "a2-highgpu-8g",
         "state": "running", "tags": {"team": "search"}},
        {"cloud": "azure", "id": "vm-1", "type": "Standard_ND96asr_v4", "state": "running", "tags": {"team": "ml"}},
    ]}))
    inventory = InventoryFile(tmp_path / "state.json", seed=seed)
    controllers = {"aws": Counted(InventoryController("aws", inventory)),
                   "gcp": Counted(InventoryController("gcp", inventory)),
                   "azure": Refusing(InventoryController("azure", inventory))}
    policy = load_policy(POLICY)
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    guardrail = GuardrailService(policy, ledger, ConsoleNotifier(stream=StringIO()), controllers, clock=lambda: now)
    meter = MeterService(policy, ledger, controllers, load_prices(), guardrail, clock=lambda: now)
    report = TickReport(now)
    found = meter.scan(report)
    ledger.close()
    # GPU instances of the two clouds that answered, each once (i-1 is in team=* and Team=ml)
    assert sorted(i.instance_id for i in found) == ["i-1", "i-2", "projects/p/zones/us-central1-a/instances/a2"]
    # the refusing cloud: one line per scope it was asked for, naming the cloud and the scope
    assert report.problems == [
        "azure: listing cost-center=42 failed: ActionError: 401 AuthenticationFailed: the federated token expired",
        "azure: listing team=* failed: ActionError: 401 AuthenticationFailed: the federated token expired"]
    for controller in controllers.values():
        # Team=ml is covered by team=* (tag keys compare without case): two listings, not three
        assert [(k, v) for k, v, _ in controller.calls] == [("cost-center", "42"), ("team", None)]
    # the three clouds met at the barrier: listed at the same time, in the meter's threads
    assert not TOGETHER.broken
    assert all(name.startswith("meter-list") for c in controllers.values() for *_, name in c.calls)
