"""Ledger implementations under the same contract: SQLite (a file) and Firestore (the
official emulator, wiped per test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from burnguard.adapters.local.ledger import SqliteLedger

LEDGER_ADAPTERS = ["sqlite", "firestore"]


@pytest.fixture(params=LEDGER_ADAPTERS)
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    if request.param == "sqlite":
        store = SqliteLedger(tmp_path / "ledger.sqlite")
        yield store
        store.close()
    elif request.param == "firestore":
        from google.cloud import firestore as gcf

        from burnguard.adapters.gcp.firestore import FirestoreLedger

        emulator = request.getfixturevalue("firestore")
        client = gcf.Client(project=emulator.project)
        fs = FirestoreLedger(client, prefix="contract_")
        yield fs
        fs.close()
        client.close()
