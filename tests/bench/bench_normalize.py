"""Benchmark: normalize a realistic CUR CSV.gz, against pandas in the same run.

Each measurement runs in its own process so that its peak RSS is its own. Prints a table and
one JSON line per measurement. Usage::

    python -m tests.bench.bench_normalize                 # 1M rows, plus the 4M-row RSS check
    python -m tests.bench.bench_normalize --rows 200000 --no-large

Measurements (same file, same process kind):

* ``burnguard``: ``Normalizer(...).batches()`` to the end (every line item built);
* ``arrow-parse``: Arrow's streaming CSV reader alone on the same columns (the parse floor);
* ``pandas-chunked``: ``pd.read_csv(path, chunksize=100_000)`` to the end;
* ``pandas-whole``: ``pd.read_csv(path)``;
* ``gunzip``: ISA-L decompression alone (the decompression floor).

Generated files are cached in ``.bench-data/`` (ignored by git).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[2]
DATA = ROOT / ".bench-data"


def ensure_file(rows: int) -> Path:
    """The cached generated CUR of ``rows`` rows (generated in a child process)."""
    path = DATA / f"cur-{rows}.csv.gz"
    if not path.exists():
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tests.bench.gen_cur", "--rows", str(rows), "--out", str(path)],
                       cwd=ROOT, check=True)
        print(f"generated {path} ({rows:,} rows) in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    return path


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM: reset at exec, unlike ru_maxrss)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(kind: str, path: Path) -> dict[str, object]:
    """Run one measurement in this process and return its figures. Each kind imports only
    what it uses (peak RSS counts imports), before the clock starts."""
    if kind.startswith("pandas"):
        import pandas as pd
    else:
        import pyarrow as pa
        from isal import igzip

        from burnguard.app.runtime import tune_arrow
        from burnguard.normalize import Normalizer
        from burnguard.normalize.source import csv_batches

        tune_arrow()
    cpu0 = time.process_time()
    start = time.perf_counter()
    rows = 0
    if kind == "burnguard":
        for table in Normalizer.from_path(path).batches():
            rows += table.num_rows
    elif kind == "arrow-parse":
        normalizer = Normalizer.from_path(path)
        with igzip.open(path, "rb") as raw:
            for batch in csv_batches(pa.PythonFile(raw, mode="r"), normalizer.header.names, normalizer.plan.columns):
                rows += batch.num_rows
    elif kind == "pandas-chunked":
        for chunk in pd.read_csv(path, chunksize=100_000, low_memory=False):
            rows += len(chunk)
    elif kind == "pandas-whole":
        rows = len(pd.read_csv(path, low_memory=False))
    elif kind == "gunzip":
        with igzip.open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                rows += block.count(b"\n")
        rows -= 1
    else:
        raise ValueError(kind)
    seconds = time.perf_counter() - start
    return {"kind": kind, "rows": rows, "seconds": round(seconds, 3), "rows_per_s": int(rows / seconds),
            "peak_rss_mb": round(_peak_rss_mb(), 1), "cpu_s": round(time.process_time() - cpu0, 2)}


def run_child(kind: str, path: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench_normalize", "--child", kind, str(path)],
        cwd=ROOT, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT / "shared")},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--large-rows", type=int, default=4_000_000)
    parser.add_argument("--no-large", action="store_true", help="skip the large-file RSS check")
    parser.add_argument("--no-pandas-whole", action="store_true", help="skip pandas' whole-file read (memory hungry)")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child[0], Path(args.child[1]))))
        return 0

    path = ensure_file(args.rows)
    size = path.stat().st_size
    kinds = ["gunzip", "arrow-parse", "burnguard", "pandas-chunked"] + ([] if args.no_pandas_whole else ["pandas-whole"])
    results = {k: run_child(k, path) for k in kinds}
    print(f"\nNormalize a {args.rows:,}-row CUR CSV.gz ({size / 1e6:.0f} MB compressed), {os.cpu_count()} cores")
    print(f"{'measurement':<16}{'seconds':>9}{'rows/s':>12}{'peak RSS MB':>13}{'CPU s':>8}")
    for k, r in results.items():
        print(f"{k:<16}{r['seconds']:>9}{r['rows_per_s']:>12,}{r['peak_rss_mb']:>13}{r['cpu_s']:>8}")
    ours = results["burnguard"]
    ratios = {f"vs_{k}": round(float(r["seconds"]) / float(ours["seconds"]), 2)  # type: ignore[arg-type]
              for k, r in results.items() if k.startswith("pandas")}
    print("throughput ratio (pandas time / burnguard time): " + ", ".join(f"{k}={v}x" for k, v in ratios.items()))
    summary: dict[str, object] = {"rows": args.rows, "results": results, "ratios": ratios,
                                  "target_ratio_vs_pandas_chunked": 3.0, "target_peak_rss_mb": 256}
    if not args.no_large:
        large = run_child("burnguard", ensure_file(args.large_rows))
        growth = round(float(large["peak_rss_mb"]) / float(ours["peak_rss_mb"]) - 1, 3)  # type: ignore[arg-type]
        print(f"burnguard at {args.large_rows:,} rows: {large['seconds']} s, peak RSS {large['peak_rss_mb']} MB "
              f"({growth:+.1%} vs {args.rows:,} rows; target within 10%)")
        summary["large"] = large
        summary["rss_growth"] = growth
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
