"""README's "How it stays correct" names where each rule lives: every module path it names
exists under shared/burnguard/ (so a layout move cannot leave it pointing at nothing)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_every_module_the_correctness_section_names_exists() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("## How it stays correct", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`([\w/]+\.py)`", section)
    assert len(named) >= 10  # one or more per rule
    assert [p for p in named if not (ROOT / "shared" / "burnguard" / p).is_file()] == []
    assert "ARCHITECTURE.md" in section and (ROOT / "ARCHITECTURE.md").is_file()
