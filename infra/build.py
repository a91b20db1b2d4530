#!/usr/bin/env python3
"""Build the function bundles Terraform deploys: infra/build/<cloud>/burnguard-<cloud>.zip.

Usage (from the repository root, with network access to PyPI)::

    python infra/build.py all --policy events/policies/production-example.yaml
    python infra/build.py aws --policy my-policy.yaml [--python 3.12] [--out infra/build]

Per cloud (the entry files of ``functions/<cloud>/`` always go at the root of the bundle, and
the policy, validated first, as ``policy.yaml`` next to them: ``BURNGUARD_POLICY``):

* **aws** — Lambda runs what is in the zip. ``pip install --target`` of the Linux x86_64
  (manylinux) wheels of ``burnguard[aws,slack]`` for the Lambda Python version, then what never
  runs in a function is pruned (``PRUNE``), and the unzipped
  size is checked against Lambda's 250 MB limit (the build fails above it).
  With a local Python of the runtime's version (``python3.12`` on PATH or pyenv), the pruned
  bundle must import the entry module and normalize a sample export, or the build fails.
* **azure** — the same install for ``burnguard[azure,slack]``, into
  ``.python_packages/lib/site-packages`` (where the Functions Python worker looks for
  dependencies built outside Azure), pruned the same way; ``function_app.py`` and ``host.json``
  at the root. No remote build.
* **gcp** — Cloud Functions builds the source with Cloud Build, which installs
  ``requirements.txt`` itself. The bundle holds ``main.py``, the ``burnguard`` package (it is not
  on PyPI) and a ``requirements.txt`` pinning every third-party distribution of
  ``burnguard[gcp,slack,report]`` as pip resolves it for Linux x86_64 and that Python version
  (``report``: matplotlib, for the spend chart the guardrail uploads to Slack after a threshold
  alert; AWS and Azure run no guardrail and do without it). Nothing to prune: no dependency is
  shipped in the zip.

Zips are reproducible (sorted entries, fixed timestamps). ``manifest.json`` next to each zip
records the Python version, the sizes, the policy and the zip's SHA-256. Not run by the tests
(it downloads wheels); tests/infra/test_build.py checks its offline parts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: Paths (globs, relative to the installed dependencies) that a burnguard function never loads:
#: Arrow's headers, sources and tests, the Flight libraries, the Substrait Python module, the
#: unversioned and fully-versioned copies of the shared libraries (each extension links the
#: .so.<N> name), numpy's tests, bytecode caches. libarrow_substrait.so.<N> stays: libarrow_python links it, and
#: without it ``import pyarrow`` fails.
PRUNE = [
    "pyarrow/include", "pyarrow/tests", "pyarrow/src", "pyarrow/*.pyx", "pyarrow/*.pxd", "pyarrow/includes",
    "pyarrow/libarrow_flight*", "pyarrow/_flight*", "pyarrow/_substrait*",
    "pyarrow/libarrow_substrait.so", "pyarrow/libarrow_substrait.so.*.*.*",
    "pyarrow/libarrow_python_flight*", "pyarrow/libarrow_python.so", "pyarrow/libarrow_python.so.*.*.*",
    "pyarrow/libarrow.so", "pyarrow/libarrow.so.*.*.*", "pyarrow/libparquet.so", "pyarrow/libparquet.so.*.*.*",
    "pyarrow/libarrow_acero.so", "pyarrow/libarrow_acero.so.*.*.*", "pyarrow/libarrow_dataset.so",
    "pyarrow/libarrow_dataset.so.*.*.*", "numpy/_core/tests", "numpy/*/tests", "numpy/tests", "**/__pycache__",
]

#: Lambda's limit on the unzipped size of a function (code and layers): 250 MB.
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
PLATFORM = "manylinux2014_x86_64"
#: Fixed timestamp of every zip entry (the earliest a zip can hold), for reproducible zips.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Cloud:
    name: str
    extras: str
    python: str
    entry_files: tuple[str, ...]
    #: where dependencies go, relative to the bundle root (None: not shipped, requirements.txt)
    site_packages: str | None
    size_limit: int | None = None


CLOUDS = {
    "aws": Cloud("aws", "aws,slack", "3.12", ("*.py",), ".", LAMBDA_UNZIPPED_LIMIT),
    # report: matplotlib, which the guardrail's ChartNotifier draws the Slack spend chart with (imported
    # only when a chart is drawn; Cloud Build installs it, the zip does not carry it)
    "gcp": Cloud("gcp", "gcp,slack,report", "3.12", ("main.py",), None),
    "azure": Cloud("azure", "azure,slack", "3.11", ("function_app.py", "host.json"),
                   ".python_packages/lib/site-packages"),
}


class BuildError(Exception):
    """The bundle cannot be built as asked (its reason is the message)."""


# --- offline steps (tested) ------------------------------------------------------------------------

def prune(root: Path, patterns: Iterable[str] = PRUNE) -> list[str]:
    """Remove what matches ``patterns`` under ``root``; returns the removed paths, relative."""
    removed = []
    for pattern in patterns:
        for hit in sorted(root.glob(pattern)):
            if not hit.exists() and not hit.is_symlink():
                continue  # inside a directory removed by an earlier pattern
            removed.append(hit.relative_to(root).as_posix())
            if hit.is_dir() and not hit.is_symlink():
                shutil.rmtree(hit)
            else:
                hit.unlink()
    return removed


def tree_size(root: Path) -> int:
    """Bytes of the regular files under ``root`` (what a zip of it unpacks to)."""
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and not f.is_symlink())


def check_size(root: Path, limit: int | None) -> int:
    size = tree_size(root)
    if limit is not None and size > limit:
        raise BuildError(f"{root.name}: {size / 1e6:.1f} MB unzipped, over the limit of {limit / 1e6:.1f} MB "
                         "(extend PRUNE, or move dependencies to a layer)")
    return size


def copy_entry_files(cloud: Cloud, functions_dir: Path, dest: Path) -> list[str]:
    """Copy ``functions/<cloud>/`` entry files to the bundle root; refuses an empty match."""
    copied = []
    for pattern in cloud.entry_files:
        hits = sorted(p for p in functions_dir.glob(pattern) if p.is_file())
        if not hits:
            raise BuildError(f"{cloud.name}: no {pattern} in {functions_dir}")
        for src in hits:
            shutil.copy2(src, dest / src.name)
            copied.append(src.name)
    return copied


def validate_policy(path: Path) -> None:
    """The deploy fails on a policy the functions would refuse at their first request."""
    if str(ROOT / "shared") not in sys.path:
        sys.path.insert(0, str(ROOT / "shared"))
    from burnguard.core.policy import load_policy

    try:
        load_policy(path)
    except Exception as exc:  # PolicyError lists every problem; anything else is as bad
        raise BuildError(f"policy {path}: {exc}") from None


def write_zip(src: Path, dest: Path) -> str:
    """Zip ``src`` reproducibly into ``dest``; returns its SHA-256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in src.rglob("*") if p.is_file() and not p.is_symlink())
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(src).as_posix(), date_time=ZIP_EPOCH)
            executable = path.stat().st_mode & stat.S_IXUSR
            info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with path.open("rb") as fh:
                zf.writestr(info, fh.read())
    return hashlib.sha256(dest.read_bytes()).hexdigest()


def pinned_requirements(report: dict[str, Any], exclude: Sequence[str] = ("burnguard",)) -> str:
    """requirements.txt pinning what ``pip install --dry-run --report`` resolved."""
    pins = sorted(
        (item["metadata"]["name"], item["metadata"]["version"]) for item in report.get("install", [])
        if _normalize(item["metadata"]["name"]) not in {_normalize(e) for e in exclude}
    )
    if not pins:
        raise BuildError("pip resolved no dependency")
    return "".join(f"{name}=={version}\n" for name, version in pins)


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


# --- steps that call pip (network) -----------------------------------------------------------------

def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True)


def _platform_args(python: str) -> list[str]:
    return ["--platform", PLATFORM, "--only-binary=:all:", "--implementation", "cp", "--python-version", python]


def burnguard_wheel(tmp: Path) -> Path:
    """The burnguard wheel, built from this checkout (pure Python, any platform)."""
    out = tmp / "wheel"
    _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(ROOT))
    wheels = sorted(out.glob("burnguard-*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"expected one burnguard wheel, got {[w.name for w in wheels]}")
    return wheels[0]


def build(cloud: Cloud, policy: Path, out_dir: Path, python: str | None = None) -> dict[str, Any]:
    python = python or cloud.python
    validate_policy(policy)
    with tempfile.TemporaryDirectory(prefix=f"burnguard-{cloud.name}-") as tmp_name:
        tmp = Path(tmp_name)
        wheel = burnguard_wheel(tmp)
        bundle = tmp / "bundle"
        bundle.mkdir()
        removed: list[str] = []
        if cloud.site_packages is None:
            report_path = tmp / "report.json"
            _pip("install", "--quiet", "--dry-run", "--ignore-installed", "--report", str(report_path),
                 "--target", str(tmp / "resolve"), *_platform_args(python), f"{wheel}[{cloud.extras}]")
            (bundle / "requirements.txt").write_text(pinned_requirements(json.loads(report_path.read_text())))
            _pip("install", "--quiet", "--no-deps", "--target", str(bundle), str(wheel))
            removed = prune(bundle, ["*.dist-info", "bin", "**/__pycache__"])
        else:
            site = bundle / cloud.site_packages
            site.mkdir(parents=True, exist_ok=True)
            _pip("install", "--quiet", "--target", str(site), *_platform_args(python), f"{wheel}[{cloud.extras}]")
            removed = prune(site)
        entries = copy_entry_files(cloud, ROOT / "functions" / cloud.name, bundle)
        shutil.copy2(policy, bundle / "policy.yaml")
        size = check_size(bundle, cloud.size_limit)
        smoke = _smoke_test(cloud, bundle, python)
        dest = out_dir / cloud.name / f"burnguard-{cloud.name}.zip"
        digest = write_zip(bundle, dest)
    manifest = {
        "cloud": cloud.name, "zip": dest.name, "sha256": digest, "zipped_bytes": dest.stat().st_size,
        "unzipped_bytes": size, "limit_bytes": cloud.size_limit, "python": python, "platform": PLATFORM,
        "extras": cloud.extras, "entry_files": entries, "policy": str(policy), "pruned": len(removed),
        "import_check": smoke,
    }
    (dest.parent / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


#: A public sample export the smoke test normalizes from the bundle (pyarrow loads most of its
#: libraries lazily: importing is not enough to know the pruned bundle works).
SMOKE_SAMPLE = ROOT / "tests/fixtures/public/koku/aws/2023-06-01.csv"


def _interpreter(python: str) -> str | None:
    """A local interpreter of the runtime's version, to import the bundle with (None: none)."""
    if python == f"{sys.version_info.major}.{sys.version_info.minor}":
        return sys.executable
    pyenv = sorted(Path.home().glob(f".pyenv/versions/{python}.*/bin/python{python}"))
    for candidate in (shutil.which(f"python{python}"), *pyenv):
        if candidate and subprocess.run([str(candidate), "-c", ""], check=False, capture_output=True).returncode == 0:
            return str(candidate)
    return None


def _entry_modules(cloud: Cloud, bundle: Path) -> list[str]:
    """The entry modules at the bundle root that the smoke test imports: every handler file on AWS
    (slack_command, ingest, budget, ...), function_app on Azure."""
    if cloud.name == "azure":
        return ["function_app"]
    return sorted(p.stem for p in bundle.glob("*.py"))


def _smoke_test(cloud: Cloud, bundle: Path, python: str) -> str:
    """Import the entry module from the pruned bundle and normalize a sample export with it."""
    if cloud.site_packages is None:
        return "skipped (the platform installs the dependencies)"
    interpreter = _interpreter(python)
    if interpreter is None:
        return f"skipped (no local Python {python})"
    module = ", ".join(_entry_modules(cloud, bundle))
    code = (f"import {module}, burnguard.normalize as n; "
            f"print(n.Normalizer.from_path({str(SMOKE_SAMPLE)!r}).read_all().num_rows)")
    path = [str(bundle / cloud.site_packages), str(bundle)]
    out = subprocess.run([interpreter, "-S", "-c", code], check=False, capture_output=True, text=True, cwd=bundle,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(path)})
    if out.returncode != 0:
        raise BuildError(f"{cloud.name}: the pruned bundle does not run (import {module}, normalize):\n"
                         f"{out.stderr[-1500:]}")
    return f"ok (Python {python}: import {module}, {out.stdout.strip()} rows normalized)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cloud", choices=[*CLOUDS, "all"])
    parser.add_argument("--policy", type=Path, default=ROOT / "events/policies/production-example.yaml",
                        help="policy YAML bundled as policy.yaml (default: %(default)s)")
    parser.add_argument("--python", help="Python version of the runtime (default: aws 3.12, gcp 3.12, azure 3.11); "
                                         "must match the module's runtime.python")
    parser.add_argument("--out", type=Path, default=ROOT / "infra/build", help="default: %(default)s")
    args = parser.parse_args(argv)
    clouds = list(CLOUDS.values()) if args.cloud == "all" else [CLOUDS[args.cloud]]
    try:
        for cloud in clouds:
            m = build(cloud, args.policy.resolve(), args.out.resolve(), args.python)
            print(f"{cloud.name}: {args.out / cloud.name / m['zip']}  {m['zipped_bytes'] / 1e6:.1f} MB zipped, "
                  f"{m['unzipped_bytes'] / 1e6:.1f} MB unzipped, Python {m['python']}, "
                  f"import check: {m['import_check']}")
    except (BuildError, subprocess.CalledProcessError) as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
