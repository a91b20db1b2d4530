"""The AWS budget Lambda: every AWS Budgets sample in ``events/budget`` (and the public SNS
fixtures) through the handler, one canonical budget alert each on the Pub/Sub emulator; an SNS
message that is not a budget notification is dead-lettered (moto's SQS) with its reason.

The expected amounts are read from the notification text with a regular expression here, not
by burnguard's parser."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from burnguard.app import aws as bootstrap
from tests.functions.aws_helpers import LambdaContext, Topic, sqs_wrap
from tests.functions.slash_events import load

pytestmark = pytest.mark.emulator
handler = load("aws", "budget.py").lambda_handler
ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted([*ROOT.glob("events/budget/aws-budgets-sns.*.json"), *ROOT.glob("events/budget/public.sre-bot.*.json"),
                  *ROOT.glob("events/aws/budget.*.json")])
NOT_BUDGET = ROOT / "tests/fixtures/public/aws-lambda-go-events/sns-event.json"


@pytest.fixture
def world(aws: Any, pubsub: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="burnguard-budget-dlq")["QueueUrl"]
    topic = Topic(pubsub.project)
    monkeypatch.setenv("BURNGUARD_TOPIC", topic.path)
    monkeypatch.setenv("BURNGUARD_DEAD_LETTER_URL", dlq)
    bootstrap.budget_app.cache_clear()
    yield {"sqs": sqs, "dlq": dlq, "topic": topic}
    bootstrap.budget_app.cache_clear()
    topic.close()


def _sns(event: dict[str, Any]) -> dict[str, Any]:
    return event["Records"][0]["Sns"] if "Records" in event else event


def _expected(message: str) -> tuple[str, str, Decimal]:
    name = re.search(r"^Budget Name: (.+)$", message, re.M).group(1).strip()  # type: ignore[union-attr]
    kind = re.search(r"^Alert Type: (\w+)$", message, re.M).group(1).lower()  # type: ignore[union-attr]
    amount = re.search(rf"^{kind.upper()} Amount: \$?([\d,.]+)", message, re.M).group(1)  # type: ignore[union-attr]
    return name, kind, Decimal(amount.replace(",", ""))


def _dead(world: dict[str, Any]) -> list[dict[str, Any]]:
    got = world["sqs"].receive_message(QueueUrl=world["dlq"], MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_every_aws_budget_sample_becomes_one_alert_on_the_queue(world: dict[str, Any], sample: Path) -> None:
    event = json.loads(sample.read_text())
    name, kind, amount = _expected(_sns(event)["Message"])
    result = handler(event, LambdaContext(function_name="burnguard-budget"))
    assert [r["action"] for r in result["results"]] == ["published"]
    [message] = world["topic"].drain()
    assert message.attributes["kind"] == "budget-alert"
    alert = json.loads(message.data)
    assert alert["provider"] == "aws" and alert["budget_name"] == name and alert["kind"] == kind
    stated = alert["spent"] if kind == "actual" else alert["forecast"]
    assert Decimal(str(stated["amount"])) == amount
    # The same notification again: the same deterministic id (the consumer drops it).
    again = handler(event, LambdaContext(function_name="burnguard-budget"))
    assert again["results"][0]["message_id"] == message.message_id
    assert _dead(world) == []


def test_an_sns_message_that_is_not_a_budget_notification_is_dead_lettered(world: dict[str, Any]) -> None:
    event = json.loads(NOT_BUDGET.read_text())
    result = handler(event, LambdaContext(function_name="burnguard-budget"))
    assert [r["action"] for r in result["results"]] == ["dead-lettered"]
    assert world["topic"].drain() == []
    [dead] = _dead(world)
    assert "not an AWS Budgets notification" in dead["reason"] and dead["function"] == "budget"
    assert dead["event"]["Sns"]["MessageId"] == "95df01b4-ee98-5cb9-9903-4c221d41eb5e"


def test_without_a_dead_letter_queue_a_bad_message_raises_for_the_lambda_destination(
        world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BURNGUARD_DEAD_LETTER_URL")
    bootstrap.budget_app.cache_clear()
    good = json.loads(SAMPLES[0].read_text())
    bad = json.loads(NOT_BUDGET.read_text())
    event = {"Records": [*good["Records"], *bad["Records"]]} if "Records" in good else bad
    with pytest.raises(Exception, match="not an AWS Budgets notification"):
        handler(event, LambdaContext(function_name="burnguard-budget"))
    if "Records" in good:  # the good record went on before the bad one failed the invocation
        assert len(world["topic"].drain()) == 1


def test_a_budget_notification_through_sqs(world: dict[str, Any]) -> None:
    event = json.loads((ROOT / "events/budget/aws-budgets-sns.forecasted.lambda-event.CONSTRUCTED.json").read_text())
    wrapped = sqs_wrap(event["Records"][0]["Sns"])  # SNS -> SQS subscription without raw delivery
    result = handler(wrapped, LambdaContext(function_name="burnguard-budget"))
    assert [r["action"] for r in result["results"]] == ["published"]
    assert len(world["topic"].drain()) == 1
