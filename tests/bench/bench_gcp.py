"""Benchmark: the Google Cloud control plane against the official emulators.

Prints figures (and one JSON line at the end); not a test. Usage::

    PYTHONPATH=shared python -m tests.bench.bench_gcp                  # 1M rows
    PYTHONPATH=shared python -m tests.bench.bench_gcp --rows 100000

It starts the Pub/Sub and Firestore emulators itself and stops them by PID. Two parts:

* ``pubsub``: a delivery of ``rows`` line items (a generated CUR, ``.bench-data/``) is ingested
  onto a Pub/Sub topic (normalize, encode zstd chunks, publish), then consumed from a
  subscription by the guardrail's push consumer (decode, aggregate, Firestore ledger, complete,
  evaluate the demo policy), acknowledging after each commit. Figures: messages, bytes,
  seconds. Baseline in the same run: the embedded pipeline (SQLite queue and ledger) on the
  same file.
* ``queries``: three monthly deliveries of ``rows`` line items (July to September) in a
  Firestore ledger, and the same messages in a SQLite ledger (the baseline). Then the spend
  questions of the slash command and the guardrail, p50/p99 over repeated runs. Target for
  Firestore: p99 under 300 ms against the emulator.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench.bench_normalize import ROOT
from tests.bench.data import PERIODS, cur_file

POLICY = ROOT / "events" / "policies" / "demo.yaml"


def _ref(period: str, rows: int, tag: str) -> Any:
    from burnguard.core.messages import DeliveryRef, stable_id

    return DeliveryRef(delivery_id=stable_id("bench-gcp", tag, period, str(rows)), provider="aws",
                       source=f"aws-cur|123456789012|bench-{tag}|cur", billing_period=period, version="1",
                       produced_at=datetime(2024, 10, 2, tzinfo=UTC))


def pubsub_part(rows: int, project: str) -> dict[str, Any]:
    from google.cloud import firestore, pubsub_v1

    from burnguard.adapters.gcp.firestore import FirestoreLedger
    from burnguard.adapters.gcp.pubsub import PubSubPublisher, PushConsumer
    from burnguard.adapters.local.notifier import ConsoleNotifier
    from burnguard.core.messages import Message
    from burnguard.core.policy import load_policy
    from burnguard.services.guardrail import GuardrailService
    from burnguard.services.ingest import SourceFile, ingest_delivery

    path = cur_file(rows, "2024-09")
    pub, sub = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    name = uuid.uuid4().hex[:8]
    topic = pub.topic_path(project, f"shared-{name}")
    subscription = sub.subscription_path(project, f"guardrail-{name}")
    pub.create_topic(name=topic)
    sub.create_subscription(request={"name": subscription, "topic": topic, "ack_deadline_seconds": 600})
    publisher = PubSubPublisher(pub, topic)
    ref = _ref("2024-09", rows, "pubsub")
    t0 = time.perf_counter()
    report = ingest_delivery(ref, [SourceFile(path.name, lambda: open(path, "rb"), str(path))],  # noqa: SIM115
                             publisher)
    t1 = time.perf_counter()
    ledger = FirestoreLedger(firestore.Client(project=project), prefix=f"bench_{name}_")
    service = GuardrailService(load_policy(POLICY), ledger, ConsoleNotifier(quiet=True), {})
    dead: list[Message] = []
    consumer = PushConsumer(service.handle, dead.extend)
    handled = 0
    while handled < report.messages:
        # One message per pull: a pull answer is capped at 4 MiB by gRPC, and a push carries one anyway.
        resp = sub.pull(request={"subscription": subscription, "max_messages": 1}, timeout=60)
        for r in resp.received_messages:
            import base64

            outcome = consumer({"message": {"data": base64.b64encode(r.message.data).decode(),
                                            "attributes": dict(r.message.attributes)},
                                "subscription": subscription})
            assert outcome.status == "applied", outcome
            sub.acknowledge(request={"subscription": subscription, "ack_ids": [r.ack_id]})
            handled += 1
    t2 = time.perf_counter()
    assert not dead
    assert any(d.counted for d in ledger.deliveries()), "not counted"
    return {"line_items": report.summary.totals.rows, "messages": report.messages, "bytes": publisher.bytes,
            "publish_s": round(t1 - t0, 2), "consume_s": round(t2 - t1, 2), "seconds": round(t2 - t0, 2)}


def embedded_baseline(rows: int) -> dict[str, Any]:
    from tests.bench.bench_pipeline import run_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        return run_pipeline(cur_file(rows, "2024-09"), Path(tmp), "2024-09", rows)


def build_ledgers(rows: int, project: str, tmp: Path) -> tuple[Any, Any, dict[str, float]]:
    """Three monthly deliveries recorded into a Firestore and a SQLite ledger (same messages)."""
    from google.cloud import firestore

    from burnguard.adapters.gcp.firestore import FirestoreLedger
    from burnguard.adapters.local.ledger import SqliteLedger
    from burnguard.services.ingest import SourceFile, ingest_delivery
    from burnguard.services.record import record_message

    fs = FirestoreLedger(firestore.Client(project=project), prefix="bench_q_")
    sq = SqliteLedger(tmp / "ledger.sqlite")
    now = datetime(2024, 10, 2, tzinfo=UTC)
    spent = {"firestore_s": 0.0, "sqlite_s": 0.0}

    def record(messages: Any) -> None:
        for m in messages:
            t = time.perf_counter()
            record_message(fs, m, now)
            spent["firestore_s"] += time.perf_counter() - t
            t = time.perf_counter()
            record_message(sq, m, now)
            spent["sqlite_s"] += time.perf_counter() - t

    for period in PERIODS:
        path = cur_file(rows, period)
        ingest_delivery(_ref(period, rows, "q"), [SourceFile(path.name, lambda p=path: open(p, "rb"), str(path))],  # noqa: SIM115
                        record)
    assert sum(d.counted for d in fs.deliveries()) == 3
    return fs, sq, {k: round(v, 1) for k, v in spent.items()}


def timed(call: Callable[[], Any], repeat: int, before: Callable[[], None] | None = None) -> dict[str, float]:
    call()
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 1), "p99_ms": round(times[max(0, int(len(times) * 0.99) - 1)], 1)}


def query_cases(ledger: Any) -> dict[str, Callable[[], Any]]:
    from burnguard.core.ledger import Scope
    from burnguard.core.policy import load_policy
    from burnguard.services.queries import parse_period, spend_report
    from burnguard.services.status import guardrail_status

    policy = load_policy(POLICY)
    now = ledger.latest_data() or datetime.now(UTC)
    window, _ = parse_period("2024-09", now)
    return {
        "spend team=ml-research 2024-09": lambda: spend_report(ledger, "team=ml-research", "2024-09", now=now),
        "spend project=* 2024-08": lambda: ledger.spend(Scope("project"), parse_period("2024-08", now)[0]),
        "top resources team=inference": lambda: ledger.top_resources(Scope("team", "inference"), window, limit=10),
        "gpu hourly team=* today": lambda: ledger.gpu_hourly(Scope("team"), now.replace(hour=0)),
        "guardrails status": lambda: guardrail_status(policy, ledger, now),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--only", choices=["pubsub", "queries"])
    args = parser.parse_args(argv)

    from burnguard.app.runtime import tune_arrow
    from tests.emulators import start_firestore_emulator, start_pubsub_emulator, stop_process

    tune_arrow()
    results: dict[str, Any] = {"rows": args.rows, "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        pubsub, pubsub_proc = start_pubsub_emulator(tmp / "logs")
        fs, fs_proc = start_firestore_emulator(tmp / "logs")
        os.environ.update({**pubsub.env, **fs.env, "PUBSUB_PROJECT_ID": fs.project})
        try:
            if args.only in (None, "pubsub"):
                results["embedded"] = embedded_baseline(args.rows)
                results["pubsub"] = pubsub_part(args.rows, fs.project)
                e, p = results["embedded"], results["pubsub"]
                print(f"\n{args.rows:,}-row delivery through the Pub/Sub emulator into the Firestore emulator "
                      f"({os.cpu_count()} cores)")
                print(f"  messages {p['messages']}   bytes {p['bytes']:,}   publish {p['publish_s']} s   "
                      f"consume {p['consume_s']} s   total {p['seconds']} s")
                print(f"  baseline, embedded (SQLite queue and ledger): {e['messages']} messages, {e['seconds']} s")
            if args.only in (None, "queries"):
                fsl, sql, build = build_ledgers(args.rows, fs.project, tmp)
                results["build"] = build
                results["queries"] = {
                    name: {"firestore_cold": timed(call, args.repeat, before=fsl.clear_cache),
                           "firestore_warm": timed(call, args.repeat),
                           "sqlite": timed(query_cases(sql)[name], args.repeat)}
                    for name, call in query_cases(fsl).items()}
                print(f"\nQueries on three {args.rows:,}-row monthly deliveries (recording took Firestore "
                      f"{build['firestore_s']} s, SQLite {build['sqlite_s']} s); target p99 < 300 ms on Firestore.")
                print("  cold: page cache cleared before each call (a new instance); warm: pages cached")
                for name, t in results["queries"].items():
                    c, w, s = t["firestore_cold"], t["firestore_warm"], t["sqlite"]
                    print(f"  {name:<32} Firestore cold p50 {c['p50_ms']:>7} p99 {c['p99_ms']:>7} ms | warm p50 "
                          f"{w['p50_ms']:>6} p99 {w['p99_ms']:>6} ms | SQLite p50 {s['p50_ms']:>6} p99 {s['p99_ms']:>6} ms")
                sql.close()
        finally:
            stop_process(fs_proc)
            stop_process(pubsub_proc)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
