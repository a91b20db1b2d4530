"""Every error a user can cause ends in one line on stderr saying what is wrong and how to fix
it, with the documented exit code, and never a traceback; ``--help`` of every command works.

Most cases run ``main()`` in-process (fast); the ones that depend on the process itself (stdin
closed, a port in use by another process) run ``python -m burnguard.app.cli`` in a subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from burnguard.app.cli import build_parser, main
from tests.cli_helpers import demo_home, run

ROOT = Path(__file__).parents[2]
EVENTS = ROOT / "events"
POLICY = EVENTS / "policies" / "demo.yaml"
TRACEBACK = "Traceback (most recent call last)"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state folder after the demo (stops recorded, deliveries counted)."""
    path = tmp_path_factory.mktemp("cli-errors") / "home"
    return demo_home(path)


def commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from commands(sub, (*prefix, name))


ALL_COMMANDS = list(commands(build_parser()))


def test_every_command_is_listed() -> None:
    names = {c[0] for c in ALL_COMMANDS}
    assert {"normalize", "demo", "ingest", "spend", "top", "guardrails", "deliveries", "stopped", "resume",
            "snooze", "report", "serve", "audit", "schema", "invoke", "policy"} <= names
    assert ("policy", "check") in ALL_COMMANDS


@pytest.mark.parametrize("command", [(), *ALL_COMMANDS], ids=lambda c: " ".join(c) or "burnguard")
def test_help_of_every_command(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, *command, "--help")
    assert code == 0, err
    assert out.startswith("usage: burnguard") and err == ""
    assert "exit codes" in out or (command[:1] == ("policy",) and len(command) == 2)


def one_line_error(err: str) -> str:
    assert TRACEBACK not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def _corrupt_config(base: Path, home: Path) -> Path:
    target = base / "bad-config"
    shutil.copytree(home, target)
    (target / "config.json").write_text('{"policy": ')
    return target


def _corrupt_ledger(base: Path, home: Path) -> Path:
    target = base / "bad-ledger"
    shutil.copytree(home, target)
    (target / "ledger.sqlite").write_bytes(b"this is not a database" * 100)
    return target


def _latin1_policy(base: Path, home: Path) -> Path:
    path = base / "latin1.yaml"
    path.write_bytes(POLICY.read_text().replace("version: 1", "# caf\xe9\nversion: 1", 1).encode("latin-1"))
    return path


def _outside_layout(base: Path, home: Path) -> Path:
    [data] = sorted((EVENTS / "exports" / "aws").rglob("*-1.csv.gz"))
    path = base / "loose" / data.name
    path.parent.mkdir(exist_ok=True)
    shutil.copy(data, path)
    return path


def _manifest_outside_layout(base: Path, home: Path) -> Path:
    """A manifest alone, outside the layout, without its data files beside it."""
    [manifest] = sorted((EVENTS / "exports" / "aws").rglob("*/burnguard-hourly-Manifest.json"))[:1]
    path = base / "loose-manifest" / manifest.name
    path.parent.mkdir(exist_ok=True)
    shutil.copy(manifest, path)
    return path


def _foreign_folder(base: Path, home: Path) -> Path:
    path = base / "my-documents"
    path.mkdir(exist_ok=True)
    (path / "thesis.txt").write_text("keep me")
    return path


def _a_folder(base: Path, home: Path) -> Path:
    return base


# (argv with {home}, {tmp} and {x} for a prepared path; exit code; words the line must hold)
BAD_INPUTS: list[tuple[str, list[str], int, list[str], object]] = [
    ("unknown command", ["frobnicate"], 2, ["invalid choice", "--help"], None),
    ("unknown option", ["spend", "--tag", "team=a", "--bogus"], 2, ["unrecognized arguments", "--help"], None),
    ("missing argument", ["spend"], 2, ["--tag", "required"], None),
    ("negative limit", ["audit", "--limit", "-1", "--home", "{home}"], 2, ["negative"], None),
    ("normalize missing file", ["normalize", "{tmp}/nope.csv"], 2, ["nope.csv", "no such file"], None),
    ("normalize out in a missing folder", ["normalize", str(EVENTS / "samples" / "gcp" / "billing-export-202409.jsonl"),
                                          "--out", "/missing/dir/x"], 2, ["/missing/dir", "does not exist",
                                                                          "create it"], None),
    ("normalize out is a folder", ["normalize", str(EVENTS / "samples" / "gcp" / "billing-export-202409.jsonl"),
                                   "--out", "{x}"], 2, ["is a folder"], _a_folder),
    ("normalize parquet to stdout", ["normalize", str(EVENTS / "samples" / "gcp" / "billing-export-202409.jsonl"),
                                     "--to", "parquet"], 2, ["--out FILE"], None),
    ("normalize manifest outside the layout", ["normalize", "{x}", "--summary"], 2,
     ["manifest", "DIR/<aws|gcp|azure>/BUCKET/KEY"], _manifest_outside_layout),
    ("spend now is a word", ["spend", "--tag", "team=ml-research", "--now", "yesterday", "--home", "{home}"], 2,
     ["--now", "yesterday", "2024-09-20T12:00:00Z"], None),
    ("spend period far future", ["spend", "--tag", "team=ml-research", "--period", "9999-12", "--home", "{home}"],
     2, ["year 9999", "out of range"], None),
    ("spend period month 13", ["spend", "--tag", "team=ml-research", "--period", "2024-13", "--home", "{home}"], 2,
     ["month 13"], None),
    ("spend period garbage", ["spend", "--tag", "team=ml-research", "--period", "last week", "--home", "{home}"], 2,
     ["YYYY-MM"], None),
    ("spend scope without value", ["spend", "--tag", "team", "--home", "{home}"], 2, ["key=value"], None),
    ("spend unknown tag key", ["spend", "--tag", "tem=ml-research", "--home", "{home}"], 2,
     ["no line item carries the tag 'tem'"], None),
    ("spend unknown tag value", ["spend", "--tag", "team=ml-reserch", "--home", "{home}"], 2,
     ["team=ml-reserch", "did you mean team=ml-research"], None),
    ("top tag and by", ["top", "--tag", "team=web", "--by", "team", "--home", "{home}"], 2, ["not both"], None),
    ("top by unknown key", ["top", "--by", "tema", "--home", "{home}"], 2, ["'tema'"], None),
    ("resume typo", ["resume", "ml-research-montly", "--yes", "--home", "{home}"], 2,
     ["ml-research-montly", "did you mean ml-research-monthly"], None),
    ("stopped unknown guardrail", ["stopped", "nosuch", "--home", "{home}"], 2, ["no guardrail named 'nosuch'"], None),
    ("audit unknown guardrail", ["audit", "--guardrail", "nosuch", "--home", "{home}"], 2, ["nosuch"], None),
    ("snooze unknown guardrail", ["snooze", "nosuch", "1h", "--home", "{home}"], 2, ["nosuch"], None),
    ("snooze bad duration", ["snooze", "ml-research-monthly", "2y", "--home", "{home}"], 2,
     ["not a duration", "30m"], None),
    ("snooze too long", ["snooze", "ml-research-monthly", "30d", "--home", "{home}"], 2, ["at most a week"], None),
    ("no state yet", ["guardrails", "--home", "{tmp}/nothing"], 2, ["run `burnguard demo`"], None),
    ("corrupt config.json", ["guardrails", "--home", "{x}"], 2, ["config.json", "damaged", "burnguard demo"],
     _corrupt_config),
    ("corrupt ledger", ["deliveries", "--home", "{x}"], 2, ["damaged", "move the folder away"], _corrupt_ledger),
    ("policy not UTF-8 (ingest)", ["ingest", str(EVENTS / "budget"), "--home", "{tmp}/h-latin1", "--policy", "{x}"],
     2, ["latin1.yaml", "not UTF-8", "save it as UTF-8"], _latin1_policy),
    ("policy not UTF-8 (check)", ["policy", "check", "{x}"], 2, ["not UTF-8"], _latin1_policy),
    ("policy missing", ["ingest", str(EVENTS / "budget"), "--home", "{tmp}/h2", "--policy", "{tmp}/none.yaml"], 2,
     ["none.yaml", "--policy"], None),
    ("policy check missing", ["policy", "check", "{tmp}/none.yaml"], 2, ["none.yaml", "no such file"], None),
    ("ingest missing path", ["ingest", "{tmp}/nope", "--home", "{home}"], 2, ["nope", "no such file"], None),
    ("ingest export outside the layout", ["ingest", "{x}", "--home", "{home}"], 2,
     ["not in a <aws|gcp|azure>/<bucket>/ folder", "DIR/aws/BUCKET/KEY"], _outside_layout),
    ("report not png or html", ["report", "--out", "{tmp}/r.pdf", "--home", "{home}"], 2, [".png or a .html"], None),
    ("report in a missing folder", ["report", "--out", "/missing/dir/r.png", "--home", "{home}"], 2,
     ["does not exist"], None),
    ("report unknown tag", ["report", "--tag", "team=nobody", "--out", "{tmp}/r.png", "--home", "{home}"], 2,
     ["team=nobody"], None),
    ("serve without a secret", ["serve", "--home", "{home}"], 2, ["BURNGUARD_SLACK_SIGNING_SECRET"], None),
    ("invoke missing event", ["invoke", "aws", "ingest", "{tmp}/nope.json", "--home", "{home}"], 2,
     ["nope.json", "no such file"], None),
    ("schema unknown command", ["schema", "resume"], 2, ["invalid choice"], None),
    ("demo into a foreign folder", ["demo", "--home", "{x}"], 2, ["not a burnguard state folder"], _foreign_folder),
]


@pytest.mark.parametrize(("argv", "code", "words", "prepare"), [c[1:] for c in BAD_INPUTS],
                         ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_ends_in_one_line(
        argv: list[str], code: int, words: list[str], prepare: object, home: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BURNGUARD_SLACK_SIGNING_SECRET", raising=False)
    x = prepare(tmp_path, home) if callable(prepare) else None
    args = [a.format(home=home, tmp=tmp_path, x=x) for a in argv]
    got, _, err = run(capsys, *args)
    line = one_line_error(err)
    assert got == code, line
    for word in words:
        assert word in line, (word, line)
    if x is not None and prepare is _foreign_folder:
        assert (Path(str(x)) / "thesis.txt").read_text() == "keep me"  # nothing was removed


def test_serve_on_a_port_in_use(home: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BURNGUARD_SLACK_SIGNING_SECRET", "s3cret")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, _, err = run(capsys, "serve", "--port", str(port), "--home", str(home))
    line = one_line_error(err)
    assert code == 2 and f"port {port}" in line and "in use" in line and "--port" in line


def test_resume_with_stdin_closed_says_pass_yes(home: Path, tmp_path: Path) -> None:
    state = tmp_path / "h"
    shutil.copytree(home, state)
    for stdin in (subprocess.DEVNULL, "closed"):
        proc = subprocess.run(
            [sys.executable, "-c", "import os, sys; os.close(0) if sys.argv[1] == 'closed' else None; "
                                   "from burnguard.app.cli import main; sys.stdin = None if sys.argv[1] == 'closed' "
                                   "else sys.stdin; raise SystemExit(main(sys.argv[2:]))",
             "closed" if stdin == "closed" else "devnull", "resume", "ml-research-monthly", "--home", str(state)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT / "shared")}, check=False)
        line = one_line_error(proc.stderr)
        assert proc.returncode == 2 and "pass --yes" in line, stdin
    # Nothing was started: the stops are still active.
    code = main(["stopped", "ml-research-monthly", "--json", "--home", str(state)])
    assert code == 0


def test_subprocess_error_has_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "burnguard.app.cli", "spend", "--tag", "team=a", "--now", "tomorrow",
                           "--home", str(tmp_path)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "shared")}, check=False)
    assert proc.returncode == 2 and TRACEBACK not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_bug_is_one_line_with_exit_3(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from burnguard.app import cli

    def broken(args: argparse.Namespace) -> int:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cli, "cmd_policy_schema", broken)
    monkeypatch.delenv("BURNGUARD_DEBUG", raising=False)
    code, _, err = run(capsys, "policy", "schema")
    line = one_line_error(err)
    assert code == 3 and "bug in burnguard" in line and "ZeroDivisionError" in line


def test_typos_fail_where_they_used_to_succeed(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The right names still work: the checks above are not blanket refusals."""
    code, out, _ = run(capsys, "stopped", "ml-research-monthly", "--home", str(home))
    assert code == 0 and "trainer-p4d-1" in out
    code, out, _ = run(capsys, "spend", "--tag", "TEAM=ml-research", "--home", str(home))
    assert code == 0 and "Spend of TEAM=ml-research" in out
    code, out, _ = run(capsys, "top", "--by", "team", "--json", "--home", str(home))
    assert code == 0 and {v["value"] for v in json.loads(out)["values"]} >= {"ml-research", "inference"}


@pytest.mark.parametrize("period", ["9999-12", "0000-01", "9999-12-31", "0d"])
def test_periods_out_of_range_are_input_errors_for_slack_too(period: str) -> None:
    """The slash command parses periods with the same function: no traceback there either."""
    from datetime import UTC, datetime

    from burnguard.core.errors import InputError
    from burnguard.services.queries import parse_period

    with pytest.raises(InputError):
        parse_period(period, datetime(2024, 9, 20, tzinfo=UTC))


def test_slack_spend_text_keeps_the_end_of_resource_ids() -> None:
    from decimal import Decimal

    from burnguard.core.ledger import ResourceRow, Scope, SpendRow
    from burnguard.services.queries import SpendReport

    arm = ("/subscriptions/5f1a2b3c-1111-2222-3333-444455556666/resourceGroups/ml-research/providers/"
           "Microsoft.Compute/virtualMachines/trainer-a100-az")
    report = SpendReport(Scope("team", "ml"), "2024-09", [SpendRow("ml", "USD", Decimal(1))],
                         top=[ResourceRow(arm, "azure", "Standard_NC24ads_A100_v4", True, "USD", Decimal(1))])
    line = next(ln for ln in report.text().splitlines() if "trainer-a100-az" in ln)
    assert "/trainer-a100-az" in line and "icrosoft" not in line.split("…")[-1][:8]


def test_normalize_a_manifest_outside_the_layout_reads_the_files_beside_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    [manifest] = [m for m in (EVENTS / "exports" / "aws").rglob("burnguard-hourly-Manifest.json")
                  if any(m.parent.glob("*.csv.gz"))]  # the assembly folder's copy, beside its data
    loose = tmp_path / "download"
    loose.mkdir()
    for f in manifest.parent.iterdir():
        shutil.copy(f, loose / f.name)
    code, out, err = run(capsys, "normalize", str(loose / manifest.name), "--summary")
    assert code == 0 and "outside the <aws|gcp|azure>/<bucket>/ layout" in one_line_error(err)
    assert json.loads(out)["rows"] == 2248  # the events/README's count of this CUR's rows


def test_help_imports_nothing_heavy() -> None:
    """`burnguard --help` answers without loading pyarrow, the policy models or the ledger."""
    code = ("import sys, io, contextlib\nfrom burnguard.app.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    assert main(['--help']) == 0\n"
            "print(sorted(m for m in ('pyarrow', 'burnguard.core.policy', 'burnguard.app.embedded', 'rich')"
            " if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "shared")})
    assert proc.stdout.strip() == "[]"
