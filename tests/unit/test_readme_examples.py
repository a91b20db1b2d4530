"""Every command example of README.md and events/README.md runs, in order, and exits 0.

An example is a ``$ burnguard ...`` line of a ``console`` code block. They run in a scratch
folder holding a link to the repository's ``events/`` (so relative paths and ``--out`` files
work as in a checkout), with ``$BURNGUARD_HOME`` there, through ``main()`` (what the
``burnguard`` script calls). A test also checks the README says how to get it on PATH.
"""

from __future__ import annotations

import io
import re
import shlex
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from burnguard.app.cli import build_parser, main

ROOT = Path(__file__).parents[2]
DOCS = [ROOT / "README.md", ROOT / "events" / "README.md"]


def examples(doc: Path) -> list[str]:
    found: list[str] = []
    for block in re.findall(r"```console\n(.*?)```", doc.read_text(), flags=re.S):
        found += [ln[2:].strip() for ln in block.splitlines() if ln.startswith("$ burnguard ")]
    return found


def test_the_docs_have_examples_of_every_read_command() -> None:
    commands = {shlex.split(e)[1] for doc in DOCS for e in examples(doc)}
    assert {"demo", "spend", "top", "guardrails", "deliveries", "stopped", "audit", "report", "snooze", "resume",
            "ingest", "normalize"} <= commands


def test_every_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "events").symlink_to(ROOT / "events")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BURNGUARD_HOME", str(tmp_path / ".burnguard"))
    ran = []
    for doc in DOCS:
        for example in examples(doc):
            argv = shlex.split(example)[1:]
            out, err = io.StringIO(), io.StringIO()
            with redirect_stdout(out), redirect_stderr(err):
                code = main(argv)
            assert code == 0, f"{doc.name}: `{example}` exited {code}: {err.getvalue()[-500:]}"
            assert "Traceback" not in err.getvalue()
            ran.append(example)
    assert len(ran) >= 20
    # The report examples wrote their files.
    assert (tmp_path / "spend.png").stat().st_size > 10_000
    assert "<svg" in (tmp_path / "spend.html").read_text()


def test_readme_says_how_to_get_it_on_path() -> None:
    text = DOCS[0].read_text()
    assert "source .venv/bin/activate" in text and ".venv/bin/burnguard" in text
    assert "pipx install" in text or "uv tool install" in text


def test_readme_synopsis_names_every_command() -> None:
    text = DOCS[0].read_text()
    synopsis = re.search(r"### Commands\n\n```text\n(.*?)```", text, flags=re.S)
    assert synopsis is not None
    listed = {ln.split()[1] for ln in synopsis.group(1).splitlines() if ln.startswith("burnguard ")}
    parser = build_parser()
    [sub] = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    assert set(sub.choices) == listed  # type: ignore[attr-defined]


def test_linked_files_exist() -> None:
    for doc in DOCS:
        for target in re.findall(r"`([\w./-]+\.md)`", doc.read_text()):
            candidates = [doc.parent / target, ROOT / target]
            assert any(c.exists() for c in candidates), f"{doc.name} names {target}, which is not in the repository"
