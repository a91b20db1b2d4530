"""How many ``meter`` documents one meter tick reads on the Firestore ledger (the emulator).

A tick reads every instance's document in ``record_readings`` (its transactions), then answers
the guardrail's evaluation and the projections of every budget guardrail counting estimates.
Those questions are answered from one read made for the tick
(:meth:`~burnguard.ports.ledger.EstimateLog.tick_snapshot`), so a tick reads each document at
most twice, whatever the number of guardrails.

The counting is done by :class:`~tests.adapters.gcp.read_spy.ReadSpy`, a SPY around the real ``google.cloud.firestore``
client: every call still goes to the emulator; it only counts the documents of the watched
collections that the reads hand back (queries, ``get_all``, transactional reads). Oracles are
the test's own numbers of instances and guardrails.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from google.cloud import firestore as gcf

from burnguard.adapters.gcp.firestore import FirestoreLedger
from burnguard.adapters.local.inventory import InventoryController, InventoryFile
from burnguard.adapters.local.notifier import ConsoleNotifier
from burnguard.app.estimates_cli import load_prices
from burnguard.core.policy import load_policy
from burnguard.ports.instances import InstanceController
from burnguard.services.guardrail import GuardrailService
from burnguard.services.meter import MeterService, project
from tests.adapters.gcp.read_spy import ReadSpy

pytestmark = pytest.mark.emulator

PREFIX = "reads_"
START = datetime(2026, 12, 4, 18, tzinfo=UTC)
INSTANCES = 5


def policy_text(guardrails: int, *, budget: str = "100000 USD", stop: bool = False) -> str:
    """``guardrails`` budget guardrails counting estimates (the default basis), over the fleet."""
    scopes = ["team=ml", "team=*", "project=*", "team=ml", "project=llm"]
    actions = "[notify, stop]" if stop else "[notify]"
    rails = "\n".join(f"  - {{name: g{i}, scope: {scopes[i]}, budget: {budget}, basis: billed+estimated,"
                      f" thresholds: [{{at: 50%, actions: [notify]}}, {{at: 100%, actions: {actions}}}]}}"
                      for i in range(guardrails))
    return f'version: 1\nsafety: {{dry_run: false, max_stops_per_run: 20}}\nslack: {{channel: "#gpu"}}\n' \
           f"guardrails:\n{rails}\n"


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def fleet(tmp_path: Path) -> InventoryFile:
    instances = [{"cloud": "aws", "id": f"i-{n:04d}", "name": f"n{n}", "location": "us-east-1a",
                  "type": "p4d.24xlarge", "state": "running", "tags": {"team": "ml", "project": "llm"},
                  "started_at": (START - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")}
                 for n in range(INSTANCES)]
    (tmp_path / "seed.json").write_text(json.dumps({"instances": instances}))
    return InventoryFile(tmp_path / "state.json", seed=tmp_path / "seed.json")


def meter_on(tmp_path: Path, firestore: Any, policy: str) -> tuple[MeterService, ReadSpy, FirestoreLedger, Clock]:
    spy = ReadSpy(gcf.Client(project=firestore.project), f"{PREFIX}meter", f"{PREFIX}current")
    ledger = FirestoreLedger(spy, prefix=PREFIX)
    clock = Clock(START)
    controllers: dict[str, InstanceController] = {"aws": InventoryController("aws", fleet(tmp_path), clock=clock)}
    pol = load_policy(policy)
    guardrail = GuardrailService(pol, ledger, ConsoleNotifier(stream=StringIO()), controllers, clock=clock)
    guardrail.estimates = ledger
    return MeterService(pol, ledger, controllers, load_prices(), guardrail, clock=clock), spy, ledger, clock


@pytest.mark.parametrize("guardrails", [1, 3])
def test_a_tick_reads_each_meter_document_at_most_twice_whatever_the_guardrails(
        tmp_path: Path, firestore: Any, guardrails: int) -> None:
    meter, spy, ledger, clock = meter_on(tmp_path, firestore, policy_text(guardrails))
    try:
        first = meter.tick()  # the first reading: accrues the two hours since the start
        assert first.read == INSTANCES and first.accrued
        clock.at += timedelta(minutes=5)
        spy.reads.clear()
        report = meter.tick()  # a steady tick
        assert report.read == INSTANCES and report.accrued and len(report.projections) >= guardrails
        meter_reads = spy.reads[f"{PREFIX}meter"]
        # record_readings reads each document once; every question after it, one read in all
        print(f"{guardrails} guardrail(s): {meter_reads / INSTANCES:g} meter reads per instance per tick")
        assert meter_reads <= 2 * INSTANCES, f"{meter_reads} meter reads for {INSTANCES} instances"
        # the same projections asked outside a tick: each question reads afresh (as before),
        # two per guardrail (the estimated spend, the running rate), and they answer the same
        spy.reads.clear()
        assert project(meter.policy, ledger, clock.at) == report.projections
        assert spy.reads[f"{PREFIX}meter"] == 2 * guardrails * INSTANCES
    finally:
        ledger.close()


def test_the_projections_after_a_stop_are_those_read_afresh(tmp_path: Path, firestore: Any) -> None:
    """The guardrail stops the fleet during the tick (writes stops, audit, effects: no meter
    document); the tick's projections, answered from its snapshot, are what the ledger answers
    afresh after the tick."""
    meter, _spy, ledger, clock = meter_on(tmp_path, firestore, policy_text(2, budget="100 USD", stop=True))
    try:
        report = meter.tick()  # 5 × 2 h × p4d's list price: far past 100 USD
        assert sum(len(r.stopped) for r in report.reports) == INSTANCES
        assert report.projections == project(meter.policy, ledger, clock.at)
    finally:
        ledger.close()
