"""The CLI's embedded-mode commands on the sample data: what a user types, what they read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import run

ROOT = Path(__file__).parents[2]
EVENTS = ROOT / "events"


def test_ingest_without_an_inventory_says_it_cannot_stop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ingest", str(EVENTS / "exports" / "aws"), "--home", str(tmp_path),
                       "--policy", str(EVENTS / "policies" / "demo.yaml"))
    assert code == 0
    assert "Cannot stop on AWS, Google Cloud, Azure: no instance controller configured" in out
    assert "same delivery as" in out  # the period-folder manifest repeats the assembly's
    assert "0 stops" in out


def test_ingest_with_an_inventory_stops_and_spend_answers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ingest", str(EVENTS / "exports" / "aws"), "--home", str(tmp_path),
                       "--policy", str(EVENTS / "policies" / "demo.yaml"), "--inventory", str(EVENTS / "inventory.json"))
    # Exit 1: done with findings (one stop failed: Azure refuses to deallocate trainer-a100-az).
    assert code == 1 and "Stopped 4 GPU instance(s)" in out and "1 stop(s) failed" in out
    state = json.loads((tmp_path / "inventory.json").read_text())["instances"]
    assert sum(i["state"] == "stopped" for i in state) > sum(
        i["state"] == "stopped" for i in json.loads((EVENTS / "inventory.json").read_text())["instances"])
    code, out, _ = run(capsys, "spend", "--tag", "team=ml-research", "--home", str(tmp_path))
    assert code == 0 and "Spend of team=ml-research in 2024-09" in out and "per cloud: AWS" in out
    code, out, _ = run(capsys, "stopped", "--home", str(tmp_path))
    assert "trainer-p4d-1" in out and "ml-research-monthly" in out
    code, out, _ = run(capsys, "resume", "ml-research-monthly", "--yes", "--home", str(tmp_path))
    assert code == 0 and "started 4, failed 0" in out


def test_commands_on_a_missing_state_say_how_to_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "guardrails", "--home", str(tmp_path / "nothing"))
    assert code == 2 and "run `burnguard demo`" in err


def test_policy_check_names_line_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("version: 1\nguardrails:\n  - name: x\n    scope: team=a\n    budget: 10 USD\n"
                   "    thresholds: [{at: 80, actions: [notify]}]\n")
    code, _, err = run(capsys, "policy", "check", str(bad))
    assert code == 2 and "line 6" in err and "thresholds[0].at" in err
    code, out, _ = run(capsys, "policy", "check", str(EVENTS / "policies" / "demo.yaml"))
    assert code == 0 and "OK" in out


def test_spend_rejects_a_bad_scope_and_period(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "ingest", str(EVENTS / "exports" / "aws"), "--home", str(tmp_path), "--policy",
        str(EVENTS / "policies" / "demo.yaml"))
    code, _, err = run(capsys, "spend", "--tag", "team", "--home", str(tmp_path))
    assert code == 2 and "key=value" in err
    code, _, err = run(capsys, "spend", "--tag", "team=a", "--period", "2024-13", "--home", str(tmp_path))
    assert code == 2 and "month 13" in err


def test_normalize_a_manifest_normalizes_its_delivery_and_names_it(capsys: pytest.CaptureFixture[str]) -> None:
    [manifest] = sorted((EVENTS / "exports" / "azure").rglob("8e3a5c7d-*/manifest.json"))
    code, out, _ = run(capsys, "normalize", str(manifest), "--summary")
    report = json.loads(out)
    declared = json.loads(manifest.read_text())
    assert code == 0
    assert report["delivery"]["provider"] == "azure" and report["delivery"]["billing_period"] == "2024-09"
    assert report["delivery"]["version"] == declared["runInfo"]["runId"]
    assert report["delivery"]["expected_rows"] == declared["dataRowCount"] == report["rows"]
    assert [f["file"].rsplit("/", 1)[-1] for f in report["files"]] == [
        b["blobName"].strip().rsplit("/", 1)[-1] for b in declared["blobs"]]
    # The manifest's export type gives the cost basis: nothing is inferred.
    assert report["files"][0]["warnings"] == []


def test_normalize_a_data_file_says_it_waits_for_its_manifest(capsys: pytest.CaptureFixture[str]) -> None:
    [data] = sorted((EVENTS / "exports" / "aws").rglob("*-1.csv.gz"))
    code, out, _ = run(capsys, "normalize", str(data), "--summary")
    report = json.loads(out)
    assert code == 0 and report["format"] == "aws-cur"
    assert report["delivery"]["role"] == "data" and report["delivery"]["billing_period"] == "2024-09"
    assert report["delivery"]["version"] == data.parent.name  # the assembly folder
