"""The pydantic envelopes of native budget notifications name the field of the first problem
the way the parsers always did (dotted, by the cloud's own key names)."""

from __future__ import annotations

import base64

import pytest

from burnguard.core.budget_payloads import (
    AzureCommonAlert,
    MessagePublishedData,
    PubsubCloudEvent,
    SnsRecord,
    validate,
)
from burnguard.core.errors import InputError


def field_and_reason(model: type, data: object, prefix: str = "") -> tuple[str | None, str]:
    with pytest.raises(InputError) as err:
        validate(model, data, prefix)  # type: ignore[type-var]
    return err.value.field, err.value.reason


def test_nested_fields_are_named_by_the_clouds_keys() -> None:
    assert field_and_reason(SnsRecord, {"Sns": {"Message": "  "}}) == ("Sns.Message", "missing")
    assert field_and_reason(SnsRecord, {"Sns": "text"}) == ("Sns", "must be an object, got str")
    assert field_and_reason(SnsRecord, {"Sns": {"Message": "m", "Timestamp": 5}})[0] == "Sns.Timestamp"
    assert field_and_reason(AzureCommonAlert, {"essentials": {"monitoringService": "CostAlerts"},
                                               "alertContext": {"AlertData": {"BudgetName": 7}}}, "data") == (
        "data.alertContext.AlertData.BudgetName", "must be a string, got int")


def test_pubsub_ids_written_twice_must_agree() -> None:
    data = base64.b64encode(b"{}").decode()
    same = validate(MessagePublishedData, {"message": {"data": data, "messageId": "1", "message_id": "1"}})
    assert same.message.message_id == "1" and same.message.data == b"{}"
    snake_only = validate(MessagePublishedData, {"message": {"data": data, "publish_time": "2024-01-01T00:00:00Z"}})
    assert snake_only.message.publish_time == "2024-01-01T00:00:00Z"
    field, reason = field_and_reason(MessagePublishedData, {"message": {"data": data, "messageId": "1",
                                                                        "message_id": "2"}})
    assert field == "message.messageId" and "'1'" in reason and "'2'" in reason


def test_a_cloudevent_of_another_type_or_without_data_is_named() -> None:
    assert field_and_reason(PubsubCloudEvent, {"type": "google.cloud.storage.object.v1.finalized",
                                               "data": {}})[0] == "type"
    assert field_and_reason(PubsubCloudEvent, {"type": "google.cloud.pubsub.topic.v1.messagePublished"}) == (
        "data", "missing")
    assert field_and_reason(PubsubCloudEvent, {"data": {"message": {"data": "not base64!"}}})[0] == (
        "data.message.data")
