"""Benchmark: one meter tick over 10,000 instances on three clouds, and the ledger's growth per
day of readings. Prints figures (a table, then one JSON line); not a test. Usage::

    python -m tests.bench.bench_meter                       # 10,000 instances, growth over 2,000
    python -m tests.bench.bench_meter --instances 3000 --growth 500
    python -m tests.bench.bench_meter --before main         # and the same tick on main's code, side by side

``--before REF``: the baseline measured in the same run, the tick of ``REF``'s ``shared/``
package (``git archive``) with this tree's harness and fakes, in a subprocess, before this
tree's.

Tick: a third of the instances each on EC2 (moto's server, started here and stopped after),
Compute Engine and Azure (the real SDKs against the FAKES of the controller tests: those clouds
have no emulator). Every instance is a GPU type tagged ``team=t<k>`` (20 values); the policy
has one ``team=*`` budget guardrail over the three clouds. Measured in the same run:

* baseline: listing alone (each controller's ``find`` for the scope: what the stop path pays
  anyway), per cloud;
* the first tick (backfill from each instance's start time, 10,000 new meter rows);
* steady ticks five minutes apart (the usual case; ``--repeat`` of them, the fastest shown:
  the machine is shared), by phase: the listing (wall time of
  ``scan``, and each cloud's ``find``: the clouds overlap when listed at the same time), the
  rate book (the billed rates query), ``record_readings``, the guardrail run, the projections,
  and the rest (pricing each instance, building the readings).

Target: a tick under 10 s. Growth: ``--growth`` instances read every five minutes for 24 hours
(288 ticks, straight on the SQLite ledger, synthetic readings): the rows and bytes the
estimate adds per day. Rows are one per (instance, clock hour) while no bill covers the hour,
and they drop out when the delivery covering them is counted.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

GPU_EC2 = ("p5.48xlarge", "g5.xlarge", "g6.xlarge", "p4d.24xlarge")
EC2_REGIONS = ("us-east-1", "us-east-2", "eu-west-2", "eu-north-1")  # moto offers the four types there
GPU_GCE = ("a2-highgpu-8g", "g2-standard-8", "a3-highgpu-8g")
GPU_ARM = ("Standard_ND96asr_v4", "Standard_NC24ads_A100_v4", "Standard_NC6s_v3")
POLICY = """
version: 1
slack: {channel: "#bench"}
guardrails:
  - {name: teams, scope: team=*, budget: 100000000 USD, thresholds: [{at: 100%, actions: [notify]}]}
"""


def _timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


class Phases(dict[str, float]):
    """Wall time per phase, summed over calls (wrappers around the tick's collaborators)."""

    def wrap(self, name: str, fn: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self[name] = self.get(name, 0.0) + time.perf_counter() - start
        return timed


def tick_bench(instances: int, ec2_regions: int = 1, repeat: int = 3) -> dict[str, Any]:  # noqa: PLR0915
    import burnguard.services.meter as meter_module
    import tests.fakes.compute as gce_fake
    from burnguard.adapters.aws.ec2 import Ec2Controller
    from burnguard.adapters.local.ledger import SqliteLedger
    from burnguard.adapters.local.notifier import ConsoleNotifier
    from burnguard.app.estimates_cli import load_prices
    from burnguard.core.policy import load_policy
    from burnguard.services.guardrail import GuardrailService
    from burnguard.services.meter import MeterService, TickReport
    from tests.adapters.meter_clouds import arm_vm, gce_vm, launch_ec2, three_clouds
    from tests.emulators import start_moto_server, stop_process

    gce_fake.PAGE = 500  # Compute Engine's largest page (the controller tests page by 2)
    per = instances // 3
    logs = Path(tempfile.mkdtemp(prefix="bench-meter-"))
    moto, proc = start_moto_server(logs)
    os.environ.update(moto.env)
    try:
        regions = EC2_REGIONS[:ec2_regions]
        setup, _ = _timed(lambda: [launch_ec2(per // len(slots) + (i < per % len(slots)), t, {"team": f"t{i}"}, region)
                                   for slots in [[(t, r) for t in GPU_EC2 for r in regions]]
                                   for i, (t, region) in enumerate(slots)])
        gce = [gce_vm(f"vm-{i}", GPU_GCE[i % 3], {"team": f"t{i % 20}"}) for i in range(per)]
        arm = [arm_vm(f"vm-{i}", GPU_ARM[i % 3], {"team": f"t{i % 20}"}) for i in range(instances - 2 * per)]
        with three_clouds(gce, arm, arm_page=1000) as clouds:  # ARM pages hold up to 1,000 VMs
            clouds.controllers["aws"] = Ec2Controller(regions)
            listing = {}
            for cloud, controller in clouds.controllers.items():
                listing[cloud], found = _timed(lambda c=controller: c.find("team", None))
                listing[f"{cloud}_n"] = len(found)
            policy = load_policy(POLICY)
            with tempfile.TemporaryDirectory() as tmp:
                ledger = SqliteLedger(Path(tmp) / "ledger.sqlite")
                now = datetime.now(UTC)
                clock = [now]
                guardrail = GuardrailService(policy, ledger, ConsoleNotifier(stream=StringIO()), clouds.controllers,
                                             clock=lambda: clock[0])
                guardrail.estimates = ledger
                meter = MeterService(policy, ledger, clouds.controllers, load_prices(), guardrail,
                                     clock=lambda: clock[0])
                phases = Phases()
                for cloud, controller in clouds.controllers.items():
                    controller.find = phases.wrap(f"list {cloud}", controller.find)  # type: ignore[method-assign]
                meter.scan = phases.wrap("listing (scan)", meter.scan)  # type: ignore[method-assign]
                ledger.record_readings = phases.wrap("record_readings", ledger.record_readings)  # type: ignore[method-assign]
                guardrail.run = phases.wrap("guardrail run", guardrail.run)  # type: ignore[method-assign]
                project, book = meter_module.project, meter_module.RateBook
                meter_module.project = phases.wrap("projections", project)
                meter_module.RateBook = phases.wrap("rate book", book)
                try:
                    first, r1 = _timed(meter.tick)
                    # the machine is shared: the least disturbed tick counts. A tree whose meter can
                    # list the clouds in turn or at once does both, tick after tick
                    modes = [True, False] if hasattr(meter, "concurrent") else [False]
                    steadies: dict[bool, list[tuple[float, dict[str, float], Any]]] = {m: [] for m in modes}
                    for k in range(repeat * len(modes)):
                        mode = modes[k % len(modes)]
                        meter.concurrent = mode
                        phases.clear()
                        clock[0] = now + timedelta(minutes=5 * (k + 1))
                        elapsed, r2 = _timed(meter.tick)
                        steadies[mode].append((elapsed, dict(phases), r2))
                    fastest = {m: min(runs, key=lambda t: t[0]) for m, runs in steadies.items()}
                    steady, steady_phases, r2 = fastest[modes[0]]
                finally:
                    meter_module.project, meter_module.RateBook = project, book
                scan, _ = _timed(lambda: meter.scan(TickReport(now)))
                rows = ledger.estimate_rows()
                ledger.close()
    finally:
        stop_process(proc)
    return {"instances": instances, "ec2_regions": list(regions), "ec2_setup_s": round(setup, 1), "list_s": {k: round(v, 2) for k, v in listing.items()
                                                                               if not k.endswith("_n")},
            "listed": {k[:-2]: v for k, v in listing.items() if k.endswith("_n")},
            "list_total_s": round(sum(v for k, v in listing.items() if not k.endswith("_n")), 2),
            "scan_s": round(scan, 2), "first_tick_s": round(first, 2), "steady_tick_s": round(steady, 2),
            "steady_ticks_s": [round(t[0], 2) for t in steadies[modes[0]]], "concurrent": modes[0],
            "in_turn": None if len(modes) == 1 else {
                "steady_tick_s": round(fastest[False][0], 2), "steady_ticks_s": [round(t[0], 2) for t in steadies[False]],
                "phases": _phases(fastest[False][0], fastest[False][1])},
            "read": r2.read, "running": r2.running, "problems": r1.problems + r2.problems,
            "estimate_rows": rows, "phases": _phases(steady, steady_phases)}


def _phases(total: float, phases: dict[str, float]) -> dict[str, float]:
    """Rounded, with ``rest``: the tick less its timed phases (the per-cloud listings are inside
    ``listing (scan)``)."""
    rest = total - sum(v for k, v in phases.items() if not k.startswith("list "))
    return {**{k: round(v, 2) for k, v in phases.items()}, "rest": round(rest, 2)}


def inventory_bench(instances: int) -> dict[str, Any]:
    """The meter's own work at the same size, without the emulators' listing cost: the same
    instances in the embedded mode's inventory file (its controller reads a local JSON file)."""
    from burnguard.adapters.local.inventory import InventoryController, InventoryFile
    from burnguard.adapters.local.ledger import SqliteLedger
    from burnguard.adapters.local.notifier import ConsoleNotifier
    from burnguard.app.estimates_cli import load_prices
    from burnguard.core.policy import load_policy
    from burnguard.ports.instances import InstanceController
    from burnguard.services.guardrail import GuardrailService
    from burnguard.services.meter import MeterService, TickReport

    now = datetime.now(UTC)
    started = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    types = {"aws": GPU_EC2, "gcp": GPU_GCE, "azure": GPU_ARM}
    entries = [{"cloud": cloud, "id": f"{cloud}-{i}", "type": types[cloud][i % len(types[cloud])],
                "state": "running", "tags": {"team": f"t{i % 20}"}, "started_at": started}
               for i in range(instances) for cloud in (("aws", "gcp", "azure")[i % 3],)]
    with tempfile.TemporaryDirectory() as tmp:
        seed = Path(tmp) / "inventory.json"
        seed.write_text(json.dumps({"instances": entries}))
        inventory = InventoryFile(Path(tmp) / "state.json", seed=seed)
        controllers: dict[str, InstanceController] = {c: InventoryController(c, inventory) for c in types}
        policy = load_policy(POLICY)
        ledger = SqliteLedger(Path(tmp) / "ledger.sqlite")
        clock = [now]
        guardrail = GuardrailService(policy, ledger, ConsoleNotifier(stream=StringIO()), controllers,
                                     clock=lambda: clock[0])
        guardrail.estimates = ledger
        meter = MeterService(policy, ledger, controllers, load_prices(), guardrail, clock=lambda: clock[0])
        first, _ = _timed(meter.tick)
        clock[0] = now + timedelta(minutes=5)
        steady, _ = _timed(meter.tick)
        scan, _ = _timed(lambda: meter.scan(TickReport(now)))
        ledger.close()
    return {"inventory_first_tick_s": round(first, 2), "inventory_steady_tick_s": round(steady, 2),
            "inventory_scan_s": round(scan, 2)}


def growth_bench(instances: int) -> dict[str, Any]:
    from burnguard.adapters.local.ledger import SqliteLedger
    from burnguard.core.estimates import Rate, Reading

    start = datetime(2026, 12, 4, 18, tzinfo=UTC)
    rate = Rate(Decimal("98.32"), "USD", "price-table", "2024-09-01")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.sqlite"
        ledger = SqliteLedger(path)
        ledger._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        empty = path.stat().st_size
        times = []
        for k in range(1, 289):
            at = start + timedelta(minutes=5 * k)
            readings = [Reading("aws", f"i-{i:08d}", "p5.48xlarge", "us-east-1a", at, True, rate,
                                {"team": f"t{i % 20}"}, started_at=start) for i in range(instances)]
            elapsed, _ = _timed(lambda r=readings: ledger.record_readings(r))
            times.append(elapsed)
        ledger._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = path.stat().st_size
        rows = ledger.estimate_rows()
        ledger.close()
    return {"growth_instances": instances, "ticks": 288, "estimate_rows_per_day": rows,
            "bytes_per_day": size - empty, "bytes_per_instance_day": round((size - empty) / instances),
            "record_readings_p50_s": round(sorted(times)[len(times) // 2], 3), "record_readings_max_s": round(max(times), 3)}


def before_bench(ref: str, instances: int, ec2_regions: int, repeat: int) -> dict[str, Any]:
    """The tick bench on ``ref``'s ``shared/`` package (this tree's harness and fakes), in a
    subprocess: the baseline of the same run."""
    import subprocess
    import sys

    root = Path(__file__).parents[2]
    with tempfile.TemporaryDirectory(prefix="bench-before-") as tmp:
        archive = subprocess.run(["git", "-C", str(root), "archive", ref, "shared"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        out = Path(tmp) / "tick.json"
        env = {**os.environ, "PYTHONPATH": f"{tmp}/shared{os.pathsep}{root}"}
        subprocess.run([sys.executable, "-m", "tests.bench.bench_meter", "--instances", str(instances),
                        "--ec2-regions", str(ec2_regions), "--repeat", str(repeat), "--tick-only", str(out)], check=True, cwd=root, env=env)
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def _row(label: str, before: Any, after: Any, note: str = "") -> str:
    b = f"{before:>9}" if before is not None else f"{'-':>9}"
    return f"  {label:<32}{b} {after:>9}  {note}".rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--growth", type=int, default=2_000, help="instances of the 24-hour growth run")
    parser.add_argument("--ec2-regions", type=int, default=1, choices=range(1, len(EC2_REGIONS) + 1),
                        help="spread the EC2 instances over this many regions (moto keeps tags per region)")
    parser.add_argument("--repeat", type=int, default=3, help="steady ticks measured (the fastest is shown)")
    parser.add_argument("--before", metavar="REF", help="also measure the tick on this git ref's shared/ package")
    parser.add_argument("--tick-only", metavar="FILE", help=argparse.SUPPRESS)  # the --before subprocess
    args = parser.parse_args()
    if args.tick_only:
        Path(args.tick_only).write_text(json.dumps(tick_bench(args.instances, args.ec2_regions, args.repeat)))
        return
    before = before_bench(args.before, args.instances, args.ec2_regions, args.repeat) if args.before else None
    tick = tick_bench(args.instances, args.ec2_regions, args.repeat)
    local = inventory_bench(args.instances)
    growth = growth_bench(args.growth)
    b: dict[str, Any] = before or {}
    print(f"meter tick over {tick['instances']:,} GPU instances on three clouds (listed: {tick['listed']};"
          f" EC2 in {', '.join(tick['ec2_regions'])}), seconds:")
    print(_row("", f"{args.before or 'before'}"[:9], "this tree"))
    print(_row("listing alone, clouds in turn", b.get("list_total_s"), tick["list_total_s"], str(tick["list_s"])))
    print(_row("first tick (backfill)", b.get("first_tick_s"), tick["first_tick_s"]))
    runs = [("clouds at once" if tick["concurrent"] else "clouds in turn", tick)]
    if tick.get("in_turn"):
        runs.append(("clouds in turn", tick["in_turn"]))
    order = ["listing (scan)", "list aws", "list gcp", "list azure", "rate book", "rest", "record_readings",
             "guardrail run", "projections"]
    for label, run in runs:
        print(_row(f"steady tick, {label}", b.get("steady_tick_s"), run["steady_tick_s"],
                   f"fastest; target < 10 s; all: {b.get('steady_ticks_s', '-')} | {run['steady_ticks_s']}"))
        for phase in sorted(set(run["phases"]) | set(b.get("phases", {})), key=order.index):
            indent = "      " if phase.startswith("list ") else "    "
            print(_row(f"{indent}{phase}", b.get("phases", {}).get(phase), run["phases"].get(phase, "-")))
    print(f"the same {tick['instances']:,} instances in the embedded inventory (the meter's own work, this tree):")
    print(f"  listing alone {local['inventory_scan_s']} s; first tick {local['inventory_first_tick_s']} s;"
          f" steady tick {local['inventory_steady_tick_s']} s")
    print(f"ledger growth, {growth['growth_instances']:,} instances read every 5 min for 24 h:")
    print(f"  {growth['estimate_rows_per_day']:,} estimate rows, {growth['bytes_per_day'] / 1e6:.1f} MB "
          f"({growth['bytes_per_instance_day']:,} bytes per instance-day); record_readings p50 "
          f"{growth['record_readings_p50_s']} s, max {growth['record_readings_max_s']} s per tick")
    print(json.dumps({**tick, **local, **growth, "before": before, "before_ref": args.before}))


if __name__ == "__main__":
    main()
