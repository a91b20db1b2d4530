"""Block Kit of every message people act on (threshold, forecast, burn rate, native budget,
stop, failure, resume), as the guardrail renders them: within Slack's limits, with the text
fallback kept, and the figures people need in the fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from burnguard.core.budget import parse_aws_budget_sns
from burnguard.core.instances import Instance
from burnguard.core.ledger import Scope, StopRecord
from burnguard.core.money import Money
from burnguard.core.policy import load_policy
from burnguard.notify import blocks as slack_blocks
from burnguard.notify.content import render_decision, render_failures, render_resume
from burnguard.ports.notify import Notification
from burnguard.rules.decisions import Decision, decide_budget_alert
from burnguard.services.guardrail import ExecutionReport, ResumeReport
from tests.helpers import fixture
from tests.slack_helpers import NOW, POLICY, SEPTEMBER, World, item

ML = {"team": "ml-research", "project": "llm"}


def fields_of(blocks: list[dict[str, Any]]) -> dict[str, str]:
    out = {}
    for b in blocks:
        for f in b.get("fields", ()):
            label, _, value = f["text"].partition("\n")
            out[label.strip("*")] = value
    return out


def check(n: Notification) -> list[dict[str, Any]]:
    """Every notification: blocks within the limits, a header first, a text fallback."""
    blocks = [dict(b) for b in n.blocks]
    assert blocks and slack_blocks.problems(blocks) == [], blocks
    assert blocks[0]["type"] == "header" and n.text
    json.dumps(blocks)
    return blocks


def test_every_notification_the_guardrail_sends_carries_blocks(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.deliver(SEPTEMBER)
    world.deliver([*SEPTEMBER, item("300", ML, day=18)])
    kinds: dict[str, Notification] = {}
    for n in world.notifier.sent:
        kinds.setdefault(n.kind, n)
    assert set(kinds) == {"threshold", "forecast", "burn-rate", "stop"}
    for n in world.notifier.sent:
        check(n)
    threshold = check(kinds["threshold"])
    assert threshold[0]["text"]["text"] == ":warning: ml-monthly: 50% of budget"
    f = fields_of(threshold)
    assert f["Scope"] == "`team=ml-research`" and f["Budget"] == "1,000.00 USD" and f["Used"] == "93.3%"
    assert f["Spend"] == "933.22 USD" and f["Forecast"].endswith(" USD")
    assert "*Per cloud* AWS 662.84 USD · Google Cloud 180.25 USD · Azure 90.12 USD" in json.dumps(threshold,
                                                                                                 ensure_ascii=False)
    burn = check(kinds["burn-rate"])
    assert burn[0]["text"]["text"] == ":fire: inference-burn: GPU burn 12.00 USD/h"
    assert fields_of(burn)["Limit"] == "10.00 USD/h"
    stop = check(kinds["stop"])
    assert stop[0]["text"]["text"] == ":octagonal_sign: ml-monthly: stopped 2 GPU instance(s)"
    assert stop[1]["text"]["text"] == "*Because* `team=ml-research` crossed 100% of its budget"
    assert fields_of(stop)["Estimated saving"] == "36.44 USD/h"


def _decision(**kwargs: Any) -> Decision:
    base: dict[str, Any] = {"kind": "threshold", "guardrail": "ml-monthly", "scope": Scope("team", "ml-research"),
                            "period": "2024-09", "label": "100%", "actions": ("notify", "stop"), "announce": ("k",),
                            "spend": Money(Decimal("1234.5"), "USD"), "budget": Money(Decimal(1000), "USD")}
    return Decision(**{**base, **kwargs})


def _gpu(cloud: str, iid: str, name: str, itype: str, cost: str | None) -> Instance:
    return Instance(cloud, iid, name, "zone-a", itype, "running", {"team": "ml-research"},
                    hourly_cost=Decimal(cost) if cost else None, currency="USD" if cost else None)


def test_a_dry_run_stop_says_nothing_was_called_and_no_resume() -> None:
    policy = load_policy(POLICY)
    report = ExecutionReport(_decision(), dry_run=True,
                             stopped=[_gpu("aws", "i-1", "a", "p5.48xlarge", "98.32"),
                                      _gpu("azure", "/sub/vm/b", "b", "Standard_ND96asr_v4", None)])
    blocks = check(render_decision(report, policy))
    assert blocks[0]["text"]["text"] == ":octagonal_sign: ml-monthly: would stop 2 GPU instance(s)"
    text = json.dumps(blocks, ensure_ascii=False)
    assert "Would stop (dry-run: nothing was called)" in text and "resume" not in text.lower()
    assert fields_of(blocks)["Estimated saving"] == "98.32 USD/h"  # the Azure VM's cost is unknown
    assert fields_of(blocks)["Mode"].startswith("dry-run")


def test_a_failure_names_each_instance_and_the_clouds_reason() -> None:
    policy = load_policy(POLICY)
    vm = _gpu("azure", "/subscriptions/s/vm/nc", "nc-a100", "Standard_NC24ads_A100_v4", "3.40")
    report = ExecutionReport(_decision(), dry_run=False, stopped=[_gpu("aws", "i-1", "a", "p4d.24xlarge", "32.77")],
                             failed=[(vm, "AuthorizationFailed: no permission to <deallocate> & more")])
    n = render_failures(report, policy)
    blocks = check(n)
    assert n.kind == "failure" and n.channel == "#spend"
    assert blocks[0]["text"]["text"] == ":x: ml-monthly: could not stop 1 instance(s)"
    text = json.dumps(blocks)
    # The reason is the cloud's own words, escaped for mrkdwn.
    assert "Azure `nc-a100`: AuthorizationFailed: no permission to &lt;deallocate&gt; &amp; more" in text
    assert fields_of(blocks) == {"Scope": "`team=ml-research`", "Stopped": "1"}
    assert "AuthorizationFailed" in n.text  # and in the fallback


def test_a_native_budget_alert_says_which_budget_and_account(tmp_path: Path) -> None:
    policy = load_policy(POLICY.replace("    forecast_thresholds: [{at: 100%, actions: [notify]}]",
                                        "    forecast_thresholds: [{at: 100%, actions: [notify]}]\n"
                                        "    budget_notifications: {aws: [\"Test Budget\"], actions: [notify]}"))
    message = fixture("aws-budgets-sns/sre-bot.budget-message.txt").read_text()
    alert = parse_aws_budget_sns("AWS Budgets: Test Budget has exceeded your alert threshold", message,
                                 "2022-09-26T13:23:38.553Z")
    [decision] = decide_budget_alert(policy, alert, World(tmp_path).ledger, NOW)
    blocks = check(render_decision(ExecutionReport(decision, dry_run=True), policy))
    assert blocks[0]["text"]["text"].startswith(":bell: ml-monthly: AWS budget alert (")
    f = fields_of(blocks)
    assert f["Budget name"] == "Test Budget" and f["Account"] == f"`{alert.account}`"
    assert "from the AWS budget notification" in json.dumps(blocks)


def test_a_resume_names_who_did_it() -> None:
    policy = load_policy(POLICY)
    started = StopRecord("ml-monthly", "team=ml-research", "aws", "i-1", "trainer-1", "us-east-1", "p4d.24xlarge",
                         datetime(2024, 9, 20, tzinfo=UTC), False)
    failed = StopRecord("ml-monthly", "team=ml-research", "gcp", "g-1", "a2", "z", "a2-highgpu-1g",
                        datetime(2024, 9, 20, tzinfo=UTC), False)
    n = render_resume(ResumeReport("ml-monthly", [started], [(failed, "quota exceeded")]), policy, "U0ADMIN01")
    blocks = check(n)
    assert blocks[0]["text"]["text"] == ":arrow_forward: ml-monthly: resumed 1 instance(s)"
    assert fields_of(blocks) == {"By": "<@U0ADMIN01>", "Started": "1", "Failed": "1"}
    assert "Google Cloud `a2`: quota exceeded" in json.dumps(blocks)
    cli = check(render_resume(ResumeReport("ml-monthly", [started]), policy, "cli"))
    assert fields_of(cli)["By"] == "cli"


def test_limits_hold_for_long_lists_and_long_names() -> None:
    many = [_gpu("aws", f"i-{n:04d}", "x" * 300, "p4d.24xlarge", "1") for n in range(200)]
    report = ExecutionReport(_decision(guardrail="g" * 200), dry_run=False, stopped=many,
                             failed=[(i, "r" * 500) for i in many])
    for blocks in (slack_blocks.decision_blocks(report), slack_blocks.failure_blocks(report)):
        assert slack_blocks.problems(blocks) == []
        assert len(blocks[0]["text"]["text"]) <= 150
        assert "more" in json.dumps(blocks, ensure_ascii=False)
    # Short lines: the first 10 are listed, the rest counted.
    few = slack_blocks.bullets("Stopped", [f"i-{n}" for n in range(200)])
    assert few["text"]["text"].splitlines()[-2:] == ["• i-9", "… and 190 more"]


def test_problems_finds_what_slack_would_refuse() -> None:
    assert slack_blocks.problems([{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}])
    assert slack_blocks.problems([{"type": "section", "fields": [{"type": "mrkdwn", "text": "a"}] * 11}])
    assert slack_blocks.problems([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}])
    assert slack_blocks.problems([{"type": "image"}])
    assert slack_blocks.problems([slack_blocks.divider()] * 51)
    assert slack_blocks.escape("<@U1> & <!channel>") == "&lt;@U1&gt; &amp; &lt;!channel&gt;"
