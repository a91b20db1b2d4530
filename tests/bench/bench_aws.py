"""Benchmark: the AWS functions. Prints figures beside their baselines (a JSON line at the end);
not a test. Usage::

    python -m tests.bench.bench_aws                 # 1M-row CUR
    python -m tests.bench.bench_aws --rows 200000

* ``imports``: each handler's cold import (``functions/aws/ingest.py``, ``budget.py``,
  ``slack_command.py``) in a fresh interpreter, timed around the import and with
  ``python -X importtime`` for the heaviest modules; baseline: the interpreter alone
  (``python -c pass``). Target: under 1 s.
* ``transfer``: a 1M-row CUR CSV.gz ingested from moto's S3 (server mode, over HTTP; the
  ``S3Store`` streaming reader) onto the Pub/Sub emulator, against the same file read from the
  local disk onto the same emulator; each in its own process (peak RSS is its own). Target: S3
  at most 1.3x the local time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.bench_normalize import ROOT, _peak_rss_mb
from tests.bench.data import cur_file

HANDLERS = ("ingest.py", "budget.py", "slack_command.py")
BUCKET = "bench-cur"


def _python(code: str, *flags: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *flags, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "shared") + os.pathsep + str(ROOT), **(env or {})})


def imports() -> dict[str, object]:
    base = []
    for _ in range(3):
        t = time.perf_counter()
        _python("pass")
        base.append(time.perf_counter() - t)
    out: dict[str, object] = {"python_startup_s": round(min(base), 3)}
    for name in HANDLERS:
        code = ("import time, importlib.util; t = time.perf_counter(); "
                f"spec = importlib.util.spec_from_file_location('h', 'functions/aws/{name}'); "
                "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
                "print(time.perf_counter() - t)")
        runs = [float(_python(code).stdout.strip()) for _ in range(3)]
        trace = _python(code, "-X", "importtime").stderr
        heavy = []
        for line in trace.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
            if m and len(m.group(3)) <= 2:  # top-level imports of the handler
                heavy.append((int(m.group(2)), m.group(4)))
        heavy.sort(reverse=True)
        out[name] = {"import_s_min": round(min(runs), 3), "import_s_max": round(max(runs), 3),
                     "heaviest": [f"{mod} {us / 1e6:.2f}s" for us, mod in heavy[:4]]}
    return out


def run_transfer(mode: str, path: str, topic: str) -> dict[str, object]:
    """One ingest (in this process): ``s3`` through S3Store from moto, or ``local`` from disk."""
    from google.cloud.pubsub_v1 import PublisherClient

    from burnguard.adapters.aws.s3 import S3Store
    from burnguard.adapters.gcp.pubsub import PubSubPublisher
    from burnguard.app.runtime import tune_arrow
    from burnguard.core.messages import DeliveryRef, stable_id
    from burnguard.services.ingest import SourceFile, ingest_delivery

    tune_arrow()
    ref = DeliveryRef(delivery_id=stable_id("bench-aws", mode), provider="aws", source="aws-cur|123456789012|bench|cur",
                      billing_period="2024-09", version="1")
    publisher = PubSubPublisher(PublisherClient(), topic)
    name = Path(path).name
    if mode == "s3":
        store = S3Store()
        source = SourceFile(name, lambda: store.open(BUCKET, name), None)
    else:
        source = SourceFile(name, lambda: open(path, "rb"), path)  # noqa: SIM115 - closed by ingest
    t = time.perf_counter()
    report = ingest_delivery(ref, [source], publisher)
    elapsed = time.perf_counter() - t
    return {"mode": mode, "seconds": round(elapsed, 2), "rows": report.summary.totals.rows,
            "messages": report.messages, "published_mb": round(publisher.bytes / 1e6, 1),
            "peak_rss_mb": round(_peak_rss_mb(), 1)}


def transfer(rows: int) -> dict[str, object]:
    import boto3
    from google.cloud import pubsub_v1

    from tests.emulators import start_moto_server, start_pubsub_emulator, stop_process

    path = cur_file(rows, "2024-09")
    logs = Path(tempfile.mkdtemp(prefix="bench-aws-"))
    moto, moto_proc = start_moto_server(logs)
    pubsub, pubsub_proc = start_pubsub_emulator(logs)
    try:
        env = {**moto.env, **pubsub.env}
        os.environ.update(env)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.upload_file(str(path), BUCKET, path.name)
        publisher = pubsub_v1.PublisherClient()
        results = []
        for mode in ("local", "s3", "local", "s3"):  # alternate: the machine is shared
            topic = publisher.topic_path(pubsub.project, f"bench-{mode}-{time.monotonic_ns()}")
            publisher.create_topic(name=topic)
            code = (f"import json; from tests.bench.bench_aws import run_transfer; "
                    f"print(json.dumps(run_transfer({mode!r}, {str(path)!r}, {topic!r})))")
            results.append(json.loads(_python(code, env=env).stdout.strip().splitlines()[-1]))
    finally:
        stop_process(moto_proc)
        stop_process(pubsub_proc)
    best = {m: min((r for r in results if r["mode"] == m), key=lambda r: float(r["seconds"])) for m in ("local", "s3")}
    ratio = float(best["s3"]["seconds"]) / float(best["local"]["seconds"])
    return {"file": path.name, "file_mb": round(path.stat().st_size / 1e6, 1), "runs": results,
            "local_best": best["local"], "s3_best": best["s3"], "s3_over_local": round(ratio, 2),
            "target": "s3 at most 1.3x local"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-transfer", action="store_true")
    args = parser.parse_args(argv)
    figures: dict[str, object] = {"imports": imports()}
    print(json.dumps(figures["imports"], indent=2), file=sys.stderr)
    if not args.skip_transfer:
        figures["transfer"] = transfer(args.rows)
        print(json.dumps(figures["transfer"], indent=2), file=sys.stderr)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
