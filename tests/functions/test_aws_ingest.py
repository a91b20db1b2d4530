"""The AWS ingest Lambda end to end: CUR deliveries in moto's S3 (server mode, over HTTP), the
handler driven by every trigger shape, messages on the Pub/Sub emulator.

Oracles read the raw files with gzip and csv; nothing here asks burnguard for the expected side.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from burnguard.app import aws as bootstrap
from burnguard.core.messages import decode_chunk, decode_summary
from tests.functions.aws_helpers import (
    BUCKET,
    LambdaContext,
    Topic,
    cur_delivery,
    eventbridge,
    s3_notification,
    sns_wrap,
    sqs_wrap,
)
from tests.functions.slash_events import load
from tests.helpers import cents

pytestmark = pytest.mark.emulator
handler = load("aws", "ingest.py").lambda_handler
STATE = "burnguard-state-bucket"


@pytest.fixture
def world(aws: Any, pubsub: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    s3 = boto3.client("s3")
    sqs = boto3.client("sqs")
    for bucket in (BUCKET, STATE):
        s3.create_bucket(Bucket=bucket)
    dlq = sqs.create_queue(QueueName="burnguard-ingest-dlq")["QueueUrl"]
    topic = Topic(pubsub.project)
    monkeypatch.setenv("BURNGUARD_TOPIC", topic.path)
    monkeypatch.setenv("BURNGUARD_STATE_BUCKET", STATE)
    monkeypatch.setenv("BURNGUARD_DEAD_LETTER_URL", dlq)
    monkeypatch.delenv("BURNGUARD_GCP_WIF_CONFIG", raising=False)
    bootstrap.ingest_app.cache_clear()
    yield {"s3": s3, "sqs": sqs, "topic": topic, "dlq": dlq}
    bootstrap.ingest_app.cache_clear()
    topic.close()


def _dead_letters(world: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    while True:
        got = world["sqs"].receive_message(QueueUrl=world["dlq"], MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        if not messages:
            return out
        for m in messages:
            out.append(json.loads(m["Body"]))
            world["sqs"].delete_message(QueueUrl=world["dlq"], ReceiptHandle=m["ReceiptHandle"])


def test_three_part_cur_reconciles_to_the_cent_and_repeats_publish_nothing(world: dict[str, Any]) -> None:
    d = cur_delivery(world["s3"], parts=3, rows_per_part=3000)
    # Data files first (skipped: they wait for their manifest), then both manifest copies.
    events = [s3_notification(BUCKET, k) for k in d.keys + d.manifest_keys]
    for event in events:
        handler(event, LambdaContext())
    messages = world["topic"].drain()
    summaries = [m for m in messages if m.attributes["kind"] == "delivery-summary"]
    chunks = [m for m in messages if m.attributes["kind"] == "line-items"]
    assert len(summaries) == 1, "the second manifest copy is the same delivery: published once"
    summary = decode_summary(summaries[0])
    assert [f.key for f in summary.files] == d.keys
    assert summary.totals.rows == d.rows() == 9000
    expected = d.expected_billed()
    assert cents(summary.totals.billed["USD"]) == cents(expected)
    # The chunks carry the rows and the money: their own sums agree with the files too.
    assert {m.message_id for m in chunks} == set(summary.chunk_ids)
    decoded = [decode_chunk(m) for m in chunks]
    assert sum(c.table.num_rows for c in decoded) == 9000
    assert cents(sum((Decimal(v) for c in decoded for v in c.table.column("BilledCost").to_pylist()),
                     Decimal(0))) == cents(expected)
    # The same events again, in another order, and through other triggers: nothing new.
    for event in reversed(events):
        handler(event, LambdaContext())
    handler(eventbridge(BUCKET, d.manifest_keys[1]), LambdaContext())
    handler(sqs_wrap(sns_wrap(s3_notification(BUCKET, d.manifest_keys[0]))), LambdaContext())
    assert world["topic"].drain() == []
    assert _dead_letters(world) == []


@pytest.mark.parametrize("shape", ["s3-notification", "eventbridge", "sns(s3)", "sqs(s3)", "sqs(eventbridge)",
                                   "sqs(sns(s3))"])
def test_every_trigger_shape_ingests_the_delivery(world: dict[str, Any], shape: str) -> None:
    d = cur_delivery(world["s3"], parts=1, rows_per_part=500)
    key = d.manifest_keys[1]
    event = {"s3-notification": lambda: s3_notification(BUCKET, key),
             "eventbridge": lambda: eventbridge(BUCKET, key),
             "sns(s3)": lambda: sns_wrap(s3_notification(BUCKET, key)),
             "sqs(s3)": lambda: sqs_wrap(s3_notification(BUCKET, key)),
             "sqs(eventbridge)": lambda: sqs_wrap(eventbridge(BUCKET, key)),
             "sqs(sns(s3))": lambda: sqs_wrap(sns_wrap(s3_notification(BUCKET, key))["Records"][0]["Sns"])}[shape]()
    result = handler(event, LambdaContext())
    if shape.startswith("sqs"):
        assert result == {"batchItemFailures": []}
    summaries = [m for m in world["topic"].drain() if m.attributes["kind"] == "delivery-summary"]
    assert len(summaries) == 1
    assert cents(decode_summary(summaries[0]).totals.billed["USD"]) == cents(d.expected_billed())


def test_a_key_with_spaces_and_equals_is_decoded(world: dict[str, Any]) -> None:
    """S3 notifications URL-encode keys: a Data Exports-like path with '=' and a space."""
    key = "some prefix/not an export=1/readme.txt"
    world["s3"].put_object(Bucket=BUCKET, Key=key, Body=b"hello")
    result = handler(s3_notification(BUCKET, key), LambdaContext())
    assert result["results"][0]["key"] == key
    assert result["results"][0]["action"] == "skipped"


def test_an_object_of_no_known_export_is_ignored_with_a_log_line(world: dict[str, Any],
                                                                caplog: pytest.LogCaptureFixture) -> None:
    world["s3"].put_object(Bucket=BUCKET, Key="uploads/holiday.jpg", Body=b"\xff\xd8")
    with caplog.at_level("INFO", logger="burnguard.aws"):
        result = handler(s3_notification(BUCKET, "uploads/holiday.jpg"), LambdaContext())
    assert result["results"][0]["action"] == "skipped"
    assert any("ignored s3://acme-billing-cur/uploads/holiday.jpg" in r.getMessage() for r in caplog.records)
    assert world["topic"].drain() == []


def test_a_malformed_part_never_counts_and_its_reason_is_dead_lettered(world: dict[str, Any]) -> None:
    d = cur_delivery(world["s3"], parts=3, rows_per_part=2000, corrupt=1)
    result = handler(sqs_wrap(s3_notification(BUCKET, d.manifest_keys[1])), LambdaContext())
    assert result == {"batchItemFailures": []}  # handled: the reason went to the DLQ
    kinds = [m.attributes["kind"] for m in world["topic"].drain()]
    assert "delivery-summary" not in kinds
    dead = _dead_letters(world)
    assert len(dead) == 1
    assert d.keys[1] in dead[0]["reason"] and "truncated or corrupt" in dead[0]["reason"]


def test_without_a_dead_letter_queue_a_bad_sqs_record_fails_alone(world: dict[str, Any],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BURNGUARD_DEAD_LETTER_URL")
    bootstrap.ingest_app.cache_clear()
    good = cur_delivery(world["s3"], parts=1, rows_per_part=300)
    event = sqs_wrap("not json at all", s3_notification(BUCKET, good.manifest_keys[1]))
    result = handler(event, LambdaContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert [m.attributes["kind"] for m in world["topic"].drain()].count("delivery-summary") == 1


def test_a_missing_part_is_retried_not_dead_lettered(world: dict[str, Any]) -> None:
    d = cur_delivery(world["s3"], parts=2, rows_per_part=300)
    world["s3"].delete_object(Bucket=BUCKET, Key=d.keys[1])
    good = cur_delivery(world["s3"], parts=1, rows_per_part=300, seed=99)
    event = sqs_wrap(s3_notification(BUCKET, d.manifest_keys[1]), s3_notification(BUCKET, good.manifest_keys[1]))
    result = handler(event, LambdaContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert _dead_letters(world) == []
    # Every record of the batch failing: powertools fails the whole invocation (SQS retries it).
    with pytest.raises(BatchProcessingError):
        handler(sqs_wrap(s3_notification(BUCKET, d.manifest_keys[1])), LambdaContext())
    # The part arrives late; the retried event completes the delivery.
    world["s3"].put_object(Bucket=BUCKET, Key=d.keys[1], Body=d.raw[1])
    assert handler(sqs_wrap(s3_notification(BUCKET, d.manifest_keys[1])), LambdaContext()) == {"batchItemFailures": []}
    summaries = [decode_summary(m) for m in world["topic"].drain() if m.attributes["kind"] == "delivery-summary"]
    assert sorted(s.totals.rows for s in summaries) == [300, 600]


def _lambda_sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The Lambda SQS event for messages received from moto's queue (their bodies untouched)."""
    return {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                         "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                         "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"}
                        for m in messages]}


def _receive(sqs: Any, url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return out
        out.extend(got)


def test_notifications_made_by_moto_s3_and_sns_drive_the_handler(world: dict[str, Any]) -> None:
    """Not constructed events: moto's S3 notifies an SQS queue of every object put (real
    notification records, URL-encoded keys), and an SNS topic fans the same JSON out to an SQS
    subscription (the SNS envelope moto writes)."""
    s3, sqs = world["s3"], world["sqs"]
    sns = boto3.client("sns")
    queue = sqs.create_queue(QueueName="cur-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    _receive(sqs, queue)  # the s3:TestEvent, if any
    d = cur_delivery(world["s3"], parts=2, rows_per_part=700)
    notified = _receive(sqs, queue)
    assert len(notified) == 4  # two parts, two manifests
    result = handler(_lambda_sqs_event(notified), LambdaContext())
    assert result == {"batchItemFailures": []}
    [summary] = [decode_summary(m) for m in world["topic"].drain() if m.attributes["kind"] == "delivery-summary"]
    assert summary.totals.rows == 1400 and cents(summary.totals.billed["USD"]) == cents(d.expected_billed())
    # Through SNS → SQS (not raw): a new delivery's manifest notification, as moto's SNS wraps it.
    topic_arn = sns.create_topic(Name="cur-events")["TopicArn"]
    fanout = sqs.create_queue(QueueName="cur-events-sns")["QueueUrl"]
    fanout_arn = sqs.get_queue_attributes(QueueUrl=fanout, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=fanout_arn)
    d2 = cur_delivery(world["s3"], parts=1, rows_per_part=500, seed=3)
    manifest_record = next(json.loads(m["Body"]) for m in _receive(sqs, queue)
                           if d2.manifest_keys[1].rsplit("/", 1)[-1] in m["Body"] and d2.assembly in m["Body"])
    sns.publish(TopicArn=topic_arn, Message=json.dumps(manifest_record), Subject="Amazon S3 Notification")
    wrapped = _receive(sqs, fanout)
    assert len(wrapped) == 1 and json.loads(wrapped[0]["Body"])["Type"] == "Notification"
    assert handler(_lambda_sqs_event(wrapped), LambdaContext()) == {"batchItemFailures": []}
    [summary2] = [decode_summary(m) for m in world["topic"].drain() if m.attributes["kind"] == "delivery-summary"]
    assert summary2.totals.rows == 500


def test_the_public_lambda_sample_events(world: dict[str, Any]) -> None:
    """aws-lambda-go's sample events (tests/fixtures/public): an S3 notification of
    ``Happy%20Face.jpg`` is decoded and ignored; an SQS message whose body is not an event is
    dead-lettered with its reason; an SNS notification that wraps no S3 event likewise."""
    from tests.helpers import fixture

    s3_event = json.loads(fixture("aws-lambda-go-events/s3-event.json").read_text())
    result = handler(s3_event, LambdaContext())
    assert [(r["key"], r["action"]) for r in result["results"]] == [("Happy Face.jpg", "skipped")]
    sqs_event = json.loads(fixture("aws-lambda-go-events/sqs-event.json").read_text())
    assert handler(sqs_event, LambdaContext()) == {"batchItemFailures": []}
    sns_event = json.loads(fixture("aws-lambda-go-events/sns-event.json").read_text())
    handler(sns_event, LambdaContext())
    reasons = [d["reason"] for d in _dead_letters(world)]
    assert len(reasons) == 2 and "body" in reasons[0] and "not JSON" in reasons[0]
    assert "Sns.Message" in reasons[1]
    assert world["topic"].drain() == []
