"""The offline parts of infra/build.py: pruning, the size limit, entry files, reproducible zips,
pinned requirements, policy validation. The pip steps download wheels and are not run here."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from infra import build

ROOT = Path(__file__).parents[2]


def _touch(path: Path, size: int = 10) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def test_prune_removes_what_never_runs_and_keeps_the_rest(tmp_path: Path) -> None:
    # GIVEN an installed tree with Arrow headers, tests, Flight, caches, and the libraries used
    for rel in ("pyarrow/include/arrow/api.h", "pyarrow/tests/test_x.py", "pyarrow/libarrow_flight.so.1700",
                "pyarrow/_flight.cpython-312-x86_64-linux-gnu.so", "numpy/_core/tests/test_a.py",
                "burnguard/__pycache__/x.cpython-312.pyc", "pyarrow/libarrow.so.1700", "pyarrow/lib.pyx",
                "pyarrow/_substrait.cpython-312-x86_64-linux-gnu.so", "pyarrow/libarrow_substrait.so.2000",
                "pyarrow/__init__.py", "numpy/__init__.py", "burnguard/ledger.py"):
        _touch(tmp_path / rel)
    # WHEN it is pruned
    removed = build.prune(tmp_path)
    # THEN what a function loads stays: libarrow.so.<N> is what the extension modules link, and
    # libarrow_python links libarrow_substrait.so.<N> (pruning it breaks `import pyarrow`)
    assert {"pyarrow/include", "pyarrow/tests", "pyarrow/libarrow_flight.so.1700", "numpy/_core/tests",
            "burnguard/__pycache__", "pyarrow/lib.pyx", "pyarrow/_substrait.cpython-312-x86_64-linux-gnu.so"} <= set(removed)
    remaining = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert remaining == {"pyarrow/libarrow.so.1700", "pyarrow/libarrow_substrait.so.2000", "pyarrow/__init__.py",
                         "numpy/__init__.py", "burnguard/ledger.py"}


def test_the_lambda_size_limit_fails_the_build(tmp_path: Path) -> None:
    _touch(tmp_path / "big.bin", 2000)
    assert build.check_size(tmp_path, 2000) == 2000
    with pytest.raises(build.BuildError, match="over the limit"):
        build.check_size(tmp_path, 1999)
    assert build.CLOUDS["aws"].size_limit == 250 * 1024 * 1024


@pytest.mark.parametrize(("cloud", "expected"), [
    ("aws", {"slack_command.py"}),
    ("gcp", {"main.py"}),
    ("azure", {"function_app.py", "host.json"}),
])
def test_entry_files_of_each_cloud_go_at_the_bundle_root(tmp_path: Path, cloud: str, expected: set[str]) -> None:
    copied = build.copy_entry_files(build.CLOUDS[cloud], ROOT / "functions" / cloud, tmp_path)
    assert set(copied) >= expected
    assert {p.name for p in tmp_path.iterdir()} == set(copied)


def test_missing_entry_files_fail_the_build(tmp_path: Path) -> None:
    with pytest.raises(build.BuildError, match=r"no main\.py"):
        build.copy_entry_files(build.CLOUDS["gcp"], tmp_path, tmp_path)


def test_zips_are_reproducible_and_keep_the_tree(tmp_path: Path) -> None:
    src = tmp_path / "bundle"
    _touch(src / "slack_command.py")
    _touch(src / "pyarrow" / "lib.so", 100)
    (src / "pyarrow" / "lib.so").chmod(0o755)
    first = build.write_zip(src, tmp_path / "a.zip")
    (src / "slack_command.py").touch()  # a new mtime changes nothing
    second = build.write_zip(src, tmp_path / "b.zip")
    assert first == second
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        assert zf.namelist() == ["pyarrow/lib.so", "slack_command.py"]
        assert (zf.getinfo("pyarrow/lib.so").external_attr >> 16) & 0o777 == 0o755


def test_gcp_requirements_pin_the_resolution_without_burnguard_itself() -> None:
    report = {"install": [
        {"metadata": {"name": "burnguard", "version": "0.1.0"}},
        {"metadata": {"name": "pyarrow", "version": "21.0.0"}},
        {"metadata": {"name": "functions_framework", "version": "3.9.2"}},
    ]}
    assert build.pinned_requirements(report) == "functions_framework==3.9.2\npyarrow==21.0.0\n"
    with pytest.raises(build.BuildError):
        build.pinned_requirements({"install": [{"metadata": {"name": "burnguard", "version": "0.1.0"}}]})


def test_the_policy_is_validated_before_anything_is_built(tmp_path: Path) -> None:
    build.validate_policy(ROOT / "events" / "policies" / "production-example.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nguardrails:\n  - name: x\n    budget: lots\n")
    with pytest.raises(build.BuildError, match=r"broken\.yaml"):
        build.validate_policy(broken)


def test_the_smoke_test_imports_every_aws_handler_file(tmp_path: Path) -> None:
    for name in ("slack_command.py", "ingest.py", "budget.py", "policy.yaml"):
        _touch(tmp_path / name)
    assert build._entry_modules(build.CLOUDS["aws"], tmp_path) == ["budget", "ingest", "slack_command"]
    assert build._entry_modules(build.CLOUDS["azure"], tmp_path) == ["function_app"]


def _requirements(extras: str) -> set[str]:
    """Distribution names ``burnguard[extras]`` asks for, read from pyproject.toml."""
    import re
    import tomllib

    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return {re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0].lower() for extra in extras.split(",")
            for req in optional[extra]}


def test_only_the_google_cloud_bundle_carries_the_chart_library() -> None:
    # The guardrail (Google Cloud only) follows a threshold alert with the scope's spend chart,
    # drawn with matplotlib (app/chart_notifier.py → app/report.py): its bundle resolves it.
    assert "matplotlib" in _requirements(build.CLOUDS["gcp"].extras)
    assert {"functions-framework", "slack-sdk"} <= _requirements(build.CLOUDS["gcp"].extras)
    # AWS and Azure bundles (ingest, budget, slash command) never draw: no 30+ MB of plotting there.
    assert "matplotlib" not in _requirements(build.CLOUDS["aws"].extras)
    assert "matplotlib" not in _requirements(build.CLOUDS["azure"].extras)
