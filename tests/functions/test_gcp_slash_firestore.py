"""The slash command on Google Cloud answers from the Firestore ledger: the real bootstrap
(``BURNGUARD_LEDGER=firestore://…``) builds the service, functions-framework's test client
carries the signed request, the ledger lives in the Firestore emulator. Expected amounts come
from the line items the test delivered (``tests.slack_helpers``), not from burnguard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import functions_framework
import pytest

from burnguard.adapters.gcp.firestore import FirestoreLedger
from burnguard.app import slack as bootstrap
from tests.functions.slash_events import FUNCTIONS, use_service
from tests.slack_helpers import (
    NOW_TS,
    POLICY,
    SECRET,
    SEPTEMBER,
    World,
    expected_by_value,
    expected_spend,
    form,
    money,
    signed_headers,
)

pytestmark = pytest.mark.emulator

SOURCE = str(FUNCTIONS / "gcp" / "main.py")


def test_the_gcp_slash_command_answers_from_firestore(firestore: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"BURNGUARD_SLACK_SIGNING_SECRET_REF": "projects/p/secrets/slack", "BURNGUARD_POLICY": str(tmp_path / "p.yaml"),
           "BURNGUARD_LEDGER": f"firestore://projects/{firestore.project}/databases/(default)?prefix=slash_",
           "BURNGUARD_SLACK_REPLAY": "ledger"}
    (tmp_path / "p.yaml").write_text(POLICY)
    ledger = bootstrap.open_ledger(env["BURNGUARD_LEDGER"])
    assert isinstance(ledger, FirestoreLedger) and ledger.prefix == "slash_"
    world = World(tmp_path)
    world.ledger = ledger  # type: ignore[assignment]  # the world's deliveries go to Firestore
    world.standard()
    settings = bootstrap.SlashSettings.from_env("gcp", env)
    service = bootstrap.build_slash_service(settings, secret=lambda cloud, ref: SECRET, clock=lambda: NOW_TS)
    use_service(monkeypatch, "gcp", service)
    app = functions_framework.create_app(target="slack_command", source=SOURCE, signature_type="http").test_client()

    body = form("spend team=ml-research 2024-09")
    response = app.post("/", data=body, headers=signed_headers(body))
    assert response.status_code == 200
    assert f"total {money(expected_spend(SEPTEMBER, 'team', 'ml-research'))}" in response.get_json()["text"]
    assert app.post("/", data=body, headers=signed_headers(body)).status_code == 401  # replay caught in Firestore

    body = form("top 3 by project 2024-09")
    lines = app.post("/", data=body, headers=signed_headers(body)).get_json()["text"].splitlines()[1:]
    by_project = sorted(expected_by_value(SEPTEMBER, "project").items(), key=lambda kv: -kv[1])[:3]
    assert lines == [f"{i}. project={k}: {money(v)}" for i, (k, v) in enumerate(by_project, 1)]

    body = form("snooze ml-monthly 2h")
    assert app.post("/", data=body, headers=signed_headers(body)).status_code == 200
    assert ledger.snoozed_until("ml-monthly") is not None
    assert any(e.kind == "command" for e in ledger.audit_log(limit=20))
