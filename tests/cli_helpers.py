"""Helpers of the CLI tests: run ``burnguard`` in-process, and a state folder after the demo."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from burnguard.app.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``burnguard ARGV``: its exit code, stdout and stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def demo_home(path: Path) -> Path:
    """``path`` made a state folder by ``burnguard demo`` (deliveries counted, stops recorded), quietly."""
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        assert main(["demo", "--home", str(path)]) == 0
    return path
