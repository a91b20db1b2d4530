"""The slash-command service: HTTP statuses that leak nothing, the raw body signed and parsed,
answers inline, slow work acknowledged and completed through response_url."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from burnguard.adapters.local.deferral import ThreadDeferrer
from burnguard.services.slack_endpoint import WORKING, SlashService, UnavailableDeferrer
from tests.helpers import fixture
from tests.slack_helpers import (
    ADMIN,
    NOW_TS,
    SECRET,
    SEPTEMBER,
    STRANGER,
    FakeSlack,
    World,
    expected_spend,
    form,
    item,
    money,
    sign,
    signed_headers,
    slash_service,
)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path).standard()


def post(service: SlashService, body: bytes, headers: dict[str, str] | None = None, method: str = "POST") -> Any:
    return service.handle(body, signed_headers(body) if headers is None else headers, method)


def test_a_query_is_answered_inline_as_json(world: World) -> None:
    response = post(slash_service(world), form("spend team=ml-research"))
    assert response.status == 200 and response.headers["Content-Type"] == "application/json"
    answer = response.json()
    assert answer["response_type"] == "ephemeral"
    assert f"total {money(expected_spend(SEPTEMBER, 'team', 'ml-research'))}" in answer["text"]
    assert answer["blocks"][0]["type"] == "header"


def test_slacks_payload_example_is_parsed_from_its_raw_bytes(world: World) -> None:
    # Slack's documented body leaves "/" and "https://" unescaped: a real form parser copes.
    body = fixture("slack-docs/slash-command.payload-example.body.txt").read_bytes().strip()
    response = post(slash_service(world), body)
    assert response.status == 200
    assert response.json()["text"].startswith("Unknown command `94070`.")  # its text is a zip code
    assert "`/weather spend &lt;tag&gt;=&lt;value&gt; [period]`" in response.json()["text"]  # its command name


@pytest.mark.parametrize(("case", "status"), [
    ("GET", 405), ("json body", 415), ("no content type", 415), ("oversized body", 413),
    ("oversized by header", 413), ("oversized, odd header", 413), ("bad signature", 401), ("stale", 401), ("replay", 401),
    ("missing headers", 401), ("signed without user", 400), ("signed but not a form", 400),
])
def test_refusals_have_the_right_status_and_say_nothing_more(  # noqa: C901, PLR0912 - one branch per refusal case
        world: World, case: str, status: int, caplog: pytest.LogCaptureFixture) -> None:
    service = slash_service(world)
    body = form("resume ml-monthly")
    headers = signed_headers(body)
    method = "POST"
    if case == "GET":
        method = "GET"
    elif case == "json body":
        headers["Content-Type"] = "application/json"
    elif case == "no content type":
        del headers["Content-Type"]
    elif case == "oversized body":
        body = form("spend team=" + "x" * 70_000)
        headers = signed_headers(body)
    elif case == "oversized by header":
        headers["Content-Length"] = str(10**9)
    elif case == "oversized, odd header":
        body = form("spend team=" + "x" * 70_000)
        headers = {**signed_headers(body), "Content-Length": "lots"}
    elif case == "bad signature":
        headers["X-Slack-Signature"] = sign(body, NOW_TS, "not-the-secret")
    elif case == "stale":
        headers = signed_headers(body, NOW_TS - 3600)
    elif case == "replay":
        assert post(service, body, dict(headers)).status == 200
    elif case == "missing headers":
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    elif case == "signed without user":
        body = b"command=%2Fburnguard&text=guardrails"
        headers = signed_headers(body)
    else:
        body = b"text=%zz&" * 70
        headers = signed_headers(body)
    with caplog.at_level(logging.WARNING, logger="burnguard.services.commands"):
        response = service.handle(body, headers, method)
    assert response.status == status
    generic = {401: b"unauthorized", 400: b"bad request", 405: b"method not allowed", 413: b"payload too large",
               415: b"unsupported media type"}
    assert response.body == generic[status]  # the same words whatever check failed
    if status == 405:
        assert response.headers["Allow"] == "POST"
    assert caplog.records, "the detail is logged"
    assert SECRET not in caplog.text and (headers.get("X-Slack-Signature") or "\0") not in caplog.text


def test_ssl_check_gets_an_empty_200_once_signed(world: World) -> None:
    service = slash_service(world)
    body = b"ssl_check=1&token=whatever"
    assert post(service, body).status == 200 and post(service, body + b"&x=1").body == b""
    assert service.handle(body, {"Content-Type": "application/x-www-form-urlencoded"}).status == 401


def test_resume_is_acknowledged_at_once_and_completed_through_response_url(world: World) -> None:
    world.overspend()
    deferrer = ThreadDeferrer()
    service = slash_service(world, deferrer=deferrer)
    with FakeSlack() as hooks:
        body = form("resume ml-monthly", response_url=f"{hooks.url}/commands/T1/42/abc")
        response = post(service, body)
        assert response.status == 200
        assert response.json() == {"response_type": "ephemeral", "text": WORKING}
        deferrer.join(10)
        [posted] = hooks.wait(1)
    assert posted.path == "/commands/T1/42/abc"
    answer = posted.json()
    assert answer["response_type"] == "in_channel" and answer["replace_original"] is False
    assert answer["text"].startswith("<@U0ADMIN01> resumed 2 instance(s) of ml-monthly")
    assert answer["blocks"][0]["text"]["text"] == ":arrow_forward: ml-monthly: resumed 2 instance(s)"
    assert world.state("aws", "i-a100") == "running" and world.state("gcp", "gce-a2") == "running"


def test_a_refused_resume_is_answered_inline_and_never_deferred(world: World) -> None:
    world.overspend()
    deferred: list[Any] = []

    class Recording:
        def defer(self, request: Any, run: Any) -> None:
            deferred.append(request)

    response = post(slash_service(world, deferrer=Recording()), form("resume ml-monthly", user=STRANGER,
                                                                    response_url="http://127.0.0.1:9/x"))
    assert "not allowed to resume" in response.json()["text"] and deferred == []
    assert world.state("aws", "i-a100") == "stopped"
    [event] = [e for e in world.ledger.audit_log() if e.kind == "command"]
    assert (event.actor, event.outcome) == (STRANGER, "refused")


class SlowLedger:
    """The real ledger, with a slow ``top_resources`` (a cold, busy or remote store)."""

    def __init__(self, ledger: Any, delay: float):
        self._ledger, self._delay = ledger, delay

    def top_resources(self, *args: Any, **kwargs: Any) -> Any:
        time.sleep(self._delay)
        return self._ledger.top_resources(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)


def test_an_answer_not_ready_in_time_is_deferred_and_posted(world: World) -> None:
    world.ledger = SlowLedger(world.ledger, 0.5)  # type: ignore[assignment]
    deferrer = ThreadDeferrer()
    service = slash_service(world, deferrer=deferrer, inline_budget=0.1)
    with FakeSlack() as hooks:
        response = post(service, form("top team=web", response_url=f"{hooks.url}/commands/1"))
        assert response.json()["text"] == WORKING
        deferrer.join(10)
        [posted] = hooks.wait(1)
    assert posted.json()["text"].splitlines()[1] == "1. i-web g6.xlarge (AWS): 55.55 USD"
    # With time to spare, the same question is answered inline.
    fast = slash_service(world, inline_budget=5)
    assert post(fast, form("top team=web", trigger="t2")).json()["text"].startswith("Top resources of team=web")


def test_when_nothing_can_defer_the_user_is_told_and_the_attempt_audited(world: World) -> None:
    world.overspend()
    service = slash_service(world, deferrer=UnavailableDeferrer("no queue"))
    response = post(service, form("resume ml-monthly", response_url="https://hooks.slack.com/commands/1"))
    assert "could not be started; nothing was done" in response.json()["text"]
    assert world.state("aws", "i-a100") == "stopped"
    [event] = [e for e in world.ledger.audit_log() if e.kind == "command"]
    assert event.outcome == "failed" and "no queue" in event.details["reason"]


def test_a_failure_inside_is_a_polite_answer_with_a_reference(world: World, caplog: pytest.LogCaptureFixture) -> None:
    class Broken(SlowLedger):
        def spend(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("database is locked")

    world.ledger = Broken(world.ledger, 0)  # type: ignore[assignment]
    with caplog.at_level(logging.ERROR, logger="burnguard.services.commands"):
        response = post(slash_service(world), form("spend team=web"))
    text = response.json()["text"]
    assert response.status == 200 and text.startswith("Sorry, that failed on burnguard's side (ref ")
    assert "database is locked" not in text and "Traceback" not in text
    assert "database is locked" in caplog.text  # the detail is in the log, with the reference
    assert text.split("(ref ")[1][:8] in caplog.text


def test_an_undeliverable_deferred_answer_is_audited(world: World) -> None:
    world.overspend()
    deferrer = ThreadDeferrer()
    service = slash_service(world, deferrer=deferrer)
    with FakeSlack() as hooks:
        hooks.on("/gone", 404, {"ok": False, "error": "expired_url"})
        post(service, form("resume ml-monthly", response_url=f"{hooks.url}/gone"))
        deferrer.join(10)
    assert world.state("aws", "i-a100") == "running"  # the work was done
    failed = [e for e in world.ledger.audit_log() if e.kind == "command" and e.outcome == "failed"]
    assert failed and "answer not delivered" in failed[0].details["reason"] and "404" in failed[0].details["reason"]


def test_a_response_url_outside_slack_is_never_called(world: World) -> None:
    world.overspend()
    deferrer = ThreadDeferrer()
    service = slash_service(world, deferrer=deferrer)
    post(service, form("resume ml-monthly", response_url="https://attacker.example/collect"))
    deferrer.join(10)
    failed = [e for e in world.ledger.audit_log() if e.kind == "command" and e.outcome == "failed"]
    assert "not a Slack hooks URL" in failed[0].details["reason"]


def test_snooze_inline_in_channel(world: World) -> None:
    answer = post(slash_service(world), form("snooze ml-monthly 1d", user=ADMIN)).json()
    assert answer["response_type"] == "in_channel" and "snoozed ml-monthly for 1d" in answer["text"]


def test_a_late_item_changes_the_answer(world: World) -> None:
    """The service reads the ledger at each request (no cache to go stale)."""
    service = slash_service(world)
    before = post(service, form("spend team=web", trigger="a")).json()["text"]
    world.deliver([*SEPTEMBER, item("44.45", {"team": "web"}, resource="i-web", itype="g6.xlarge")])
    after = post(service, form("spend team=web", trigger="b")).json()["text"]
    assert "total 55.55 USD" in before and "total 100.00 USD" in after
