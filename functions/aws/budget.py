"""AWS Lambda entry point of AWS Budgets notifications: SNS in, one ``budget-alert`` message per
notification on the shared queue out. A message that is not a budget notification is
dead-lettered with its reason. Everything else is in ``burnguard.app.aws``."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from burnguard.app import aws as bootstrap

logger = Logger(service="burnguard-budget")
metrics = Metrics(namespace="burnguard", service="budget")


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path="Records[0].Sns.MessageId")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    results = bootstrap.budget_app().handle_event(event)
    published = sum(1 for r in results if r["action"] == "published")
    metrics.add_metric(name="budget_alerts_published", unit=MetricUnit.Count, value=published)
    return {"results": results}
