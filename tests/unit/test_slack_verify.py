"""Slack request verification on the raw body: real signatures from a test secret, Slack's own
worked example, the 5-minute window, replays; every refusal is a 401 with the detail logged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from slack_sdk.signature import SignatureVerifier

from burnguard.adapters.local.ledger import SqliteLedger
from burnguard.adapters.slack.verify import LedgerReplayGuard, SlackRequestVerifier, TtlReplayCache
from burnguard.ports.slack import RequestRejected
from tests.helpers import fixture
from tests.slack_helpers import NOW_TS, SECRET, form, sign, signed_headers


def verifier(now: float = NOW_TS, **kwargs: object) -> SlackRequestVerifier:
    return SlackRequestVerifier(SECRET, clock=lambda: now, **kwargs)  # type: ignore[arg-type]


def refused(v: SlackRequestVerifier, body: bytes, headers: dict[str, str]) -> str:
    with pytest.raises(RequestRejected) as info:
        v.verify(body, headers)
    assert info.value.status == 401
    return info.value.reason


def test_slacks_worked_example_verifies_with_the_clock_at_its_timestamp() -> None:
    example = json.loads(fixture("slack-docs/signature.worked-example.json").read_text())
    body = fixture("slack-docs/signature.worked-example.body.txt").read_bytes()
    assert body == example["raw_body"].encode()
    ts = int(example["headers"]["X-Slack-Request-Timestamp"])
    v = SlackRequestVerifier(example["signing_secret"], clock=lambda: ts + 299)
    v.verify(body, example["headers"])  # accepted
    # Our own HMAC agrees with Slack's published signature (and with slack_sdk's).
    assert sign(body, ts, example["signing_secret"]) == example["expected_signature"]
    assert SignatureVerifier(example["signing_secret"]).generate_signature(timestamp=str(ts), body=body) == \
        example["expected_signature"]
    # Six minutes later the same request is stale; the same instant with a fresh verifier, a replay.
    assert "older than 300 s" in refused(SlackRequestVerifier(example["signing_secret"], clock=lambda: ts + 301),
                                         body, example["headers"])
    assert "replayed" in refused(v, body, example["headers"])


def test_a_valid_request_passes_with_any_header_case() -> None:
    body = form("spend team=ml-research")
    headers = {k.lower(): v for k, v in signed_headers(body).items()}
    verifier().verify(body, headers)


@pytest.mark.parametrize("case", ["wrong secret", "tampered body", "re-encoded body", "missing signature",
                                  "missing timestamp", "not a number", "stale", "from the future",
                                  "signature of another timestamp", "not utf-8"])
def test_refusals(case: str) -> None:
    body = form("resume ml-monthly")
    headers = signed_headers(body)
    if case == "wrong secret":
        headers = signed_headers(body, secret="another-secret")
        expected = "signature mismatch"
    elif case == "tampered body":
        body = body.replace(b"ml-monthly", b"per-project")
        expected = "signature mismatch"
    elif case == "re-encoded body":  # parsed and re-encoded: different bytes, must fail
        body = body.replace(b"+", b"%20")
        expected = "signature mismatch"
    elif case == "missing signature":
        del headers["X-Slack-Signature"]
        expected = "missing"
    elif case == "missing timestamp":
        del headers["X-Slack-Request-Timestamp"]
        expected = "missing"
    elif case == "not a number":
        headers["X-Slack-Request-Timestamp"] = "1e9"
        expected = "not a Unix time"
    elif case == "stale":
        headers = signed_headers(body, NOW_TS - 301)
        expected = "older than 300 s"
    elif case == "from the future":
        headers = signed_headers(body, NOW_TS + 301)
        expected = "newer than 300 s"
    elif case == "signature of another timestamp":
        headers["X-Slack-Request-Timestamp"] = str(NOW_TS - 10)
        expected = "signature mismatch"
    else:
        body = b"text=\xff\xfe"
        headers = signed_headers(body)
        expected = "not UTF-8"
    assert expected in refused(verifier(), body, headers)


def test_the_window_is_inclusive_at_five_minutes() -> None:
    body = form("guardrails")
    verifier().verify(body, signed_headers(body, NOW_TS - 300))
    verifier().verify(body, signed_headers(body, NOW_TS + 300))


def test_a_replay_is_refused_within_the_window_and_others_pass() -> None:
    v = verifier()
    first, second = form("guardrails"), form("stopped")
    v.verify(first, signed_headers(first))
    v.verify(second, signed_headers(second))
    assert "replayed" in refused(v, first, signed_headers(first))


def test_the_replay_cache_forgets_expired_signatures_and_stays_bounded() -> None:
    now = [1000.0]
    cache = TtlReplayCache(max_entries=3, clock=lambda: now[0])
    assert cache.first_use("a", 1100) and not cache.first_use("a", 1100)
    now[0] = 1101
    assert cache.first_use("a", 1400)  # expired, then seen again: a new use
    for key in "bcde":
        assert cache.first_use(key, 1400)
    assert len(cache) == 3


def test_a_ledger_backed_guard_catches_a_replay_on_another_instance(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    one = verifier(replay=LedgerReplayGuard(ledger, clock=lambda: NOW_TS))
    two = verifier(replay=LedgerReplayGuard(SqliteLedger(tmp_path / "ledger.sqlite"), clock=lambda: NOW_TS))
    body = form("guardrails")
    one.verify(body, signed_headers(body))
    assert "replayed" in refused(two, body, signed_headers(body))
    # Two in-memory caches (two instances) would not have caught it: that is what the ledger is for.
    body = form("stopped")
    verifier().verify(body, signed_headers(body))
    verifier().verify(body, signed_headers(body))
