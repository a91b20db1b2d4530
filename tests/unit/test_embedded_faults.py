"""The embedded mode never fails silently (issue 8): a malformed inventory entry of another team
or an inventory that cannot be written does not swallow a crossing; a missing or mistyped
inventory is an error; a new inventory replaces the state copy; an action always reads the
inventory fresh, so a stale copy never undoes a concurrent stop."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from burnguard.adapters.local.inventory import InventoryController, InventoryFile
from burnguard.adapters.local.notifier import ConsoleNotifier
from burnguard.app.embedded import LocalMode
from burnguard.core.errors import InputError
from burnguard.core.instances import Instance
from tests.helpers import EVENTS

AWS = EVENTS / "exports" / "aws"
POLICY = EVENTS / "policies" / "demo.yaml"


def inventory_with(tmp: Path, extra: list[dict[str, Any]]) -> Path:
    data = json.loads((EVENTS / "inventory.json").read_text())
    data["instances"] += extra
    path = tmp / "inventory.json"
    path.write_text(json.dumps(data))
    return path


def ml_gpus(path: Path) -> dict[str, str]:
    """The running GPU instances of team ml-research on AWS in an inventory file (the oracle reads
    the file itself)."""
    data = json.loads(path.read_text())
    return {r["id"]: r["state"] for r in data["instances"] if r["cloud"] == "aws"
            and r.get("tags", {}).get("team") == "ml-research"}


def test_a_malformed_entry_of_another_team_does_not_swallow_the_crossing(tmp_path: Path) -> None:
    bad = {"cloud": "aws", "id": "i-broken", "name": "web", "type": "g5.xlarge", "state": "running",
           "tags": {"team": "web"}, "hourly_cost": "n/a", "currency": "USD"}
    seed = inventory_with(tmp_path, [bad])
    before = ml_gpus(seed)
    notifier = ConsoleNotifier(quiet=True)
    local = LocalMode.create(tmp_path / "home", POLICY, seed, notifier=notifier)
    local.ingest([AWS])
    report = local.drain(local.service())
    local.close()
    stopped = {i.instance_id for r in report.reports for i in r.stopped}
    assert stopped & set(before) and "i-broken" not in stopped, report
    states = {r["id"]: r["state"] for r in json.loads((tmp_path / "home" / "inventory.json").read_text())["instances"]}
    assert all(states[i] == "stopped" for i in stopped) and states["i-broken"] == "running"
    assert any("ml-research" in n.text and "100%" in n.text for n in notifier.sent)
    assert not report.dead_letters


def test_an_inventory_that_cannot_be_written_fails_the_message_and_alerts_never_silent(tmp_path: Path) -> None:
    seed = inventory_with(tmp_path, [])
    notifier = ConsoleNotifier(quiet=True)
    local = LocalMode.create(tmp_path / "home", POLICY, seed, notifier=notifier)
    local.queue.max_attempts = 2
    blocker = tmp_path / "home" / "inventory.json.tmp"
    blocker.mkdir()  # the atomic replace cannot write its temporary file (works as root too)
    local.ingest([AWS])
    report = local.drain(local.service())
    blocker.rmdir()
    assert report.dead_letters, "the failed stop was swallowed"
    pending = local.ledger.pending_claims()
    assert any("ml-research" in k for k in pending)  # not announced: a redelivery acts on it
    failure = [n for n in notifier.sent if n.kind == "failure" and "set it aside" in n.text]
    assert failure and "ml-research" in failure[0].text
    assert any(e.kind == "dead-letter" for e in local.ledger.audit_log())
    # Redelivered once the cause is fixed, the crossing is acted on and announced once.
    for dead in local.queue.dead_letters():
        local.queue.publish([dead.message])
    report = local.drain(local.service())
    assert not report.dead_letters and local.ledger.pending_claims() == {}
    assert any(r.stopped for r in report.reports)
    local.close()


def test_a_mistyped_inventory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="inventory file not found"):
        LocalMode.create(tmp_path / "home", POLICY, tmp_path / "nope.json")
    LocalMode.create(tmp_path / "home2", POLICY, inventory_with(tmp_path, [])).close()
    with pytest.raises(InputError, match="inventory file not found"):
        LocalMode.open(tmp_path / "home2", POLICY, tmp_path / "typo.json")
    with pytest.raises(InputError, match="inventory file not found"):
        InventoryFile(tmp_path / "missing.json")


def test_a_new_inventory_replaces_the_state_copy(tmp_path: Path) -> None:
    first = inventory_with(tmp_path, [])
    LocalMode.create(tmp_path / "home", POLICY, first).close()
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"instances": [{"cloud": "aws", "id": "i-new", "type": "g5.xlarge",
                                                "state": "running", "tags": {"team": "x"}}]}))
    local = LocalMode.open(tmp_path / "home", POLICY, other)
    assert local.inventory is not None and [i.instance_id for i in local.inventory.instances("aws")] == ["i-new"]
    local.close()


def test_a_stale_reader_never_writes_back_a_concurrent_stop(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"instances": [
        {"cloud": "aws", "id": "i-1", "type": "g5.xlarge", "state": "running", "tags": {"team": "a"}},
        {"cloud": "aws", "id": "i-2", "type": "g5.xlarge", "state": "stopped", "tags": {"team": "a"}}]}))
    shutil.copyfile(seed, tmp_path / "state.json")
    serve = InventoryFile(tmp_path / "state.json")  # loaded at start, as `serve` does
    ingest = InventoryFile(tmp_path / "state.json")  # a concurrent `ingest`
    InventoryController("aws", ingest).stop(Instance("aws", "i-1", "", "", "g5.xlarge", "running"))
    InventoryController("aws", serve).start(Instance("aws", "i-2", "", "", "g5.xlarge", "stopped"))  # a resume
    states = {r["id"]: r["state"] for r in json.loads((tmp_path / "state.json").read_text())["instances"]}
    assert states == {"i-1": "stopped", "i-2": "running"}
    assert {i.instance_id: i.state for i in serve.instances("aws")} == states


def _stop_all(path: str, prefix: str) -> None:
    inventory = InventoryFile(path)
    for k in range(25):
        inventory.set_state("aws", f"{prefix}{k}", "stopped")


def test_concurrent_writers_in_two_processes_lose_no_stop(tmp_path: Path) -> None:
    import multiprocessing

    path = tmp_path / "state.json"
    path.write_text(json.dumps({"instances": [
        {"cloud": "aws", "id": f"{p}{k}", "type": "g5.xlarge", "state": "running", "tags": {}}
        for p in ("a", "b") for k in range(25)]}))
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_stop_all, args=(str(path), p)) for p in ("a", "b")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    states = {r["id"]: r["state"] for r in json.loads(path.read_text())["instances"]}
    assert set(states.values()) == {"stopped"}, states


def test_a_malformed_message_is_dead_lettered_with_its_reason_and_alerted(tmp_path: Path) -> None:
    from burnguard.core.messages import Message

    notifier = ConsoleNotifier(quiet=True)
    local = LocalMode.create(tmp_path / "home", POLICY, None, notifier=notifier)
    local.queue.publish([Message({"kind": "line-items", "message_id": "m-1"}, b"not arrow")])
    report = local.drain(local.service())
    assert [m for m, _ in report.dead_letters] == ["m-1"]
    [letter] = local.queue.dead_letters()
    assert letter.reason and letter.reason == report.dead_letters[0][1]
    [alert] = [n for n in notifier.sent if n.kind == "failure"]
    assert "m-1" in alert.text and letter.reason in alert.text
    assert any(e.kind == "dead-letter" and e.details.get("message_id") == "m-1" for e in local.ledger.audit_log())
    local.close()
