"""Measure the AWS Lambda bundle: burnguard[aws] and its dependencies, unzipped (limit 250 MB).

Installs the Linux x86_64 wheels into a temporary directory, removes what never runs in a
function (Arrow's headers, tests, Flight and Substrait libraries, duplicate .so symlink
copies, Cython sources), checks that burnguard still imports and normalizes a file from it,
and prints the sizes. Usage::

    python -m tests.bench.bundle_size [--python 3.11]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).parents[2]
#: Paths (glob, relative to the bundle) that a burnguard function never loads.
PRUNE = [
    "pyarrow/include", "pyarrow/tests", "pyarrow/src", "pyarrow/*.pyx", "pyarrow/*.pxd", "pyarrow/includes",
    "pyarrow/libarrow_flight*", "pyarrow/_flight*", "pyarrow/libarrow_substrait*", "pyarrow/_substrait*",
    "pyarrow/libarrow_python_flight*", "pyarrow/libarrow_python.so", "pyarrow/libarrow_python.so.*.*.*",
    "pyarrow/libarrow.so", "pyarrow/libarrow.so.*.*.*", "pyarrow/libparquet.so", "pyarrow/libparquet.so.*.*.*",
    "pyarrow/libarrow_acero.so", "pyarrow/libarrow_acero.so.*.*.*", "pyarrow/libarrow_dataset.so",
    "pyarrow/libarrow_dataset.so.*.*.*", "numpy/_core/tests", "numpy/*/tests", "numpy/tests", "**/__pycache__",
]


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=f"{sys.version_info.major}.{sys.version_info.minor}")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle"
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(bundle),
                        "--platform", "manylinux2014_x86_64", "--only-binary=:all:", "--implementation", "cp",
                        "--python-version", args.python, f"{ROOT}[aws]"], check=True)
        before = size_mb(bundle)
        top = sorted(((size_mb(p), p.name) for p in bundle.iterdir() if p.is_dir()), reverse=True)[:8]
        for pattern in PRUNE:
            for hit in bundle.glob(pattern):
                shutil.rmtree(hit) if hit.is_dir() else hit.unlink()
        after = size_mb(bundle)
        boto = size_mb(bundle / "botocore") + size_mb(bundle / "boto3")
        check = "skipped (other Python version)"
        if args.python == f"{sys.version_info.major}.{sys.version_info.minor}":
            sample = ROOT / "tests/fixtures/public/koku/aws/2023-06-01.csv"
            code = ("import burnguard.normalize as n, burnguard.services.guardrail, burnguard.adapters.local.ledger;"
                    f"print(n.Normalizer.from_path({str(sample)!r}).read_all().num_rows)")
            out = subprocess.run([sys.executable, "-I", "-c", code], check=False,
                                 env={**os.environ, "PYTHONPATH": str(bundle)},
                                 capture_output=True, text=True)
            check = f"ok ({out.stdout.strip()} rows)" if out.returncode == 0 else f"FAILED: {out.stderr[-400:]}"
        print(f"Lambda bundle of burnguard[aws] for Python {args.python}, linux x86_64, unzipped:")
        print(f"  as installed        {before:7.1f} MB   largest: " + ", ".join(f"{n} {s:.0f}" for s, n in top))
        print(f"  pruned              {after:7.1f} MB   (limit 250 MB)")
        print(f"  of which boto3+botocore {boto:5.1f} MB (also in the Lambda runtime)")
        print(f"  import and normalize from the pruned bundle: {check}")
        print(json.dumps({"python": args.python, "installed_mb": round(before, 1), "pruned_mb": round(after, 1),
                          "boto_mb": round(boto, 1), "check": check}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
