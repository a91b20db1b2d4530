"""Benchmark: the meter documents one tick reads on the Firestore ledger, and the tick's time,
with the tick's snapshot (``EstimateLog.tick_snapshot``) and without it, in the same run.
Prints a table, then one JSON line; not a test. Usage::

    python -m tests.bench.bench_meter_reads                     # 2,000 instances, 1 and 3 guardrails
    python -m tests.bench.bench_meter_reads --instances 500 --repeat 5

It starts the Firestore emulator itself and stops it by PID. The instances are in the embedded
inventory (a local file: listing costs nothing here, the ledger is what is measured), all
running GPU instances tagged ``team=t<k>``; the policy has 1 or 3 budget guardrails counting
estimates (``team=*``, ``project=*``, ``team=t0``), far from their budgets. The reads are
counted by the SPY around the real client (``tests/adapters/gcp/read_spy.py``).

Baseline, same run, same code: the ledger with ``tick_snapshot`` a context that does nothing,
so every question of the tick reads the meter documents afresh, as the meter did before the
snapshot (outside a snapshot the questions' code is unchanged). The two modes alternate,
tick by tick, on fresh ledgers (the machine is shared); the fastest steady tick of each is shown.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

from tests.bench.bench_meter import Phases

GUARDRAILS = ["team=*", "project=*", "team=t0"]


def policy(guardrails: int) -> str:
    rails = "\n".join(f"  - {{name: g{i}, scope: {scope}, budget: 100000000 USD,"
                      f" thresholds: [{{at: 100%, actions: [notify]}}]}}"
                      for i, scope in enumerate(GUARDRAILS[:guardrails]))
    return f'version: 1\nslack: {{channel: "#bench"}}\nguardrails:\n{rails}\n'


def inventory(path: Path, instances: int, start: datetime) -> Path:
    rows = [{"cloud": "gcp", "id": f"vm-{n}", "name": f"vm-{n}", "location": "us-central1-a",
             "type": "a2-highgpu-8g", "state": "running", "tags": {"team": f"t{n % 20}", "project": f"p{n % 7}"},
             "started_at": (start - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")} for n in range(instances)]
    path.write_text(json.dumps({"instances": rows}))
    return path


class Meter:
    """One mode's meter on a fresh ledger (its own prefix) over the same fleet."""

    def __init__(self, project: str, prefix: str, instances: int, guardrails: int, snapshot: bool, tmp: Path):
        from google.cloud import firestore as gcf

        import burnguard.services.meter as meter_module
        from burnguard.adapters.gcp.firestore import FirestoreLedger
        from burnguard.adapters.local.inventory import InventoryController, InventoryFile
        from burnguard.adapters.local.notifier import ConsoleNotifier
        from burnguard.app.estimates_cli import load_prices
        from burnguard.core.policy import load_policy
        from burnguard.services.guardrail import GuardrailService
        from burnguard.services.meter import MeterService
        from tests.adapters.gcp.read_spy import ReadSpy

        self.start = datetime(2026, 12, 4, 18, tzinfo=UTC)
        self.clock = [self.start]
        self.spy = ReadSpy(gcf.Client(project=project), f"{prefix}meter", f"{prefix}current")
        self.ledger = FirestoreLedger(self.spy, prefix=prefix)
        if not snapshot:  # the baseline: every question reads afresh (the meter before the snapshot)
            def per_question() -> AbstractContextManager[None]:
                return nullcontext()
            self.ledger.tick_snapshot = per_question  # type: ignore[method-assign]
        seed = inventory(tmp / f"{prefix}seed.json", instances, self.start)
        controllers: Any = {"gcp": InventoryController("gcp", InventoryFile(tmp / f"{prefix}state.json", seed=seed),
                                                       clock=lambda: self.clock[0])}
        pol = load_policy(policy(guardrails))
        guardrail = GuardrailService(pol, self.ledger, ConsoleNotifier(stream=StringIO()), controllers,
                                     clock=lambda: self.clock[0])
        guardrail.estimates = self.ledger
        self.meter = MeterService(pol, self.ledger, controllers, load_prices(), guardrail, clock=lambda: self.clock[0])
        self.phases = Phases()
        self.ledger.record_readings = self.phases.wrap("record", self.ledger.record_readings)  # type: ignore[method-assign]
        guardrail.run = self.phases.wrap("run", guardrail.run)  # type: ignore[method-assign]
        self._project = meter_module.project
        self.module = meter_module
        self.best: dict[str, float] | None = None
        self.reads = 0
        self.instances = instances

    def tick(self, steady: bool) -> None:
        self.module.project = self.phases.wrap("project", self._project)
        try:
            self.phases.clear()
            self.spy.reads.clear()
            start = time.perf_counter()
            report = self.meter.tick()
            took = time.perf_counter() - start
        finally:
            self.module.project = self._project
        assert report.read == self.instances and not report.problems, report.problems
        if steady:
            self.reads = self.spy.reads[self.ledger.prefix + "meter"]
            if self.best is None or took < self.best["tick"]:
                self.best = {"tick": took, **self.phases}
        self.clock[0] += timedelta(minutes=5)

    def close(self) -> None:
        self.ledger.close()
        self.spy.close()


def run(project: str, instances: int, guardrails: int, repeat: int, tmp: Path) -> dict[str, Any]:
    meters = {mode: Meter(project, f"b{guardrails}{mode}_", instances, guardrails, mode == "after", tmp)
              for mode in ("before", "after")}
    try:
        for m in meters.values():
            m.tick(steady=False)  # the first reading (backfill, new documents)
        for _ in range(repeat):
            for m in meters.values():  # alternating: a busy moment of the machine hits both
                m.tick(steady=True)
        out: dict[str, Any] = {}
        for mode, m in meters.items():
            assert m.best is not None
            out[mode] = {"reads_per_instance": round(m.reads / instances, 2),
                         **{k: round(v, 3) for k, v in m.best.items()}}
        return out
    finally:
        for m in meters.values():
            m.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3, help="steady ticks per mode (the fastest is shown)")
    args = parser.parse_args(argv)

    from tests.emulators import start_firestore_emulator, stop_process

    results: dict[str, Any] = {"instances": args.instances, "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        fs, proc = start_firestore_emulator(tmp / "logs")
        os.environ.update(fs.env)
        try:
            for guardrails in (1, 3):
                results[f"guardrails_{guardrails}"] = run(fs.project, args.instances, guardrails, args.repeat, tmp)
        finally:
            stop_process(proc)
    print(f"\nOne steady meter tick on the Firestore emulator, {args.instances:,} instances "
          f"({os.cpu_count()} cores; fastest of {args.repeat})")
    print(f"  {'guardrails':>10} {'mode':>7} {'reads/instance':>15} {'tick s':>8} {'record s':>9} {'run s':>7} "
          f"{'project s':>10}")
    for guardrails in (1, 3):
        for mode in ("before", "after"):
            r = results[f"guardrails_{guardrails}"][mode]
            print(f"  {guardrails:>10} {mode:>7} {r['reads_per_instance']:>15} {r['tick']:>8} {r.get('record', 0):>9} "
                  f"{r.get('run', 0):>7} {r.get('project', 0):>10}")
    print("  before: every question reads the meter documents afresh (tick_snapshot a no-op); after: one read")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
