"""``burnguard``: the embedded (local) mode and the operator tools.

Subcommands are thin: parse arguments, call a service, print. See ``burnguard --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from . import __version__
from .errors import BurnguardError, InputError

DATA_SUFFIXES = (".csv", ".csv.gz", ".gz", ".json", ".jsonl", ".json.gz", ".jsonl.gz", ".ndjson", ".parquet", ".zip")


def _is_manifest(path: Path) -> bool:
    return path.name.lower().endswith("manifest.json")


def expand_paths(path: Path) -> list[Path]:
    """A file stands for itself; a directory for the export files below it (sorted)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError("no such file or directory", file=str(path))
    found = [
        p for p in sorted(path.rglob("*"))
        if p.is_file() and p.name.lower().endswith(DATA_SUFFIXES) and not _is_manifest(p)
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    ]
    if not found:
        raise InputError("holds no export files (.csv, .csv.gz, .json, .jsonl, .parquet, .zip)", file=str(path))
    return found


def _normalizers(paths: Sequence[Path], args: argparse.Namespace) -> Iterator[Any]:
    from .normalize import Normalizer

    for p in paths:
        yield Normalizer.from_path(p, name=str(p), strict=args.strict, default_currency=args.currency,
                                   cost_basis=args.cost_basis)


def cmd_normalize(args: argparse.Namespace) -> int:
    from .summary import Summary
    from .writers import LineItemWriter

    paths = expand_paths(Path(args.path))
    if args.to == "parquet" and not args.out and not args.summary:
        raise InputError("Parquet output needs --out FILE", field="--out")
    writer: LineItemWriter | None = None
    sink: IO[bytes] | None = None
    if args.out:
        sink = open(args.out, "wb")  # noqa: SIM115 - closed below
    elif not args.summary:
        sink = sys.stdout.buffer
    if sink is not None:
        writer = LineItemWriter(args.to, sink)
    files: list[dict[str, Any]] = []
    overall = Summary()
    try:
        for normalizer in _normalizers(paths, args):
            summary = Summary()
            for table in normalizer.batches():
                summary.add(table)
                overall.add(table)
                if writer is not None:
                    writer.write(table)
            stats = normalizer.stats
            for err in stats.errors:
                print(f"burnguard: {err}", file=sys.stderr)
            if stats.error_count > len(stats.errors):
                print(f"burnguard: {stats.file}: {stats.error_count - len(stats.errors)} more bad rows not shown",
                      file=sys.stderr)
            files.append(_file_report(normalizer, summary))
    finally:
        if writer is not None:
            writer.close()
        if sink is not None and sink is not sys.stdout.buffer:
            sink.close()
    if args.summary:
        report: dict[str, Any] = files[0] if len(files) == 1 else {
            "files": files, **overall.as_dict(tag_limit=args.tag_limit),
            "rows_skipped": sum(f["rows_skipped"] for f in files),
        }
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 0


def _file_report(normalizer: Any, summary: Any) -> dict[str, Any]:
    stats = normalizer.stats
    return {
        "file": stats.file,
        "format": stats.format,
        "variant": stats.variant,
        "container": stats.container,
        "compression": stats.compression,
        "rows_read": stats.rows_read,
        "rows_normalized": stats.rows_normalized,
        "rows_skipped": stats.rows_skipped,
        "errors": [e.as_dict() for e in stats.errors],
        "error_count": stats.error_count,
        "warnings": stats.warnings,
        **summary.as_dict(),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="burnguard", description="Guard cloud GPU spend per tag.")
    parser.add_argument("--version", action="version", version=f"burnguard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("normalize", help="normalize billing exports to FOCUS-named line items",
                       description="Read any AWS, Google Cloud, Azure or FOCUS billing export (format detected "
                                   "from its header) and write FOCUS-named line items, or a JSON summary.")
    p.add_argument("path", help="an export file, or a directory of export files")
    p.add_argument("--to", choices=["jsonl", "csv", "parquet"], default="jsonl", help="output format (default jsonl)")
    p.add_argument("--out", help="output file (default: standard output)")
    p.add_argument("--summary", action="store_true",
                   help="print a JSON summary: format, rows, totals per currency and per tag")
    p.add_argument("--strict", action="store_true", help="stop at the first bad row instead of skipping it")
    p.add_argument("--currency", help="currency for files without a currency column (e.g. USD)")
    p.add_argument("--cost-basis", choices=["actual", "amortized"], help="Azure exports: the export's cost basis")
    p.add_argument("--tag-limit", type=int, default=50, help="tag values listed per key in a multi-file summary")
    p.set_defaults(func=cmd_normalize)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .runtime import tune_arrow

    tune_arrow()
    try:
        return int(args.func(args))
    except BurnguardError as exc:
        print(f"burnguard: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `burnguard normalize ... | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
