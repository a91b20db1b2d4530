"""Every ``burnguard`` example of functions/README.md and events/{aws,gcp,azure}/README.md (the
``burnguard invoke`` lines and what they rely on) runs as written, in order, as a reader runs
them (through ``main()``, from the repository root, nothing configured: the embedded queue),
except its ``--home``: one scratch directory per file here; and what the three clouds
report as published has one shape: the message's attributes at the top, ``bytes``, and the
decoded payload as ``data`` for the JSON kinds (checked against the messages left on the
embedded queue, read with sqlite3, not through burnguard).

Sample the same message kind on two clouds and the entries have the same keys."""

from __future__ import annotations

import io
import json
import re
import shlex
import sqlite3
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from burnguard.app.cli import main

ROOT = Path(__file__).parents[2]
DOCS = [ROOT / "functions" / "README.md", *(ROOT / "events" / c / "README.md" for c in ("aws", "gcp", "azure"))]


def examples() -> list[tuple[str, list[str]]]:
    found = []
    for doc in DOCS:
        for line in doc.read_text().splitlines():
            if line.startswith("    burnguard "):
                found.append((f"{doc.relative_to(ROOT)}: {line.strip()}", shlex.split(line, comments=True)[1:]))
    return found


def _home(argv: list[str], home: Path) -> list[str]:
    """The scratch home in place of the example's (``$BURNGUARD_HOME`` when it names none)."""
    out = list(argv)
    if "--home" in out:
        out[out.index("--home") + 1] = str(home)
    return out


def _entries(report: Any) -> list[dict[str, Any]]:
    """Every published (or dead-lettered) entry of a report, wherever the function nests it."""
    found: list[dict[str, Any]] = []
    if isinstance(report, dict):
        for key, value in report.items():
            if key in ("published", "dead_letter") and isinstance(value, list):
                found += value
            else:
                found += _entries(value)
    elif isinstance(report, list):
        for value in report:
            found += _entries(value)
    return found


def _queued(home: Path) -> dict[str, bytes]:
    """message_id → payload of what sits on the embedded queue (its SQLite file, read directly)."""
    db = home / "queue.sqlite"
    if not db.exists():
        return {}
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        out: dict[str, bytes] = {}
        for table in tables:
            columns = [r[1] for r in conn.execute(f"pragma table_info({table})")]
            if "message_id" in columns and "data" in columns:
                out.update({mid: bytes(data) for mid, data in conn.execute(f"select message_id, data from {table}")})
    return out


def test_the_invoke_examples_run_and_report_one_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    for name in ("BURNGUARD_TOPIC", "BURNGUARD_LEDGER", "BURNGUARD_POLICY", "BURNGUARD_HOME",
                 "BURNGUARD_LOCAL_EXPORTS", "BURNGUARD_LOCAL_BUCKETS", "BURNGUARD_AZURE_LOCAL_EXPORTS",
                 "PUBSUB_EMULATOR_HOST", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    found = examples()
    clouds = {argv[1] for _, argv in found if argv[0] == "invoke"}
    assert clouds == {"aws", "gcp", "azure"} and len(found) >= 10
    shapes: dict[str, dict[str, set[frozenset[str]]]] = {}  # kind → cloud → key sets
    checked = 0  # entries compared with the queue
    for where, argv in found:
        home = tmp_path / where.split(":")[0].replace("/", "_")
        monkeypatch.setenv("BURNGUARD_HOME", str(home))
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(_home(argv, home))
        assert code == 0, f"{where} exited {code}: {err.getvalue()[-500:]}"
        assert "Traceback" not in err.getvalue()
        if argv[0] != "invoke":
            continue
        report = json.loads(out.getvalue())
        queued = _queued(home)
        for entry in _entries(report):
            assert "attributes" not in entry, f"{where}: attributes are at the top of an entry, not nested"
            assert isinstance(entry["kind"], str) and isinstance(entry["message_id"], str), where
            assert isinstance(entry["bytes"], int) and entry["bytes"] > 0, where
            if entry["kind"] == "line-items":
                assert "data" not in entry, where
            else:
                assert isinstance(entry["data"], dict), where
            if entry["message_id"] in queued:
                payload = queued[entry["message_id"]]
                assert entry["bytes"] == len(payload), where
                checked += 1
                if "data" in entry:
                    assert entry["data"] == json.loads(payload), where
            shapes.setdefault(entry["kind"], {}).setdefault(argv[1], set()).add(frozenset(
                k for k in entry if k != "data"))
    assert checked >= 10
    # A kind published by several clouds has the same top-level keys on each (attributes + bytes + data).
    assert {"budget-alert", "delivery-summary", "line-items"} <= set(shapes)
    assert set(shapes["budget-alert"]) == {"aws", "gcp", "azure"}
    assert set(shapes["delivery-summary"]) == {"aws", "gcp", "azure"}
    for kind, by_cloud in shapes.items():
        common = {"kind", "message_id", "bytes", "schema"}
        for cloud, key_sets in by_cloud.items():
            for keys in key_sets:
                assert common <= keys, (kind, cloud, sorted(keys))
        if kind == "budget-alert":
            assert len({keys for key_sets in by_cloud.values() for keys in key_sets}) == 1, by_cloud


def test_the_examples_found_are_the_documented_ones() -> None:
    lines = [where for where, _ in examples()]
    assert any("invoke azure ingest" in w for w in lines) and any("invoke azure budget" in w for w in lines)
    assert not any(re.search(r"\bEVENT\.json\b", w) for w in lines)  # placeholders stay out of the code blocks
