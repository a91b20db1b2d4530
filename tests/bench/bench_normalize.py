"""Benchmark: normalize a realistic CUR, beside the baselines, in one run (issue 15).

Each measurement runs in its own process so that its peak RSS is its own, and each is repeated
(``--repeat``, interleaved) so that a noisy, shared machine shows as a range. Prints a table and
one JSON line. Usage::

    python -m tests.bench.bench_normalize                       # 1M rows, 2 cores and 1 core, 4M RSS
    python -m tests.bench.bench_normalize --before 5c00066      # plus burnguard at that commit
    python -m tests.bench.bench_normalize --before 5c00066 --cli  # plus `burnguard normalize --summary`
    python -m tests.bench.bench_normalize --rows 200000 --no-large --no-one-core --repeat 1

Measurements, on the same file:

* ``burnguard``: ``Normalizer(...).batches()`` to the end (every canonical line item built:
  exact Decimal costs, every tag, errors checked);
* ``burnguard-stream`` (``--stream``): the same from an open file object, not a path (as the
  CLI, S3 and GCS read: seekable streams, read through ``SharedStream`` views), and
  ``burnguard-before-stream`` with ``--before``;
* ``burnguard-cli`` (``--cli``): the issue's own measure, the whole ``burnguard normalize
  --summary FILE`` process (start-up, normalizing, the per-tag summary, its JSON), and
  ``burnguard-before-cli`` with ``--before``; CPU and peak RSS are the process's own;
* ``burnguard-before``: the same at another commit (``--before REF``: its ``shared/`` is
  extracted with ``git archive`` into a temporary directory);
* ``polars-proto``: a 15-field normalize prototype on polars' streaming engine (float costs,
  5 fixed tags, timestamps parsed), the issue's yardstick;
* ``polars-same``: polars' streaming engine doing burnguard's job on the same columns: the 31
  fields the CUR plan reads (strings as read, costs as exact ``Decimal(36, 18)``, timestamps
  parsed, the amortized cost by line item type) and every tag column (kept as a struct: the
  cheapest form that keeps every tag; building burnguard's key/value list in polars took
  5.3-5.6 s on 1M rows). It still cannot tell a row with a wrong field count (see
  ``normalize/source.py``);
* ``arrow-parse``: Arrow's streaming CSV reader alone on the columns burnguard reads (as
  strings, as burnguard reads them);
* ``polars-read``: polars' streaming reader alone on the same columns (strings), to compare
  the two parsers on what burnguard needs (38 of 131 columns), not on the prototype's 20;
* ``pandas-chunked``: cost per team from 2 columns, ``pd.read_csv(..., usecols, chunksize)``;
* ``gunzip``: ISA-L decompression alone (the decompression floor).

Parquet (a CUR 2.0 / Data Exports file generated from the same rows: snake_case columns,
float costs, timestamps, ``resource_tags`` as a map): ``burnguard``, ``polars-proto``,
``polars-read`` and ``arrow-read`` (``ParquetFile.iter_batches`` of the needed columns).

"2 cores" is the machine; "1 core" runs the child under ``taskset -c 0`` (as a Lambda below
1,769 MB gets one vCPU). Generated files are cached in ``.bench-data/`` (ignored by git).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[2]
DATA = ROOT / ".bench-data"

#: The prototype's 15 fields (legacy CUR names) and its 5 fixed tags.
PROTO_FIELDS = [
    "lineItem/LineItemType", "lineItem/UsageStartDate", "lineItem/UsageEndDate", "bill/PayerAccountId",
    "lineItem/UsageAccountId", "lineItem/ProductCode", "lineItem/UsageType", "lineItem/ResourceId",
    "product/regionCode", "product/instanceType", "lineItem/CurrencyCode", "lineItem/UnblendedCost",
    "pricing/publicOnDemandCost", "savingsPlan/SavingsPlanEffectiveCost", "lineItem/UsageAmount",
]
PROTO_FLOATS = {"lineItem/UnblendedCost", "pricing/publicOnDemandCost", "savingsPlan/SavingsPlanEffectiveCost",
                "lineItem/UsageAmount"}
PROTO_TIMES = {"lineItem/UsageStartDate", "lineItem/UsageEndDate"}
PROTO_TAGS = ["user:team", "user:project", "user:env", "user:owner", "user:Name"]
#: Parquet (CUR 2.0) types of the generated file: everything else stays a string.
PARQUET_FLOATS = {
    "lineItem/UsageAmount", "lineItem/NormalizationFactor", "lineItem/NormalizedUsageAmount",
    "lineItem/UnblendedRate", "lineItem/UnblendedCost", "lineItem/BlendedRate", "lineItem/BlendedCost",
    "pricing/publicOnDemandCost", "pricing/publicOnDemandRate", "reservation/EffectiveCost",
    "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod", "reservation/UnusedRecurringFee",
    "reservation/AmortizedUpfrontFeeForBillingPeriod", "savingsPlan/SavingsPlanEffectiveCost",
    "savingsPlan/TotalCommitmentToDate", "savingsPlan/UsedCommitment", "savingsPlan/SavingsPlanRate",
    "savingsPlan/RecurringCommitmentForBillingPeriod",
}
PARQUET_TIMES = {"lineItem/UsageStartDate", "lineItem/UsageEndDate", "bill/BillingPeriodStartDate",
                 "bill/BillingPeriodEndDate"}

CSV_KINDS = ["gunzip", "arrow-parse", "polars-read", "pandas-chunked", "polars-proto", "polars-same", "burnguard"]
PARQUET_KINDS = ["arrow-read", "polars-read", "polars-proto", "polars-same", "burnguard"]


def ensure_file(rows: int) -> Path:
    """The cached generated CUR CSV.gz of ``rows`` rows (generated in a child process)."""
    path = DATA / f"cur-{rows}.csv.gz"
    if not path.exists():
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tests.bench.gen_cur", "--rows", str(rows), "--out", str(path)],
                       cwd=ROOT, check=True)
        print(f"generated {path} ({rows:,} rows) in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    return path


def ensure_parquet(rows: int) -> Path:
    """The same rows as a CUR 2.0 / Data Exports Parquet file (cached)."""
    path = DATA / f"cur2-{rows}.parquet"
    if path.exists():
        return path
    import gzip

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from burnguard.normalize.aws import athena_name

    source = ensure_file(rows)
    t = time.perf_counter()
    with gzip.open(source, "rt") as fh:
        names = fh.readline().rstrip("\n").split(",")
    with pa.input_stream(str(source), compression="gzip") as raw:
        reader = pacsv.open_csv(raw, read_options=pacsv.ReadOptions(block_size=16 << 20),
                                convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                                     strings_can_be_null=True, null_values=[""]))
        tags = [n for n in names if n.startswith("resourceTags/")]
        map_type = pa.map_(pa.string(), pa.string())
        tmp = path.with_name(path.name + ".part")
        writer: Any = None
        for batch in reader:
            arrays, fields = [], []
            for name in names:
                if name in tags:
                    continue
                col = batch.column(name)
                if name in PARQUET_FLOATS:
                    col = pc.cast(col, pa.float64())
                elif name in PARQUET_TIMES:
                    col = pc.cast(pc.cast(col, pa.timestamp("ms", tz="UTC")), pa.timestamp("ms"))
                arrays.append(col)
                fields.append(pa.field(athena_name(name), col.type))
            entries = [[(athena_name(t[len("resourceTags/"):]), v)
                        for t, v in zip(tags, row, strict=True) if v]
                       for row in zip(*(batch.column(t).to_pylist() for t in tags), strict=True)]
            arrays.append(pa.array(entries, map_type))
            fields.append(pa.field("resource_tags", map_type))
            table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression="snappy")
            writer.write_table(table, row_group_size=128 * 1024)
        writer.close()
    tmp.replace(path)
    print(f"generated {path} ({rows:,} rows) in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    return path


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM: reset at exec, unlike ru_maxrss)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _proto_csv(path: Path) -> int:
    import gzip

    import polars as pl

    with gzip.open(path, "rt") as fh:
        header = fh.readline().rstrip("\n").split(",")
    tags = [f"resourceTags/{t}" for t in PROTO_TAGS]
    exprs: list[Any] = []
    for name in PROTO_FIELDS:
        col = pl.col(name)
        if name in PROTO_FLOATS:
            col = col.cast(pl.Float64)
        elif name in PROTO_TIMES:
            col = col.str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_zone="UTC")
        exprs.append(col)
    exprs.append(pl.struct([pl.col(t).alias(t.split(":", 1)[1]) for t in tags]).alias("tags"))
    lf = pl.scan_csv(path, schema=dict.fromkeys(header, pl.String)).select(exprs)
    return sum(df.height for df in lf.collect_batches(chunk_size=10_000))


def _same_job(path: Path, parquet: bool) -> int:
    """Polars doing what the CUR plan does (``polars-same``)."""
    import polars as pl

    from burnguard.normalize import Normalizer

    plan: Any = Normalizer.from_path(path).plan
    c = plan.col
    money = {c[k] for k in ("unblended", "public_cost", "usage_amount", "sp_effective", "sp_total", "sp_used",
                            "ri_effective", "ri_unused_upfront", "ri_unused_recurring") if c[k]}
    times = {c[k] for k in ("start", "end", "period_start", "period_end") if c[k]}
    tags = {n for _, n in plan.tag_columns} | ({plan.tag_map} if plan.tag_map else set())
    dec = pl.Decimal(36, 18)
    exprs: list[Any] = []
    for name in plan.columns:
        if name in tags:
            continue
        col = pl.col(name)
        if name in money:
            col = col.cast(dec) if parquet else col.str.to_decimal(scale=18)
        elif name in times and not parquet:
            col = col.str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_zone="UTC")
        exprs.append(col)
    exprs.append(pl.struct([pl.col(t) for t in sorted(tags)]).alias("Tags"))
    kind = pl.col(c["type"])

    def cost(key: str) -> Any:
        return pl.col(c[key]).fill_null(0)

    effective = (pl.when(kind == "SavingsPlanCoveredUsage").then(pl.col(c["sp_effective"]))
                 .when(kind == "SavingsPlanRecurringFee").then(cost("sp_total") - cost("sp_used"))
                 .when(kind.is_in(["SavingsPlanNegation", "SavingsPlanUpfrontFee"])).then(pl.lit(0, dec))
                 .when(kind == "DiscountedUsage").then(pl.col(c["ri_effective"]))
                 .when(kind == "RIFee").then(cost("ri_unused_upfront") + cost("ri_unused_recurring"))
                 .otherwise(pl.col(c["unblended"])).alias("EffectiveCost"))
    if parquet:
        lf = pl.scan_parquet(path)
    else:
        import gzip

        with gzip.open(path, "rt") as fh:
            header = fh.readline().rstrip("\n").split(",")
        lf = pl.scan_csv(path, schema=dict.fromkeys(header, pl.String), null_values=["", "NULL", "null"])
    lf = lf.select(plan.columns).select(exprs).with_columns(effective)
    return sum(df.height for df in lf.collect_batches(chunk_size=10_000))


def _polars_read(path: Path, columns: list[str], parquet: bool) -> int:
    """Polars' streaming reader alone on the columns burnguard reads, as strings."""
    import gzip

    import polars as pl

    if parquet:
        lf = pl.scan_parquet(path).select(columns)
    else:
        with gzip.open(path, "rt") as fh:
            header = fh.readline().rstrip("\n").split(",")
        lf = pl.scan_csv(path, schema=dict.fromkeys(header, pl.String),
                         null_values=["", "NULL", "null"]).select(columns)
    return sum(df.height for df in lf.collect_batches(chunk_size=10_000))


def _proto_parquet(path: Path) -> int:
    import polars as pl

    from burnguard.normalize.aws import athena_name

    exprs: list[Any] = [pl.col(athena_name(n)) for n in PROTO_FIELDS]
    exprs.append(pl.col("resource_tags"))
    lf = pl.scan_parquet(path).select(exprs)
    return sum(df.height for df in lf.collect_batches(chunk_size=10_000))


def measure(kind: str, path: Path) -> dict[str, object]:  # noqa: C901, PLR0912 - one branch per measured engine
    """Run one measurement in this process and return its figures. Each kind imports only
    what it uses (peak RSS counts imports), before the clock starts."""
    parquet = path.suffix == ".parquet"
    if kind.startswith("pandas"):
        import pandas as pd
    elif kind in ("polars-proto", "polars-read", "polars-same"):
        import polars  # noqa: F401

        from burnguard.normalize import Normalizer
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq
        from isal import igzip

        from burnguard.app.runtime import tune_arrow
        from burnguard.normalize import Normalizer
        from burnguard.normalize.source import csv_batches

        tune_arrow()
    if kind.endswith("-cli"):
        return _measure_cli(kind, path)
    cpu0 = time.process_time()
    start = time.perf_counter()
    rows = 0
    if kind.startswith("burnguard") and kind.endswith("-stream"):
        with open(path, "rb") as fh:
            for table in Normalizer(fh, path.name).batches():
                rows += table.num_rows
    elif kind.startswith("burnguard"):
        for table in Normalizer.from_path(path).batches():
            rows += table.num_rows
    elif kind == "arrow-parse":
        normalizer = Normalizer.from_path(path)
        with igzip.open(path, "rb") as raw:
            for batch in csv_batches(pa.PythonFile(raw, mode="r"), normalizer.header.names, normalizer.plan.columns,
                                     text=True):
                rows += batch.num_rows
    elif kind == "arrow-read":
        normalizer = Normalizer.from_path(path)
        for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000, columns=normalizer.plan.columns):
            rows += batch.num_rows
    elif kind == "polars-proto":
        rows = _proto_parquet(path) if parquet else _proto_csv(path)
    elif kind == "polars-same":
        rows = _same_job(path, parquet)
    elif kind == "polars-read":
        rows = _polars_read(path, Normalizer.from_path(path).plan.columns, parquet)
    elif kind == "pandas-chunked":
        totals: dict[str, float] = {}
        for chunk in pd.read_csv(path, usecols=["lineItem/UnblendedCost", "resourceTags/user:team"],
                                 chunksize=100_000):
            rows += len(chunk)
            for team, cost in chunk.groupby("resourceTags/user:team")["lineItem/UnblendedCost"].sum().items():
                totals[team] = totals.get(team, 0.0) + cost
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


def _measure_cli(kind: str, path: Path) -> dict[str, object]:
    """``burnguard normalize --summary`` as a user runs it: one whole process, timed from its
    start (the ``burnguard`` on this PYTHONPATH: the tree measured)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", "import sys; from burnguard.app.cli import main; sys.exit(main())",
                          "normalize", "--summary", str(path)], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rows = int(json.loads(out.stdout)["rows"])
    return {"kind": kind, "rows": rows, "seconds": round(seconds, 3), "rows_per_s": int(rows / seconds),
            "peak_rss_mb": round(after.ru_maxrss / 1024, 1),
            "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2)}


def run_child(kind: str, path: Path, *, one_core: bool = False, shared: Path | None = None) -> dict[str, object]:
    command = [sys.executable, "-m", "tests.bench.bench_normalize", "--child", kind, str(path)]
    if one_core:
        command = ["taskset", "-c", "0", *command]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": f"{shared or ROOT / 'shared'}{os.pathsep}{ROOT}"})
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _extract(ref: str) -> Path:
    """``shared/`` of ``ref`` in a temporary directory (removed at exit by the caller)."""
    target = Path(tempfile.mkdtemp(prefix="bench-before-"))
    archive = subprocess.run(["git", "archive", ref, "shared"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def _range(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.2f}" if hi - lo < 0.005 else f"{lo:.2f}-{hi:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--large-rows", type=int, default=4_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (interleaved)")
    parser.add_argument("--before", metavar="REF", help="also measure burnguard at this git commit")
    parser.add_argument("--no-large", action="store_true", help="skip the large-file RSS check")
    parser.add_argument("--no-one-core", action="store_true", help="skip the one-core runs")
    parser.add_argument("--no-parquet", action="store_true", help="skip Parquet")
    parser.add_argument("--stream", action="store_true", help="also read the CSV from an open file object")
    parser.add_argument("--cli", action="store_true", help="also time `burnguard normalize --summary` on the CSV")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child[0], Path(args.child[1]))))
        return 0

    before = _extract(args.before) / "shared" if args.before else None
    try:
        return _run(args, before)
    finally:
        if before is not None:
            shutil.rmtree(before.parent, ignore_errors=True)


def _run(args: argparse.Namespace, before: Path | None) -> int:  # noqa: C901, PLR0912, PLR0915 - one branch per table row printed
    files = {"csv.gz": ensure_file(args.rows)}
    if not args.no_parquet:
        files["parquet"] = ensure_parquet(args.rows)
    cores = [("2 cores", False)] + ([] if args.no_one_core else [("1 core", True)])
    plan: list[tuple[str, str, str, bool]] = []  # (format, cores label, kind, one_core)
    for fmt in files:
        kinds = list(CSV_KINDS if fmt == "csv.gz" else PARQUET_KINDS)
        if before is not None:
            kinds.insert(kinds.index("burnguard"), "burnguard-before")
        if args.stream and fmt == "csv.gz":
            kinds += ["burnguard-before-stream", "burnguard-stream"] if before is not None else ["burnguard-stream"]
        if args.cli and fmt == "csv.gz":
            kinds += ["burnguard-before-cli", "burnguard-cli"] if before is not None else ["burnguard-cli"]
        for label, one in cores:
            plan += [(fmt, label, k, one) for k in kinds]
    results: dict[tuple[str, str, str], list[dict[str, object]]] = {}
    for _ in range(args.repeat):
        for fmt, label, kind, one in plan:
            shared = before if kind.startswith("burnguard-before") else None
            results.setdefault((fmt, label, kind), []).append(run_child(kind, files[fmt], one_core=one, shared=shared))

    print(f"\nNormalize a {args.rows:,}-row CUR ({os.cpu_count()} cores; {args.repeat} runs each, min-max)")
    print(f"{'file':<9}{'cores':<9}{'measurement':<22}{'seconds':>12}{'rows/s (best)':>15}{'peak RSS MB':>14}"
          f"{'CPU s':>12}")
    summary: dict[str, Any] = {"rows": args.rows, "repeat": args.repeat, "results": {}}
    for (fmt, label, kind), runs in results.items():
        secs = [float(r["seconds"]) for r in runs]  # type: ignore[arg-type]
        rss = [float(r["peak_rss_mb"]) for r in runs]  # type: ignore[arg-type]
        cpu = [float(r["cpu_s"]) for r in runs]  # type: ignore[arg-type]
        best = max(int(r["rows_per_s"]) for r in runs)  # type: ignore[call-overload]
        print(f"{fmt:<9}{label:<9}{kind:<22}{_range(secs):>12}{best:>15,}{_range(rss):>14}{_range(cpu):>12}")
        summary["results"][f"{fmt}|{label}|{kind}"] = runs
    ratios: dict[str, float] = {}
    for fmt in files:
        for label, _ in cores:
            ours = min(float(r["seconds"]) for r in results[(fmt, label, "burnguard")])  # type: ignore[arg-type]
            for kind in ("polars-proto", "polars-same", "burnguard-before", "pandas-chunked"):
                if (fmt, label, kind) in results:
                    other = min(float(r["seconds"]) for r in results[(fmt, label, kind)])  # type: ignore[arg-type]
                    ratios[f"{fmt}|{label}|{kind}/burnguard"] = round(other / ours, 2)
            for variant in ("stream", "cli"):
                if (fmt, label, f"burnguard-before-{variant}") in results:
                    mine = min(float(r["seconds"]) for r in results[(fmt, label, f"burnguard-{variant}")])  # type: ignore[arg-type]
                    old = min(float(r["seconds"]) for r in results[(fmt, label, f"burnguard-before-{variant}")])  # type: ignore[arg-type]
                    ratios[f"{fmt}|{label}|burnguard-before-{variant}/burnguard-{variant}"] = round(old / mine, 2)
        if len(cores) == 2:
            two = min(float(r["seconds"]) for r in results[(fmt, "2 cores", "burnguard")])  # type: ignore[arg-type]
            one = min(float(r["seconds"]) for r in results[(fmt, "1 core", "burnguard")])  # type: ignore[arg-type]
            ratios[f"{fmt}|burnguard 1 core/2 cores"] = round(one / two, 2)
    print("ratios (best times; >1 means burnguard is faster): "
          + ", ".join(f"{k}={v}x" for k, v in ratios.items()))
    summary["ratios"] = ratios
    if not args.no_large:
        large_path = ensure_file(args.large_rows)
        small = min(float(r["peak_rss_mb"]) for r in results[("csv.gz", "2 cores", "burnguard")])  # type: ignore[arg-type]
        for kind in ["burnguard", "polars-proto"] + (["burnguard-before"] if before is not None else []):
            shared = before if kind == "burnguard-before" else None
            large = run_child(kind, large_path, shared=shared)
            base = min(float(r["peak_rss_mb"]) for r in results[("csv.gz", "2 cores", kind)])  # type: ignore[arg-type]
            growth = float(large["peak_rss_mb"]) / base - 1  # type: ignore[arg-type]
            print(f"{kind} at {args.large_rows:,} rows (csv.gz, 2 cores): {large['seconds']} s, "
                  f"peak RSS {large['peak_rss_mb']} MB ({growth:+.1%} vs {args.rows:,} rows)")
            summary[f"large|{kind}"] = large
        summary["burnguard_rss_1m_mb"] = small
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
