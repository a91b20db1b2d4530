"""The policy model: sample policies, errors with YAML lines and field paths, JSON Schema,
percentages, periods, scopes, the protect tag and the mapping of native budget alerts."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from burnguard.core.budget import parse_azure_budget_alert, parse_gcp_pubsub_cloudevent, parse_sns_record
from burnguard.core.errors import InputError
from burnguard.core.money import Money
from burnguard.core.policy import (
    Guardrail,
    Policy,
    PolicyError,
    Threshold,
    format_percent,
    load_policy,
    parse_percent,
    policy_json_schema,
    project_period_end,
)
from tests.helpers import EVENTS, fixture

POLICIES = sorted((EVENTS / "policies").glob("*.yaml"))


def policy_text(body: str) -> str:
    return textwrap.dedent(body).lstrip("\n")


def errors_of(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as err:
        load_policy(policy_text(text), "policy.yaml")
    return err.value


def lines(err: PolicyError) -> list[tuple[int | None, str]]:
    return [(i.line, i.field) for i in err.issues]


MINIMAL = """
version: 1
slack: {channel: "#gpu"}
guardrails:
  - name: ml
    scope: team=ml
    budget: 100 USD
    thresholds:
      - {at: 80%, actions: [notify]}
"""


# --------------------------------------------------------------------------- the samples


def test_the_three_sample_policies_are_there() -> None:
    assert {p.name for p in POLICIES} >= {"demo.yaml", "minimal.yaml", "production-example.yaml"}


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_every_sample_policy_loads(path: Path) -> None:
    policy = load_policy(path)
    assert policy.version == 1
    assert policy.guardrails
    # the same file as text and as a str path give the same policy
    assert load_policy(path.read_text(encoding="utf-8"), path.name) == policy
    assert load_policy(str(path)) == policy


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_every_sample_policy_validates_against_the_json_schema(path: Path) -> None:
    schema = policy_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def test_json_schema_rejects_what_the_loader_rejects() -> None:
    validator = jsonschema.Draft202012Validator(policy_json_schema())
    good = yaml.safe_load(policy_text(MINIMAL))
    assert validator.is_valid(good)
    unknown = json.loads(json.dumps(good))
    unknown["guardrails"][0]["treshold"] = 1
    bad_period = json.loads(json.dumps(good))
    bad_period["guardrails"][0]["period"] = "weekly"
    bad_scope = json.loads(json.dumps(good))
    bad_scope["guardrails"][0]["scope"] = "team"
    both = {**good, "safety": {}, "defaults": {}}
    for doc in (unknown, bad_period, bad_scope, both, {**good, "version": 2}):
        assert not validator.is_valid(doc)
        with pytest.raises(InputError):
            load_policy(yaml.safe_dump(doc), "x.yaml")


def test_demo_policy() -> None:
    policy = load_policy(EVENTS / "policies" / "demo.yaml")
    assert policy.safety.dry_run is False  # the demo shows stops in the local inventory
    ml = policy.guardrail("ml-research-monthly")
    assert (ml.scope.key, ml.scope.value) == ("team", "ml-research")
    assert str(ml.period) == "month"
    assert ml.budget is not None and ml.budget.money == Money(Decimal(5000), "USD")
    assert [t.at for t in ml.thresholds] == [Decimal(50), Decimal(80), Decimal(100), Decimal(120)]
    assert [("stop" in t.actions) for t in ml.thresholds] == [False, False, True, True]
    projects = policy.guardrail("per-project-monthly")
    assert projects.scope.is_wildcard and projects.scope.key == "project"
    burn = policy.guardrail("inference-burn-rate")
    assert burn.burn_rate is not None
    assert burn.burn_rate.gpu_per_hour.money == Money(Decimal(50), "USD")
    assert burn.burn_rate.window_hours == 6
    assert (burn.scope.key, burn.scope.value) == ("team", "inference")


@pytest.mark.parametrize(
    ("parse", "name"),
    [
        (lambda p: parse_sns_record(json.loads(p.read_text())), "aws-budgets-sns/sre-bot.sns-http-notification.json"),
        (lambda p: parse_gcp_pubsub_cloudevent(json.loads(p.read_text())),
         "gcp-budget-docs/budget-notification.cloudevent.CONSTRUCTED.json"),
        (lambda p: parse_azure_budget_alert(json.loads(p.read_text())), "azure-docs/budget-alert.aip-budget-notification.json"),
        (lambda p: parse_azure_budget_alert(json.loads(p.read_text())),
         "azure-docs/budget-alert.aip-budget-notification.logicapp-sample.json"),
        (lambda p: parse_azure_budget_alert(json.loads(p.read_text())), "azure-docs/budget-alert.common-schema.actual.json"),
        (lambda p: parse_azure_budget_alert(json.loads(p.read_text())),
         "azure-docs/budget-alert.common-schema.forecasted.json"),
    ],
)
def test_demo_maps_every_public_budget_notification(parse: Any, name: str) -> None:
    policy = load_policy(EVENTS / "policies" / "demo.yaml")
    alert = parse(fixture(name))
    matched = policy.guardrails_for_budget_alert(alert)
    assert [g.name for g in matched] == ["ml-research-monthly"]
    bn = matched[0].budget_notifications
    assert bn is not None and bn.actions_for(alert) == ("notify",)


def test_minimal_policy_gets_the_safe_defaults() -> None:
    policy = load_policy(EVENTS / "policies" / "minimal.yaml")
    s = policy.safety
    assert s.dry_run is True
    assert str(s.protect_tag) == "burnguard:protect=true"
    assert s.max_stops_per_run == 10
    assert s.gpu_only is True and s.allow_non_gpu is False
    assert s.never_terminate is True
    g = policy.guardrails[0]
    assert g.clouds == ("aws", "gcp", "azure")
    assert g.cost == "effective"
    assert str(g.period) == "month"


def test_production_example() -> None:
    policy = load_policy(EVENTS / "policies" / "production-example.yaml")
    assert policy.safety.dry_run is True
    assert policy.slack.authorized_users
    ml = policy.guardrail("ml-research-monthly")
    assert policy.channel_for(ml) == "#ml-research-spend"
    assert policy.authorized_users_for(ml) == ("U012AB3CDE", "U0RESEARCH1")
    projects = policy.guardrail("projects-monthly")
    assert policy.channel_for(projects) == "#finops-alerts"
    assert policy.authorized_users_for(projects) == policy.slack.authorized_users
    assert [t.at for t in projects.thresholds] == [Decimal(90), Decimal(100)]  # 0.9 and 1.0
    assert str(policy.guardrail("experiments-rolling-week").period) == "rolling:7d"


# --------------------------------------------------------------------------- errors


def test_errors_carry_line_and_field_path() -> None:
    err = errors_of(
        """
        version: 1
        slack: {channel: "#gpu"}
        guardrails:
          - name: first
            scope: team=a
            budget: 100 USD
            thresholds:
              - {at: 80%, actions: [notify]}
          - name: second
            scope: team=b
            budget: 100 USD
            thresholds:
              - at: 80 percent
                actions: [notify]
        """
    )
    assert str(err) == (
        'policy.yaml, line 13, field guardrails[1].thresholds[0].at: must be a percentage like "80%" '
        "(or a share of the budget like 0.8), got '80 percent'"
    )
    assert err.file == "policy.yaml" and err.row == 13 and err.field == "guardrails[1].thresholds[0].at"
    assert isinstance(err, InputError)
    assert err.as_dict()["issues"] == [
        {"line": 13, "column": 9, "field": "guardrails[1].thresholds[0].at", "message": err.issues[0].message}
    ]


def test_several_errors_at_once() -> None:
    err = errors_of(
        """
        version: 1
        safety:
          gpu_only: false
          dry_run: maybe
        slack:
          channel: "#x"
          authorized_users: [bob]
        guardrails:
          - name: a
            scope: team=x
            budget: 5000 USD
            thresholds:
              - {at: 80%, actions: [notify]}
              - {at: 80, actions: [stop]}
          - name: Bad_Name
            scope: team
            period: weekly
            budget: 5000
            thresholds:
              - at: 80%
                actions: [notify]
                treshold: 1
          - name: a
            scope: team=y
            period: day
            budget: {amount: 10, currency: USD}
            budget: {amount: 20, currency: USD}
            thresholds:
              - {at: 50%, actions: [stop]}
              - {at: 0.5, actions: [notify]}
            forecast_thresholds:
              - {at: 100%, actions: [notify]}
        """
    )
    assert lines(err) == [
        (3, "safety.gpu_only"),
        (4, "safety.dry_run"),
        (7, "slack.authorized_users[0]"),
        (14, "guardrails[0].thresholds[1].at"),
        (15, "guardrails[1].name"),
        (16, "guardrails[1].scope"),
        (17, "guardrails[1].period"),
        (18, "guardrails[1].budget"),
        (22, "guardrails[1].thresholds[0].treshold"),
        (23, "guardrails[2].name"),
        (27, "guardrails[2].budget"),
        (30, "guardrails[2].thresholds[1].at"),
        (31, "guardrails[2].forecast_thresholds"),
    ]
    messages = {i.field: i.message for i in err.issues}
    assert "allow_non_gpu: true" in messages["safety.gpu_only"]
    assert "guardrails[0].thresholds[1]" in messages["safety.gpu_only"]
    assert "8000%" in messages["guardrails[0].thresholds[1].at"] and "0.8 means 80%" in messages["guardrails[0].thresholds[1].at"]
    assert "duplicate guardrail name 'a'" in messages["guardrails[2].name"]
    assert messages["guardrails[2].budget"] == "duplicate key 'budget' (first on line 26)"
    assert messages["guardrails[2].thresholds[1].at"] == "50% is already thresholds[0]"
    assert "period: month" in messages["guardrails[2].forecast_thresholds"]
    assert "unknown key 'treshold'" in messages["guardrails[1].thresholds[0].treshold"]
    assert len(str(err).splitlines()) == 13


def test_unknown_key_suggests_the_right_one() -> None:
    err = errors_of(MINIMAL + "    notify_chanel: '#x'\n")
    assert lines(err) == [(9, "guardrails[0].notify_chanel")]
    assert err.issues[0].message == "unknown key 'notify_chanel' (did you mean 'notify_channel'?)"


def test_missing_keys_point_at_the_mapping() -> None:
    err = errors_of(
        """
        version: 1
        slack: {channel: "#gpu"}
        guardrails:
          - name: ml
            budget: 100 USD
            thresholds:
              - {actions: [notify]}
        """
    )
    assert lines(err) == [(4, "guardrails[0].scope"), (7, "guardrails[0].thresholds[0].at")]
    assert all(i.message == "missing (required)" for i in err.issues)
    err = errors_of("slack: {channel: '#x'}\nguardrails: []\n")
    assert (1, "version") in lines(err)


@pytest.mark.parametrize(
    ("period", "ok"),
    [
        ("month", True), ("day", True), ("rolling:7d", True), ("rolling:36h", True), ("rolling:366d", True),
        ("weekly", False), ("rolling:0d", False), ("rolling:7w", False), ("rolling:367d", False), ("rolling:-1h", False),
        ("Month", False), ("rolling:7", False),
    ],
)
def test_periods(period: str, ok: bool) -> None:
    text = policy_text(MINIMAL).replace("    budget: 100 USD", f"    period: '{period}'\n    budget: 100 USD")
    if ok:
        assert str(load_policy(text).guardrails[0].period) == period
    else:
        with pytest.raises(PolicyError) as err:
            load_policy(text, "p.yaml")
        assert lines(err.value) == [(6, "guardrails[0].period")]


@pytest.mark.parametrize("at", ["0%", "-5%", "1001%", "0", "11", "abc", "true", "80 %%"])
def test_thresholds_out_of_range(at: str) -> None:
    err = errors_of(MINIMAL.replace("{at: 80%", "{at: " + at))
    assert lines(err) == [(8, "guardrails[0].thresholds[0].at")]


@pytest.mark.parametrize(("at", "percent"), [("1000%", "1000"), ("0.01%", "0.01"), ("10", "1000"), ("1.2", "120"), ("'12.5%'", "12.5")])
def test_threshold_edges(at: str, percent: str) -> None:
    policy = load_policy(policy_text(MINIMAL.replace("{at: 80%", "{at: " + at)))
    assert policy.guardrails[0].thresholds[0].at == Decimal(percent)


def test_forecast_thresholds_need_a_month_period_and_a_budget() -> None:
    base = policy_text(MINIMAL) + "    forecast_thresholds:\n      - {at: 100%, actions: [notify]}\n"
    assert load_policy(base).guardrails[0].forecast_thresholds[0].at == Decimal(100)
    err = errors_of(base.replace("    budget: 100 USD", "    period: rolling:7d\n    budget: 100 USD"))
    assert lines(err) == [(10, "guardrails[0].forecast_thresholds")]
    assert "rolling:7d" in err.issues[0].message


def test_stop_with_gpu_only_false_needs_allow_non_gpu() -> None:
    stop = policy_text(MINIMAL).replace("actions: [notify]", "actions: [notify, stop]")
    not_gpu = stop.replace("version: 1\n", "version: 1\nsafety:\n  gpu_only: false\n")
    err = errors_of(not_gpu)
    assert lines(err) == [(3, "safety.gpu_only")]
    allowed = not_gpu.replace("gpu_only: false\n", "gpu_only: false\n  allow_non_gpu: true\n")
    assert load_policy(allowed).safety.allow_non_gpu is True
    # gpu_only false without any stop is fine
    assert load_policy(policy_text(MINIMAL).replace("version: 1\n", "version: 1\nsafety: {gpu_only: false}\n"))


def test_never_terminate_cannot_be_switched_off() -> None:
    err = errors_of(policy_text(MINIMAL).replace("version: 1\n", "version: 1\nsafety:\n  never_terminate: false\n"))
    assert lines(err) == [(3, "safety.never_terminate")]


def test_defaults_is_another_name_of_safety() -> None:
    text = policy_text(MINIMAL).replace("version: 1\n", "version: 1\ndefaults:\n  dry_run: false\n")
    assert load_policy(text).safety.dry_run is False
    err = errors_of(text.replace("dry_run: false", "dry_run: sometimes"))
    assert lines(err) == [(3, "defaults.dry_run")]
    both = text.replace("defaults:\n", "safety: {}\ndefaults:\n")
    assert lines(errors_of(both)) == [(3, "defaults")]


def test_notify_needs_a_channel() -> None:
    err = errors_of(policy_text(MINIMAL).replace('slack: {channel: "#gpu"}\n', ""))
    assert lines(err) == [(3, "guardrails[0].notify_channel")]
    assert load_policy(policy_text(MINIMAL).replace('slack: {channel: "#gpu"}\n', "").replace(
        "    budget:", "    notify_channel: C0123ABCD\n    budget:"))


def test_guardrail_needs_something_to_watch_and_budget_rules() -> None:
    err = errors_of(
        """
        version: 1
        slack: {channel: "#gpu"}
        guardrails:
          - name: empty
            scope: team=a
          - name: no-budget
            scope: team=b
            thresholds:
              - {at: 80%, actions: [notify]}
          - name: no-thresholds
            scope: team=c
            budget: 100 USD
          - name: wrong-cloud
            scope: team=d
            clouds: [gcp]
            budget_notifications:
              aws: ["Test Budget"]
          - name: nothing-mapped
            scope: team=e
            budget_notifications: {actions: [notify]}
        """
    )
    assert lines(err) == [
        (4, "guardrails[0]"),
        (8, "guardrails[1].thresholds"),
        (12, "guardrails[2].budget"),
        (17, "guardrails[3].budget_notifications.aws"),
        (20, "guardrails[4].budget_notifications"),
    ]


def test_yaml_problems() -> None:
    err = errors_of("version: 1\nguardrails:\n  - name: [unclosed\n")
    assert err.issues[0].line is not None and err.issues[0].line >= 3
    assert "not valid YAML" in str(err)
    assert "the policy is empty" in str(errors_of("# nothing\n"))
    assert lines(errors_of("- a\n- b\n")) == [(1, "(top level)")]
    err = errors_of(policy_text(MINIMAL).replace("version: 1\n", "version: 1\nbase: &b {dry_run: true}\nsafety:\n  <<: *b\n"))
    assert (4, "safety") in lines(err)
    assert lines(errors_of(policy_text(MINIMAL) + "version: 1\n")) == [(9, "version")]


def test_missing_file_is_an_input_error() -> None:
    with pytest.raises(InputError) as err:
        load_policy(Path("/nonexistent/policy.yaml"))
    assert err.value.file == "/nonexistent/policy.yaml"


def test_direct_construction_validates_too() -> None:
    data = yaml.safe_load(policy_text(MINIMAL))
    data["guardrails"].append(dict(data["guardrails"][0]))
    with pytest.raises(ValidationError, match="duplicate guardrail name 'ml'"):
        Policy.model_validate(data)


# --------------------------------------------------------------------------- values


def test_money_never_goes_through_float() -> None:
    text = policy_text(MINIMAL).replace("budget: 100 USD", "budget: {amount: 5000.10, currency: usd}")
    budget = load_policy(text).guardrails[0].budget
    assert budget is not None
    assert budget.amount == Decimal("5000.10") and str(budget.amount) == "5000.10"
    assert budget.currency == "USD"
    for written, amount in [("'5,000 USD'", "5000"), ("USD 12.5", "12.5"), ("1_000 EUR", "1000")]:
        b = load_policy(text.replace("{amount: 5000.10, currency: usd}", written)).guardrails[0].budget
        assert b is not None and b.amount == Decimal(amount)
    err = errors_of(text.replace("{amount: 5000.10, currency: usd}", "{amount: 0, currency: USD}"))
    assert lines(err) == [(6, "guardrails[0].budget.amount")]
    err = errors_of(text.replace("{amount: 5000.10, currency: usd}", "{amount: 10, currency: dollars}"))
    assert lines(err) == [(6, "guardrails[0].budget.currency")]


def test_threshold_helpers() -> None:
    t = Threshold(at="80%", actions=["notify"])  # type: ignore[arg-type]
    assert t.at == Decimal(80) and t.ratio == Decimal("0.8") and t.label == "80%"
    assert t.amount(Money(Decimal("5000"), "USD")) == Money(Decimal(4000), "USD")
    assert t.amount(Money(Decimal("0.20"), "USD")).amount == Decimal("0.16")
    assert t.reached_by(Decimal(4000), Money(Decimal(5000), "USD"))
    assert not t.reached_by(Decimal("3999.99"), Money(Decimal(5000), "USD"))
    assert t.model_dump(mode="json") == {"at": "80%", "actions": ["notify"]}
    g = load_policy(EVENTS / "policies" / "demo.yaml").guardrail("ml-research-monthly")
    assert [(x.label, m.amount) for x, m in g.threshold_amounts()] == [
        ("50%", Decimal(2500)), ("80%", Decimal(4000)), ("100%", Decimal(5000)), ("120%", Decimal(6000))
    ]


percents = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(1000), places=4, allow_nan=False)


@given(percents)
def test_percent_round_trip(percent: Decimal) -> None:
    assert parse_percent(format_percent(percent)) == percent
    assert parse_percent(percent / 100) == percent  # a share
    assert parse_percent(str(percent / 100)) == percent
    assert parse_percent(f"{percent}%") == percent
    # and through YAML: a bare number is a share, read from its text (never a float)
    share = format(percent / 100, "f")
    policy = load_policy(policy_text(MINIMAL).replace("{at: 80%", "{at: " + share))
    assert policy.guardrails[0].thresholds[0].at == percent


@given(st.decimals(min_value=Decimal("1000.0001"), max_value=Decimal(10**6), places=4))
def test_percent_above_range_is_refused(percent: Decimal) -> None:
    with pytest.raises(ValueError, match="at most 1000%"):
        parse_percent(f"{percent}%")


def g_with(**fields: Any) -> Guardrail:
    base: dict[str, Any] = {"name": "g", "scope": "team=ml", "budget": "100 USD",
                            "thresholds": [{"at": "80%", "actions": ["notify"]}]}
    return Guardrail.model_validate({**base, **fields})


def test_period_windows() -> None:
    now = datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert g_with(period="month").period_window(now) == (
        datetime(2024, 12, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)
    )
    feb = datetime(2024, 2, 29, 12, tzinfo=UTC)
    assert g_with(period="month").period_window(feb) == (datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC))
    assert g_with(period="day").period_window(now) == (datetime(2024, 12, 31, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
    assert g_with(period="rolling:7d").period_window(now) == (now - timedelta(days=7), now)
    assert g_with(period="rolling:36h").period_window(now) == (now - timedelta(hours=36), now)
    # an aware non-UTC instant is converted: 2025-01-01 01:00 +02:00 is still December 31 UTC
    athens = datetime(2025, 1, 1, 1, tzinfo=timezone(timedelta(hours=2)))
    assert g_with(period="day").period_window(athens)[0] == datetime(2024, 12, 31, tzinfo=UTC)
    with pytest.raises(ValueError, match="naive"):
        g_with(period="month").period_window(datetime(2024, 1, 1))


def test_scope_matching() -> None:
    fixed = g_with(scope="Team=ml-research")
    assert fixed.budget_key({"team": "ml-research"}) == "ml-research"
    assert fixed.budget_key({"TEAM": "ml-research"}) == "ml-research"  # keys: case-insensitive
    assert fixed.budget_key({"team": "ML-Research"}) is None  # values: exact
    assert fixed.budget_key({"owner": "ml-research"}) is None
    each = g_with(scope="project=*")
    assert each.scope.is_wildcard and str(each.scope) == "project=*"
    assert each.budget_key({"Project": "atlas"}) == "atlas"
    assert each.budget_key({"project": "zeus"}) == "zeus"
    assert each.budget_key({"project": ""}) is None
    assert each.budget_key({}) is None
    for bad in ["team", "=x", "team=", "team=a=b", "team=ml-*", "user:team=ml"]:
        with pytest.raises(ValidationError):
            g_with(scope=bad)


def test_protect_tag() -> None:
    safety = load_policy(EVENTS / "policies" / "minimal.yaml").safety
    assert safety.is_protected({"burnguard:protect": "true"})
    assert safety.is_protected({"BurnGuard:Protect": "True"})
    assert safety.is_protected({"burnguard-protect": "true"})  # a GCP label cannot hold ':'
    assert safety.is_protected({"burnguard_protect": "true"})
    assert not safety.is_protected({"burnguard:protect": "false"})
    assert not safety.is_protected({"burnguard:protect": ""})
    assert not safety.is_protected({"team": "ml"})
    custom = load_policy(policy_text(MINIMAL).replace("version: 1\n", "version: 1\nsafety: {protect_tag: keep=yes}\n"))
    assert custom.safety.is_protected({"Keep": "yes"}) and not custom.safety.is_protected({"keep": "true"})
    err = errors_of(policy_text(MINIMAL).replace("version: 1\n", "version: 1\nsafety: {protect_tag: keep=*}\n"))
    assert lines(err) == [(2, "safety.protect_tag")]


def test_native_budget_mapping_rules() -> None:
    policy = load_policy(
        policy_text(
            """
            version: 1
            slack: {channel: "#gpu"}
            guardrails:
              - name: pinned
                scope: team=a
                budget_notifications:
                  aws: [{name: Test Budget, account: "999999999999"}]
                  gcp: ["de72f49d-779b-4945-a127-4d6ce8def0bb"]
                  azure: ["TEST-BUDGETNAME"]
                  actions: [notify, stop]
              - name: aws-only
                scope: team=b
                clouds: [aws]
                budget_notifications:
                  aws: ["Test Budget"]
                  forecast_actions: [notify, stop]
            """
        )
    )
    aws = parse_sns_record(json.loads(fixture("aws-budgets-sns/sre-bot.sns-http-notification.json").read_text()))
    assert [g.name for g in policy.guardrails_for_budget_alert(aws)] == ["aws-only"]  # the pin is another account
    gcp = parse_gcp_pubsub_cloudevent(
        json.loads(fixture("gcp-budget-docs/budget-notification.cloudevent.CONSTRUCTED.json").read_text())
    )
    assert [g.name for g in policy.guardrails_for_budget_alert(gcp)] == ["pinned"]  # by budget id
    azure = parse_azure_budget_alert(json.loads(fixture("azure-docs/budget-alert.aip-budget-notification.json").read_text()))
    pinned = policy.guardrails_for_budget_alert(azure)
    assert [g.name for g in pinned] == ["pinned"]  # Azure names compare case-insensitively
    assert pinned[0].budget_notifications is not None
    assert pinned[0].budget_notifications.actions_for(azure) == ("notify", "stop")
    other = parse_azure_budget_alert(json.loads(fixture("azure-docs/budget-alert.common-schema.actual.json").read_text()))
    assert policy.guardrails_for_budget_alert(other) == ()
    aws_only = policy.guardrail("aws-only").budget_notifications
    assert aws_only is not None
    forecast = aws.model_copy(update={"kind": "forecasted"})
    state = gcp.model_copy(update={"kind": "state"})
    assert aws_only.actions_for(forecast) == ("notify", "stop")
    assert aws_only.actions_for(state) == ()


def test_project_period_end() -> None:
    start, end = datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 5, 1, tzinfo=UTC)
    # 1000 spent over the first 10 of 30 days: 3000 at month end, exactly
    assert project_period_end(Decimal(1000), start, end, datetime(2024, 4, 11, tzinfo=UTC)) == Decimal(3000)
    assert project_period_end(Decimal(1000), start, end, start) == Decimal(1000)
    assert project_period_end(Decimal(1000), start, end, datetime(2024, 6, 1, tzinfo=UTC)) == Decimal(1000)


def test_models_are_frozen() -> None:
    policy = load_policy(EVENTS / "policies" / "minimal.yaml")
    with pytest.raises(ValidationError):
        setattr(policy.guardrails[0], "name", "other")  # noqa: B010 - the assignment is the point
    assert hash(policy.guardrails[0].scope)
