"""AWS Lambda entry point of ingestion: S3 "object created" events in, queue messages out.

Triggers (one function serves them all): S3 event notifications and EventBridge "Object
Created" events, directly (asynchronous invocation), through SNS, or through SQS (then with
partial batch failures); and the part jobs of big deliveries from the parts queue (SQS).
Everything else is in ``burnguard.app.aws`` and ``burnguard.services.parts``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from burnguard.adapters.aws.events import is_sqs_event
from burnguard.app import aws as bootstrap

logger = Logger(service="burnguard-ingest")
metrics = Metrics(namespace="burnguard", service="ingest")
processor = BatchProcessor(event_type=EventType.SQS)


def _count(results: list[dict[str, Any]]) -> None:
    for result in results:
        metrics.add_metric(name=f"objects_{result.get('action', 'unknown')}", unit=MetricUnit.Count, value=1)
        if result.get("messages"):
            metrics.add_metric(name="messages_published", unit=MetricUnit.Count, value=result["messages"])


def record_handler(record: SQSRecord) -> list[dict[str, Any]]:
    logger.set_correlation_id(record.message_id)
    results = bootstrap.ingest_app().handle_record_body(record.body)
    _count(results)
    return results


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if is_sqs_event(event):
        return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                        context=context)
    logger.set_correlation_id(event.get("id") or _s3_request_id(event))
    results = bootstrap.ingest_app().handle_event(event)
    _count(results)
    return {"results": results}


def _s3_request_id(event: dict[str, Any]) -> str | None:
    try:
        return str(event["Records"][0]["responseElements"]["x-amz-request-id"])
    except (KeyError, IndexError, TypeError):
        return None
