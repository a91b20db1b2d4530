"""Ledger implementations under the same contract.

Every test of this folder that takes the fixture ``ledger`` (or ``ledger_factory``, for tests
that compare two fresh ledgers) runs once per adapter of :data:`LEDGER_ADAPTERS`. A second
adapter joins by adding its name to that list and one factory to :data:`FACTORIES`: a function
``(request, stack, name) -> Ledger`` that may ask for other fixtures (an emulator) with
``request.getfixturevalue`` and registers its clean-up on ``stack``; ``name`` is unique per
ledger within a test (a namespace, for adapters whose ledgers share a database). For example::

    def firestore_ledger(request, stack, name):
        emulator = request.getfixturevalue("firestore")  # tests/emulators.py, wiped per test
        return FirestoreLedger(firestore.Client(project=emulator.project), root=name)

    LEDGER_ADAPTERS = ["sqlite", "firestore"]
    FACTORIES = {"sqlite": sqlite_ledger, "firestore": firestore_ledger}

(``FirestoreLedger``'s constructor is its engineer's to choose.) Emulator tests are marked
``emulator``: mark the firestore parameter with ``pytest.param("firestore", marks=...)`` if needed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from burnguard.adapters.local.ledger import SqliteLedger
from burnguard.ports.ledger import Ledger

LedgerFactory = Callable[[pytest.FixtureRequest, ExitStack, str], Ledger]


def sqlite_ledger(request: pytest.FixtureRequest, stack: ExitStack, name: str) -> Ledger:
    tmp: Path = request.getfixturevalue("tmp_path")
    ledger = SqliteLedger(tmp / f"{name}.sqlite")
    stack.callback(ledger.close)
    return ledger


def firestore_ledger(request: pytest.FixtureRequest, stack: ExitStack, name: str) -> Ledger:
    from google.cloud import firestore as gcf

    from burnguard.adapters.gcp.firestore import FirestoreLedger

    emulator = request.getfixturevalue("firestore")  # tests/emulators.py: wiped per test
    client = gcf.Client(project=emulator.project)
    stack.callback(client.close)
    ledger = FirestoreLedger(client, prefix=f"contract_{name}_")
    stack.callback(ledger.close)
    return ledger


LEDGER_ADAPTERS = ["sqlite", "firestore"]
FACTORIES: dict[str, LedgerFactory] = {"sqlite": sqlite_ledger, "firestore": firestore_ledger}


@pytest.fixture(params=LEDGER_ADAPTERS)
def ledger_factory(request: pytest.FixtureRequest) -> Iterator[Callable[[], Ledger]]:
    """Makes fresh, empty ledgers of one adapter (closed after the test)."""
    factory = FACTORIES[request.param]
    count = 0
    with ExitStack() as stack:
        def make() -> Ledger:
            nonlocal count
            count += 1
            return factory(request, stack, f"ledger{count}")
        yield make


@pytest.fixture
def ledger(ledger_factory: Callable[[], Ledger]) -> Ledger:
    return ledger_factory()
