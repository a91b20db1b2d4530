"""The slash commands answered from a SQLite ledger holding real deliveries: every figure is
checked against sums computed here from the line items, authorization is refused and audited,
bad input gets what was wrong and the usage."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from burnguard.core.errors import InputError
from burnguard.notify import blocks as slack_blocks
from burnguard.ports.slack import CommandRequest
from burnguard.services.commands import CommandError, SlashCommands, parse_command, parse_duration
from tests.slack_helpers import (
    ADMIN,
    AUGUST,
    NOW,
    PROJECT_ADMIN,
    SEPTEMBER,
    STRANGER,
    World,
    expected_by_resource,
    expected_by_value,
    expected_spend,
    money,
)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path).standard()


def commands(world: World) -> SlashCommands:
    return SlashCommands(world.ledger, world.policy, lambda g, actor: world.guardrails().resume(g, actor))


_serial = itertools.count()


def ask(world: World, text: str, user: str = ADMIN, request_id: str | None = None) -> tuple[str, list, str]:
    answer = commands(world).complete(CommandRequest(text, user, NOW, request_id or f"trigger-{next(_serial)}"))
    assert slack_blocks.problems(answer.blocks) == [], answer.blocks
    json.dumps(answer.as_dict())  # JSON-ready
    return answer.text, answer.blocks, answer.response_type


def blob(blocks: list) -> str:
    return json.dumps(blocks)


def command_events(world: World) -> list:
    return [e for e in world.ledger.audit_log(limit=500) if e.kind == "command"]


# --------------------------------------------------------------------------- queries


def test_spend_of_a_tag_value_matches_the_line_items(world: World) -> None:
    total = expected_spend(SEPTEMBER, "team", "ml-research")
    gpu = sum((r["EffectiveCost"] for r in SEPTEMBER if r["x_AcceleratorClass"] == "gpu"
               and any(k.lower() == "team" and v == "ml-research" for k, v in r["Tags"])), Decimal(0))
    text, blocks, kind = ask(world, "spend team=ml-research")
    assert kind == "ephemeral"
    assert f"total {money(total)} (GPU {money(gpu)})" in text
    # Per cloud, from the rows of each cloud; the Azure row has its key written "Team".
    per_cloud = {c: sum((r["EffectiveCost"] for r in SEPTEMBER if r["x_Cloud"] == c
                         and any(k.lower() == "team" and v == "ml-research" for k, v in r["Tags"])), Decimal(0))
                 for c in ("aws", "gcp", "azure")}
    assert per_cloud["azure"] > 0
    for cloud, name in (("aws", "AWS"), ("gcp", "Google Cloud"), ("azure", "Azure")):
        assert f"{name} {money(per_cloud[cloud])}" in blob(blocks)
    assert blocks[0]["type"] == "header" and "team=ml-research" in blocks[0]["text"]["text"]
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in blocks[1]["fields"]}
    assert fields == {"*Total USD*": money(total), "*GPU USD*": money(gpu)}


def test_spend_of_every_value_and_of_another_month(world: World) -> None:
    text, blocks, _ = ask(world, "spend team=*")
    for value, amount in expected_by_value(SEPTEMBER, "team").items():
        assert f"team={value}: {money(amount)}" in text
        assert f"`{value}` {money(amount)}" in blob(blocks)
    text, _, _ = ask(world, "spend project=llm 2024-08")
    assert "Spend of project=llm in 2024-08" in text
    assert f"total {money(expected_spend(AUGUST, 'project', 'llm'))}" in text
    text, blocks, _ = ask(world, "spend team=nobody")
    assert "no spend recorded" in text and "No spend recorded" in blob(blocks)


def test_spend_of_a_day_and_of_the_last_days(world: World) -> None:
    day15 = [r for r in SEPTEMBER if r["ChargePeriodStart"].day == 15]
    text, _, _ = ask(world, "spend team=ml-research 2024-09-15")
    assert f"total {money(expected_spend(day15, 'team', 'ml-research'))}" in text
    last7 = [r for r in SEPTEMBER if r["ChargePeriodStart"].date() > (NOW - timedelta(days=7)).date()]
    text, _, _ = ask(world, "spend team=ml-research 7d")
    assert "last 7 days" in text and f"total {money(expected_spend(last7, 'team', 'ml-research'))}" in text


def test_top_resources_among_the_guarded_keys_and_of_a_tag(world: World) -> None:
    expected = sorted(expected_by_resource(SEPTEMBER, ["team", "project"]).items(), key=lambda kv: -kv[1])
    text, blocks, kind = ask(world, "top 3")
    assert kind == "ephemeral"
    lines = text.splitlines()[1:]
    assert len(lines) == 3
    for n, (line, (resource, amount)) in enumerate(zip(lines, expected[:3], strict=True), 1):
        assert line.startswith(f"{n}. {resource} ") and line.endswith(money(amount))
    assert "the keys the policy guards" in blob(blocks)
    text, _, _ = ask(world, "top team=web")
    assert text.splitlines()[1:] == [f"1. i-web g6.xlarge (AWS): {money(expected_spend(SEPTEMBER, 'team', 'web'))}"]


def test_top_values_of_a_tag_key(world: World) -> None:
    expected = sorted(expected_by_value(SEPTEMBER, "project").items(), key=lambda kv: -kv[1])
    text, blocks, _ = ask(world, "top 2 by project 2024-09")
    assert text.splitlines()[1:] == [f"{n}. project={v}: {money(a)}" for n, (v, a) in enumerate(expected[:2], 1)]
    assert "Top project values · 2024-09" in blocks[0]["text"]["text"]
    text, _, _ = ask(world, "top by project 2024-08")
    assert text.splitlines()[1:] == [f"1. project=llm: {money(expected_spend(AUGUST, 'project', 'llm'))}"]


def test_guardrails_status_per_scope_value(world: World) -> None:
    text, blocks, kind = ask(world, "guardrails")
    assert kind == "ephemeral"
    ml = expected_spend(SEPTEMBER, "team", "ml-research")
    percent = (ml / 1000 * 100).quantize(Decimal("0.1"))
    line = next(row for row in text.splitlines() if row.startswith("ml-monthly"))
    assert f"{money(ml)} of 1,000.00 USD ({percent}%)" in line and "crossed 50%" in line and "forecast" in line
    for project, amount in expected_by_value(SEPTEMBER, "project").items():
        row = next(r for r in text.splitlines() if f"project={project} " in r)
        assert money(amount) in row and ("crossed 100%" in row) == (amount >= 300)
    assert "inference-burn team=inference last 4h: GPU 12.00 USD/h" in text  # 4 hours of 12 USD
    assert "billing data until 2024-09-20 00:00 UTC" in text
    icons = {s["text"]["text"].split("`")[1]: s["text"]["text"].split(" ")[0]
             for s in blocks if s["type"] == "section" and "`" in s["text"]["text"]}
    assert icons == {"team=ml-research": ":large_yellow_circle:",  # 50% crossed, under budget
                     "project=llm": ":red_circle:", "project=vision": ":large_green_circle:",
                     "project=site": ":large_green_circle:", "team=inference": ":red_circle:"}


def test_stopped_lists_what_the_guardrail_stopped_and_when(world: World) -> None:
    text, _, _ = ask(world, "stopped")
    assert text == "Nothing is stopped right now."
    [report, *_] = world.overspend()
    assert {i.instance_id for i in report.stopped} == {"i-a100", "gce-a2"}
    text, blocks, _ = ask(world, "stopped ml-monthly")
    assert "ml-monthly: AWS trainer-1 (p4d.24xlarge) at 2024-09-20 12:00 UTC, 32.77 USD/h" in text
    assert "ml-monthly: Google Cloud a2-box (a2-highgpu-1g)" in text
    assert "Stopped by burnguard: 2 instance(s)" in blocks[0]["text"]["text"]
    text, _, _ = ask(world, "stopped per-project")
    assert text == "Nothing is stopped right now."


# --------------------------------------------------------------------------- writes


def test_snooze_by_an_authorized_user_is_in_channel_audited_and_silences(world: World) -> None:
    text, _blocks, kind = ask(world, "snooze ml-monthly 2h")
    assert kind == "in_channel"
    assert "<@U0ADMIN01> snoozed ml-monthly for 2h, until 2024-09-20 14:00 UTC" in text
    assert world.ledger.snoozed_until("ml-monthly") == NOW + timedelta(hours=2)
    [event] = command_events(world)
    assert (event.actor, event.outcome, event.guardrail, event.details["command"]) == (ADMIN, "ok", "ml-monthly",
                                                                                       "snooze")
    reports = world.overspend()  # over 100% now, but snoozed: no alert, no stop
    assert all(r.decision.guardrail != "ml-monthly" for r in reports)
    assert world.state("aws", "i-a100") == "running"
    text, _, _ = ask(world, "snooze ml-monthly off")
    assert "ended the snooze" in text and world.ledger.snoozed_until("ml-monthly") == NOW


def test_snooze_and_resume_refused_to_others_and_every_attempt_audited(world: World) -> None:
    world.overspend()
    text, _blocks, kind = ask(world, "snooze ml-monthly 1d", user=STRANGER)
    assert kind == "ephemeral"
    assert text == "You are not allowed to snooze ml-monthly. Who may: <@U0ADMIN01>."
    assert world.ledger.snoozed_until("ml-monthly") is None
    # The guardrail's own list replaces the default one: the default admin may not.
    text, _, _ = ask(world, "snooze per-project 1d", user=ADMIN)
    assert "not allowed" in text and "<@U0PROJ001>" in text
    text, _, kind = ask(world, "snooze per-project 1d", user=PROJECT_ADMIN)
    assert kind == "in_channel"
    text, _, _ = ask(world, "resume ml-monthly", user=STRANGER)
    assert "not allowed to resume" in text
    assert world.state("aws", "i-a100") == "stopped"
    outcomes = [(e.actor, e.details["command"], e.outcome, e.guardrail) for e in reversed(command_events(world))]
    assert outcomes == [(STRANGER, "snooze", "refused", "ml-monthly"), (ADMIN, "snooze", "refused", "per-project"),
                        (PROJECT_ADMIN, "snooze", "ok", "per-project"), (STRANGER, "resume", "refused", "ml-monthly")]


def test_resume_by_an_authorized_user_starts_the_instances_once(world: World) -> None:
    world.overspend()
    text, blocks, kind = ask(world, "resume ml-monthly", request_id="trigger-resume")
    assert kind == "in_channel"
    assert text.startswith("<@U0ADMIN01> resumed 2 instance(s) of ml-monthly")
    assert world.state("aws", "i-a100") == "running" and world.state("gcp", "gce-a2") == "running"
    assert world.state("aws", "i-keep") == "running"  # protected: never stopped
    assert "resumed 2 instance(s)" in blocks[0]["text"]["text"]
    # The same Slack request again (a retry, a deferred re-run): nothing is done twice.
    text, _, _ = ask(world, "resume ml-monthly", request_id="trigger-resume")
    assert "already carried out" in text
    starts = [e for e in world.ledger.audit_log(limit=500) if e.kind == "action" and e.details.get("action") == "start"]
    assert len(starts) == 2 and {e.actor for e in starts} == {ADMIN}
    [event] = [e for e in command_events(world) if e.details["command"] == "resume"]
    assert event.outcome == "ok" and event.details["started"] == 2


def test_bad_arguments_of_writes_are_explained_and_audited(world: World) -> None:
    cases = {
        "snooze ml-monthly 9d": "at most a week",
        "snooze ml-monthly 0h": "at least a minute",
        "snooze ml-monthly soon": "is not a duration",
        "snooze ml-monthly": "needs a guardrail and a duration",
        "snooze ml-montly 1h": "Did you mean `ml-monthly`?",
        "resume": "needs a guardrail name",
        "resume nothing-like-it": "Guardrails: ml-monthly, per-project, inference-burn",
    }
    for text, expected in cases.items():
        answer, _blocks, kind = ask(world, text)
        assert expected in answer and "Usage: `/burnguard " in answer, (text, answer)
        assert kind == "ephemeral"
    assert world.ledger.snoozed_until("ml-monthly") is None
    failed = [e for e in command_events(world) if e.outcome == "failed"]
    assert len(failed) == len(cases)


# --------------------------------------------------------------------------- parsing


def test_unknown_commands_and_bad_queries_get_help_not_a_trace(world: World) -> None:
    text, blocks, _ = ask(world, "spnd team=x")
    assert text.startswith("Unknown command `spnd`. Did you mean `spend`?")
    assert "/burnguard guardrails" in text and "snooze" in blob(blocks)
    for query, expected in {
        "spend": "`spend` takes a tag",
        "spend team=ml-research 2024-13": "Month 13 does not exist.",
        "spend team=ml-research yesterday": "A period is YYYY-MM",
        "top 0": "N is between 1 and 25",
        "top by": "`by` needs a tag key",
        "top team=web by team": "not both",
        "top 2024-09 2024-08": "one period only",
        "stopped a b": "at most one guardrail",
    }.items():
        answer, _, _ = ask(world, query)
        assert expected in answer, (query, answer)
    text, _, _ = ask(world, "")
    assert text.startswith("burnguard: GPU spend per tag")


def test_help_uses_the_command_name_slack_sent(world: World) -> None:
    answer = commands(world).complete(CommandRequest("help", ADMIN, NOW, "t", command="/gpu"))
    assert "`/gpu spend &lt;tag&gt;=&lt;value&gt; [period]`" in answer.text  # Slack shows "<tag>"


def test_parse_command_and_durations() -> None:
    assert parse_command("  TOP 5   by team ") .name == "top"
    assert parse_command("spend team=a&amp;b").args == ("team=a&b",)  # Slack's escaping undone
    with pytest.raises(CommandError):
        parse_command("drop tables")
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("2h") == timedelta(hours=2)
    assert parse_duration("1w") == timedelta(days=7)
    for bad in ("8d", "0m", "1y", "-1h", "h"):
        with pytest.raises(CommandError):
            parse_duration(bad)


def test_command_request_round_trips_as_plain_data() -> None:
    request = CommandRequest("resume ml-monthly", ADMIN, NOW, "trig", channel_id="C1", response_url="https://x/y")
    assert CommandRequest.from_dict(json.loads(json.dumps(request.to_dict()))) == request
    with pytest.raises(InputError):
        CommandRequest.from_dict({"text": "x"})


def test_user_text_never_becomes_a_mention_or_a_link(world: World) -> None:
    # Slack sends "<" escaped; whatever comes back is escaped again, in the text and the blocks.
    for text in ("spend team=&lt;!channel&gt;", "&lt;!here&gt;", "snooze &lt;@U0ADMIN01&gt; 1h",
                 "top by &lt;https://evil.example|click&gt;"):
        answer, blocks, _ = ask(world, text)
        rendered = answer + json.dumps(blocks)
        assert "<!" not in rendered and "<https" not in rendered and "<@U0ADMIN01>" not in rendered, rendered


def test_questions_are_judged_as_of_the_data_and_snoozes_run_in_real_time(world: World) -> None:
    """The embedded mode: sample data of September 2024 judged at its end, a snooze of real hours."""
    wall = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)
    c = commands(world)
    spend = c.complete(CommandRequest("spend team=web", ADMIN, wall, "a", as_of=NOW))
    assert "Spend of team=web in 2024-09" in spend.text and "total 55.55 USD" in spend.text
    c.complete(CommandRequest("snooze ml-monthly 2h", ADMIN, wall, "b", as_of=NOW))
    assert world.ledger.snoozed_until("ml-monthly") == wall + timedelta(hours=2)
    [event] = command_events(world)
    assert event.at == wall
    request = CommandRequest("top", ADMIN, wall, "c", as_of=NOW)
    assert CommandRequest.from_dict(json.loads(json.dumps(request.to_dict()))) == request


def test_guardrails_shows_a_snooze_against_the_real_time_not_the_data_time(world: World) -> None:
    """The embedded mode judges September 2024 at its end; a snooze taken now (real time) shows
    as running until it ends in real time, and not once it has, whatever the data's time."""
    wall = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)
    c = commands(world)
    c.complete(CommandRequest("snooze ml-monthly 2h", ADMIN, wall, "s", as_of=NOW))

    def ml_row(at: datetime) -> str:
        answer = c.complete(CommandRequest("guardrails", ADMIN, at, f"g-{at:%H%M}", as_of=NOW))
        return next(row for row in answer.text.splitlines() if row.startswith("ml-monthly"))

    assert "snoozed until 2026-11-27 00:00 UTC" in ml_row(wall + timedelta(hours=1))
    assert "snoozed" not in ml_row(wall + timedelta(hours=3))  # over in real time (the data's time is 2024)


def test_guardrails_show_the_live_estimate_and_the_projection(world: World) -> None:
    """/burnguard guardrails on a ledger that keeps the live estimate: the spend includes the
    estimate of the hours no bill covers yet, says so, and projects the crossing."""
    from burnguard.core.estimates import Rate, Reading

    covered = world.ledger.coverage()["aws"]
    reading = Reading("aws", "i-live-1", "p5.48xlarge", "us-east-1a", covered + timedelta(hours=12), True,
                      Rate(Decimal(1), "USD", "price-table", "2024-09-01"), {"team": "ml-research"},
                      started_at=covered - timedelta(hours=30))
    world.ledger.record_readings([reading])
    text, _, _ = ask(world, "guardrails")
    ml = expected_spend(SEPTEMBER, "team", "ml-research")
    line = next(row for row in text.splitlines() if row.startswith("ml-monthly"))
    assert ml + 12 < 1000
    assert f"{money(ml + 12)} of 1,000.00 USD" in line  # 12 hours at 1 USD/h since the bill's end
    assert "incl. 12.00 USD estimated" in line and "at 1.00 USD/h, 100% at " in line
