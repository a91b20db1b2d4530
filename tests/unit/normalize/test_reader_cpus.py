"""One CPU or more: the reader parses beside the transform only when a second CPU is there,
and reads the same line items either way."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from burnguard.normalize import Normalizer, reader
from burnguard.normalize.reader import usable_cpus


@pytest.fixture()
def two_cpus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A process on CPUs 0 and 1, no cgroup limit, not in a Lambda."""
    monkeypatch.setattr(reader.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("max 100000\n")
    monkeypatch.setattr(reader, "CGROUP_CPU_MAX", cpu_max)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", raising=False)
    return cpu_max


def test_two_cpus_are_two(two_cpus: Path) -> None:
    assert usable_cpus() == 2


def test_taskset_to_one_cpu_is_one(two_cpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert usable_cpus() == 1


@pytest.mark.parametrize(("quota", "cpus"), [("50000 100000", 1), ("150000 100000", 2), ("400000 100000", 2),
                                             ("garbage", 2)])
def test_a_cgroup_quota_caps_the_cpus(two_cpus: Path, quota: str, cpus: int) -> None:
    two_cpus.write_text(quota + "\n")
    assert usable_cpus() == cpus


@pytest.mark.parametrize(("memory", "cpus"), [("1024", 1), ("1768", 1), ("1769", 2), ("3008", 2)])
def test_a_lambda_below_1769_mb_has_one_cpu(two_cpus: Path, monkeypatch: pytest.MonkeyPatch,
                                            memory: str, cpus: int) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory)
    assert usable_cpus() == cpus


def _cur(rows: int) -> bytes:
    lines = ["identity/LineItemId,lineItem/LineItemType,lineItem/UsageStartDate,lineItem/UnblendedCost,"
             "lineItem/CurrencyCode,resourceTags/user:team"]
    for i in range(rows):
        cost = "oops" if i % 997 == 5 else f"{i % 100}.{i % 7:02d}"
        short = i % 1499 == 7  # a row with a wrong field count
        lines.append(f"r{i},Usage,2024-09-01T{i % 24:02d}:00:00Z,{cost}" + ("" if short else f",USD,t{i % 5}"))
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("parallel", [True, False])
def test_serial_and_parallel_read_the_same_and_only_parallel_starts_a_parser_thread(parallel: bool) -> None:
    data = _cur(30_000)
    n = Normalizer(io.BytesIO(data), "cur.csv", parallel=parallel)
    parsers: list[str] = []
    rows: list[int] = []
    for table in n.batches():
        parsers += [t.name for t in threading.enumerate() if t.name == "parse:cur.csv"]
        rows += table.column("x_SourceRow").to_pylist()
    assert bool(parsers) is parallel
    # The oracle: every data line but the bad ones, numbered from 1 as the file counts them.
    bad = {i + 1 for i in range(30_000) if i % 997 == 5 or i % 1499 == 7}
    assert rows == [r for r in range(1, 30_001) if r not in bad]
    assert sorted(e.row for e in n.stats.errors if e.row is not None) == sorted(bad)[:len(n.stats.errors)]
    assert n.stats.error_count == len(bad)


def test_the_default_follows_the_cpus(two_cpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Normalizer(io.BytesIO(_cur(3)), "cur.csv").parallel is True
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
    assert Normalizer(io.BytesIO(_cur(3)), "cur.csv").parallel is False
