"""Tables and progress for people: aligned columns, long names shortened in the middle (the
distinctive end stays), colour and progress bars only on a terminal.

On a terminal the table is drawn by rich; anywhere else (a pipe, a file, a test) it is plain
text: a header, a rule of dashes, columns two spaces apart, numbers right-aligned, no colour
and no wrapping, so ``grep`` and ``awk`` read it line by line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

ELLIPSIS = "…"


def shorten(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` characters in the middle: about a third of the start,
    the rest the end, cut at a separator so no word is cut and the distinctive end stays:
    ``/subscriptions/…/virtualMachines/trainer-a100-1``. A path's last segment is kept whole
    when it fits at all."""
    if width <= 0 or len(text) <= width:
        return text
    if width <= 3:
        return text[-width:]
    budget = width - 1
    tail = text[-(budget - budget // 3):]
    if any(sep in text for sep in PATH_SEPARATORS):
        found = [i for i in (tail.find(sep) for sep in PATH_SEPARATORS) if i >= 0]
        if found:
            tail = tail[min(found):]
        else:  # the last segment is longer than the tail: give it the head's room too
            last = text[max(text.rfind(sep) for sep in PATH_SEPARATORS):]
            if len(last) <= budget - 1:
                tail = last
    else:
        for sep in WORD_SEPARATORS:
            i = tail.find(sep)
            if 0 <= i < len(tail) // 2:
                tail = tail[i:]
                break
    head = text[:budget - len(tail)]
    for sep in (*PATH_SEPARATORS, *WORD_SEPARATORS):
        j = head.rfind(sep)
        if j >= len(head) // 2:
            head = head[:j + 1]
            break
    return head + ELLIPSIS + tail


PATH_SEPARATORS = ("/", "|", ":")
WORD_SEPARATORS = ("-", ".", "_")


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def render(rows: Sequence[Sequence[object]], headers: Sequence[str], *, right: Sequence[str] = (),
           widths: dict[str, int] | None = None, stream: TextIO | None = None, title: str | None = None) -> None:
    """Print a table; ``right`` names the right-aligned (numeric) columns; ``widths`` the
    widest a column may be (longer cells are shortened in the middle)."""
    out = stream or sys.stdout
    limits = widths or {}
    cells = [[shorten("" if c is None else str(c), limits.get(h, 0)) for h, c in zip(headers, r, strict=True)]
             for r in rows]
    if _is_terminal(out):
        from rich import box
        from rich.console import Console
        from rich.table import Table

        table = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", header_style="bold")
        for h in headers:
            table.add_column(h, justify="right" if h in right else "left", overflow="fold")
        for r in cells:
            table.add_row(*r)
        Console(file=out, highlight=False).print(table)
        return
    if title:
        out.write(title + "\n")
    out.write(plain(cells, headers, right=right) + "\n")


def plain(cells: Sequence[Sequence[str]], headers: Sequence[str], *, right: Sequence[str] = ()) -> str:
    grid = [[str(h) for h in headers], *[[str(c) for c in r] for r in cells]]
    w = [max(len(r[i]) for r in grid) for i in range(len(headers))]

    def line(r: Sequence[str]) -> str:
        return "  ".join(c.rjust(n) if h in right else c.ljust(n)
                         for c, n, h in zip(r, w, headers, strict=True)).rstrip()

    lines = [line(r) for r in grid]
    lines.insert(1, "  ".join("-" * n for n in w))
    return "\n".join(lines)


def note(text: str, *, stream: TextIO | None = None, style: str = "dim") -> None:
    """A line of commentary: styled on a terminal, plain elsewhere."""
    out = stream or sys.stdout
    if _is_terminal(out):
        from rich.console import Console

        Console(file=out, highlight=False).print(text, style=style, markup=False)
    else:
        out.write(text + "\n")


class Progress:
    """Progress of normalize and ingest on a terminal (stderr), one bar per file: rows read and
    rows/s; with the bytes read so far and the file's size (``normalize`` knows them), MB/s and
    the time left; silent when stderr is not a terminal. Readers call ``progress(key, rows)``
    (rows since the last call); ``sizes`` maps keys to file sizes for the MB/s at the end."""

    def __init__(self, stream: TextIO | None = None, sizes: dict[str, int] | None = None):
        self.stream = stream or sys.stderr
        self.enabled = _is_terminal(self.stream)
        self.sizes = dict(sizes or {})
        self.key = ""
        self.rows = 0
        self.start = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None
        self._size = 0

    def __call__(self, key: str, rows: int, position: int | None = None, total: int | None = None) -> None:
        if key != self.key:
            self.done()
            self.key, self.rows, self.start = key, 0, time.perf_counter()
            if self.enabled:
                self._open(key, total)
        self.rows += rows
        if self._bar is not None:
            elapsed = max(time.perf_counter() - self.start, 1e-6)
            fields = {"rows": f"{self.rows:,} rows", "rate": f"{self.rows / elapsed:,.0f} rows/s"}
            if position is not None and total:
                self._bar.update(self._task, completed=min(position, total), **fields)
            else:
                self._bar.update(self._task, **fields)

    def _open(self, key: str, total: int | None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as Bar

        self._size = total or self.sizes.get(key) or _size_of(key)
        columns: list[Any] = [TextColumn("  {task.description}"), BarColumn(), TextColumn("{task.fields[rows]:>16}"),
                              TextColumn("{task.fields[rate]:>14}")]
        if total:
            columns += [TransferSpeedColumn(), TimeRemainingColumn()]
        else:
            columns += [TimeElapsedColumn()]
        self._bar = Bar(*columns, console=Console(file=self.stream))
        self._bar.start()
        self._task = self._bar.add_task(shorten(Path(key).name, 40), total=total, rows="", rate="")

    def done(self) -> None:
        if self._bar is not None:
            elapsed = max(time.perf_counter() - self.start, 1e-6)
            rate = f"{self.rows / elapsed:,.0f} rows/s" + (f", {self._size / 1e6 / elapsed:,.1f} MB/s"
                                                           if self._size else "")
            total = self._bar.tasks[0].total or 1
            self._bar.update(self._task, completed=total, total=total, rows=f"{self.rows:,} rows", rate=rate)
            self._bar.stop()
            self._bar = None
        self.key = ""


def _size_of(key: str) -> int:
    try:
        return Path(key).stat().st_size
    except OSError:
        return 0
