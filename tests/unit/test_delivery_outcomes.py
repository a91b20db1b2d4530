"""``LocalMode.delivery_outcomes``: what became of each delivery an ingest offered, as data
(the CLI prints it and sets its exit code): counted, already counted, waiting for which parts,
rejected and why, superseded, failed. Never "ingested" for a delivery that does not count."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from burnguard.adapters.local.notifier import ConsoleNotifier
from burnguard.app.embedded import LocalMode
from burnguard.core.messages import LINE_ITEMS
from tests.helpers import EVENTS

POLICY = EVENTS / "policies" / "demo.yaml"
AWS = EVENTS / "exports" / "aws"
GCP_RUN = "acme-finops-billing/bigquery-export/01D4EE-079462-DFD6EC/2024-09/20240921T060000Z"


def mode(tmp: Path) -> LocalMode:
    return LocalMode.create(tmp / "home", POLICY, None, notifier=ConsoleNotifier(quiet=True))


def test_counted_then_already_counted(tmp_path: Path) -> None:
    local = mode(tmp_path)
    outcomes = local.ingest([AWS])
    local.drain(local.service())
    [first] = local.delivery_outcomes(outcomes)
    assert (first.state, first.ok) == ("counted", True) and first.rows > 0
    outcomes = local.ingest([AWS])
    local.drain(local.service())
    [again] = local.delivery_outcomes(outcomes)
    assert (again.state, again.ok, again.delivery_id) == ("already-counted", True, first.delivery_id)
    local.close()


def test_a_lost_chunk_leaves_the_delivery_waiting_and_names_the_part(tmp_path: Path) -> None:
    local = mode(tmp_path)
    outcomes = local.ingest([AWS])
    received = local.queue.pull(100)
    lost = next(r for r in received if r.message.kind == LINE_ITEMS)
    local.queue.ack(lost)  # lost in transit
    for r in received:
        if r is not lost:
            local.queue.nack(r, "put back")
    local.drain(local.service())
    [outcome] = local.delivery_outcomes(outcomes)
    assert (outcome.state, outcome.ok) == ("waiting", False)
    assert "1 of" in outcome.reason and "waiting for" in outcome.reason and ".csv.gz #" in outcome.reason
    local.close()


def test_a_delivery_whose_rows_disagree_with_its_manifest_is_rejected_with_the_reason(tmp_path: Path) -> None:
    root = tmp_path / "gcp"
    shutil.copytree(EVENTS / "exports" / "gcp", root)
    manifest = root / GCP_RUN / "manifest.json"
    data = json.loads(manifest.read_text())
    data["files"][0]["rows"] += 3
    data["totalRows"] += 3
    manifest.write_text(json.dumps(data))
    local = mode(tmp_path)
    outcomes = local.ingest([root])
    local.drain(local.service())
    [outcome] = local.delivery_outcomes(outcomes)
    assert (outcome.state, outcome.ok) == ("rejected", False)
    assert "manifest announces" in outcome.reason
    local.close()


def test_an_unreadable_manifest_is_a_failed_delivery(tmp_path: Path) -> None:
    root = tmp_path / "gcp"
    shutil.copytree(EVENTS / "exports" / "gcp", root)
    (root / GCP_RUN / "manifest.json").write_text("{not json")
    local = mode(tmp_path)
    outcomes = local.ingest([root])
    local.drain(local.service())
    [outcome] = local.delivery_outcomes(outcomes)
    assert (outcome.state, outcome.ok) == ("failed", False) and "manifest.json" in outcome.path
    local.close()
