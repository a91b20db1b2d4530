"""The embedded mode orders deliveries by production time, not by arrival: a local file's
modification time stands for an object's last-modified, and a CUR period folder's manifest
names the current assembly, so a stale assembly offered last is never counted."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from burnguard.adapters.local.notifier import ConsoleNotifier
from burnguard.app.embedded import LocalMode
from tests.helpers import EVENTS

POLICY = EVENTS / "policies" / "demo.yaml"
PERIOD = "cur/burnguard-hourly/20240901-20241001"
CURRENT = "3f2a9c4e-7b1d-4e6a-9c8f-2d5b7a1e0c93"
STALE = "00000000-1111-2222-3333-444444444444"


def two_assemblies(tmp: Path) -> Path:
    root = tmp / "aws"
    shutil.copytree(EVENTS / "exports" / "aws", root)
    period = root / "acme-billing-cur" / PERIOD
    shutil.copytree(period / CURRENT, period / STALE)
    manifest = period / STALE / "burnguard-hourly-Manifest.json"
    data = json.loads(manifest.read_text())
    data["assemblyId"] = STALE
    data["reportKeys"] = [k.replace(CURRENT, STALE) for k in data["reportKeys"]]
    manifest.write_text(json.dumps(data))
    # The stale assembly's files carry the newest times: only the period manifest says otherwise.
    later = (period / "burnguard-hourly-Manifest.json").stat().st_mtime + 3600
    for f in (period / STALE).iterdir():
        os.utime(f, (later, later))
    return root


def counted(local: LocalMode) -> list[str]:
    return [d.delivery.version for d in local.ledger.deliveries(include_superseded=True)
            if d.counted and d.delivery.provider == "aws"]


def test_the_assembly_the_period_manifest_names_wins_in_any_order(tmp_path: Path) -> None:
    root = two_assemblies(tmp_path)
    period = root / "acme-billing-cur" / PERIOD
    orders = [[root], [period / CURRENT, period / STALE], [period / STALE, period / CURRENT],
              [period, period / STALE]]
    for n, paths in enumerate(orders):
        local = LocalMode.create(tmp_path / f"home{n}", POLICY, None, notifier=ConsoleNotifier(quiet=True))
        for p in paths:  # one ingest run per path: the arrival order is the list's
            local.ingest([p])
            local.drain(local.service())
        assert counted(local) == [CURRENT], (paths, counted(local))
        local.close()


def test_without_a_period_manifest_the_newest_file_time_wins(tmp_path: Path) -> None:
    root = two_assemblies(tmp_path)
    period = root / "acme-billing-cur" / PERIOD
    (period / "burnguard-hourly-Manifest.json").unlink()
    local = LocalMode.create(tmp_path / "home", POLICY, None, notifier=ConsoleNotifier(quiet=True))
    for p in (period / STALE, period / CURRENT):  # the older one (by file time) offered last
        local.ingest([p])
        local.drain(local.service())
    assert counted(local) == [STALE]
    local.close()


GCP_MONTH = "acme-finops-billing/bigquery-export/01D4EE-079462-DFD6EC/2024-09"
GCP_RUN = "20240921T060000Z"


def test_gcp_manifests_without_created_at_are_ordered_by_file_time(tmp_path: Path) -> None:
    root = tmp_path / "gcp"
    shutil.copytree(EVENTS / "exports" / "gcp", root)
    month = root / GCP_MONTH
    newer = "20240920T070000Z"  # a run id that sorts first: only the file times tell
    shutil.copytree(month / GCP_RUN, month / newer)
    for run in (GCP_RUN, newer):
        manifest = month / run / "manifest.json"
        data = json.loads(manifest.read_text())
        data.pop("createdAt")
        data["runId"] = run
        manifest.write_text(json.dumps(data))
    base = (month / GCP_RUN / "manifest.json").stat().st_mtime
    for f in (month / newer).iterdir():
        os.utime(f, (base + 3600, base + 3600))
    local = LocalMode.create(tmp_path / "home", POLICY, None, notifier=ConsoleNotifier(quiet=True))
    for p in (month / newer, month / GCP_RUN):  # the older run offered last
        local.ingest([p])
        local.drain(local.service())
    assert [d.delivery.version for d in local.ledger.deliveries(include_superseded=True)
            if d.counted and d.delivery.provider == "gcp"] == [newer]
    local.close()
