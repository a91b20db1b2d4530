"""Big deliveries on AWS: a Lambda runs 15 minutes at most, so a delivery of many parts (20M
rows in 40 parts) is ingested one part per invocation. The manifest's invocation queues one
part job per file on the parts queue (moto's SQS); each job is an invocation of its own; the
one that finds every part recorded (S3 markers) publishes the closing summary.

Here: 40 parts (small ones: the mechanism, not the volume), jobs consumed in a shuffled order
and some twice, against moto's S3 and SQS and the Pub/Sub emulator."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from burnguard.app import aws as bootstrap
from burnguard.core.messages import decode_summary
from tests.functions.aws_helpers import BUCKET, LambdaContext, Topic, cur_delivery, s3_notification, sqs_wrap
from tests.functions.slash_events import load
from tests.helpers import cents

pytestmark = pytest.mark.emulator
handler = load("aws", "ingest.py").lambda_handler
STATE = "burnguard-state-parts"


@pytest.fixture
def world(aws: Any, pubsub: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    for bucket in (BUCKET, STATE):
        s3.create_bucket(Bucket=bucket)
    parts = sqs.create_queue(QueueName="burnguard-parts")["QueueUrl"]
    dlq = sqs.create_queue(QueueName="burnguard-ingest-dlq")["QueueUrl"]
    topic = Topic(pubsub.project)
    for k, v in {"BURNGUARD_TOPIC": topic.path, "BURNGUARD_STATE_BUCKET": STATE, "BURNGUARD_PARTS_QUEUE_URL": parts,
                 "BURNGUARD_DEAD_LETTER_URL": dlq, "BURNGUARD_FAN_OUT_PARTS": "2"}.items():
        monkeypatch.setenv(k, v)
    bootstrap.ingest_app.cache_clear()
    yield {"s3": s3, "sqs": sqs, "parts": parts, "dlq": dlq, "topic": topic}
    bootstrap.ingest_app.cache_clear()
    topic.close()


def _receive_all(sqs: Any, url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return out
        for m in got:
            out.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_forty_parts_one_invocation_each_close_the_delivery_once(world: dict[str, Any]) -> None:
    d = cur_delivery(world["s3"], parts=40, rows_per_part=150)
    result = handler(s3_notification(BUCKET, d.manifest_keys[1]), LambdaContext())
    assert result["results"][0]["action"] == "fanned-out" and result["results"][0]["parts"] == 40
    # The period-folder copy of the manifest: the same delivery, not fanned out twice.
    again = handler(s3_notification(BUCKET, d.manifest_keys[0]), LambdaContext())
    assert again["results"][0]["action"] == "skipped"
    jobs = _receive_all(world["sqs"], world["parts"])
    assert len(jobs) == 40
    assert sorted(json.loads(j["Body"])["burnguard_part"]["part"] for j in jobs) == sorted(d.keys)
    assert world["topic"].drain() == []  # nothing read in the manifest's invocation
    order = jobs + random.Random(3).sample(jobs, 5)  # five jobs delivered twice (SQS is at-least-once)
    random.Random(5).shuffle(order)
    for job in order:  # batch size 1: each part is an invocation of its own
        out = handler(sqs_wrap(job["Body"]), LambdaContext())
        assert out == {"batchItemFailures": []}
    messages = world["topic"].drain()
    summaries = [decode_summary(m) for m in messages if m.attributes["kind"] == "delivery-summary"]
    assert len(summaries) == 1
    summary = summaries[0]
    assert [f.key for f in summary.files] == d.keys  # the manifest's order, whatever the jobs' order
    assert summary.totals.rows == d.rows() == 6000
    assert cents(summary.totals.billed["USD"]) == cents(d.expected_billed())
    chunk_ids = {m.message_id for m in messages if m.attributes["kind"] == "line-items"}
    assert chunk_ids == set(summary.chunk_ids)


def test_a_malformed_part_keeps_the_fanned_out_delivery_open_and_is_dead_lettered(world: dict[str, Any]) -> None:
    d = cur_delivery(world["s3"], parts=4, rows_per_part=200, corrupt=2)
    handler(s3_notification(BUCKET, d.manifest_keys[1]), LambdaContext())
    for job in _receive_all(world["sqs"], world["parts"]):
        assert handler(sqs_wrap(job["Body"]), LambdaContext()) == {"batchItemFailures": []}
    kinds = [m.attributes["kind"] for m in world["topic"].drain()]
    assert "delivery-summary" not in kinds
    dead = [json.loads(m["Body"]) for m in _receive_all(world["sqs"], world["dlq"])]
    assert len(dead) == 1 and d.keys[2] in dead[0]["reason"]
    assert dead[0]["event"]  # the part job itself, to replay once the file is fixed
