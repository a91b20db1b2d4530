"""Native budget notifications of the three clouds, parsed into one canonical :class:`BudgetAlert`.

Every parser is pure: it takes the payload already taken out of its transport (the SNS
``Message`` text, the Pub/Sub message data and attributes, the Action Group JSON body) and
returns a frozen :class:`BudgetAlert`, or raises :class:`~burnguard.core.errors.InputError` naming
the field that is missing or wrong. Envelopes and JSON payloads are read through the pydantic
models of :mod:`burnguard.core.budget_payloads`; the AWS message itself is text. Amounts are
``Decimal`` (JSON numbers are read as ``Decimal``, formatted strings such as ``"$11,111.00"`` are parsed with
:func:`burnguard.core.money.parse_amount`); timestamps are aware UTC.

What each cloud sends (see ``formats.md`` §6), and the decisions taken here:

**AWS Budgets → SNS.** The ``Message`` is plain text, not JSON. Values are read from the
``Key: Value`` block after the prose (``Budget Name``, ``Budget Type``, ``Budgeted Amount``,
``Alert Type``, ``Alert Threshold``, ``<ALERT TYPE> Amount``), never from the prose; the account
comes from the second line (``AWS Account 017790921725``). The message states the threshold as
an amount (``> $0.16``); its share of the budget is derived (``0.16 / 0.20 = 0.8``). The message
does not state the budget period: :attr:`BudgetAlert.period_start` stays ``None`` and the dedupe
key uses the notification date of the first line instead (AWS sends one notification per
threshold per budget period, and an SNS redelivery repeats the same text, so the date is stable
across repeats and distinct across the days of a daily budget). ``Budget Type: Usage`` budgets are
parsed too; their amounts are quantities, and :class:`~burnguard.core.money.Money` then carries the
unit written after the number (or ``"UNITS"``) in place of a currency: check
:attr:`BudgetAlert.is_cost` before adding them to money.

**Google Cloud budgets → Pub/Sub.** The data is JSON (base64 in the CloudEvent), the budget id
and billing account are attributes. Google re-sends the budget state several times a day:

* ``alertThresholdExceeded`` present → ``kind="actual"``, ``threshold`` = that share;
* only ``forecastThresholdExceeded`` present → ``kind="forecasted"``;
* neither → ``kind="state"``, ``threshold=None``: **not a crossing**, only the latest cost of the
  budget. The guardrail must not alert on it; it may use ``spent`` as a fresh reading.

``costIntervalStart`` is midnight US Pacific written in UTC (``2020-11-01T07:00:00Z``): the
instant is kept as :attr:`BudgetAlert.period_start`, and :attr:`BudgetAlert.period_date` is the
calendar date that begins the period. Pacific midnight is 07:00 or 08:00 UTC of the *same*
date, and the documentation's own example writes ``2019-01-01T00:00:00Z``; the date is
therefore that of the instant rounded to the nearest UTC midnight (converting to Pacific time
would put the documented example in December).

**Azure budgets → Action Group.** Two schemas:

* legacy ``"AIP Budget Notification"``: every value is a string; ``NotificationThresholdAmount``
  is an amount (``"8000.0"``) in one Microsoft sample and a share (``"0.8"``) in another. A bare
  value ``<= 1`` is read as a share, anything above as an amount (a share above 100% written
  as ``"1.2"`` is therefore read as an amount of 1.2: Microsoft documents no way to tell them
  apart). The legacy schema has no threshold type: it is taken as ``actual``.
* common alert schema (``monitoringService: "CostAlerts"``): amounts are currency-formatted
  (``"$11,111.00"``); ``BudgetThreshold`` is the *budget amount*, ``NotificationThresholdAmount``
  the threshold amount; ``ThresholdType`` is ``Actual`` or ``Forecasted``.

The currency is the ``Unit`` field when it is an ISO code, else the symbol of the amounts
(``$`` → USD, ``€`` → EUR, ...), else USD (assumption: the Microsoft samples are all USD, and
a budget's amounts are in the billing currency). ``BudgetStartDate`` is the start of the
*budget*, not of the current period (``"11/17/2021 5:40:29 PM -08:00"``), so it is kept as
:attr:`BudgetAlert.budget_start` and ``period_start`` stays ``None``.

**Dedupe.** :attr:`BudgetAlert.alert_id` is a hash of :attr:`BudgetAlert.dedupe_key`:

* AWS: (account, budget name, notification date, alert type, threshold amount);
* GCP: (budget id, costIntervalStart, kind, threshold[, forecast threshold]); a ``state``
  message adds its cost amount, so identical repeats collapse but a changed reading is new;
* Azure: (budget id, or subscription and name; BudgetStartDate; threshold type; threshold), plus
  the month of the alert (fired or received time): BudgetStartDate does not change from one
  period to the next, and without the month the crossing of next month would be dropped as a
  repeat of this month's. When neither time is known the month is left out.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, computed_field, model_validator

from burnguard.core.budget_payloads import (
    PUBSUB_MESSAGE_PUBLISHED,
    AzureCommonAlert,
    AzureLegacyBudget,
    AzurePayload,
    GcpBudgetAttributes,
    GcpBudgetNotification,
    MessagePublishedData,
    PubsubCloudEvent,
    SnsNotification,
    SnsRecord,
    validate,
)
from burnguard.core.clouds import AZURE, Cloud
from burnguard.core.errors import InputError
from burnguard.core.money import Money, NumberError, parse_amount
from burnguard.core.timeparse import TimestampError, parse_timestamp, require_utc

Provider = Cloud
AlertKind = Literal["actual", "forecasted", "state"]

#: Shares of a budget derived from two amounts are rounded to 0.01 % (4 decimal places).
RATIO_QUANTUM = Decimal("0.0001")
#: Currency assumed when a notification names none (see the module docstring).
DEFAULT_CURRENCY = "USD"
#: Placeholder unit of a usage budget whose amounts carry no unit.
UNITS = "UNITS"

AZURE_LEGACY_SCHEMA = "AIP Budget Notification"
AZURE_COMMON_SCHEMA = "azureMonitorCommonAlertSchema"

# Longest symbols first: "US$" before "$".
_SYMBOLS: tuple[tuple[str, str], ...] = (
    ("US$", "USD"),
    ("C$", "CAD"),
    ("A$", "AUD"),
    ("NZ$", "NZD"),
    ("R$", "BRL"),
    ("HK$", "HKD"),
    ("€", "EUR"),
    ("£", "GBP"),
    ("¥", "JPY"),
    ("₹", "INR"),
    ("₩", "KRW"),
    ("₫", "VND"),
    ("$", "USD"),
)
_CODE = re.compile(r"(?<![A-Za-z])([A-Z]{3})(?![A-Za-z])")
_ISO_CODE = re.compile(r"^[A-Z]{3}$")


def _alert_id(provider: str, dedupe_key: Sequence[str]) -> str:
    digest = hashlib.sha256("\x1f".join(dedupe_key).encode("utf-8")).hexdigest()
    return f"budget-{provider}-{digest[:32]}"


class BudgetAlert(BaseModel):
    """A native budget notification of any cloud, in one shape.

    ``threshold`` is a share of the budget (``Decimal("0.8")`` for 80 %), ``threshold_amount``
    the same threshold as money; one of them may be derived from the other and the budget.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Provider
    #: ``actual`` or ``forecasted`` crossing, or ``state`` (GCP update that crossed nothing).
    kind: AlertKind
    #: AWS account id, GCP billing account id, Azure subscription id (or the scope of a
    #: budget defined above a subscription).
    account: str | None = None
    #: Azure budget scope (``/subscriptions/<id>/``, a resource group...); ``None`` elsewhere.
    scope: str | None = None
    budget_name: str
    #: GCP budget id, Azure budget resource id; AWS budgets have none.
    budget_id: str | None = None
    #: ``Cost`` or ``Usage`` (AWS, Azure); GCP budgets are always ``Cost``.
    budget_type: str = "Cost"
    threshold: Decimal | None = None
    threshold_amount: Money | None = None
    #: GCP ``forecastThresholdExceeded`` when the message carries it (even next to an actual one).
    forecast_threshold: Decimal | None = None
    #: Spend so far in the period (``None`` for AWS forecast alerts, which do not state it).
    spent: Money | None = None
    #: Forecast spend for the period (AWS FORECASTED amount, Azure ForecastedTotalForPeriod).
    forecast: Money | None = None
    budget_amount: Money | None = None
    #: Start of the budget period the notification is about, when it says so (GCP).
    period_start: datetime | None = None
    #: The calendar date that begins that period in the provider's billing time zone.
    period_date: date | None = None
    #: Start of the budget itself (Azure ``BudgetStartDate``).
    budget_start: datetime | None = None
    #: When the notification was sent or received (SNS Timestamp, Pub/Sub publishTime,
    #: Azure firedDateTime or the time the webhook was received).
    received_at: datetime | None = None
    #: Where it came from, for the audit log: SNS topic and message id, Pub/Sub message id,
    #: Azure alert id.
    raw_ref: str
    dedupe_key: tuple[str, ...]

    @model_validator(mode="before")
    @classmethod
    def _check_alert_id(cls, data: Any) -> Any:
        """Accept the dumped form back (it carries the computed ``alert_id``), if it agrees."""
        if isinstance(data, Mapping) and "alert_id" in data:
            data = dict(data)
            given = data.pop("alert_id")
            key = data.get("dedupe_key")
            if isinstance(key, (list, tuple)) and given != _alert_id(str(data.get("provider")), [str(k) for k in key]):
                raise ValueError(f"alert_id {given!r} does not match provider and dedupe_key")
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def alert_id(self) -> str:
        """Deterministic id of the crossing: equal for repeats of one notification."""
        return _alert_id(self.provider, self.dedupe_key)

    @property
    def is_crossing(self) -> bool:
        """True for an actual or forecasted threshold crossing; False for a GCP state update."""
        return self.kind != "state"

    @property
    def is_cost(self) -> bool:
        """True when the amounts are money (not a usage budget's quantities)."""
        return self.budget_type.casefold() == "cost"

    @property
    def billing_month(self) -> str | None:
        """``YYYY-MM`` of :attr:`period_date` (``2020-11`` for ``2020-11-01T07:00:00Z``)."""
        return self.period_date.strftime("%Y-%m") if self.period_date else None


# --------------------------------------------------------------------------- shared helpers


def plain_decimal(value: Decimal) -> Decimal:
    """``value`` without trailing fractional zeros and without a positive exponent
    (``80.0`` → ``80``, ``1E+3`` → ``1000``), exactly: no context rounding."""
    if not value.is_finite():
        return value
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    kept = list(digits)
    while exponent < 0 and len(kept) > 1 and kept[-1] == 0:
        kept.pop()
        exponent += 1
    if exponent < 0 and kept == [0]:
        exponent = 0
    if exponent > 0:
        kept += [0] * exponent
        exponent = 0
    return Decimal((sign, tuple(kept), exponent))


_plain = plain_decimal


def _key(value: Decimal | None) -> str:
    """Canonical text of a decimal for dedupe keys: ``0.80`` and ``0.8`` give the same key."""
    return "" if value is None else str(_plain(value))


def _ratio(amount: Decimal, budget: Decimal) -> Decimal | None:
    if budget <= 0:
        return None
    return _plain((amount / budget).quantize(RATIO_QUANTUM, rounding=ROUND_HALF_EVEN))


def _currency_in(text: str) -> str | None:
    """The ISO code written in ``text`` (``100 EUR``), else the one its symbol stands for."""
    m = _CODE.search(text)
    if m:
        return m.group(1)
    for symbol, code in _SYMBOLS:
        if symbol in text:
            return code
    return None


def _amount(text: Any, field: str) -> Decimal:
    if isinstance(text, bool) or not isinstance(text, (str, int, Decimal)):
        raise InputError(f"amount must be a number or a formatted amount, got {text!r}", field=field)
    if isinstance(text, (int, Decimal)):
        return Decimal(text)
    try:
        return parse_amount(text)
    except NumberError as exc:
        raise InputError(f"not an amount: {exc}", field=field) from None


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InputError(f"must be an object, got {type(value).__name__}", field=field)
    return value


def _instant(value: str | datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        try:
            return require_utc(value)
        except ValueError as exc:
            raise InputError(str(exc), field=field) from None
    if not isinstance(value, str):
        raise InputError(f"must be a timestamp, got {type(value).__name__}", field=field)
    try:
        return parse_timestamp(value)
    except TimestampError as exc:
        raise InputError(str(exc), field=field) from None


# --------------------------------------------------------------------------- AWS


_ACCOUNT_LINE = re.compile(r"^AWS Account\s+(\d{12})\s*$")
_HEADER_LINE = re.compile(r"^AWS Budget Notification\s+([A-Za-z]+)\s+(\d{1,2}),\s*(\d{4})\s*$")
_KV_LINE = re.compile(r"^([A-Za-z][A-Za-z ]{0,40}?):\s?(.*)$")
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
         "november", "december"),
        start=1,
    )
}
_ALERT_TYPES: dict[str, AlertKind] = {"ACTUAL": "actual", "FORECASTED": "forecasted"}


def _aws_fields(lines: list[str]) -> dict[str, str]:
    """The ``Key: Value`` block: the paragraph whose every line is a key line, with Budget Name."""
    paragraphs: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            paragraphs[-1].append(line.strip())
        elif paragraphs[-1]:
            paragraphs.append([])
    for paragraph in paragraphs:
        matches = [_KV_LINE.match(line) for line in paragraph]
        if paragraph and all(matches):
            fields = {m.group(1).strip(): m.group(2).strip() for m in matches if m}
            if "Budget Name" in fields:
                return fields
    return {}


def _aws_money(text: str, field: str, cost: bool) -> Money:
    amount = _amount(text, field)
    if cost:
        return Money(amount, _currency_in(text) or DEFAULT_CURRENCY)
    unit = re.sub(r"[\d.,+\-<>=\s$]+", " ", text).strip()
    return Money(amount, unit or UNITS)


def parse_aws_budget_sns(subject: str | None, message: str, timestamp: str | datetime | None) -> BudgetAlert:
    """Parse the plain-text ``Message`` of an AWS Budgets SNS notification.

    ``subject`` is kept only for the error messages (the budget name is read from the
    ``Budget Name`` line); ``timestamp`` is the SNS ``Timestamp`` (the received time, and the
    notification date when the first line does not give one).
    """
    if not isinstance(message, str) or not message.strip():
        raise InputError("missing: an AWS Budgets notification text", field="Message")
    received = _instant(timestamp, "Timestamp")
    lines = message.replace("\r\n", "\n").split("\n")
    what = f" (subject {subject!r})" if subject else ""
    fields = _aws_fields(lines)
    if not fields:
        raise InputError(
            f"not an AWS Budgets notification{what}: no 'Budget Name: ...' block", field="Message: Budget Name"
        )
    account_match = _ACCOUNT_LINE.match(lines[1].strip()) if len(lines) > 1 else None
    if not account_match:
        got = lines[1].strip() if len(lines) > 1 else ""
        raise InputError(
            f"line 2 must be 'AWS Account <12 digits>', got {got!r}", field="Message: AWS Account (line 2)"
        )
    account = account_match.group(1)

    notified_on: date | None = None
    header = _HEADER_LINE.match(lines[0].strip())
    if header and header.group(1).lower() in _MONTHS:
        try:
            notified_on = date(int(header.group(3)), _MONTHS[header.group(1).lower()], int(header.group(2)))
        except ValueError:
            notified_on = None
    if notified_on is None:
        if received is None:
            raise InputError(
                "no notification date: line 1 is not 'AWS Budget Notification <Month D, YYYY>' and no Timestamp",
                field="Timestamp",
            )
        notified_on = received.date()

    def need(key: str) -> str:
        value = fields.get(key, "")
        if not value:
            raise InputError(f"missing{what}", field=f"Message: {key}")
        return value

    name = need("Budget Name")
    budget_type = need("Budget Type")
    cost = budget_type.casefold() == "cost"
    alert_type = need("Alert Type").upper()
    if alert_type not in _ALERT_TYPES:
        raise InputError(f"must be ACTUAL or FORECASTED, got {alert_type!r}", field="Message: Alert Type")
    kind = _ALERT_TYPES[alert_type]
    budget = _aws_money(need("Budgeted Amount"), "Message: Budgeted Amount", cost)
    amount = _aws_money(need(f"{alert_type} Amount"), f"Message: {alert_type} Amount", cost)

    threshold_text = need("Alert Threshold")
    ratio: Decimal | None
    if threshold_text.rstrip().endswith("%"):
        share = _plain(_amount(threshold_text, "Message: Alert Threshold") / 100)
        ratio, threshold = share, Money(_plain(budget.amount * share), budget.currency)
    else:
        threshold = _aws_money(threshold_text, "Message: Alert Threshold", cost)
        ratio = _ratio(threshold.amount, budget.amount)

    return BudgetAlert(
        provider="aws",
        kind=kind,
        account=account,
        budget_name=name,
        budget_type=budget_type,
        threshold=ratio,
        threshold_amount=threshold,
        spent=amount if kind == "actual" else None,
        forecast=amount if kind == "forecasted" else None,
        budget_amount=budget,
        received_at=received,
        raw_ref=f"aws-budgets:{account}/{name}",
        dedupe_key=("aws", account, name, notified_on.isoformat(), kind, _key(threshold.amount), threshold.currency),
    )


def parse_sns_record(record: Mapping[str, Any]) -> BudgetAlert:
    """Parse one SNS notification carrying an AWS Budgets message.

    Accepts a Lambda record (``{"EventSource": "aws:sns", "Sns": {...}}``, which spells
    ``SigningCertUrl``), its ``Sns`` dict, or the raw SNS HTTP/S envelope (``SigningCertURL``).
    The signature is not checked here: that is the HTTP endpoint's job.
    """
    record = _mapping(record, "record")
    if "Records" in record:
        raise InputError("a whole Lambda event: pass one of its Records", field="Records")
    if "Sns" in record:
        sns, prefix = validate(SnsRecord, record).sns, "Sns."
    else:
        sns, prefix = validate(SnsNotification, record), ""
    try:
        alert = parse_aws_budget_sns(sns.subject, sns.message, sns.timestamp)
    except InputError as exc:
        raise InputError(exc.reason, field=f"{prefix}{exc.field}" if exc.field else None) from None
    return alert.model_copy(update={"raw_ref": f"sns:{sns.topic_arn}/{sns.message_id}"})


# --------------------------------------------------------------------------- Google Cloud


def _period_date(instant: datetime) -> date:
    """The date a GCP period begins: the instant rounded to the nearest UTC midnight."""
    return (instant + timedelta(hours=12)).date()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def parse_gcp_budget_message(
    data: bytes | str | Mapping[str, Any],
    attributes: Mapping[str, Any] | None,
    publish_time: str | datetime | None = None,
    *,
    message_id: str | None = None,
) -> BudgetAlert:
    """Parse a Google Cloud budget notification: the decoded message ``data`` (JSON text or
    bytes, not base64) and the message ``attributes``. See the module docstring for ``state``."""
    if isinstance(data, Mapping):
        body: Any = data
    else:
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
            body = json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"not a JSON budget notification ({exc})", field="data") from None
    body = _mapping(body, "data")
    attrs = validate(GcpBudgetAttributes, attributes if attributes is not None else {}, "attributes")
    budget_id, account = attrs.budget_id, attrs.billing_account_id
    notice = validate(GcpBudgetNotification, body, "data")
    name, currency = notice.budget_display_name, notice.currency_code
    cost, budget = notice.cost_amount, notice.budget_amount
    actual, forecast = notice.alert_threshold_exceeded, notice.forecast_threshold_exceeded
    interval = _instant(notice.cost_interval_start, "data.costIntervalStart")
    assert interval is not None
    received = _instant(publish_time, "publishTime")

    kind: AlertKind
    if actual is not None:
        kind, threshold = "actual", actual
    elif forecast is not None:
        kind, threshold = "forecasted", forecast
    else:
        kind, threshold = "state", None
    key: tuple[str, ...] = ("gcp", budget_id, interval.isoformat(), kind, _key(threshold), _key(forecast))
    if kind == "state":
        key += (_key(cost),)
    return BudgetAlert(
        provider="gcp",
        kind=kind,
        account=account,
        budget_name=name,
        budget_id=budget_id,
        threshold=_plain(threshold) if threshold is not None else None,
        threshold_amount=Money(_plain(budget * threshold), currency) if threshold is not None else None,
        forecast_threshold=_plain(forecast) if forecast is not None else None,
        spent=Money(cost, currency),
        budget_amount=Money(budget, currency),
        period_start=interval,
        period_date=_period_date(interval),
        received_at=received,
        raw_ref=f"pubsub:{message_id}" if message_id else f"gcp-budget:{budget_id}",
        dedupe_key=key,
    )


def parse_gcp_pubsub_cloudevent(event: Mapping[str, Any]) -> BudgetAlert:
    """Parse a ``google.cloud.pubsub.topic.v1.messagePublished`` CloudEvent carrying a budget
    notification (or its ``data``, the ``MessagePublishedData``)."""
    event = _mapping(event, "event")
    if "message" in event:
        message, where, time = validate(MessagePublishedData, event).message, "message", None
    else:
        cloudevent = validate(PubsubCloudEvent, event)
        message, where, time = cloudevent.data.message, "data.message", cloudevent.time
    try:
        return parse_gcp_budget_message(message.data, message.attributes, message.publish_time or time,
                                        message_id=message.message_id)
    except InputError as exc:
        field = exc.field or ""
        if field.startswith(("data", "attributes", "publishTime")):
            field = f"{where}.{field}"
        raise InputError(exc.reason, field=field or None) from None


# --------------------------------------------------------------------------- Azure


def _azure_currency(unit: str | None, *amounts: str | None) -> str:
    if unit and _ISO_CODE.match(unit.strip().upper()):
        return unit.strip().upper()
    for text in amounts:
        if text:
            code = _currency_in(text)
            if code:
                return code
    return DEFAULT_CURRENCY


def _subscription_of(scope: str | None) -> str | None:
    if not scope:
        return None
    m = re.search(r"/subscriptions/([^/]+)", scope, flags=re.IGNORECASE)
    return m.group(1) if m else scope.rstrip("/") or None


def _is_formatted(text: str) -> bool:
    return any(ch not in "0123456789.+- " for ch in text.strip())


def _month_of(moment: datetime | None) -> tuple[str, ...]:
    return (moment.strftime("%Y-%m"),) if moment else ()


def parse_azure_budget_alert(payload: Mapping[str, Any], received_at: datetime | None = None) -> BudgetAlert:
    """Parse an Azure budget alert delivered by an Action Group (legacy or common schema).

    ``received_at`` is when the webhook arrived; the common schema's ``firedDateTime`` wins
    over it. The legacy schema carries no time at all: pass ``received_at`` for it.
    """
    payload = _mapping(payload, "payload")
    envelope = validate(AzurePayload, payload)
    schema = envelope.schema_id
    if schema == AZURE_LEGACY_SCHEMA:
        return _parse_azure_legacy(validate(AzureLegacyBudget, envelope.data, "data"), received_at)
    if schema == AZURE_COMMON_SCHEMA:
        return _parse_azure_common(validate(AzureCommonAlert, envelope.data, "data"), received_at)
    raise InputError(
        f"unknown schema {schema!r} (expected {AZURE_LEGACY_SCHEMA!r} or {AZURE_COMMON_SCHEMA!r})", field="schemaId"
    )


def _azure_threshold(
    text: str, budget: Money, field: str, *, may_be_ratio: bool
) -> tuple[Decimal | None, Money]:
    value = _amount(text, field)
    if may_be_ratio and not _is_formatted(text) and value <= 1:
        return _plain(value), Money(_plain(budget.amount * value), budget.currency)
    return _ratio(value, budget.amount), Money(value, budget.currency)


def _parse_azure_legacy(data: AzureLegacyBudget, received_at: datetime | None) -> BudgetAlert:
    received = _instant(received_at, "received_at")
    name = data.budget_name
    subscription = data.subscription_id
    account = subscription or data.billing_account_id or data.billing_profile_id
    spent_text, budget_text = data.spending_amount, data.budget
    currency = _azure_currency(data.unit, spent_text, budget_text)
    budget = Money(_amount(budget_text, "data.Budget"), currency)
    spent = Money(_amount(spent_text, "data.SpendingAmount"), currency)
    ratio, threshold = _azure_threshold(data.notification_threshold_amount, budget,
                                        "data.NotificationThresholdAmount", may_be_ratio=True)
    start = _instant(data.budget_start_date, "data.BudgetStartDate")
    group = data.resource_group
    scope = None
    if subscription:
        scope = f"/subscriptions/{subscription}/" + (f"resourceGroups/{group}/" if group else "")
    budget_ref = f"{account or ''}/{name}"
    assert start is not None
    return BudgetAlert(
        provider=AZURE,
        kind="actual",
        account=account,
        scope=scope,
        budget_name=name,
        budget_type=data.budget_type or "Cost",
        threshold=ratio,
        threshold_amount=threshold,
        spent=spent,
        budget_amount=budget,
        budget_start=start,
        received_at=received,
        raw_ref=f"azure-budget:{budget_ref}",
        dedupe_key=(
            AZURE, budget_ref.casefold(), start.isoformat(), "actual", _key(threshold.amount), *_month_of(received)
        ),
    )


def _parse_azure_common(data: AzureCommonAlert, received_at: datetime | None) -> BudgetAlert:
    essentials, alert = data.essentials, data.alert_context.alert_data
    where = "data.alertContext.AlertData"
    fired = _instant(essentials.fired_date_time, "data.essentials.firedDateTime")
    received = fired or _instant(received_at, "received_at")
    name, scope, budget_id = alert.budget_name, alert.scope, alert.budget_id
    kind: AlertKind = "actual" if alert.threshold_type == "actual" else "forecasted"
    budget_text, spent_text = alert.budget_threshold, alert.spent_amount
    threshold_text, forecast_text = alert.notification_threshold_amount, alert.forecasted_total_for_period
    currency = _azure_currency(alert.unit, budget_text, spent_text, threshold_text)
    budget = Money(_amount(budget_text, f"{where}.BudgetThreshold"), currency)
    spent = Money(_amount(spent_text, f"{where}.SpentAmount"), currency)
    forecast = (
        Money(_amount(forecast_text, f"{where}.ForecastedTotalForPeriod"), currency) if forecast_text else None
    )
    ratio, threshold = _azure_threshold(
        threshold_text, budget, f"{where}.NotificationThresholdAmount", may_be_ratio=True
    )
    start = _instant(alert.budget_start_date, f"{where}.BudgetStartDate")
    account = _subscription_of(scope)
    budget_ref = budget_id or f"{scope or ''}/{name}"
    return BudgetAlert(
        provider=AZURE,
        kind=kind,
        account=account,
        scope=scope,
        budget_name=name,
        budget_id=budget_id,
        budget_type=alert.budget_type or "Cost",
        threshold=ratio,
        threshold_amount=threshold,
        spent=spent,
        forecast=forecast,
        budget_amount=budget,
        budget_start=start,
        received_at=received,
        raw_ref=essentials.alert_id or f"azure-budget:{budget_ref}",
        dedupe_key=(
            AZURE,
            budget_ref.casefold(),
            start.isoformat() if start else "",
            kind,
            _key(threshold.amount),
            *_month_of(received),
        ),
    )


__all__ = [
    "PUBSUB_MESSAGE_PUBLISHED",
    "AlertKind",
    "BudgetAlert",
    "Provider",
    "parse_aws_budget_sns",
    "parse_azure_budget_alert",
    "parse_gcp_budget_message",
    "parse_gcp_pubsub_cloudevent",
    "parse_sns_record",
]
