"""Shared pieces of the AWS function tests: a Lambda context, CUR deliveries written to moto's
S3, the trigger shapes around an object (S3 notification, EventBridge, SQS, SNS), and reading
back what reached the Pub/Sub emulator."""

from __future__ import annotations

import gzip
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from google.cloud import pubsub_v1

from burnguard.core.messages import Message
from tests.bench.gen_cur import csv_lines, generate_table
from tests.helpers import dec
from tests.pubsub_pull import pull_messages

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_MANIFEST = (ROOT / "events/exports/aws/acme-billing-cur/cur/burnguard-hourly/20240901-20241001/"
                   "burnguard-hourly-Manifest.json")
BUCKET = "acme-billing-cur"
PREFIX = "cur/burnguard-hourly/20240901-20241001"


@dataclass
class LambdaContext:
    function_name: str = "burnguard-ingest"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:burnguard-ingest"
    aws_request_id: str = "00000000-0000-0000-0000-000000000001"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


@dataclass
class CurDelivery:
    assembly: str
    keys: list[str]
    manifest_keys: list[str]
    raw: list[bytes]  # the gzip files, as put

    def expected_billed(self) -> Decimal:
        """Sum of lineItem/UnblendedCost over every file, read with gzip and csv (not burnguard)."""
        import csv
        import io

        total = Decimal(0)
        for blob in self.raw:
            reader = csv.DictReader(io.StringIO(gzip.decompress(blob).decode()))
            total += sum((dec(r["lineItem/UnblendedCost"]) for r in reader), Decimal(0))
        return total

    def rows(self) -> int:
        return sum(gzip.decompress(b).count(b"\n") - 1 for b in self.raw)


def cur_delivery(s3: Any, parts: int, rows_per_part: int, *, seed: int = 11, bucket: str = BUCKET,
                 corrupt: int | None = None) -> CurDelivery:
    """Put a CUR delivery of ``parts`` gzip CSV files and its two manifests (period folder and
    assembly folder, as CUR writes them) into ``bucket``. ``corrupt``: that part is truncated."""
    assembly = str(uuid.uuid4())
    name = "burnguard-hourly"
    keys, raw = [], []
    for i in range(parts):
        table = generate_table(rows_per_part, seed + i, start_row=i * rows_per_part)
        data = gzip.compress((",".join(table.column_names) + "\n").encode() + csv_lines(table), mtime=0)
        if corrupt == i:
            data = data[: len(data) // 2]
        key = f"{PREFIX}/{assembly}/{name}-{i + 1}.csv.gz"
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        keys.append(key)
        raw.append(data)
    manifest = json.loads(SAMPLE_MANIFEST.read_text())
    manifest.update(assemblyId=assembly, bucket=bucket, reportKeys=keys)
    body = json.dumps(manifest).encode()
    manifest_keys = [f"{PREFIX}/{name}-Manifest.json", f"{PREFIX}/{assembly}/{name}-Manifest.json"]
    for key in manifest_keys:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    return CurDelivery(assembly, keys, manifest_keys, raw)


def s3_notification(bucket: str, key: str, size: int = 1) -> dict[str, Any]:
    """An S3 event notification record as S3 sends it: the key URL-encoded (quote_plus)."""
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2024-09-21T06:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AROAEXAMPLE"}, "requestParameters": {"sourceIPAddress": "10.0.0.1"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "EXAMPLE"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "burnguard",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": "0123456789abcdef",
                          "sequencer": "0055AED6DCD90281E5"}}}]}


def eventbridge(bucket: str, key: str, size: int = 1) -> dict[str, Any]:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Object Created", "source": "aws.s3",
            "account": "123456789012", "time": "2024-09-21T06:00:00Z", "region": "us-east-1",
            "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": {"version": "0", "bucket": {"name": bucket},
                       "object": {"key": key, "size": size, "etag": "0123456789abcdef", "sequencer": "0055AED6DCD90281E5"},
                       "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012", "source-ip-address": "10.0.0.1",
                       "reason": "PutObject"}}


def sns_wrap(inner: dict[str, Any]) -> dict[str, Any]:
    return {"Records": [{"EventVersion": "1.0", "EventSource": "aws:sns",
                         "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:cur:1",
                         "Sns": {"Type": "Notification", "MessageId": str(uuid.uuid4()),
                                 "TopicArn": "arn:aws:sns:us-east-1:123456789012:cur", "Subject": None,
                                 "Message": json.dumps(inner), "Timestamp": "2024-09-21T06:00:00.000Z",
                                 "SignatureVersion": "1", "Signature": "EXAMPLE", "SigningCertUrl": "EXAMPLE",
                                 "UnsubscribeUrl": "EXAMPLE", "MessageAttributes": {}}}]}


def sqs_wrap(*bodies: dict[str, Any] | str) -> dict[str, Any]:
    return {"Records": [{
        "messageId": str(uuid.uuid4()), "receiptHandle": "AQEB", "eventSource": "aws:sqs",
        "body": b if isinstance(b, str) else json.dumps(b),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1726898400000",
                       "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1726898400001"},
        "messageAttributes": {}, "md5OfBody": "x", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:burnguard-ingest"} for b in bodies]}


class Topic:
    """A fresh topic and subscription on the Pub/Sub emulator."""

    def __init__(self, project: str):
        self.publisher = pubsub_v1.PublisherClient()
        self.subscriber = pubsub_v1.SubscriberClient()
        name = uuid.uuid4().hex[:10]
        self.path = self.publisher.topic_path(project, f"q-{name}")
        self.subscription = self.subscriber.subscription_path(project, f"s-{name}")
        self.publisher.create_topic(name=self.path)
        self.subscriber.create_subscription(name=self.subscription, topic=self.path)

    def drain(self, expect: int = 0) -> list[Message]:
        """Every message held now (acknowledged), in arrival order; waits, under a deadline, for
        ``expect`` of them first (the handlers publish synchronously, so usually none is awaited)."""
        return pull_messages(self.subscriber, self.subscription, expect)

    def close(self) -> None:
        self.subscriber.close()
