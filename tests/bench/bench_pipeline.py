"""Benchmark: the full local pipeline on a 1M-row CUR, and ledger query times.

Prints figures (one JSON line at the end); not a test. Usage::

    python -m tests.bench.bench_pipeline                     # 1M rows, 3 months for the queries
    python -m tests.bench.bench_pipeline --rows 200000

Measurements, each in its own process (peak RSS is its own):

* ``normalize``: the normalizer alone over the file (the reference);
* ``pipeline``: ingest (normalize, encode chunks, publish on the SQLite queue) with the
  guardrail consuming alongside (decode, aggregate, ledger, complete, evaluate the demo
  policy), as the cloud's functions run side by side; total time against ``normalize``
  (target: under 2x), messages per 1,000 line items (target: at most 1);
* ``queries``: a ledger holding three monthly 1M-row deliveries (built once, cached in
  ``.bench-data/``): ``spend`` of a tag for a month, ``spend`` of ``project=*``, top resources,
  GPU hourly burn and the ``guardrails`` status; p50/p99 over repeated runs (target < 50 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.bench.bench_normalize import ROOT, _peak_rss_mb
from tests.bench.data import cur_file, ledger_file

POLICY = ROOT / "events" / "policies" / "demo.yaml"


def _ref(period: str, rows: int) -> object:
    from burnguard.core.messages import DeliveryRef, stable_id

    return DeliveryRef(delivery_id=stable_id("bench", period, str(rows)), provider="aws",
                       source="aws-cur|123456789012|bench|cur", billing_period=period, version="1",
                       produced_at=datetime(2024, 10, 2, tzinfo=UTC))


def run_pipeline(path: Path, home: Path, period: str, rows: int) -> dict[str, object]:
    """Ingest one delivery onto the SQLite queue while the guardrail consumes it (decode,
    aggregate, ledger, complete, evaluate the demo policy), as the embedded mode does."""
    from burnguard.adapters.local.notifier import ConsoleNotifier
    from burnguard.app.embedded import LOCAL_QUEUE_COMPRESSION, LocalMode
    from burnguard.core.policy import load_policy
    from burnguard.services.ingest import SourceFile, ingest_delivery

    local = LocalMode(home, load_policy(POLICY), notifier=ConsoleNotifier(quiet=True))
    ref = _ref(period, rows)
    t0 = time.perf_counter()
    with local.guardrail_alongside(local.service()) as drained:
        report = ingest_delivery(ref, [SourceFile(path.name, lambda: open(path, "rb"), str(path))],  # type: ignore[arg-type]  # noqa: SIM115
                                 local.queue.publish, compression=LOCAL_QUEUE_COMPRESSION)
        t1 = time.perf_counter()
    t2 = time.perf_counter()
    assert any(d.counted and d.delivery.delivery_id == ref.delivery_id for d in local.ledger.deliveries()), "not counted"  # type: ignore[attr-defined]
    local.close()
    line_items = report.summary.totals.rows
    return {"line_items": line_items, "messages": report.messages, "handled": drained.handled,
            "messages_per_1000": round(report.messages / line_items * 1000, 3),
            "ingest_s": round(t1 - t0, 2), "guardrail_after_ingest_s": round(t2 - t1, 2), "seconds": round(t2 - t0, 2)}


def child(kind: str, rows: int) -> dict[str, object]:
    from burnguard.app.runtime import tune_arrow

    tune_arrow()
    if kind == "normalize":
        from burnguard.normalize import Normalizer

        path = cur_file(rows, "2024-09")
        t = time.perf_counter()
        n = sum(table.num_rows for table in Normalizer.from_path(path).batches())
        result: dict[str, object] = {"line_items": n, "seconds": round(time.perf_counter() - t, 2)}
    elif kind == "pipeline":
        with tempfile.TemporaryDirectory() as tmp:
            result = run_pipeline(cur_file(rows, "2024-09"), Path(tmp), "2024-09", rows)
    else:
        result = queries(rows)
    result["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    return result


def queries(rows: int, repeat: int = 50) -> dict[str, object]:
    from burnguard.adapters.local.ledger import SqliteLedger
    from burnguard.core.ledger import Scope
    from burnguard.core.policy import load_policy
    from burnguard.services.queries import parse_period, spend_report
    from burnguard.services.status import guardrail_status

    ledger = SqliteLedger(ledger_file(rows))
    policy = load_policy(POLICY)
    now = ledger.latest_data() or datetime.now(UTC)
    window, _ = parse_period("2024-09", now)
    cases = {
        "spend team=ml-research 2024-09": lambda: spend_report(ledger, "team=ml-research", "2024-09", now=now),
        "spend project=* 2024-08": lambda: ledger.spend(Scope("project"), parse_period("2024-08", now)[0]),
        "top resources team=inference": lambda: ledger.top_resources(Scope("team", "inference"), window, limit=10),
        "gpu hourly team=* last 6h": lambda: ledger.gpu_hourly(Scope("team"), now.replace(hour=0)),
        "guardrails status": lambda: guardrail_status(policy, ledger, now),
    }
    out: dict[str, object] = {}
    for name, call in cases.items():
        call()  # warm the page cache once
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            call()
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        out[name] = {"p50_ms": round(statistics.median(times), 2), "p99_ms": round(times[int(len(times) * 0.99) - 1], 2)}
    return {"queries": out, "ledger_mb": round(ledger_file(rows).stat().st_size / 1e6, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.rows)))
        return 0
    results = {}
    for kind in ("normalize", "pipeline", "queries"):
        out = subprocess.run([sys.executable, "-m", "tests.bench.bench_pipeline", "--child", kind, "--rows",
                              str(args.rows)], cwd=ROOT, capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT / "shared")})
        sys.stderr.write(out.stderr)
        results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    norm, pipe = results["normalize"], results["pipeline"]
    ratio = round(float(pipe["seconds"]) / float(norm["seconds"]), 2)  # type: ignore[arg-type]
    print(f"\nFull local pipeline on a {args.rows:,}-row CUR ({os.cpu_count()} cores)")
    print(f"  normalizer alone      {norm['seconds']:>7} s   peak RSS {norm['peak_rss_mb']} MB")
    print(f"  pipeline              {pipe['seconds']:>7} s   (ingest {pipe['ingest_s']} s, guardrail alongside, "
          f"then {pipe['guardrail_after_ingest_s']} s more)   peak RSS {pipe['peak_rss_mb']} MB")
    print(f"  pipeline / normalizer {ratio:>7} x   (target under 2x)")
    print(f"  messages              {pipe['messages']:>7}     {pipe['messages_per_1000']} per 1,000 line items "
          "(target at most 1)")
    print(f"\nQueries on a ledger of three {args.rows:,}-row monthly deliveries "
          f"({results['queries']['ledger_mb']} MB), target < 50 ms:")
    for name, t in results["queries"]["queries"].items():  # type: ignore[index]
        print(f"  {name:<34} p50 {t['p50_ms']:>7} ms   p99 {t['p99_ms']:>7} ms")
    print(json.dumps({"rows": args.rows, "ratio": ratio, **results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
