"""Tables for people: names shortened in the middle, plain text off a terminal, rich on one;
a dry run does not claim stops."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from burnguard.app.cli import main
from burnguard.app.tables import ELLIPSIS, render, shorten

EVENTS = Path(__file__).parents[2] / "events"
ARM = ("/subscriptions/5f1a2b3c-1111-2222-3333-444455556666/resourceGroups/ml-research/providers/"
       "Microsoft.Compute/virtualMachines/trainer-a100-az")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("width", [20, 32, 48, 64])
def test_shorten_keeps_the_distinctive_end_and_cuts_no_word(width: int) -> None:
    short = shorten(ARM, width)
    assert len(short) <= width and short.count(ELLIPSIS) == 1
    head, tail = short.split(ELLIPSIS)
    assert ARM.startswith(head) and ARM.endswith(tail)
    assert tail.endswith("trainer-a100-az")
    # The kept end starts at a separator: never "icrosoft.Compute/…" from the left mid-word.
    assert tail[0] in "/|:-._" or width < 24


def test_shorten_leaves_short_text_alone() -> None:
    assert shorten("trainer-p4d-1", 20) == "trainer-p4d-1"
    assert shorten(ARM, 0) == ARM


def test_plain_table_off_a_terminal() -> None:
    out = io.StringIO()
    render([("trainer-p4d-1", "3932.71"), ("x", "5.00")], ["name", "amount"], right=("amount",), stream=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["name", "amount"] and set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].endswith("3932.71") and lines[3].endswith("   5.00")  # right-aligned
    assert "\x1b[" not in out.getvalue()  # no colour in a pipe


def test_rich_table_on_a_terminal() -> None:
    out = Terminal()
    render([("trainer-p4d-1", "3932.71")], ["name", "amount"], right=("amount",), stream=out)
    text = out.getvalue()
    assert "trainer-p4d-1" in text and "3932.71" in text
    assert "\x1b[" in text or "─" in text  # styled or drawn by rich


def test_a_dry_run_does_not_claim_stops(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "dry.yaml"
    text = (EVENTS / "policies" / "demo.yaml").read_text()
    assert "dry_run: false" in text
    policy.write_text(text.replace("dry_run: false", "dry_run: true"))
    code = main(["ingest", str(EVENTS / "exports" / "aws"), "--home", str(tmp_path / "h"), "--policy", str(policy),
                 "--inventory", str(EVENTS / "inventory.json")])
    out = capsys.readouterr().out
    summary = next(ln for ln in out.splitlines() if ln.startswith("guardrail: ") and "messages handled" in ln)
    assert summary.endswith(", 0 stops") and "would stop (dry run: nothing was stopped)" in summary
    assert code == 0
    code = main(["stopped", "--home", str(tmp_path / "h")])
    assert "Nothing is stopped" in capsys.readouterr().out


def test_progress_only_on_a_terminal(tmp_path: Path) -> None:
    from burnguard.app.tables import Progress

    data = tmp_path / "export.csv"
    data.write_bytes(b"x" * 2_000_000)
    pipe = io.StringIO()
    quiet = Progress(pipe)
    quiet(str(data), 1000, 1_000_000, 2_000_000)
    quiet.done()
    assert pipe.getvalue() == ""
    term = Terminal()
    bar = Progress(term)
    bar(str(data), 1000, 1_000_000, 2_000_000)
    bar(str(data), 1000, 2_000_000, 2_000_000)
    bar.done()
    shown = term.getvalue()
    assert "export.csv" in shown and "2,000 rows" in shown and "MB/s" in shown
