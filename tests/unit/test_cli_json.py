"""After the demo: the JSON of every read command validates against its documented schema (and
says what the ledger holds); ingest says what became of each delivery; snooze; the report as
PNG (decoded: size, not blank) and as HTML (rendered in headless Chromium); ``serve`` closes
idle connections and keeps answering with a few hundred of them open."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from burnguard.app.cli import main
from burnguard.app.schemas import SCHEMAS
from tests.cli_helpers import demo_home, run

ROOT = Path(__file__).parents[2]
EVENTS = ROOT / "events"
INVENTORY = {i["id"]: i for i in json.loads((EVENTS / "inventory.json").read_text())["instances"]}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-json") / "home"
    return demo_home(path)


READS = {
    "spend": ["spend", "--tag", "team=ml-research"],
    "spend-all": ["spend", "--tag", "project=*"],
    "top": ["top"],
    "top-by": ["top", "--by", "team"],
    "guardrails": ["guardrails"],
    "deliveries": ["deliveries"],
    "stopped": ["stopped", "--all"],
    "audit": ["audit", "--limit", "0"],
}


@pytest.mark.parametrize("name", list(READS))
def test_json_of_every_read_command_validates(name: str, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = READS[name]
    code, out, err = run(capsys, *argv, "--json", "--home", str(home))
    assert code == 0, err
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMAS[argv[0]])
    code, printed, _ = run(capsys, "schema", argv[0])
    assert code == 0 and json.loads(printed) == SCHEMAS[argv[0]]


def test_json_says_what_the_ledger_holds(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "stopped", "--json", "--home", str(home))
    stops = json.loads(out)["stops"]
    assert stops and all(s["state"] == "stopped" and not s["dry_run"] for s in stops)
    assert {s["name"] for s in stops} == {INVENTORY[s["instance_id"]]["name"] for s in stops}
    _, out, _ = run(capsys, "deliveries", "--json", "--home", str(home))
    deliveries = json.loads(out)["deliveries"]
    assert sorted(d["status"] for d in deliveries) == ["complete", "complete", "complete", "superseded"]
    _, out, _ = run(capsys, "spend", "--tag", "team=ml-research", "--json", "--home", str(home))
    spend = json.loads(out)
    # Names from the inventory instead of ids where the inventory knows the machine.
    top = spend["top_resources"]
    assert top[0]["name"] == INVENTORY[top[0]["resource_id"]]["name"] == "trainer-p4d-1"
    per_cloud = sum((float(c["amount"]) for c in spend["per_cloud"]), 0.0)
    assert abs(per_cloud - float(spend["totals"][0]["amount"])) < 0.02
    _, out, _ = run(capsys, "audit", "--json", "--limit", "3", "--home", str(home))
    audit = json.loads(out)
    assert audit["shown"] == 3 and audit["total"] > 3


def test_audit_says_it_shows_the_last_rows_and_keeps_details_whole(home: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "audit", "--limit", "5", "--home", str(home))
    assert code == 0 and out.startswith("the last 5 of ")
    code, out, _ = run(capsys, "audit", "--kind", "decision", "--limit", "0", "--home", str(home))
    longest = max(len(ln) for ln in out.splitlines())
    assert longest > 200  # details are not cut at 80 characters
    assert "stop" in out


def test_now_cuts_the_data(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, whole, _ = run(capsys, "guardrails", "--json", "--home", str(home))
    _, early, _ = run(capsys, "guardrails", "--json", "--now", "2024-09-10T12:00:00Z", "--home", str(home))
    def ml(doc: str) -> float:
        row = next(g for g in json.loads(doc)["guardrails"] if g["scope"] == "team=ml-research")
        return float(row["spend"])
    assert 0 < ml(early) < ml(whole)
    _, a, _ = run(capsys, "spend", "--tag", "team=ml-research", "--json", "--now", "2024-09-10T12:00:00Z",
                    "--home", str(home))
    assert float(json.loads(a)["totals"][0]["amount"]) == pytest.approx(ml(early), abs=0.01)
    # At midnight the day that starts is not counted yet.
    _, b, _ = run(capsys, "spend", "--tag", "team=ml-research", "--json", "--now", "2024-09-10", "--home", str(home))
    assert 0 < float(json.loads(b)["totals"][0]["amount"]) < float(json.loads(a)["totals"][0]["amount"])


def test_ingest_says_what_became_of_each_delivery(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "h"
    policy = str(EVENTS / "policies" / "demo.yaml")
    code, out, _ = run(capsys, "ingest", str(EVENTS / "exports" / "gcp"), "--home", str(state), "--policy", policy)
    assert code == 0 and "counted: 572 line items" in out
    code, out, _ = run(capsys, "ingest", str(EVENTS / "exports" / "gcp"), "--home", str(state))
    assert code == 0 and "already counted" in out and "counted: 572" not in out
    # A folder of budget notifications is read as notifications, not skipped.
    code, out, _ = run(capsys, "ingest", str(EVENTS / "budget"), "--home", str(state))
    assert code == 0 and out.count("alert ") >= 15
    # A data file without its manifest waits; a delivery whose file is cut is rejected: exit 1.
    [manifest] = sorted((EVENTS / "exports" / "azure").rglob("8e3a5c7d-*/manifest.json"))
    bucket = manifest.parents[5]
    copy = tmp_path / "exports" / "azure" / bucket.name
    shutil.copytree(bucket, copy)
    [data] = sorted(copy.rglob("8e3a5c7d-*/part_0_0001.csv"))
    lines = data.read_text().splitlines(keepends=True)
    data.write_text("".join(lines[:-5]))  # five rows fewer than the manifest declares
    code, out, _ = run(capsys, "ingest", str(data.parent), "--home", str(state))
    assert code == 1
    fate = next(ln for ln in out.splitlines() if "8e3a5c7d" in ln and "azure" in ln and ln.startswith("azure"))
    assert "rejected" in fate


def test_snooze_and_end_it(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "h"
    shutil.copytree(home, state)
    code, out, _ = run(capsys, "snooze", "per-project-monthly", "2h", "--home", str(state))
    assert code == 0 and "snoozed for 2h" in out
    _, out, _ = run(capsys, "guardrails", "--json", "--home", str(state))
    assert all("snoozed until" in g["state"] for g in json.loads(out)["guardrails"]
               if g["guardrail"] == "per-project-monthly")
    _, out, _ = run(capsys, "audit", "--json", "--kind", "command", "--home", str(state))
    assert json.loads(out)["events"][-1]["details"]["command"] == "snooze"
    code, out, _ = run(capsys, "snooze", "per-project-monthly", "off", "--home", str(state))
    assert code == 0 and "snooze ended" in out
    _, out, _ = run(capsys, "guardrails", "--json", "--home", str(state))
    assert not any("snoozed" in g["state"] for g in json.loads(out)["guardrails"])


# -- the report --------------------------------------------------------------------------------------

def test_report_png_is_a_real_picture(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib", reason="the report extra (matplotlib) is installed by .ci/setup")
    from matplotlib import image

    out = tmp_path / "spend.png"
    code, printed, err = run(capsys, "report", "--tag", "team=*", "--out", str(out), "--home", str(home))
    assert code == 0, err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = image.imread(str(out))
    height, width = pixels.shape[:2]
    assert width >= 800 and height >= 600
    flat = pixels.reshape(-1, pixels.shape[2])[:, :3]
    colours = {tuple((c * 255).round().astype(int)) for c in flat[:: max(1, len(flat) // 20000)]}
    assert len(colours) > 20  # bars, lines, text: not blank
    assert "team=*" in printed


def test_report_html_renders_in_headless_chromium(home: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Debian's `chromium` package (.ci/setup installs it); skipped where it is absent."""
    pytest.importorskip("matplotlib", reason="the report extra (matplotlib) is installed by .ci/setup")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("headless Chromium (Debian package `chromium`) is not installed")
    from matplotlib import image

    page = tmp_path / "spend.html"
    code, _, err = run(capsys, "report", "--tag", "team=ml-research", "--out", str(page), "--home", str(home))
    assert code == 0, err
    text = page.read_text()
    assert "<svg" in text and "<script" not in text and "http://" not in text.replace(
        "http://www.w3.org", "")  # self-contained: nothing fetched
    assert "budget 5,000.00" in text and "estimated" in text and "billed" in text
    shot = tmp_path / "shot.png"
    proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1000",
                           f"--screenshot={shot}", page.as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    assert shot.exists(), proc.stderr[-2000:]
    pixels = image.imread(str(shot))
    flat = pixels.reshape(-1, pixels.shape[2])[:, :3]
    colours = {tuple((c * 255).round().astype(int)) for c in flat[:: max(1, len(flat) // 20000)]}
    assert len(colours) > 20  # the chart was drawn, not a blank page


# -- serve under idle connections ---------------------------------------------------------------------

def test_serve_closes_idle_connections_and_keeps_answering(home: Path) -> None:
    idle_count = 300
    env = {**os.environ, "PYTHONPATH": str(ROOT / "shared"), "BURNGUARD_SLACK_SIGNING_SECRET": "s3cret"}
    proc = subprocess.Popen([sys.executable, "-m", "burnguard.app.cli", "serve", "--port", "0", "--idle-timeout", "1",
                             "--home", str(home)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    sockets: list[socket.socket] = []
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        port = int(line.split("http://127.0.0.1:", 1)[1].split("/", 1)[0])
        for _ in range(idle_count):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            sockets.append(s)
        # With 300 silent connections open, a request is still answered (unsigned: refused, 401).
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST /slack HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            answer = s.recv(100)
        assert answer.startswith(b"HTTP/1.") and answer.split(b" ", 2)[1].startswith(b"4")
        # Each idle connection is closed by the server (recv sees the end) within a bounded wait.
        closed = 0
        for s in sockets:
            s.settimeout(10)
            try:
                closed += s.recv(1) == b""
            except (ConnectionResetError, TimeoutError):
                closed += 0
        assert closed == idle_count
    finally:
        for s in sockets:
            s.close()
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    time.sleep(0)


def test_report_png_bytes_for_slack(home: Path) -> None:
    """What a threshold alert would attach: the same picture as bytes, from the ledger and policy."""
    pytest.importorskip("matplotlib", reason="the report extra (matplotlib) is installed by .ci/setup")
    from burnguard.app.embedded import LocalMode
    from burnguard.app.report import build_report, png_bytes

    local = LocalMode.open(home)
    try:
        data = build_report(local.ledger, local.policy, "team=ml-research", None, local.data_clock())
    finally:
        local.close()
    assert data.guardrail == "ml-research-monthly" and data.budget is not None
    [series] = data.series
    assert series.forecast_end is not None and series.forecast_end > series.billed_total
    assert png_bytes(data)[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_days_equal_the_raw_exports(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The HTML's table of billed days against an independent reading of the raw files
    (tests/unit/test_demo.py parses them with csv/json/gzip into Decimal)."""
    pytest.importorskip("matplotlib", reason="the report extra (matplotlib) is installed by .ci/setup")
    import re
    from collections import defaultdict
    from decimal import Decimal

    from tests.unit.test_demo import CHARGES, tag

    page = tmp_path / "r.html"
    assert main(["report", "--tag", "team=*", "--out", str(page), "--home", str(home)]) == 0
    capsys.readouterr()
    text = page.read_text()
    head = re.search(r"<thead><tr><th>day</th><th>kind</th>(.*?)</tr></thead>", text)
    assert head is not None
    values = re.findall(r"<th>(.*?)</th>", head.group(1))
    got: dict[str, Decimal] = defaultdict(Decimal)
    for row in re.findall(r"<tr class='billed'>(.*?)</tr>", text):
        cells = re.findall(r"<td class='num'>(.*?)</td>", row)
        for value, cell in zip(values, cells, strict=True):
            got[value] += Decimal(cell.replace(",", ""))
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for c in CHARGES:
        found = tag(c.tags, "team")
        if c.dated and c.in_september and found is not None:
            expected[found] += c.effective
    assert set(got) == set(expected)
    for value, amount in expected.items():
        assert abs(got[value] - amount) <= Decimal("0.005") * 31, value  # cells are rounded to cents


def test_a_data_file_alone_says_it_waits_for_its_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bucket = tmp_path / "aws" / "acme-billing-cur"
    shutil.copytree(EVENTS / "exports" / "aws" / "acme-billing-cur", bucket)
    [data] = sorted(bucket.rglob("*-1.csv.gz"))
    code, out, _ = run(capsys, "ingest", str(data), "--home", str(tmp_path / "h"), "--policy",
                       str(EVENTS / "policies" / "demo.yaml"))
    line = next(ln for ln in out.splitlines() if ln.startswith("waiting"))
    assert code == 0 and "manifest" in line


def test_ingest_names_the_part_a_waiting_delivery_lacks(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk lost in transit (the queue drops it: a fault injected into the real SQLite queue)
    leaves its delivery waiting; ingest names the missing part, from the manifest's own file."""
    from burnguard.adapters.local.queue import SqliteQueue
    from burnguard.core.messages import LINE_ITEMS

    [manifest] = sorted((EVENTS / "exports" / "gcp").rglob("manifest.json"))
    [part] = [f["name"] for f in json.loads(manifest.read_text())["files"]]
    publish = SqliteQueue.publish
    lost: list[str] = []

    def lossy(self: SqliteQueue, messages: list[object]) -> None:
        kept = []
        for m in messages:
            if not lost and getattr(m, "kind", None) == LINE_ITEMS:
                lost.append(m.message_id)  # type: ignore[attr-defined]
                continue
            kept.append(m)
        publish(self, kept)  # type: ignore[arg-type]

    monkeypatch.setattr(SqliteQueue, "publish", lossy)
    code, out, _ = run(capsys, "ingest", str(EVENTS / "exports" / "gcp"), "--home", str(tmp_path / "h"),
                       "--policy", str(EVENTS / "policies" / "demo.yaml"))
    assert lost
    fate = next(ln for ln in out.splitlines() if ln.startswith("gcp "))
    assert "waiting: 1 of" in fate and f"{part} #1" in fate and "counted" not in fate
    assert code == 0  # waiting is not a finding: the lost part may still come (a re-ingest sends it)
    code, out, _ = run(capsys, "ingest", str(EVENTS / "exports" / "gcp"), "--home", str(tmp_path / "h"))
    fate = next(ln for ln in out.splitlines() if ln.startswith("gcp "))
    assert code == 0 and "counted: 572 line items" in fate
