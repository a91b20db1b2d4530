"""Ledger implementations under the same contract. The SQLite ledger always runs; the
Firestore ledger joins when its adapter and the emulator are available."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from burnguard.adapters.local.ledger import SqliteLedger


@pytest.fixture(params=["sqlite"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    if request.param == "sqlite":
        store = SqliteLedger(tmp_path / "ledger.sqlite")
        yield store
        store.close()
