"""Write the AWS sample events of this folder (deterministic: run it again, same bytes).

Every event is CONSTRUCTED in a documented shape: the S3 event notification (message structure
version 2.1, keys URL-encoded), the EventBridge "Object Created" event of S3, and both wrapped
the ways AWS delivers them (SNS Lambda event, SQS Lambda event; SNS → SQS without raw delivery
puts the SNS envelope in the SQS body). The objects they name are the sample CUR delivery under
``events/exports/aws/acme-billing-cur``.

    python events/aws/make_events.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

HERE = Path(__file__).resolve().parent
BUCKET = "acme-billing-cur"
ASSEMBLY = "3f2a9c4e-7b1d-4e6a-9c8f-2d5b7a1e0c93"
MANIFEST = f"cur/burnguard-hourly/20240901-20241001/{ASSEMBLY}/burnguard-hourly-Manifest.json"
PERIOD_MANIFEST = "cur/burnguard-hourly/20240901-20241001/burnguard-hourly-Manifest.json"
DATA = f"cur/burnguard-hourly/20240901-20241001/{ASSEMBLY}/burnguard-hourly-1.csv.gz"


def s3_notification(key: str, size: int, etag: str) -> dict[str, Any]:
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2024-09-21T06:12:31.482Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AROAEXAMPLEBILLINGREPORTS"},
        "requestParameters": {"sourceIPAddress": "203.0.113.10"},
        "responseElements": {"x-amz-request-id": "7C1A4B2E9D3F5A60", "x-amz-id-2": "EXAMPLE/id2"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "burnguard-ingest",
               "bucket": {"name": BUCKET, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                          "arn": f"arn:aws:s3:::{BUCKET}"},
               "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag,
                          "sequencer": "0066EE63DF1D2B3C4D"}}}]}


def eventbridge(key: str, size: int, etag: str) -> dict[str, Any]:
    return {"version": "0", "id": "5f1d3c2b-8a7e-4e0f-9b6a-1c2d3e4f5a6b", "detail-type": "Object Created",
            "source": "aws.s3", "account": "123456789012", "time": "2024-09-21T06:12:31Z", "region": "us-east-1",
            "resources": [f"arn:aws:s3:::{BUCKET}"],
            "detail": {"version": "0", "bucket": {"name": BUCKET},
                       "object": {"key": key, "size": size, "etag": etag, "sequencer": "0066EE63DF1D2B3C4D"},
                       "request-id": "7C1A4B2E9D3F5A60", "requester": "123456789012",
                       "source-ip-address": "203.0.113.10", "reason": "PutObject"}}


def sns_envelope(inner: dict[str, Any]) -> dict[str, Any]:
    return {"Type": "Notification", "MessageId": "0b6f5e1c-3d2a-5b4c-8e7f-6a5b4c3d2e1f",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:acme-billing-cur-events",
            "Subject": "Amazon S3 Notification", "Message": json.dumps(inner),
            "Timestamp": "2024-09-21T06:12:31.610Z", "SignatureVersion": "1", "Signature": "EXAMPLE",
            "SigningCertUrl": "EXAMPLE", "UnsubscribeUrl": "EXAMPLE", "MessageAttributes": {}}


def sns_event(inner: dict[str, Any]) -> dict[str, Any]:
    return {"Records": [{"EventVersion": "1.0", "EventSource": "aws:sns",
                         "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:acme-billing-cur-events:"
                                                 "2f3e4d5c-6b7a-4980-a1b2-c3d4e5f6a7b8",
                         "Sns": sns_envelope(inner)}]}


def sqs_event(*bodies: Any) -> dict[str, Any]:
    return {"Records": [{
        "messageId": f"9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b{i:02d}", "receiptHandle": "AQEBexample",
        "body": json.dumps(b), "attributes": {
            "ApproximateReceiveCount": "1", "SentTimestamp": "1726899151700", "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1726899151710"},
        "messageAttributes": {}, "md5OfBody": "EXAMPLE", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:burnguard-ingest", "awsRegion": "us-east-1"}
        for i, b in enumerate(bodies)]}


def main() -> None:
    root = HERE.parents[0] / "exports" / "aws" / BUCKET
    manifest = root / MANIFEST
    size = manifest.stat().st_size
    etag = "9b2cf535f27731c974343645a3985328"
    events = {
        "ingest.s3-notification.manifest.json": s3_notification(MANIFEST, size, etag),
        "ingest.s3-notification.period-manifest.json": s3_notification(PERIOD_MANIFEST, size, etag),
        "ingest.s3-notification.data-file.json": s3_notification(DATA, (root / DATA).stat().st_size, etag),
        "ingest.s3-notification.not-an-export.json": s3_notification("exports/readme and notes+1.txt", 12, etag),
        "ingest.eventbridge.manifest.json": eventbridge(MANIFEST, size, etag),
        "ingest.sns.s3-notification.json": sns_event(s3_notification(MANIFEST, size, etag)),
        "ingest.sqs.s3-notification.json": sqs_event(s3_notification(MANIFEST, size, etag)),
        "ingest.sqs.eventbridge.json": sqs_event(eventbridge(MANIFEST, size, etag)),
        "ingest.sqs.sns.s3-notification.json": sqs_event(sns_envelope(s3_notification(MANIFEST, size, etag))),
        "ingest.sqs.test-event-and-manifest.json": sqs_event(
            {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2024-09-21T06:00:00.000Z",
             "Bucket": BUCKET, "RequestId": "5582815E1AEA5ADF", "HostId": "EXAMPLE"},
            s3_notification(MANIFEST, size, etag)),
    }
    for name, event in events.items():
        (HERE / name).write_text(json.dumps(event, indent=2) + "\n")


if __name__ == "__main__":
    main()
