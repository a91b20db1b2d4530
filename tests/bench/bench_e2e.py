"""Benchmark: spend to action. How soon after a CUR delivery lands is a GPU stopped? Prints each
step's time and the whole (a JSON line at the end); not a test. Usage::

    python -m tests.bench.bench_e2e                  # a 1M-row CUR delivery
    python -m tests.bench.bench_e2e --rows 100000 --ledgers firestore

The deployment of ``tests/e2e`` on one machine: moto's server (S3, EC2, STS), the Pub/Sub
emulator pushing the shared topic to the guardrail function (functions-framework), the ledger
in the Firestore emulator, EC2 reached as the deployed guardrail reaches it
(``app.gcp.cloud_controllers``: AssumeRoleWithWebIdentity with a stand-in Google ID token).

Steps (wall clock, from the manifest's ``PutObject`` returning):

* ``landed → published``: the AWS ingest Lambda handed the manifest's S3 notification reads the
  delivery from S3 and has every chunk and the summary acknowledged by Pub/Sub;
* ``published → counted``: pushes applied by the guardrail until the delivery is counted
  (the ledger's ``complete`` returns ``complete``);
* ``counted → decision``: the policy evaluated on the new totals (``evaluate`` returns the
  crossing);
* ``decision → stop called``: the stop action selected the scope's running GPU instances
  (``DescribeInstances``) and calls the controller;
* ``stop called → returned``: the EC2 ``StopInstances`` call returned.

Baseline, same run: the same pipeline with the embedded SQLite ledger (what the Firestore
emulator costs), and the target: under 60 s for the whole (the clouds' native budget controls
act 8 to 24 hours after spend; the fastest commercial claim is under 60 s). S3's notification
latency (sub-second to seconds on AWS) and Eventarc's are not in a local run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2024, 9, 30, 12, tzinfo=UTC)
POLICY = """
version: 1
safety: {dry_run: false, max_stops_per_run: 10, gpu_only: true}
slack: {channel: "#bench"}
guardrails:
  - name: ml-monthly
    scope: team=ml-research
    budget: 1000 USD
    thresholds:
      - {at: 100%, actions: [notify, stop]}
"""


class Marks:
    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.lock = threading.Lock()

    def first(self, what: str) -> None:
        with self.lock:
            self.at.setdefault(what, time.perf_counter())


class TimedLedger:
    """The ledger, marking when the delivery is counted."""

    def __init__(self, inner: Any, marks: Marks):
        self.inner, self.marks = inner, marks

    def complete(self, *args: Any, **kwargs: Any) -> Any:
        completion = self.inner.complete(*args, **kwargs)
        if completion.status == "complete":
            self.marks.first("counted")
        return completion

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class TimedController:
    """An instance controller, marking the stop call's start and return."""

    def __init__(self, inner: Any, marks: Marks):
        self.inner, self.marks = inner, marks

    def stop(self, *args: Any, **kwargs: Any) -> Any:
        self.marks.first("stop_called")
        result = self.inner.stop(*args, **kwargs)
        self.marks.first("stop_returned")
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def put_delivery(s3: Any, bucket: str, path: Path) -> tuple[str, bytes]:
    """The CUR file and its period-folder manifest, as CUR writes them; returns the assembly
    manifest (key, body), whose landing completes the delivery."""
    from tests.functions.aws_helpers import PREFIX, SAMPLE_MANIFEST

    assembly = str(uuid.uuid4())
    key = f"{PREFIX}/{assembly}/burnguard-hourly-1.csv.gz"
    s3.upload_file(str(path), bucket, key)
    manifest = json.loads(SAMPLE_MANIFEST.read_text())
    manifest.update(assemblyId=assembly, bucket=bucket, reportKeys=[key])
    body = json.dumps(manifest).encode()
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/burnguard-hourly-Manifest.json", Body=body)
    return f"{PREFIX}/{assembly}/burnguard-hourly-Manifest.json", body


def run_once(kind: str, path: Path, project: str, tmp: Path) -> dict[str, Any]:  # noqa: PLR0915 - one pipeline, step by step
    import boto3
    import functions_framework
    from google.cloud import firestore as gcf

    import burnguard.services.guardrail as guardrail_module
    from burnguard.adapters.gcp.firestore import FirestoreLedger
    from burnguard.adapters.gcp.pubsub import PubSubPublisher
    from burnguard.adapters.local.ledger import SqliteLedger
    from burnguard.adapters.local.notifier import ConsoleNotifier
    from burnguard.app import aws as aws_app
    from burnguard.app import gcp as gcp_app
    from tests.e2e.deployment import AMI, ROLE_ARN, Bridge, Topics, id_token_stand_in
    from tests.emulators import http_server
    from tests.functions.aws_helpers import LambdaContext, s3_notification
    from tests.functions.slash_events import FUNCTIONS, load
    from tests.functions.test_gcp_guardrail import post_cloudevent

    marks = Marks()
    topics = Topics(project)
    (tmp / "policy.yaml").write_text(POLICY)
    env = {"BURNGUARD_POLICY": str(tmp / "policy.yaml"), "BURNGUARD_AWS_ROLE_ARN": ROLE_ARN,
           "BURNGUARD_AWS_REGIONS": "us-east-1", "BURNGUARD_DEAD_LETTER_TOPIC": topics.dead}
    ledger: Any = (FirestoreLedger(gcf.Client(project=project), prefix=f"bench{uuid.uuid4().hex[:6]}_")
                   if kind == "firestore" else SqliteLedger(tmp / f"ledger-{uuid.uuid4().hex[:6]}.sqlite"))
    ec2 = boto3.client("ec2", region_name="us-east-1")
    [gpu] = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="p4d.24xlarge",
                              TagSpecifications=[{"ResourceType": "instance",
                                                  "Tags": [{"Key": "team", "Value": "ml-research"}]}])["Instances"]
    controllers = {c: TimedController(v, marks)
                   for c, v in gcp_app.cloud_controllers(env, id_token=id_token_stand_in).items()}
    real_evaluate = guardrail_module.evaluate

    def timed_evaluate(*args: Any, **kwargs: Any) -> Any:
        decisions = real_evaluate(*args, **kwargs)
        if decisions:
            marks.first("decision")
        return decisions

    guardrail_module.evaluate = timed_evaluate  # type: ignore[assignment]
    consumer = gcp_app.build_guardrail(env, ledger=TimedLedger(ledger, marks), controllers=controllers,
                                       notifier=ConsoleNotifier(open(os.devnull, "w")),  # noqa: SIM115
                                       dead_letter=PubSubPublisher(topics.publisher, topics.dead), clock=lambda: NOW)
    gcp_app.guardrail_runtime = lambda: consumer  # type: ignore[assignment]
    client = functions_framework.create_app(target="guardrail", source=str(FUNCTIONS / "gcp" / "main.py"),
                                            signature_type="cloudevent").test_client()
    bridge = Bridge(lambda body: post_cloudevent(client, body, topics.shared).status_code)
    os.environ["BURNGUARD_TOPIC"] = topics.shared
    aws_app.ingest_app.cache_clear()
    ingest = load("aws", "ingest.py").lambda_handler
    s3 = boto3.client("s3")
    bucket = f"bench-cur-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    last, manifest = put_delivery(s3, bucket, path)
    try:
        with http_server(bridge.handler()) as url:
            topics.subscriber.create_subscription(request={
                "name": topics.subscriber.subscription_path(project, f"push-{uuid.uuid4().hex[:8]}"),
                "topic": topics.shared, "push_config": {"push_endpoint": url + "/push"}, "ack_deadline_seconds": 600})
            s3.put_object(Bucket=bucket, Key=last, Body=manifest)
            marks.first("landed")
            ingest(s3_notification(bucket, last), LambdaContext())
            marks.first("published")
            deadline = time.monotonic() + 900
            while "stop_returned" not in marks.at and time.monotonic() < deadline:
                time.sleep(0.05)
            while time.monotonic() - bridge.busy_until < 2.0:  # let the last pushes be acknowledged
                time.sleep(0.1)
    finally:
        guardrail_module.evaluate = real_evaluate  # type: ignore[assignment]
        topics.close()
        aws_app.ingest_app.cache_clear()
    state = ec2.describe_instances(InstanceIds=[gpu["InstanceId"]])["Reservations"][0]["Instances"][0]["State"]["Name"]
    at = marks.at
    order = ["landed", "published", "counted", "decision", "stop_called", "stop_returned"]
    missing = [m for m in order if m not in at]
    if missing:
        raise SystemExit(f"{kind}: never reached {missing}")
    steps = {f"{a} -> {b}": round(at[b] - at[a], 2) for a, b in itertools.pairwise(order)}
    return {"ledger": kind, "steps_s": steps, "whole_s": round(at["stop_returned"] - at["landed"], 2),
            "instance_state": state,
            "pushes": len(bridge.statuses), "acknowledged": len(bridge.acked)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--ledgers", default="firestore,sqlite", help="comma-separated: firestore, sqlite")
    args = parser.parse_args(argv)
    sys.path[:0] = [str(ROOT / "shared"), str(ROOT)]
    from burnguard.app.runtime import tune_arrow
    from tests.bench.data import cur_file
    from tests.emulators import start_firestore_emulator, start_moto_server, start_pubsub_emulator, stop_process

    tune_arrow()
    path = cur_file(args.rows, "2024-09")
    logs = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    started = [start_moto_server(logs), start_pubsub_emulator(logs), start_firestore_emulator(logs)]
    try:
        for emulator, _proc in started:
            os.environ.update(emulator.env)
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        project = started[1][0].project
        results = [run_once(kind, path, project, logs) for kind in args.ledgers.split(",")]
    finally:
        for _emulator, proc in started:
            stop_process(proc)
    figures = {"rows": args.rows, "file_mb": round(path.stat().st_size / 1e6, 1), "runs": results,
               "target": "whole under 60 s"}
    for r in results:
        print(f"\n{args.rows:,} CUR rows, ledger {r['ledger']}:", file=sys.stderr)
        for step, s in r["steps_s"].items():
            print(f"  {step:<28} {s:>7.2f} s", file=sys.stderr)
        print(f"  {'whole (landed -> stopped)':<28} {r['whole_s']:>7.2f} s   (target < 60 s; instance "
              f"{r['instance_state']})", file=sys.stderr)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
