"""Budget notifications of the three clouds → BudgetAlert: public fixtures with exact values,
constructed variants (events/budget/), dedupe ids, and malformed payloads."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from burnguard.core.budget import (
    BudgetAlert,
    parse_aws_budget_sns,
    parse_azure_budget_alert,
    parse_gcp_budget_message,
    parse_gcp_pubsub_cloudevent,
    parse_sns_record,
)
from burnguard.core.errors import InputError
from burnguard.core.money import Money
from tests.helpers import EVENTS, fixture

BUDGET_EVENTS = EVENTS / "budget"


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def usd(text: str) -> Money:
    return Money(Decimal(text), "USD")


def assert_money(value: Money | None, amount: str, currency: str) -> None:
    assert value is not None
    assert isinstance(value.amount, Decimal)
    assert value.amount == Decimal(amount)
    assert value.currency == currency


# --------------------------------------------------------------------------- AWS

AWS_TEXT = fixture("aws-budgets-sns/sre-bot.budget-message.txt").read_text(encoding="utf-8")
AWS_SUBJECT = "AWS Budgets: Test Budget has exceeded your alert threshold"


def test_aws_message_text_exact_values() -> None:
    alert = parse_aws_budget_sns(AWS_SUBJECT, AWS_TEXT, "2022-09-26T19:20:37.147Z")
    assert alert.provider == "aws"
    assert alert.kind == "actual"
    assert alert.account == "017790921725"
    assert alert.budget_name == "Test Budget"
    assert alert.budget_id is None
    assert alert.budget_type == "Cost" and alert.is_cost
    assert alert.threshold == Decimal("0.8")  # 0.16 / 0.20, derived
    assert_money(alert.threshold_amount, "0.16", "USD")
    assert_money(alert.spent, "0.59", "USD")
    assert_money(alert.budget_amount, "0.20", "USD")
    assert alert.forecast is None
    assert alert.received_at == datetime(2022, 9, 26, 19, 20, 37, 147000, tzinfo=UTC)
    assert alert.period_start is None  # the message does not state the period
    assert alert.is_crossing
    assert alert.dedupe_key[:4] == ("aws", "017790921725", "Test Budget", "2022-09-26")


def test_aws_lambda_record_and_http_envelope_give_the_same_alert() -> None:
    event = load(fixture("aws-budgets-sns/sre-bot.lambda-sns-event.CONSTRUCTED.json"))
    envelope = load(fixture("aws-budgets-sns/sre-bot.sns-http-notification.json"))
    assert "SigningCertUrl" in event["Records"][0]["Sns"] and "SigningCertURL" in envelope
    from_lambda = parse_sns_record(event["Records"][0])
    from_sns_dict = parse_sns_record(event["Records"][0]["Sns"])
    from_http = parse_sns_record(envelope)
    assert from_lambda == from_sns_dict == from_http
    assert from_lambda.alert_id == parse_aws_budget_sns(AWS_SUBJECT, AWS_TEXT, "2022-09-26T19:20:37.147Z").alert_id
    assert from_http.raw_ref == "sns:arn:aws:sns:ca-central-1:017790921725:test-sre-bot/0da238f6-da6c-5214-96e1-635d27a9b79b"
    assert_money(from_http.spent, "0.59", "USD")


def test_aws_generic_sns_event_is_not_a_budget_notification() -> None:
    event = load(fixture("aws-lambda-go-events/sns-event.json"))
    with pytest.raises(InputError) as err:
        parse_sns_record(event["Records"][0])
    assert err.value.field == "Sns.Message: Budget Name"
    assert "TestInvoke" in str(err.value)


def test_aws_whole_lambda_event_is_refused_with_the_field() -> None:
    with pytest.raises(InputError) as err:
        parse_sns_record(load(fixture("aws-budgets-sns/sre-bot.lambda-sns-event.CONSTRUCTED.json")))
    assert err.value.field == "Records"


def test_aws_forecasted_variant_without_cents_and_with_separators() -> None:
    event = load(BUDGET_EVENTS / "aws-budgets-sns.forecasted.lambda-event.CONSTRUCTED.json")
    alert = parse_sns_record(event["Records"][0])
    assert alert.kind == "forecasted"
    assert alert.budget_name == "GPU Training Monthly"
    assert alert.account == "123456789012"
    assert_money(alert.budget_amount, "1000", "USD")
    assert_money(alert.threshold_amount, "1000", "USD")
    assert alert.threshold == Decimal("1")
    assert_money(alert.forecast, "1250.40", "USD")
    assert alert.spent is None  # a forecast alert does not state actual spend


def test_aws_daily_variant_reads_the_block_not_the_prose() -> None:
    alert = parse_sns_record(load(BUDGET_EVENTS / "aws-budgets-sns.daily.lambda-event.CONSTRUCTED.json")["Records"][0])
    assert alert.kind == "actual"
    assert alert.budget_name == "inference daily"
    assert_money(alert.budget_amount, "125", "USD")  # the prose says $100 (the threshold), the block $125
    assert_money(alert.threshold_amount, "100", "USD")
    assert alert.threshold == Decimal("0.8")
    assert_money(alert.spent, "130.77", "USD")
    assert alert.dedupe_key[3] == "2024-03-05"


def test_aws_usage_budget_is_parsed_with_its_unit() -> None:
    alert = parse_sns_record(load(BUDGET_EVENTS / "aws-budgets-sns.usage.sns-http-notification.CONSTRUCTED.json"))
    assert alert.budget_type == "Usage"
    assert not alert.is_cost
    assert_money(alert.spent, "91.5", "Hrs")
    assert_money(alert.budget_amount, "100", "Hrs")
    assert alert.threshold == Decimal("0.8")


def test_aws_percentage_threshold_and_crlf() -> None:
    text = AWS_TEXT.replace("Alert Threshold: > $0.16", "Alert Threshold: > 80%").replace("\n", "\r\n")
    alert = parse_aws_budget_sns(None, text, "2022-09-26T19:20:37Z")
    assert alert.threshold == Decimal("0.8")
    assert_money(alert.threshold_amount, "0.16", "USD")


def test_aws_dedupe() -> None:
    first = parse_aws_budget_sns(AWS_SUBJECT, AWS_TEXT, "2022-09-26T19:20:37.147Z")
    redelivered = parse_aws_budget_sns(AWS_SUBJECT, AWS_TEXT, "2022-09-26T19:25:00Z")
    other_threshold = parse_aws_budget_sns(
        AWS_SUBJECT, AWS_TEXT.replace("> $0.16", "> $0.20"), "2022-09-26T19:20:37.147Z"
    )
    next_day = parse_aws_budget_sns(
        AWS_SUBJECT, AWS_TEXT.replace("September 26, 2022", "September 27, 2022"), "2022-09-27T19:20:37Z"
    )
    forecast = parse_aws_budget_sns(
        AWS_SUBJECT,
        AWS_TEXT.replace("Alert Type: ACTUAL", "Alert Type: FORECASTED").replace("ACTUAL Amount", "FORECASTED Amount"),
        "2022-09-26T19:20:37.147Z",
    )
    assert first.alert_id == redelivered.alert_id
    ids = {first.alert_id, other_threshold.alert_id, next_day.alert_id, forecast.alert_id}
    assert len(ids) == 4


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda t: t.replace("Budget Name: Test Budget\n", ""), "Message: Budget Name"),
        (lambda t: t.replace("ACTUAL Amount: $0.59", "ACTUAL Amount: $abc"), "Message: ACTUAL Amount"),
        (lambda t: t.replace("ACTUAL Amount: $0.59\n", ""), "Message: ACTUAL Amount"),
        (lambda t: t.replace("Budgeted Amount: $0.20", "Budgeted Amount: lots"), "Message: Budgeted Amount"),
        (lambda t: t.replace("Alert Type: ACTUAL", "Alert Type: SOMETIMES"), "Message: Alert Type"),
        (lambda t: t.replace("AWS Account 017790921725", "AWS Account: unknown"), "Message: AWS Account (line 2)"),
    ],
)
def test_aws_malformed_message_names_the_field(edit: Any, field: str) -> None:
    with pytest.raises(InputError) as err:
        parse_aws_budget_sns(AWS_SUBJECT, edit(AWS_TEXT), "2022-09-26T19:20:37.147Z")
    assert err.value.field == field
    assert field in str(err.value)


def test_aws_malformed_envelope_fields() -> None:
    envelope = load(fixture("aws-budgets-sns/sre-bot.sns-http-notification.json"))
    with pytest.raises(InputError) as err:
        parse_sns_record({**envelope, "Type": "SubscriptionConfirmation"})
    assert err.value.field == "Type"
    with pytest.raises(InputError) as err:
        parse_sns_record({**envelope, "Timestamp": "yesterday-ish"})
    assert err.value.field == "Timestamp"
    with pytest.raises(InputError) as err:
        parse_sns_record({k: v for k, v in envelope.items() if k != "Message"})
    assert err.value.field == "Message"


# --------------------------------------------------------------------------- Google Cloud

GCP_ATTRS = load(fixture("gcp-budget-docs/budget-notification.attributes.json"))


def gcp_event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = load(BUDGET_EVENTS / name)
    return data


def test_gcp_documented_message_exact_values() -> None:
    raw = fixture("gcp-budget-docs/budget-notification.data.json").read_bytes()
    alert = parse_gcp_budget_message(raw, GCP_ATTRS, "2019-01-01T12:00:00.000Z")
    assert alert.provider == "gcp"
    assert alert.kind == "actual"
    assert alert.account == "01D4EE-079462-DFD6EC"
    assert alert.budget_id == "de72f49d-779b-4945-a127-4d6ce8def0bb"
    assert alert.budget_name == "name-of-budget"
    assert alert.threshold == Decimal("1")
    assert_money(alert.threshold_amount, "100", "USD")
    assert_money(alert.spent, "100.01", "USD")  # read as Decimal from the JSON text: never 100.01000000000000
    assert str(alert.spent.amount) == "100.01"  # type: ignore[union-attr]
    assert_money(alert.budget_amount, "100.00", "USD")
    assert alert.period_start == datetime(2019, 1, 1, tzinfo=UTC)
    assert alert.period_date == date(2019, 1, 1)
    assert alert.billing_month == "2019-01"
    assert alert.received_at == datetime(2019, 1, 1, 12, tzinfo=UTC)


def test_gcp_cloudevent_equals_the_decoded_message() -> None:
    event = load(fixture("gcp-budget-docs/budget-notification.cloudevent.CONSTRUCTED.json"))
    from_event = parse_gcp_pubsub_cloudevent(event)
    raw = fixture("gcp-budget-docs/budget-notification.data.json").read_bytes()
    direct = parse_gcp_budget_message(raw, GCP_ATTRS, "2019-01-01T12:00:00.000Z", message_id="136969346945")
    assert from_event == direct
    assert from_event.raw_ref == "pubsub:136969346945"
    # the MessagePublishedData alone (without the CloudEvent envelope) parses too
    assert parse_gcp_pubsub_cloudevent(event["data"]).alert_id == direct.alert_id


def test_gcp_no_threshold_is_a_state_update() -> None:
    raw = fixture("gcp-budget-docs/budget-notification.data.no-threshold.CONSTRUCTED.json").read_text()
    alert = parse_gcp_budget_message(raw, GCP_ATTRS, None)
    assert alert.kind == "state"
    assert alert.threshold is None and alert.threshold_amount is None
    assert not alert.is_crossing
    assert_money(alert.spent, "40.51", "USD")
    same = parse_gcp_budget_message(raw, GCP_ATTRS, "2019-01-01T18:00:00Z")
    changed = parse_gcp_budget_message(raw.replace("40.51", "41.00"), GCP_ATTRS, None)
    assert same.alert_id == alert.alert_id  # an identical repeat collapses
    assert changed.alert_id != alert.alert_id  # a new reading is new
    crossing = parse_gcp_budget_message(
        fixture("gcp-budget-docs/budget-notification.data.json").read_bytes(), GCP_ATTRS, None
    )
    assert crossing.alert_id != alert.alert_id


def test_gcp_repeats_share_an_id_and_thresholds_differ() -> None:
    first = parse_gcp_pubsub_cloudevent(gcp_event("gcp-budget.threshold-50.cloudevent.CONSTRUCTED.json"))
    resent = parse_gcp_pubsub_cloudevent(gcp_event("gcp-budget.threshold-50.resent.cloudevent.CONSTRUCTED.json"))
    eighty = parse_gcp_pubsub_cloudevent(gcp_event("gcp-budget.threshold-80.cloudevent.CONSTRUCTED.json"))
    assert first.spent != resent.spent and first.raw_ref != resent.raw_ref
    assert first.alert_id == resent.alert_id
    assert eighty.alert_id != first.alert_id
    assert (first.threshold, eighty.threshold) == (Decimal("0.5"), Decimal("0.8"))
    assert_money(eighty.threshold_amount, "4000", "USD")
    next_month = copy.deepcopy(gcp_event("gcp-budget.threshold-50.cloudevent.CONSTRUCTED.json"))
    body = json.loads(base64.b64decode(next_month["data"]["message"]["data"]))
    body["costIntervalStart"] = "2020-12-01T08:00:00Z"
    next_month["data"]["message"]["data"] = base64.b64encode(json.dumps(body).encode()).decode()
    assert parse_gcp_pubsub_cloudevent(next_month).alert_id != first.alert_id


@pytest.mark.parametrize(
    ("start", "month", "day"),
    [
        ("2020-11-01T07:00:00Z", "2020-11", date(2020, 11, 1)),  # PDT midnight: November, not October
        ("2021-02-01T08:00:00Z", "2021-02", date(2021, 2, 1)),  # PST midnight
        ("2019-01-01T00:00:00Z", "2019-01", date(2019, 1, 1)),  # as the documentation writes it
        ("2020-11-01T00:00:00-07:00", "2020-11", date(2020, 11, 1)),
    ],
)
def test_gcp_cost_interval_start_keeps_the_instant_and_the_month(start: str, month: str, day: date) -> None:
    body = json.loads(fixture("gcp-budget-docs/budget-notification.data.json").read_text())
    body["costIntervalStart"] = start
    alert = parse_gcp_budget_message(json.dumps(body), GCP_ATTRS)
    assert alert.period_start is not None and alert.period_start.tzinfo is not None
    assert alert.period_start == datetime.fromisoformat(start.replace("Z", "+00:00"))
    assert alert.billing_month == month
    assert alert.period_date == day


def test_gcp_november_cloudevent() -> None:
    alert = parse_gcp_pubsub_cloudevent(gcp_event("gcp-budget.threshold-50.cloudevent.CONSTRUCTED.json"))
    assert alert.period_start == datetime(2020, 11, 1, 7, tzinfo=UTC)
    assert alert.billing_month == "2020-11"
    assert alert.budget_name == "ml-research-gpu"
    assert_money(alert.spent, "2613.27", "USD")
    assert_money(alert.budget_amount, "5000.0", "USD")


def test_gcp_duplicated_fields_and_forecast_threshold() -> None:
    event = gcp_event("gcp-budget.forecast.duplicated-fields.cloudevent.CONSTRUCTED.json")
    assert "message_id" in event["data"]["message"] and "messageId" in event["data"]["message"]
    alert = parse_gcp_pubsub_cloudevent(event)
    assert alert.kind == "actual"
    assert alert.threshold == Decimal("0.5")
    assert alert.forecast_threshold == Decimal("1")
    assert alert.raw_ref == "pubsub:2070443601399999"
    assert alert.received_at == datetime(2020, 11, 14, 18, 30, tzinfo=UTC)
    plain = parse_gcp_pubsub_cloudevent(gcp_event("gcp-budget.threshold-50.cloudevent.CONSTRUCTED.json"))
    assert alert.alert_id != plain.alert_id  # the forecast crossing is news
    event["data"]["message"]["message_id"] = "something-else"
    with pytest.raises(InputError) as err:
        parse_gcp_pubsub_cloudevent(event)
    assert err.value.field == "data.message.messageId"


def test_gcp_forecast_only_is_forecasted() -> None:
    body = json.loads(fixture("gcp-budget-docs/budget-notification.data.json").read_text())
    del body["alertThresholdExceeded"]
    body["forecastThresholdExceeded"] = 1.2
    alert = parse_gcp_budget_message(json.dumps(body), GCP_ATTRS)
    assert alert.kind == "forecasted"
    assert alert.threshold == Decimal("1.2")
    assert_money(alert.threshold_amount, "120", "USD")


def test_gcp_jpy_integers() -> None:
    alert = parse_gcp_pubsub_cloudevent(gcp_event("gcp-budget.jpy-120.cloudevent.CONSTRUCTED.json"))
    assert alert.budget_name == "推論 GPU"
    assert_money(alert.spent, "612000", "JPY")
    assert_money(alert.budget_amount, "500000", "JPY")
    assert alert.threshold == Decimal("1.2")
    assert alert.billing_month == "2021-02"


@pytest.mark.parametrize(
    "name",
    [
        "gcp-functions-conformance/pubsub_text-cloudevent-input.json",
        "gcp-functions-conformance/pubsub_binary-cloudevent-input.json",
    ],
)
def test_gcp_pubsub_events_that_are_not_budget_notifications(name: str) -> None:
    with pytest.raises(InputError) as err:
        parse_gcp_pubsub_cloudevent(load(fixture(name)))
    assert err.value.field == "data.message.data"


@pytest.mark.parametrize(
    "name",
    [
        "google-cloudevents/MessagePublishedData-text.json",
        "google-cloudevents/MessagePublishedData-binary.json",
        "google-cloudevents/MessagePublishedData-duplicatedFields.json",
    ],
)
def test_gcp_message_published_data_with_non_budget_payloads(name: str) -> None:
    with pytest.raises(InputError) as err:
        parse_gcp_pubsub_cloudevent(load(fixture(name)))
    assert err.value.field == "message.data"


def _with_body(edit: Any) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(load(fixture("gcp-budget-docs/budget-notification.cloudevent.CONSTRUCTED.json")))
    body = json.loads(base64.b64decode(event["data"]["message"]["data"]))
    edit(body)
    event["data"]["message"]["data"] = base64.b64encode(json.dumps(body).encode()).decode()
    return event


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda b: b.update(costAmount="a lot"), "data.message.data.costAmount"),
        (lambda b: b.pop("costAmount"), "data.message.data.costAmount"),
        (lambda b: b.pop("budgetAmount"), "data.message.data.budgetAmount"),
        (lambda b: b.update(budgetAmount=True), "data.message.data.budgetAmount"),
        (lambda b: b.pop("currencyCode"), "data.message.data.currencyCode"),
        (lambda b: b.update(currencyCode="dollars"), "data.message.data.currencyCode"),
        (lambda b: b.update(costIntervalStart="the first"), "data.message.data.costIntervalStart"),
        (lambda b: b.pop("budgetDisplayName"), "data.message.data.budgetDisplayName"),
        (lambda b: b.update(alertThresholdExceeded="most"), "data.message.data.alertThresholdExceeded"),
    ],
)
def test_gcp_malformed_body_names_the_field(edit: Any, field: str) -> None:
    with pytest.raises(InputError) as err:
        parse_gcp_pubsub_cloudevent(_with_body(edit))
    assert err.value.field == field


def test_gcp_malformed_envelope_names_the_field() -> None:
    base = load(fixture("gcp-budget-docs/budget-notification.cloudevent.CONSTRUCTED.json"))
    no_id = copy.deepcopy(base)
    del no_id["data"]["message"]["attributes"]["budgetId"]
    bad_b64 = copy.deepcopy(base)
    bad_b64["data"]["message"]["data"] = "not base64!"
    storage = {**copy.deepcopy(base), "type": "google.cloud.storage.object.v1.finalized"}
    version = copy.deepcopy(base)
    version["data"]["message"]["attributes"]["schemaVersion"] = "2.0"
    for event, field in [
        (no_id, "data.message.attributes.budgetId"),
        (bad_b64, "data.message.data"),
        (storage, "type"),
        (version, "data.message.attributes.schemaVersion"),
        ({"type": "google.cloud.pubsub.topic.v1.messagePublished"}, "data"),
    ]:
        with pytest.raises(InputError) as err:
            parse_gcp_pubsub_cloudevent(event)
        assert err.value.field == field, field
    with pytest.raises(InputError) as err:
        parse_gcp_budget_message(b'{"budgetDisplayName": "x", "costAmount": NaN}', GCP_ATTRS)
    assert err.value.field == "data"


# --------------------------------------------------------------------------- Azure


def test_azure_legacy_amount_threshold() -> None:
    alert = parse_azure_budget_alert(load(fixture("azure-docs/budget-alert.aip-budget-notification.json")))
    assert alert.provider == "azure"
    assert alert.kind == "actual"
    assert alert.account == "11111111-1111-1111-1111-111111111111"
    assert alert.scope == "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/test-RG/"
    assert alert.budget_name == "test-budgetName"
    assert_money(alert.spent, "1111.32", "USD")
    assert_money(alert.budget_amount, "10000", "USD")
    assert_money(alert.threshold_amount, "8000.0", "USD")  # "8000.0" is an amount...
    assert alert.threshold == Decimal("0.8")  # ... 80 % of 10000
    # "11/17/2021 5:40:29 PM -08:00" is the budget's start, in UTC
    assert alert.budget_start == datetime(2021, 11, 18, 1, 40, 29, tzinfo=UTC)
    assert alert.period_start is None


def test_azure_legacy_ratio_threshold() -> None:
    alert = parse_azure_budget_alert(
        load(fixture("azure-docs/budget-alert.aip-budget-notification.logicapp-sample.json"))
    )
    assert alert.threshold == Decimal("0.8")  # "0.8" is a share...
    assert_money(alert.threshold_amount, "40", "USD")  # ... of the budget of 50
    assert_money(alert.spent, "100", "USD")
    assert_money(alert.budget_amount, "50", "USD")
    assert alert.budget_start == datetime(2018, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "ratio", "amount"),
    [("1", "1", "10000"), ("1.0", "1", "10000"), ("0.5", "0.5", "5000"), ("1.5", "0.0002", "1.5"), ("5000", "0.5", "5000")],
)
def test_azure_legacy_ratio_or_amount_rule(text: str, ratio: str, amount: str) -> None:
    # a bare value <= 1 is a share; above, an amount (derived shares are rounded to 0.01 %)
    payload = copy.deepcopy(load(fixture("azure-docs/budget-alert.aip-budget-notification.json")))
    payload["data"]["NotificationThresholdAmount"] = text
    alert = parse_azure_budget_alert(payload)
    assert alert.threshold == Decimal(ratio)
    assert_money(alert.threshold_amount, amount, "USD")


def test_azure_common_schema_actual() -> None:
    alert = parse_azure_budget_alert(load(fixture("azure-docs/budget-alert.common-schema.actual.json")))
    assert alert.kind == "actual"
    assert alert.budget_name == "Test_actual_cost_budget"
    assert alert.budget_id == (
        "/subscriptions/11111111-1111-1111-1111-111111111111/providers/Microsoft.Consumption/budgets/"
        "Test_actual_cost_budget"
    )
    assert alert.account == "11111111-1111-1111-1111-111111111111"
    assert alert.scope == "/subscriptions/11111111-1111-1111-1111-111111111111/"
    assert_money(alert.spent, "11111.00", "USD")  # "$11,111.00"
    assert_money(alert.budget_amount, "50.00", "USD")  # BudgetThreshold is the budget
    assert_money(alert.threshold_amount, "25.00", "USD")
    assert alert.threshold == Decimal("0.5")
    assert alert.forecast is None
    assert alert.budget_start == datetime(2022, 11, 1, tzinfo=UTC)
    assert alert.received_at == datetime(2022, 12, 7, 21, 13, 20, 645000, tzinfo=UTC)
    assert alert.raw_ref == "/subscriptions/11111111-1111-1111-1111-111111111111/providers/Microsoft.CostManagement/alerts/Test_Alert"


def test_azure_common_schema_forecasted() -> None:
    alert = parse_azure_budget_alert(load(fixture("azure-docs/budget-alert.common-schema.forecasted.json")))
    assert alert.kind == "forecasted"
    assert alert.budget_name == "Test_forcasted_budget"
    assert_money(alert.spent, "999.99", "USD")
    assert_money(alert.forecast, "1111.11", "USD")
    assert_money(alert.threshold_amount, "50.00", "USD")
    assert alert.threshold == Decimal("1")


def test_azure_currency_from_unit_then_symbol_then_usd() -> None:
    eur = parse_azure_budget_alert(load(BUDGET_EVENTS / "azure-budget.common-schema.eur.CONSTRUCTED.json"))
    assert_money(eur.spent, "12480.55", "EUR")
    assert_money(eur.budget_amount, "12500.00", "EUR")
    assert eur.threshold == Decimal("0.8")
    assert eur.scope == "/subscriptions/22222222-3333-4444-5555-666666666666/resourceGroups/ml-eu/"
    gbp = parse_azure_budget_alert(load(BUDGET_EVENTS / "azure-budget.common-schema.symbol-only.CONSTRUCTED.json"))
    assert_money(gbp.spent, "1650.20", "GBP")
    legacy = copy.deepcopy(load(fixture("azure-docs/budget-alert.aip-budget-notification.json")))
    legacy["data"]["Unit"] = ""
    assert_money(parse_azure_budget_alert(legacy).spent, "1111.32", "USD")


def test_azure_dedupe() -> None:
    payload = load(fixture("azure-docs/budget-alert.common-schema.actual.json"))
    first = parse_azure_budget_alert(payload)
    again = copy.deepcopy(payload)
    again["data"]["essentials"]["firedDateTime"] = "2022-12-07T23:59:00Z"
    again["data"]["alertContext"]["AlertData"]["SpentAmount"] = "$11,200.00"
    assert parse_azure_budget_alert(again).alert_id == first.alert_id
    other = copy.deepcopy(payload)
    other["data"]["alertContext"]["AlertData"]["NotificationThresholdAmount"] = "$50.00"
    assert parse_azure_budget_alert(other).alert_id != first.alert_id
    # BudgetStartDate stays the same every month: the next month's crossing is not a repeat
    next_month = copy.deepcopy(payload)
    next_month["data"]["essentials"]["firedDateTime"] = "2023-01-03T08:00:00Z"
    assert parse_azure_budget_alert(next_month).alert_id != first.alert_id
    forecast = parse_azure_budget_alert(load(fixture("azure-docs/budget-alert.common-schema.forecasted.json")))
    assert forecast.alert_id != first.alert_id

    legacy = load(fixture("azure-docs/budget-alert.aip-budget-notification.json"))
    december = datetime(2021, 12, 3, tzinfo=UTC)
    a = parse_azure_budget_alert(legacy, received_at=december)
    b = parse_azure_budget_alert(legacy, received_at=datetime(2021, 12, 20, tzinfo=UTC))
    c = parse_azure_budget_alert(legacy, received_at=datetime(2022, 1, 2, tzinfo=UTC))
    assert a.alert_id == b.alert_id != c.alert_id
    assert a.received_at == december


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("alertContext", "AlertData", "SpentAmount"), "n/a", "data.alertContext.AlertData.SpentAmount"),
        (("alertContext", "AlertData", "SpentAmount"), None, "data.alertContext.AlertData.SpentAmount"),
        (("alertContext", "AlertData", "BudgetThreshold"), "$fifty", "data.alertContext.AlertData.BudgetThreshold"),
        (("alertContext", "AlertData", "BudgetName"), "", "data.alertContext.AlertData.BudgetName"),
        (("alertContext", "AlertData", "ThresholdType"), "Sometimes", "data.alertContext.AlertData.ThresholdType"),
        (("alertContext", "AlertData", "BudgetStartDate"), "13/45/2022", "data.alertContext.AlertData.BudgetStartDate"),
        (("essentials", "monitoringService"), "Platform", "data.essentials.monitoringService"),
        (("alertContext", "AlertCategory"), "anomalies", "data.alertContext.AlertCategory"),
        (("essentials", "firedDateTime"), "soon", "data.essentials.firedDateTime"),
    ],
)
def test_azure_common_malformed_names_the_field(path: tuple[str, ...], value: Any, field: str) -> None:
    payload = copy.deepcopy(load(fixture("azure-docs/budget-alert.common-schema.actual.json")))
    target = payload["data"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(InputError) as err:
        parse_azure_budget_alert(payload)
    assert err.value.field == field
    assert field in str(err.value)


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("SpendingAmount", "1,11x", "data.SpendingAmount"),
        ("Budget", None, "data.Budget"),
        ("NotificationThresholdAmount", "eighty", "data.NotificationThresholdAmount"),
        ("BudgetStartDate", "someday", "data.BudgetStartDate"),
        ("BudgetName", 42, "data.BudgetName"),
    ],
)
def test_azure_legacy_malformed_names_the_field(key: str, value: Any, field: str) -> None:
    payload = copy.deepcopy(load(fixture("azure-docs/budget-alert.aip-budget-notification.json")))
    payload["data"][key] = value
    with pytest.raises(InputError) as err:
        parse_azure_budget_alert(payload)
    assert err.value.field == field


def test_azure_unknown_schema() -> None:
    with pytest.raises(InputError) as err:
        parse_azure_budget_alert({"schemaId": "Microsoft.Insights/activityLogs", "data": {}})
    assert err.value.field == "schemaId"
    with pytest.raises(InputError) as err:
        parse_azure_budget_alert({"schemaId": "AIP Budget Notification"})
    assert err.value.field == "data"


# --------------------------------------------------------------------------- the model


def test_alert_is_frozen_and_serializes_decimals_as_text() -> None:
    alert = parse_azure_budget_alert(load(fixture("azure-docs/budget-alert.common-schema.actual.json")))
    with pytest.raises(ValueError, match="frozen"):
        setattr(alert, "kind", "forecasted")  # noqa: B010 - the assignment is the point
    dumped = alert.model_dump(mode="json")
    assert dumped["spent"] == {"amount": "11111.00", "currency": "USD"}
    assert dumped["alert_id"] == alert.alert_id
    assert alert.alert_id.startswith("budget-azure-")
    # the queue carries model_dump_json(), computed alert_id included: it reads back
    back = BudgetAlert.model_validate_json(alert.model_dump_json())
    assert back == alert and back.alert_id == alert.alert_id
    assert BudgetAlert.model_validate({k: v for k, v in dumped.items() if k != "alert_id"}) == alert
    with pytest.raises(ValueError, match="does not match"):
        BudgetAlert.model_validate({**dumped, "alert_id": "budget-azure-0000"})
