"""The budget function's use case: a native budget notification in, a ``budget-alert``
message on the queue out (ARCHITECTURE.md: budget function, per cloud)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from burnguard.core.budget import (
    BudgetAlert,
    parse_azure_budget_alert,
    parse_gcp_budget_message,
    parse_gcp_pubsub_cloudevent,
    parse_sns_record,
)
from burnguard.core.errors import InputError
from burnguard.core.messages import Message, encode_budget_alert


def parse_notification(payload: Mapping[str, Any], received_at: datetime | None = None) -> list[BudgetAlert]:
    """Recognize any cloud's budget notification by its shape (for the local mode and tests;
    each cloud's function calls its own parser directly)."""
    if isinstance(payload.get("Records"), list):  # AWS Lambda SNS event
        return [parse_sns_record(r) for r in payload["Records"]]
    if "Sns" in payload or (payload.get("Type") == "Notification" and "Message" in payload):
        return [parse_sns_record(payload)]
    if "specversion" in payload or ("message" in payload and isinstance(payload["message"], Mapping)):
        return [parse_gcp_pubsub_cloudevent(payload)]
    if "budgetDisplayName" in payload and "costAmount" in payload:  # decoded Pub/Sub data alone
        return [parse_gcp_budget_message(payload, None, received_at)]
    if "schemaId" in payload:
        return [parse_azure_budget_alert(payload, received_at)]
    raise InputError("not a budget notification of AWS (SNS), Google Cloud (Pub/Sub) or Azure (Action Group)")


def alert_message(alert: BudgetAlert) -> Message:
    return encode_budget_alert(alert, alert.alert_id)


def pubsub_data(data: str | bytes) -> bytes:
    """Pub/Sub push bodies carry ``data`` base64-encoded."""
    return base64.b64decode(data) if isinstance(data, str) else data
