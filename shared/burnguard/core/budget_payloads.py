"""Envelopes and payloads of native budget notifications, as pydantic models (no cloud SDK).

SNS notifications (HTTP/S envelope or Lambda record), Pub/Sub ``messagePublished`` CloudEvents
and their ``MessagePublishedData``, the Google Cloud budget message (data and attributes), the
Azure Action Group payloads (legacy and common alert schema). :func:`validate` turns the first
validation error into an :class:`~burnguard.core.errors.InputError` naming the field the way
the parsers of :mod:`burnguard.core.budget` always did (``Sns.Message``,
``data.message.attributes.budgetId``, ``data.alertContext.AlertData.BudgetName``).

The shapes follow the clouds' documentation (and powertools' ``SnsModel``/``PubSubModel``,
which the core cannot import); unknown keys are ignored, amounts stay text where the cloud
writes currency-formatted text (the parsers read the currency from it).
"""

from __future__ import annotations

import base64
import binascii
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from burnguard.core.errors import InputError
from burnguard.core.money import NumberError, parse_amount

PUBSUB_MESSAGE_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"

M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: Any, field: str = "") -> M:
    """``model`` of ``data``, or an :class:`InputError` on the first problem, its field named
    by the error's location under the prefix ``field``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(p for p in (field, *(str(x) for x in error["loc"])) if p)
        raise InputError(_reason(error), field=where or None) from None


def _reason(error: Any) -> str:
    kind, given = error["type"], error.get("input")
    if kind == "missing":
        return "missing"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be an object, got {type(given).__name__}"
    if kind == "string_type":
        return f"must be a string, got {type(given).__name__}"
    return str(error["msg"])


# --------------------------------------------------------------------------- field types


def _text(value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise PydanticCustomError("missing", "missing")
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "must be a string, got {kind}", {"kind": type(value).__name__})
    return value.strip()


def _optional_text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _number(value: Any) -> Decimal:
    """A JSON number (read as ``Decimal``) or a formatted amount."""
    if value is None:
        raise PydanticCustomError("missing", "missing")
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise PydanticCustomError("number", "must be a number, got {got}", {"got": repr(value)})
    if isinstance(value, str):
        return parse_text_amount(value)
    return Decimal(value)


def parse_text_amount(text: str) -> Decimal:
    try:
        return parse_amount(text)
    except NumberError as exc:
        raise PydanticCustomError("number", "not an amount: {why}", {"why": str(exc)}) from None


def _base64(value: Any) -> bytes:
    if value is None:
        raise PydanticCustomError("missing", "missing")
    if not isinstance(value, str):
        raise PydanticCustomError("base64", "must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PydanticCustomError("base64", "not base64 ({why})", {"why": str(exc)}) from None


#: A non-blank string, stripped (``missing`` when absent or blank).
Text = Annotated[str, BeforeValidator(_text)]
#: A non-blank string, stripped, or ``None`` (anything else is ignored, as the clouds vary).
OptionalText = Annotated[str | None, BeforeValidator(_optional_text)]
Number = Annotated[Decimal, BeforeValidator(_number)]
Base64 = Annotated[bytes, BeforeValidator(_base64)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


# --------------------------------------------------------------------------- AWS: SNS


class SnsNotification(_Model):
    """An SNS notification: the HTTP/S envelope, or a Lambda record's ``Sns`` (which spells
    ``SigningCertUrl``; neither is read: the signature is the HTTP endpoint's business)."""

    type: str | None = Field(None, alias="Type")
    message: Text = Field(alias="Message")
    timestamp: Annotated[str | None, Field(strict=True)] = Field(None, alias="Timestamp")
    subject: str | None = Field(None, alias="Subject")
    topic_arn: str = Field("", alias="TopicArn")
    message_id: str = Field("", alias="MessageId")

    @field_validator("type")
    @classmethod
    def _notification(cls, value: str | None) -> str | None:
        if value is not None and value != "Notification":
            raise PydanticCustomError("sns_type", "SNS message of type {kind} is not a notification",
                                      {"kind": repr(value)})
        return value


class SnsRecord(_Model):
    """One record of a Lambda SNS event."""

    sns: SnsNotification = Field(alias="Sns")


# --------------------------------------------------------------------------- Google Cloud: Pub/Sub


class PubsubMessage(_Model):
    """A Pub/Sub message as push and CloudEvents carry it (some clients write the ids twice,
    ``messageId`` and ``message_id``: they must agree)."""

    data: Base64
    attributes: Annotated[dict[str, Any], BeforeValidator(lambda v: v or {})] = Field(default_factory=dict)
    message_id_snake: Any = Field(None, alias="message_id")
    message_id: Any = Field(None, alias="messageId")
    publish_time_snake: Any = Field(None, alias="publish_time")
    publish_time: Any = Field(None, alias="publishTime")

    @field_validator("message_id", "publish_time")
    @classmethod
    def _agree(cls, value: Any, info: ValidationInfo) -> Any:
        snake = info.data.get(f"{info.field_name}_snake")
        camel = "messageId" if info.field_name == "message_id" else "publishTime"
        if value is not None and snake is not None and value != snake:
            raise PydanticCustomError("disagree", "{camel} {a} and {snake} {b} disagree",
                                      {"camel": camel, "a": repr(value), "snake": info.field_name, "b": repr(snake)})
        return value if value is not None else snake


class MessagePublishedData(_Model):
    message: PubsubMessage


class PubsubCloudEvent(_Model):
    """A ``google.cloud.pubsub.topic.v1.messagePublished`` CloudEvent (structured form)."""

    type: str | None = None
    time: Any = None
    data: MessagePublishedData

    @field_validator("type")
    @classmethod
    def _published(cls, value: str | None) -> str | None:
        if value is not None and value != PUBSUB_MESSAGE_PUBLISHED:
            raise PydanticCustomError("event_type", "CloudEvent type {kind} is not {want}",
                                      {"kind": repr(value), "want": PUBSUB_MESSAGE_PUBLISHED})
        return value


# --------------------------------------------------------------------------- Google Cloud: the budget


class GcpBudgetAttributes(_Model):
    schema_version: Any = Field(None, alias="schemaVersion")
    budget_id: Text = Field(alias="budgetId")
    billing_account_id: OptionalText = Field(None, alias="billingAccountId")

    @field_validator("schema_version")
    @classmethod
    def _version_1(cls, value: Any) -> Any:
        if value is not None and str(value).split(".")[0] != "1":
            raise PydanticCustomError("schema_version", "unsupported schema version {v} (burnguard reads 1.x)",
                                      {"v": repr(value)})
        return value


class GcpBudgetNotification(_Model):
    budget_display_name: Text = Field(alias="budgetDisplayName")
    currency_code: Text = Field(alias="currencyCode")
    cost_amount: Number = Field(alias="costAmount")
    budget_amount: Number = Field(alias="budgetAmount")
    alert_threshold_exceeded: Number | None = Field(None, alias="alertThresholdExceeded")
    forecast_threshold_exceeded: Number | None = Field(None, alias="forecastThresholdExceeded")
    cost_interval_start: Text = Field(alias="costIntervalStart")

    @field_validator("currency_code")
    @classmethod
    def _iso(cls, value: str) -> str:
        code = value.upper()
        if len(code) != 3 or not code.isascii() or not code.isalpha():
            raise PydanticCustomError("currency", "must be an ISO 4217 code, got {got}", {"got": repr(code)})
        return code


# --------------------------------------------------------------------------- Azure: Action Group


class AzurePayload(_Model):
    schema_id: Any = Field(None, alias="schemaId")
    data: dict[str, Any]


class _AzureBudget(_Model):
    """What both schemas say of the budget (their amounts are text: the currency is read from it)."""

    budget_name: Text = Field(alias="BudgetName")
    unit: OptionalText = Field(None, alias="Unit")
    budget_type: OptionalText = Field(None, alias="BudgetType")


class AzureLegacyBudget(_AzureBudget):
    """``"AIP Budget Notification"``: every value a string."""

    subscription_id: OptionalText = Field(None, alias="SubscriptionId")
    billing_account_id: OptionalText = Field(None, alias="BillingAccountId")
    billing_profile_id: OptionalText = Field(None, alias="BillingProfileId")
    resource_group: OptionalText = Field(None, alias="ResourceGroup")
    spending_amount: Text = Field(alias="SpendingAmount")
    budget: Text = Field(alias="Budget")
    notification_threshold_amount: Text = Field(alias="NotificationThresholdAmount")
    budget_start_date: Text = Field(alias="BudgetStartDate")


class AzureEssentials(_Model):
    monitoring_service: Any = Field(None, alias="monitoringService")
    fired_date_time: Any = Field(None, alias="firedDateTime")
    alert_id: OptionalText = Field(None, alias="alertId")

    @field_validator("monitoring_service")
    @classmethod
    def _cost_alerts(cls, value: Any) -> Any:
        if value != "CostAlerts":
            raise PydanticCustomError("service", "monitoringService {got} is not a budget alert "
                                      "(expected 'CostAlerts')", {"got": repr(value)})
        return value


class AzureCommonBudget(_AzureBudget):
    """``alertContext.AlertData`` of the common alert schema: amounts currency-formatted."""

    scope: OptionalText = Field(None, alias="Scope")
    budget_id: OptionalText = Field(None, alias="BudgetId")
    threshold_type: Text = Field(alias="ThresholdType")
    budget_threshold: Text = Field(alias="BudgetThreshold")
    spent_amount: Text = Field(alias="SpentAmount")
    notification_threshold_amount: Text = Field(alias="NotificationThresholdAmount")
    forecasted_total_for_period: OptionalText = Field(None, alias="ForecastedTotalForPeriod")
    budget_start_date: OptionalText = Field(None, alias="BudgetStartDate")

    @field_validator("threshold_type")
    @classmethod
    def _actual_or_forecasted(cls, value: str) -> str:
        if value.casefold() not in ("actual", "forecasted"):
            raise PydanticCustomError("threshold_type", "must be Actual or Forecasted, got {got}", {"got": repr(value)})
        return value.casefold()


class AzureAlertContext(_Model):
    alert_category: Any = Field(None, alias="AlertCategory")
    alert_data: AzureCommonBudget = Field(alias="AlertData")

    @field_validator("alert_category")
    @classmethod
    def _budgets(cls, value: Any) -> Any:
        if value is not None and str(value).casefold() != "budgets":
            raise PydanticCustomError("category", "AlertCategory {got} is not 'budgets'", {"got": repr(value)})
        return value


class AzureCommonAlert(_Model):
    essentials: AzureEssentials
    alert_context: AzureAlertContext = Field(alias="alertContext")
