"""Benchmark: one meter tick over 10,000 instances on three clouds, and the ledger's growth per
day of readings. Prints figures (a table, then one JSON line); not a test. Usage::

    python -m tests.bench.bench_meter                       # 10,000 instances, growth over 2,000
    python -m tests.bench.bench_meter --instances 3000 --growth 500

Tick: a third of the instances each on EC2 (moto's server, started here and stopped after),
Compute Engine and Azure (the real SDKs against the FAKES of the controller tests: those clouds
have no emulator). Every instance is a GPU type tagged ``team=t<k>`` (20 values); the policy
has one ``team=*`` budget guardrail over the three clouds. Measured in the same run:

* baseline: listing alone (each controller's ``find`` for the scope: what the stop path pays
  anyway), per cloud;
* the first tick (backfill from each instance's start time, 10,000 new meter rows);
* a steady tick five minutes later (the usual case).

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


def tick_bench(instances: int) -> dict[str, Any]:
    import tests.adapters.gcp.test_compute_controller as gce_fake
    from burnguard.adapters.local.ledger import SqliteLedger
    from burnguard.adapters.local.notifier import ConsoleNotifier
    from burnguard.app.estimates_cli import load_prices
    from burnguard.core.policy import load_policy
    from burnguard.services.guardrail import GuardrailService
    from burnguard.services.meter import MeterService, TickReport
    from tests.adapters.meter_clouds import arm_vm, gce_vm, launch_ec2, three_clouds
    from tests.emulators import start_moto_server, stop_process

    gce_fake.PAGE = 500  # Compute Engine's default maxResults (the controller tests page by 2)
    per = instances // 3
    logs = Path(tempfile.mkdtemp(prefix="bench-meter-"))
    moto, proc = start_moto_server(logs)
    os.environ.update(moto.env)
    try:
        setup, _ = _timed(lambda: [launch_ec2(per // len(GPU_EC2) + (i < per % len(GPU_EC2)), t, {"team": f"t{i}"})
                                   for i, t in enumerate(GPU_EC2)])
        gce = [gce_vm(f"vm-{i}", GPU_GCE[i % 3], {"team": f"t{i % 20}"}) for i in range(per)]
        arm = [arm_vm(f"vm-{i}", GPU_ARM[i % 3], {"team": f"t{i % 20}"}) for i in range(instances - 2 * per)]
        with three_clouds(gce, arm, arm_page=1000) as clouds:  # ARM pages hold up to 1,000 VMs
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
                first, r1 = _timed(meter.tick)
                clock[0] = now + timedelta(minutes=5)
                steady, r2 = _timed(meter.tick)
                scan, _ = _timed(lambda: meter.scan(TickReport(now)))
                rows = ledger.estimate_rows()
                ledger.close()
    finally:
        stop_process(proc)
    return {"instances": instances, "ec2_setup_s": round(setup, 1), "list_s": {k: round(v, 2) for k, v in listing.items()
                                                                               if not k.endswith("_n")},
            "listed": {k[:-2]: v for k, v in listing.items() if k.endswith("_n")},
            "list_total_s": round(sum(v for k, v in listing.items() if not k.endswith("_n")), 2),
            "scan_s": round(scan, 2), "first_tick_s": round(first, 2), "steady_tick_s": round(steady, 2),
            "read": r2.read, "running": r2.running, "problems": r1.problems + r2.problems,
            "estimate_rows": rows}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--growth", type=int, default=2_000, help="instances of the 24-hour growth run")
    args = parser.parse_args()
    tick = tick_bench(args.instances)
    local = inventory_bench(args.instances)
    growth = growth_bench(args.growth)
    print(f"meter tick over {tick['instances']:,} GPU instances on three clouds "
          f"(listed: {tick['listed']}):")
    print(f"  baseline, listing alone:       {tick['list_total_s']:>7} s  {tick['list_s']}")
    print(f"  first tick (backfill):         {tick['first_tick_s']:>7} s")
    print(f"  steady tick (5 min later):     {tick['steady_tick_s']:>7} s   target < 10 s")
    print(f"  of which listing (scan again): {tick['scan_s']:>7} s")
    print(f"the same {tick['instances']:,} instances in the embedded inventory (the meter's own work):")
    print(f"  listing alone {local['inventory_scan_s']} s; first tick {local['inventory_first_tick_s']} s;"
          f" steady tick {local['inventory_steady_tick_s']} s")
    print(f"ledger growth, {growth['growth_instances']:,} instances read every 5 min for 24 h:")
    print(f"  {growth['estimate_rows_per_day']:,} estimate rows, {growth['bytes_per_day'] / 1e6:.1f} MB "
          f"({growth['bytes_per_instance_day']:,} bytes per instance-day); record_readings p50 "
          f"{growth['record_readings_p50_s']} s, max {growth['record_readings_max_s']} s per tick")
    print(json.dumps({**tick, **local, **growth}))


if __name__ == "__main__":
    main()
