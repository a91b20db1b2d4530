"""AWS Lambda entry point of EC2 instance state changes: an EventBridge rule
(``EC2 Instance State-change Notification``) in, one ``state-change`` message on the shared queue
out (the guardrail's meter starts or ends the instance's accrual at the event's time). Any other
event is ignored with a log line; a malformed one is dead-lettered with its reason. Everything
else is in ``burnguard.app.aws``."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from burnguard.app import aws as bootstrap

logger = Logger(service="burnguard-instance-event")
metrics = Metrics(namespace="burnguard", service="instance_event")


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path="id")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = bootstrap.instance_event_app().handle_event(event)
    metrics.add_metric(name="state_changes_published", unit=MetricUnit.Count,
                       value=1 if result["action"] == "published" else 0)
    return result
