"""``burnguard invoke azure ingest|budget|slack EVENT.json`` with nothing configured: the
sample events of ``events/azure`` run the functions' own code on the embedded queue and
ledger of ``--home``, and print what was published as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from burnguard.adapters.local.queue import SqliteQueue
from burnguard.app.cli import main
from burnguard.app.invoke import InvokeContext, functions_of, invoke
from tests.adapters.azure.exports import FIRST_RUN, RESTATED_RUN, ROOT, sample_run

EVENTS = ROOT / "events" / "azure"
BUDGETS = sorted(p for p in (ROOT / "events" / "budget").glob("*.json")
                 if p.name.startswith(("azure-budget.", "public.budget-alert.")))
CENT = Decimal("0.01")


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # events/exports/azure is the embedded mode's Blob storage


def ctx(home: Path) -> InvokeContext:
    return InvokeContext(home, {})


def test_the_azure_functions_are_registered() -> None:
    assert functions_of("azure") == ["budget", "ingest", "slack"]


def test_ingest_of_both_runs_and_a_part(tmp_path: Path) -> None:
    reports = {}
    for name, run in [("ingest.manifest.first-run.cloudevents.CONSTRUCTED.json", FIRST_RUN),
                      ("ingest.manifest.restated-run.eventgrid.CONSTRUCTED.json", RESTATED_RUN)]:
        [report] = invoke("azure", "ingest", EVENTS / name, ctx(tmp_path))["events"]
        reports[run] = report
    for run, report in reports.items():
        expected = sample_run(run)
        assert report["action"] == "ingested" and report["version"] == run
        assert report["rows"] == report["expected_rows"] == expected.rows
        [summary] = [m for m in report["published"] if m["kind"] == "delivery-summary"]
        assert {k: Decimal(v).quantize(CENT) for k, v in summary["data"]["totals"]["billed"].items()} == {
            k: v.quantize(CENT) for k, v in expected.billed.items()}
    [part] = invoke("azure", "ingest", EVENTS / "ingest.part.eventgrid.CONSTRUCTED.json", ctx(tmp_path))["events"]
    assert part["action"] == "skipped" and "manifest" in part["reason"]
    queue = SqliteQueue(tmp_path / "queue.sqlite")
    assert queue.pending() == sum(r["messages"] for r in reports.values())
    queue.close()


def test_budget_samples_and_a_bad_one(tmp_path: Path) -> None:
    for sample in BUDGETS:
        out = invoke("azure", "budget", sample, ctx(tmp_path))
        assert out["status"] == 200 and out["published"][0]["kind"] == "budget-alert", sample.name
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schemaId": "azureMonitorCommonAlertSchema", "data": {}}))
    out = invoke("azure", "budget", bad, ctx(tmp_path))
    assert out["status"] == 400 and "published" not in out
    queue = SqliteQueue(tmp_path / "queue.sqlite")
    assert queue.pending() == len(BUDGETS)  # one alert each (their ids differ), none for the bad one
    queue.close()


def test_slack_on_the_demo_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--home", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["invoke", "azure", "slack", str(EVENTS / "slack.spend.CONSTRUCTED.json"), "--home", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["answer"]["text"].startswith("Spend of team=ml-research")


def test_the_cli_prints_json_and_names_a_missing_state(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "shared")}
    env.pop("BURNGUARD_TOPIC", None)
    done = subprocess.run([sys.executable, "-m", "burnguard.app.cli", "invoke", "azure", "ingest",
                           str(EVENTS / "ingest.manifest.restated-run.eventgrid.CONSTRUCTED.json"),
                           "--home", str(tmp_path / "h")], capture_output=True, text=True, env=env, cwd=ROOT,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["events"][0]["rows"] == 86
    done = subprocess.run([sys.executable, "-m", "burnguard.app.cli", "invoke", "azure", "slack",
                           str(EVENTS / "slack.spend.CONSTRUCTED.json"), "--home", str(tmp_path / "none")],
                          capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr and "no local state" in done.stderr


@pytest.mark.emulator
def test_ingest_with_the_cloud_configured(tmp_path: Path, azure_storage: Any, pubsub: Any) -> None:
    """With ``BURNGUARD_TOPIC`` set, invoke reads the blob from Azure Storage (Azurite) and
    publishes to Pub/Sub (the emulator), as the deployed function does."""
    from azure.storage.blob import BlobServiceClient
    from google.cloud import pubsub_v1

    run = sample_run(RESTATED_RUN)
    container = f"billing-{uuid.uuid4().hex[:10]}"
    service = BlobServiceClient.from_connection_string(azure_storage.connection_string)
    service.create_container(container)
    for key, data in run.blobs.items():
        service.get_blob_client(container, key).upload_blob(data)
    [event] = json.loads((EVENTS / "ingest.manifest.restated-run.eventgrid.CONSTRUCTED.json").read_text())
    event["subject"] = event["subject"].replace("/containers/billing-exports/", f"/containers/{container}/")
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(pubsub.project, f"t-{uuid.uuid4().hex[:10]}")
    publisher.create_topic(name=topic)
    env = {"BURNGUARD_TOPIC": topic, "BURNGUARD_AZURE_EXPORT_STORAGE": azure_storage.connection_string,
           "PUBSUB_EMULATOR_HOST": os.environ["PUBSUB_EMULATOR_HOST"]}
    out = invoke("azure", "ingest", path, InvokeContext(tmp_path / "home", env))
    [report] = out["events"]
    assert out["queue"] == topic and report["action"] == "ingested" and report["rows"] == run.rows
    assert not (tmp_path / "home" / "queue.sqlite").exists()
