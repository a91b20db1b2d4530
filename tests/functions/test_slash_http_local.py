"""``burnguard serve``: the local slash-command endpoint, run as a real process on the embedded
mode's state, answered over real HTTP, with deferred answers posted to a response_url."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from burnguard.app.embedded import LocalMode
from tests.slack_helpers import SECRET, FakeSlack, World, form, signed_headers

ROOT = Path(__file__).parents[2]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    world = World(tmp_path)  # writes policy.yaml and inventory.json
    local = LocalMode.create(tmp_path / "home", tmp_path / "policy.yaml", tmp_path / "inventory.json")
    world.ledger, world.inventory = local.ledger, local.inventory  # type: ignore[assignment]
    world.standard()
    world.overspend()
    local.close()
    return tmp_path / "home"


def serve(home: Path, secret: str | None = SECRET) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "shared")}
    env.pop("BURNGUARD_SLACK_SIGNING_SECRET", None)
    if secret is not None:
        env["BURNGUARD_SLACK_SIGNING_SECRET"] = secret
    return subprocess.Popen([sys.executable, "-m", "burnguard.app.cli", "serve", "--home", str(home), "--port", "0",
                             "--now", "2024-09-20T12:00:00Z", "--response-url-prefix", "http://127.0.0.1:"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def server(home: Path) -> Iterator[str]:
    process = serve(home)
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "burnguard serve did not start"
        line = process.stdout.readline()  # type: ignore[union-attr]
        assert "Slack slash commands on http://127.0.0.1:" in line, line + process.stderr.read()  # type: ignore[union-attr]
        yield line.split("http://", 1)[1].split("/", 1)[0]
    finally:
        process.terminate()
        process.wait(10)


def call(address: str, body: bytes, headers: dict[str, str], method: str = "POST") -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://{address}/slack/commands", data=body if method == "POST" else None,
                                     headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_serve_answers_verifies_and_defers(server: str, home: Path) -> None:
    now = int(time.time())  # the server checks timestamps against the real clock
    body = form("spend team=web")
    status, answer = call(server, body, signed_headers(body, now))
    assert status == 200 and b"total 55.55 USD" in answer
    assert call(server, body, signed_headers(body, now))[0] == 401  # replay
    other = form("guardrails")
    assert call(server, other, signed_headers(other, now, "wrong-secret")) == (401, b"unauthorized")
    assert call(server, b"", {}, "GET")[0] == 405
    big = form("spend team=" + "x" * 70_000)
    assert call(server, big, signed_headers(big, now))[0] == 413
    with FakeSlack() as hooks:
        body = form("resume ml-monthly", response_url=f"{hooks.url}/commands/1")
        status, answer = call(server, body, signed_headers(body, now))
        assert status == 200 and b"Working on it" in answer
        [posted] = hooks.wait(1, timeout=20)
    assert posted.json()["response_type"] == "in_channel"
    assert "resumed 2 instance(s) of ml-monthly" in posted.json()["text"]
    local = LocalMode.open(home)
    try:
        assert local.inventory is not None and local.inventory.raw("aws", "i-a100")["state"] == "running"
        assert any(e.kind == "command" and e.actor == "U0ADMIN01" and e.outcome == "ok"
                   for e in local.ledger.audit_log())
    finally:
        local.close()


def test_serve_refuses_to_start_without_a_signing_secret(home: Path) -> None:
    process = serve(home, secret=None)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2 and "BURNGUARD_SLACK_SIGNING_SECRET" in err
