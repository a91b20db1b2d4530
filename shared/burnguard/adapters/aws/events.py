"""What an AWS trigger says was created: S3 objects from every shape the ingest Lambda receives.

Shapes (read with aws-lambda-powertools' event source data classes):

* S3 event notification (``{"Records": [{"eventSource": "aws:s3", "s3": {...}}]}``), delivered
  to the Lambda directly, or as the body of an SQS message, or as the ``Message`` of an SNS
  notification (itself directly or inside an SQS body: SNS → SQS without raw delivery);
* EventBridge ``"detail-type": "Object Created"`` from ``"source": "aws.s3"``, directly or as
  an SQS body (EventBridge → SQS target);
* ``s3:TestEvent`` (sent once when a notification is configured): nothing created.

Keys: S3 notifications URL-encode keys (``+`` for a space, ``%3D`` for ``=``); both shapes go
through :func:`burnguard.core.delivery.parse_s3_key` (``unquote_plus``), which leaves a key that
was not encoded unchanged as long as it has no ``+`` or ``%`` (true of every export layout).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, S3Event, SNSEvent, SQSEvent
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventBridgeNotificationEvent

from burnguard.core.delivery import parse_s3_key
from burnguard.core.errors import InputError

#: The one key an ingest part job carries (see ``burnguard.services.parts``).
PART_JOB_KEY = "burnguard_part"


@dataclass(frozen=True)
class CreatedObject:
    bucket: str
    key: str  # decoded
    etag: str | None = None
    size: int | None = None
    event_id: str | None = None

    @property
    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        if self.etag:
            meta["etag"] = self.etag
        if self.size is not None:
            meta["size"] = self.size
        return meta


def is_sqs_event(event: Mapping[str, Any]) -> bool:
    records = event.get("Records")
    return (isinstance(records, list) and bool(records) and isinstance(records[0], Mapping)
            and records[0].get("eventSource") == "aws:sqs")


def is_sns_event(event: Mapping[str, Any]) -> bool:
    records = event.get("Records")
    return (isinstance(records, list) and bool(records) and isinstance(records[0], Mapping)
            and records[0].get("EventSource") == "aws:sns")


def _decoded(raw_key: str) -> str:
    return parse_s3_key(raw_key).key


def _from_s3_notification(event: Mapping[str, Any]) -> Iterator[CreatedObject]:
    for record in S3Event(dict(event)).records:
        if record.get("eventSource") != "aws:s3":
            raise InputError(f"a record of {record.get('eventSource')!r} in an S3 notification", field="eventSource")
        if not str(record.event_name).startswith("ObjectCreated"):
            continue  # removals, restores: nothing to ingest
        obj = record.s3.get_object
        yield CreatedObject(record.s3.bucket.name, _decoded(obj.key), obj.etag or None,
                            obj.get("size"), obj.get("sequencer"))


def _from_eventbridge(event: Mapping[str, Any]) -> Iterator[CreatedObject]:
    bridge = EventBridgeEvent(dict(event))
    if bridge.source != "aws.s3":
        raise InputError(f"an EventBridge event from {bridge.source!r}, not aws.s3", field="source")
    if bridge.detail_type != "Object Created":
        return
    detail = S3EventBridgeNotificationEvent(dict(event)).detail
    yield CreatedObject(detail.bucket.name, _decoded(detail.object.key), detail.object.etag or None,
                        detail.object.size, bridge.get_id)


def created_objects(event: Mapping[str, Any]) -> list[CreatedObject]:
    """The objects a direct trigger (S3 notification, EventBridge, or an SNS notification
    wrapping one) announces; raises :class:`InputError` for any other shape."""
    if not isinstance(event, Mapping):
        raise InputError("event is not a JSON object")
    if event.get("Event") == "s3:TestEvent":
        return []
    if "detail-type" in event and "detail" in event:
        return list(_from_eventbridge(event))
    records = event.get("Records")
    if isinstance(records, list) and records:
        first = records[0] if isinstance(records[0], Mapping) else {}
        if first.get("eventSource") == "aws:s3":
            return list(_from_s3_notification(event))
        if first.get("EventSource") == "aws:sns":
            out: list[CreatedObject] = []
            for record in SNSEvent(dict(event)).records:
                out.extend(created_objects(_json(record.sns.message, "Sns.Message")))
            return out
    if event.get("Type") == "Notification" and isinstance(event.get("Message"), str):
        return created_objects(_json(event["Message"], "Message"))  # SNS → SQS, not raw
    raise InputError("not an S3 object event: expected an S3 notification, an EventBridge 'Object Created' "
                     "event, or either wrapped in SNS or SQS")


def _json(text: str, field: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        raise InputError("is not JSON", field=field) from None
    if not isinstance(value, dict):
        raise InputError("is not a JSON object", field=field)
    return value


def sqs_body(body: str) -> dict[str, Any]:
    """An SQS record's body as the event it wraps."""
    return _json(body, "body")


def sqs_records(event: Mapping[str, Any]) -> list[Any]:
    return list(SQSEvent(dict(event)).records)
