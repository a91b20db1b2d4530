"""``burnguard``: the embedded (local) mode and the operator tools.

Subcommands are thin: parse arguments, call a service, print. See ``burnguard --help``.

Exit codes (documented in the README and ``burnguard --help``):

* 0 – done;
* 1 – done, with findings: a delivery rejected or unreadable, a stop that failed, a message dead-lettered;
* 2 – bad usage or input: an unknown option, a name that does not exist (a guardrail, a tag, a
  file), a file that cannot be read or written, damaged local state. One line on stderr says
  what is wrong and how to fix it;
* 3 – a bug in burnguard (one line; ``BURNGUARD_DEBUG=1`` shows the traceback);
* 130 – interrupted (Ctrl-C).

No command prints a traceback. Read commands (spend, top, guardrails, deliveries, stopped,
audit) take ``--json``: stable keys, documented as JSON Schemas in :mod:`burnguard.app.schemas`
(``burnguard schema COMMAND`` prints one).

argparse, not typer: the parser is small, already tested, and keeps full control of the exit
codes and one-line errors (Click's own usage errors print a boxed, multi-line message and its
exit codes differ); rich, which typer would bring for help and tables, is used directly for the
tables and progress bars (:mod:`burnguard.app.tables`).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, NoReturn, cast

from burnguard import __version__
from burnguard.app.cli_common import (
    DEBUG_ENV,
    EXIT_BUG,
    EXIT_FINDINGS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    _json_default,
)
from burnguard.app.cli_common import dump_json as _dump
from burnguard.app.cli_common import home_of as _home
from burnguard.app.cli_common import local_mode as _local
from burnguard.app.tables import Progress, note, render
from burnguard.core.clouds import CLOUDS
from burnguard.core.errors import BurnguardError, InputError

DATA_SUFFIXES = (".csv", ".csv.gz", ".gz", ".json", ".jsonl", ".json.gz", ".jsonl.gz", ".ndjson", ".parquet", ".zip")
EXIT_CODES = ("exit codes: 0 done; 1 done with findings (a rejected or unreadable delivery, a failed stop, "
              "a dead letter); 2 bad usage or input (one line on stderr says what and how to fix it); "
              "3 a bug in burnguard")


def _is_manifest(path: Path) -> bool:
    return path.name.lower().endswith("manifest.json")


def expand_paths(path: Path) -> list[Path]:
    """A file stands for itself; a directory for the export files below it (sorted)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError("no such file or directory; check the path", file=str(path))
    found = [
        p for p in sorted(path.rglob("*"))
        if p.is_file() and p.name.lower().endswith(DATA_SUFFIXES) and not _is_manifest(p)
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    ]
    if not found:
        raise InputError("holds no export files (.csv, .csv.gz, .json, .jsonl, .parquet, .zip)", file=str(path))
    return found


def _normalizers(paths: Sequence[Path], args: argparse.Namespace,
                 cost_basis: str | None = None) -> Iterator[tuple[Any, IO[bytes] | None]]:
    """Each file's normalizer, with the open file when it is read as a stream (so progress can
    tell how far it is: ``tell()``); Parquet and zip files are opened by path."""
    from burnguard.normalize import Normalizer

    for p in paths:
        options: dict[str, Any] = {"strict": args.strict, "default_currency": args.currency,
                                   "cost_basis": args.cost_basis or cost_basis}
        if p.name.lower().endswith((".parquet", ".zip")):
            yield Normalizer.from_path(p, name=str(p), **options), None
            continue
        with open(p, "rb") as fh:
            yield Normalizer(fh, str(p), **options), fh


def _open_out(path: str) -> IO[bytes]:
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{path} is a folder; give a file name, e.g. {target / 'items.jsonl'}", field="--out")
    if not target.parent.is_dir():
        raise UsageError(f"cannot write {path}: the folder {target.parent} does not exist; create it first",
                         field="--out")
    try:
        return open(target, "wb")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}", field="--out") from None


def _normalize_inputs(target: Path) -> tuple[dict[str, Any] | None, list[Path]]:
    """The files to normalize and, for a manifest, the delivery they make up."""
    from burnguard.app.embedded import delivery_paths

    if not (target.is_file() and _is_manifest(target)):
        return None, expand_paths(target)
    try:
        return delivery_paths(target)  # the files the manifest names, as one delivery
    except InputError as exc:
        beside = _files_beside(target)
        if not beside:
            raise UsageError(f"{exc.reason}. A manifest names its files by their keys in the bucket: keep it "
                             f"where the bucket has it, as DIR/<aws|gcp|azure>/BUCKET/KEY (see "
                             f"events/README.md), or normalize the data files themselves",
                             file=str(target)) from None
        print(f"burnguard: {target}: outside the <aws|gcp|azure>/<bucket>/ layout, so without a delivery "
              f"identity; normalizing the {len(beside)} file(s) it names, found beside it", file=sys.stderr)
        return None, beside


def _report_bad_rows(stats: Any) -> None:
    for err in stats.errors:
        print(f"burnguard: {err}", file=sys.stderr)
    if stats.error_count > len(stats.errors):
        print(f"burnguard: {stats.file}: {stats.error_count - len(stats.errors)} more bad rows not shown",
              file=sys.stderr)


def cmd_normalize(args: argparse.Namespace) -> int:
    from burnguard.app.embedded import describe
    from burnguard.core.summary import Summary
    from burnguard.normalize.writers import LineItemWriter

    delivery, paths = _normalize_inputs(Path(args.path))
    if args.to == "parquet" and not args.out and not args.summary:
        raise UsageError("Parquet output needs --out FILE", field="--out")
    sink: IO[bytes] | None = _open_out(args.out) if args.out else (None if args.summary else sys.stdout.buffer)
    writer = LineItemWriter(args.to, sink) if sink is not None else None
    files: list[dict[str, Any]] = []
    overall = Summary()
    progress = Progress()
    try:
        basis = (delivery or {}).get("cost_basis")
        for normalizer, fh in _normalizers(paths, args, basis if basis in ("actual", "amortized") else None):
            summary = Summary()
            size = Path(normalizer.stats.file).stat().st_size if fh is not None else None
            for batch in normalizer.batches():
                if args.summary:  # the report is printed only then
                    summary.add(batch)
                progress(normalizer.stats.file, batch.num_rows, fh.tell() if fh is not None else None, size)
                if writer is not None:
                    writer.write(batch)
            progress.done()
            overall.merge(summary)
            _report_bad_rows(normalizer.stats)
            files.append({**_file_report(normalizer, summary),
                          "delivery": delivery or describe(Path(normalizer.stats.file))})
    finally:
        progress.done()
        if writer is not None:
            writer.close()
        if sink is not None and sink is not sys.stdout.buffer:
            sink.close()
    if args.summary:
        report: dict[str, Any] = files[0] if len(files) == 1 and delivery is None else {
            **({"delivery": delivery} if delivery else {}),
            "files": files, **overall.as_dict(tag_limit=args.tag_limit),
            "rows_skipped": sum(f["rows_skipped"] for f in files),
        }
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return EXIT_OK


def _manifest_keys(manifest: Path) -> list[str]:
    """The data files a manifest names (CUR ``reportKeys``, Azure ``blobs[].blobName``,
    burnguard's GCS ``files[].name``), as written; empty when it is not such a manifest."""
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return []
    if not isinstance(doc, dict):
        return []
    keys = [k for k in doc.get("reportKeys") or [] if isinstance(k, str)]
    keys += [b.get("blobName", "") for b in doc.get("blobs") or [] if isinstance(b, dict)]
    keys += [f.get("name", "") for f in doc.get("files") or [] if isinstance(f, dict)]
    return [k.strip() for k in keys if isinstance(k, str) and k.strip()]


def _files_beside(manifest: Path) -> list[Path]:
    """The manifest's files by their names in its own folder, when every one is there."""
    keys = _manifest_keys(manifest)
    found = [manifest.parent / k.rsplit("/", 1)[-1] for k in keys]
    return found if found and all(p.is_file() for p in found) else []


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


# -- embedded mode ------------------------------------------------------------------------------

REPO_EVENTS = Path(__file__).resolve().parents[3] / "events"


def _events_dir() -> Path:
    """The sample data: ./events when run from a checkout, else the repository's."""
    return Path("events") if Path("events/exports").is_dir() else REPO_EVENTS


def table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> str:
    """A plain text table (kept for callers that want a string)."""
    from burnguard.app.tables import plain

    return plain([["" if c is None else str(c) for c in r] for r in rows], headers)


def _parse_now(text: str) -> datetime:
    from burnguard.core.timeparse import parse_timestamp

    try:
        value = parse_timestamp(text)
    except ValueError as exc:
        raise UsageError(f"{exc}; write a UTC time such as 2024-09-20T12:00:00Z or a day 2024-09-20",
                         field="--now") from None
    if value is None:
        raise UsageError("is empty; write a UTC time such as 2024-09-20T12:00:00Z", field="--now")
    return value


def _clock(args: argparse.Namespace, local: Any) -> Callable[[], datetime]:
    if getattr(args, "now", None):
        fixed = _parse_now(args.now)
        return lambda: fixed
    clock: Callable[[], datetime] = local.data_clock
    return clock


def _guardrail(local: Any, name: str) -> str:
    """``name`` if the policy (or a stop record) knows it; else a usage error with the nearest."""
    names = [g.name for g in local.policy.guardrails]
    known = set(names) | {s.guardrail for s in local.ledger.stops(None, active_only=False)}
    if name in known:
        return name
    close = difflib.get_close_matches(name, sorted(known), 1)
    hint = f"did you mean {close[0]}?" if close else f"the policy has {', '.join(names) or 'none'}"
    raise UsageError(f"no guardrail named {name!r}; {hint} (`burnguard guardrails` lists them)")


ALL_TIME = None  # marker for the window of every day


def _everything() -> Any:
    from burnguard.core.ledger import Window

    return Window(date(1970, 1, 1), date(9999, 12, 31))


def _check_tag(local: Any, scope: Any) -> None:
    """A tag key or value that no line item carries is a usage error (a typo), not 'no spend'."""
    if local.ledger.latest_data() is None:
        raise UsageError("the ledger holds no billing data yet; run `burnguard ingest PATH` or `burnguard demo`")
    values = local.ledger.top_tag_values(scope.key, _everything(), limit=100_000)
    if not values:
        raise UsageError(f"no line item carries the tag {scope.key!r}; check the key (keys compare "
                         "case-insensitively)", field="--tag")
    if scope.value is None:
        return
    seen = sorted({str(v.scope_value) for v in values if v.scope_value is not None})
    if scope.value not in seen:
        close = difflib.get_close_matches(scope.value, seen, 1)
        hint = f"did you mean {scope.key}={close[0]}?" if close else f"values: {', '.join(seen[:8])}"
        raise UsageError(f"no line item carries {scope.key}={scope.value}; {hint}", field="--tag")


def _cut(window: Any, now: datetime) -> Any:
    """The window as known at ``now``: days after ``now`` are not counted (whole days)."""
    from burnguard.core.ledger import Window

    last = now.date() + timedelta(days=1) if now.time() != datetime.min.time() else now.date()
    end = min(window.end, last)
    return Window(window.start, max(end, window.start), window.periods)


def _names(local: Any) -> dict[str, str]:
    """Inventory names by instance id (lower case), for tables that would show ids."""
    inventory = getattr(local, "inventory", None)
    path = local.home / "inventory.json"
    if inventory is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(i.get("id", "")).lower(): str(i.get("name") or "") for i in data.get("instances", [])
            if i.get("name")}


def _resource_name(names: dict[str, str], resource_id: str) -> str:
    return names.get(resource_id.lower()) or names.get(resource_id.rsplit("/", 1)[-1].lower()) or resource_id


def _ts(value: datetime | None) -> str | None:
    return None if value is None else _json_default(value)


def _amount(value: Decimal | None) -> str | None:
    from burnguard.core.money import cents

    return None if value is None else str(cents(value))


def _num(value: Decimal | None) -> str:
    """An amount for a table: cents, thousands separated."""
    from burnguard.core.money import cents

    return "" if value is None else f"{cents(value):,}"


def _money_text(value: Decimal, currency: str) -> str:
    from burnguard.core.money import cents

    return f"{cents(value):,} {currency}"


# -- ingest and demo ------------------------------------------------------------------------------

def _print_outcomes(outcomes: Sequence[Any]) -> None:
    """What became of each object offered. A delivery's own objects say only that they were read:
    what became of the delivery (counted, waiting, rejected...) is the deliveries table's."""
    # A data file waits for its delivery's manifest: said only when no manifest beside it came in this run.
    delivered = {str(Path(o.path).parent) for o in outcomes if o.action != "skipped" or o.delivery_id}
    shown = [o for o in outcomes if o.action != "skipped" or "manifest" not in o.reason
             or str(Path(o.path).parent) not in delivered]
    rows = []
    for o in shown:
        action, reason = ("read" if o.action == "ingested" else o.action), o.reason
        if o.action == "skipped" and "manifest" in o.reason and str(Path(o.path).parent) not in delivered:
            action, reason = "waiting", f"{reason}: counted when its manifest arrives (ingest the folder)"
        reason = reason.replace(f"{Path.cwd()}/", "")  # paths below the current folder, relative
        rows.append((action, _rel(o.path), reason.replace(o.path, _rel(o.path)) if "same delivery" not in reason
                     else "same delivery as " + _rel(reason.removeprefix("same delivery as "))))
    if rows:
        render(rows, ["outcome", "object", "details"], widths={"object": 72})


def _rel(path: str) -> str:
    """A path relative to the current folder when it is below it (shorter to read)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return path


def _fate(outcome: Any) -> str:
    """One delivery's outcome (``LocalMode.delivery_outcomes``) in words."""
    if outcome.state == "counted":
        return f"counted: {outcome.rows:,} line items"
    if outcome.state == "already-counted":
        return "already counted: nothing new"
    return f"{outcome.state}: {outcome.reason}" if outcome.reason else outcome.state


def _print_delivery_outcomes(local: Any, outcomes: Sequence[Any]) -> int:
    """What became of each delivery this run offered (``LocalMode.delivery_outcomes``); returns
    how many were rejected or failed."""
    from burnguard.app.embedded import locate

    fates = local.delivery_outcomes(outcomes)
    if not fates:
        return 0
    named = {d.delivery.delivery_id: d.delivery for d in local.ledger.deliveries(include_superseded=True)}
    rows = []
    for f in fates:
        d = named.get(f.delivery_id or "")
        if d is not None:
            rows.append((d.provider, d.source, d.billing_period or "", d.version, _fate(f)))
        else:  # no message of it reached the ledger, or it could not even be read
            where = locate(Path(f.path))
            rows.append((where[0] if where else "", _rel(f.path), "", "", _fate(f)))
    print()
    render(rows, ["cloud", "source", "period", "version", "what became of it"],
           widths={"source": 48, "version": 36}, title="deliveries of this run")
    return sum(f.state in ("rejected", "failed") for f in fates)


def _print_drain(report: Any) -> int:
    """The guardrail's summary line; returns the number of findings (failed stops, dead letters)."""
    stops = sum(len(r.stopped) for r in report.reports if not r.dry_run)
    dry = sum(len(r.stopped) for r in report.reports if r.dry_run)
    failed = sum(len(r.failed) for r in report.reports)
    dead = f", {len(report.dead_letters)} dead-lettered" if report.dead_letters else ""
    would = f", {dry} would stop (dry run: nothing was stopped)" if dry else ""
    print(f"\nguardrail: {report.handled} messages handled, {len(report.reports)} decisions{dead}{would}, "
          f"{stops} stops")
    if failed:
        print(f"guardrail: {failed} stop(s) failed (see the messages above and `burnguard audit --kind action`)")
    for message_id, reason in report.dead_letters:
        print(f"  dead letter {message_id}: {reason}")
    return failed + len(report.dead_letters)


def _looks_like_burnguard_home(home: Path) -> bool:
    names = {p.name for p in home.iterdir()}
    return not names or bool(names & {"config.json", "ledger.sqlite", "queue.sqlite"})


def cmd_demo(args: argparse.Namespace) -> int:
    import shutil

    from burnguard.app.embedded import LocalMode

    events = _events_dir()
    if not (events / "exports").is_dir():
        raise UsageError(f"the sample data is not at {events}; run from a checkout of burnguard")
    home = _home(args)
    if home.exists():
        if not home.is_dir() or not _looks_like_burnguard_home(home):
            raise UsageError(f"{home} exists and is not a burnguard state folder; choose another --home",
                             field="--home")
        shutil.rmtree(home)
        print(f"burnguard demo: removed the earlier state in {home}/ (the demo starts afresh)")
    policy = Path(args.policy) if args.policy else events / "policies" / "demo.yaml"
    local = LocalMode.create(home, policy, events / "inventory.json")
    print(f"burnguard demo: embedded mode in {home}/ (SQLite queue and ledger, inventory {events / 'inventory.json'})")
    print(f"\n== 1. ingest: the billing exports in {events / 'exports'} (each manifest brings its delivery)")
    outcomes = local.ingest([events / "exports"], progress=cast(Any, Progress()))  # duck-typed
    _print_outcomes(outcomes)
    print(f"\n== 2. budget: the native budget notifications in {events / 'budget'}")
    _print_outcomes(local.ingest_notifications(sorted((events / "budget").glob("*.json"))))
    print(f"\n== 3. guardrail: {local.queue.pending()} messages on the queue; decisions and Slack messages follow")
    report = local.drain(local.service(_clock(args, local)))
    _print_drain(report)
    print("\n== 4. deliveries in the ledger")
    _print_deliveries(local)
    print("\n== 5. guardrails now (burnguard guardrails)")
    _print_status(local, _clock(args, local)())
    print("\n== 6. instances the guardrail stopped (burnguard stopped; undo with burnguard resume NAME)")
    _print_stops(local, None)
    exe = shutil.which("burnguard")
    venv_exe = Path(sys.executable).parent / "burnguard"
    prefix = "burnguard" if exe else (str(venv_exe) if venv_exe.exists() else "burnguard")
    hint = "" if exe else "  (or put it on PATH: source .venv/bin/activate)"
    print(f"\nTry: {prefix} spend --tag team=ml-research{hint}\n     (state kept in {home}/)")
    local.close()
    return EXIT_OK


def _split_inputs(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """(exports, notifications): folders are opened, every file sorted to what it is."""
    exports: list[Path] = []
    notifications: list[Path] = []
    for p in paths:
        if not p.exists():
            raise UsageError("no such file or folder; check the path", file=str(p))
        files = [p] if p.is_file() else sorted(
            q for q in p.rglob("*") if q.is_file() and not any(part.startswith(".") for part in q.relative_to(p).parts)
            and q.suffix not in (".py", ".md", ".txt"))
        for f in files:
            if f.suffix == ".json" and not _is_manifest(f) and _looks_like_notification(f):
                notifications.append(f)
            else:
                exports.append(f)
    return exports, notifications


def cmd_ingest(args: argparse.Namespace) -> int:
    from burnguard.app.embedded import Outcome, locate

    paths = [Path(p) for p in args.paths]
    exports, notifications = _split_inputs(paths)
    placed = [p for p in exports if locate(p) is not None]
    unplaced = [p for p in exports if locate(p) is None]
    if not placed and not notifications:
        where = unplaced[0] if unplaced else paths[0]
        raise UsageError("not in a <aws|gcp|azure>/<bucket>/ folder, so its delivery cannot be told; put it where "
                         "the bucket has it, as DIR/aws/BUCKET/KEY (see events/README.md), or read it with "
                         "`burnguard normalize`" if unplaced else "holds no billing export and no budget notification",
                         file=str(where))
    local = _local(args)
    outcomes: list[Any] = [Outcome(str(p), "rejected", "not in a <aws|gcp|azure>/<bucket>/ folder: no delivery "
                                                       "identity (see events/README.md)") for p in unplaced]
    # The guardrail consumes the queue while the exports are read, as the cloud's functions do.
    with local.guardrail_alongside(local.service(_clock(args, local))) as report:
        exported = local.ingest(placed, progress=Progress(), default_currency=args.currency) if placed else []
        alerts = local.ingest_notifications(notifications) if notifications else []
    # An export that could not be read is a failed delivery: said once, in the deliveries table.
    _print_outcomes(outcomes + [o for o in exported if o.action != "failed"] + alerts)
    bad_deliveries = _print_delivery_outcomes(local, exported)
    findings = _print_drain(report)
    local.close()
    bad_objects = sum(o.action in ("failed", "rejected") for o in outcomes + alerts)
    return EXIT_FINDINGS if bad_deliveries or bad_objects or findings else EXIT_OK


def _looks_like_notification(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096).decode("utf-8", "replace")
    except OSError:
        return False
    return any(k in head for k in ('"Records"', '"Sns"', '"schemaId"', '"specversion"', '"budgetDisplayName"',
                                   '"Type": "Notification"'))


# -- read commands ------------------------------------------------------------------------------

def cmd_spend(args: argparse.Namespace) -> int:
    from burnguard.core.clouds import cloud_name
    from burnguard.services.queries import SpendReport, parse_period, parse_scope

    scope = parse_scope(args.tag)
    local = _local(args)
    now = _clock(args, local)()
    window, label = parse_period(args.period, now)
    _check_tag(local, scope)
    window = _cut(window, now)
    led = local.ledger
    report = SpendReport(scope, label, led.spend(scope, window, basis=args.cost),
                         led.by_service(scope, window, basis=args.cost),
                         led.top_resources(scope, window, limit=args.limit, basis=args.cost))
    names = _names(local)
    local.close()
    if args.json:
        _dump({
            "scope": str(scope), "period": label, "basis": args.cost, "as_of": now,
            "totals": [{"currency": c, "amount": _amount(a), "gpu_amount": _amount(g)}
                       for c, (a, g) in sorted(report.totals().items())],
            "values": [{"value": r.scope_value, "currency": r.currency, "amount": _amount(r.amount),
                        "gpu_amount": _amount(r.gpu_amount)} for r in sorted(report.rows, key=lambda r: -r.amount)],
            "per_cloud": [{"cloud": c, "currency": cur, "amount": _amount(a)}
                          for (c, cur), a in sorted(report.per_cloud().items(), key=lambda kv: -kv[1])],
            "services": [{"cloud": s.cloud, "service": s.service, "currency": s.currency, "amount": _amount(s.amount)}
                         for s in report.services],
            "top_resources": [_resource_json(r, names) for r in report.top],
        })
        return EXIT_OK
    print(f"Spend of {scope} in {label} ({args.cost} cost, as of {now:%Y-%m-%d %H:%M} UTC)")
    if not report.rows:
        print("  no spend recorded")
        return EXIT_OK
    for cur, (amount, gpu) in sorted(report.totals().items()):
        print(f"  total {_money_text(amount, cur)} (GPU {_money_text(gpu, cur)})")
    clouds = report.per_cloud()
    if clouds:
        print("  per cloud: " + ", ".join(f"{cloud_name(c)} {_money_text(a, cur)}"
                                          for (c, cur), a in sorted(clouds.items(), key=lambda kv: -kv[1])))
    if scope.value is None:
        print()
        render([(f"{scope.key}={r.scope_value}", _num(r.amount), r.currency, _num(r.gpu_amount))
                for r in sorted(report.rows, key=lambda r: -r.amount)],
               ["value", "amount", "currency", "GPU"], right=("amount", "GPU"), title="per value")
    if report.services:
        print()
        render([(cloud_name(s.cloud), s.service, _num(s.amount), s.currency)
                for s in report.services[:8]], ["cloud", "service", "amount", "currency"], right=("amount",),
               widths={"service": 40}, title="top services")
    if report.top:
        print()
        _render_resources(report.top, names, "top resources")
    return EXIT_OK


def _resource_json(r: Any, names: dict[str, str]) -> dict[str, Any]:
    name = _resource_name(names, r.resource_id)
    return {"resource_id": r.resource_id, "name": name if name != r.resource_id else None, "cloud": r.cloud,
            "instance_type": r.instance_type or None, "gpu": r.gpu, "currency": r.currency, "amount": _amount(r.amount)}


def _render_resources(rows: Sequence[Any], names: dict[str, str], title: str) -> None:
    from burnguard.core.clouds import cloud_name

    render([(cloud_name(r.cloud), _resource_name(names, r.resource_id),
             f"{r.instance_type}{' GPU' if r.gpu else ''}".strip(), _num(r.amount), r.currency) for r in rows],
           ["cloud", "resource", "type", "amount", "currency"], right=("amount",), widths={"resource": 56},
           title=title)


def cmd_top(args: argparse.Namespace) -> int:
    from burnguard.core.ledger import Scope
    from burnguard.services.queries import parse_period, parse_scope

    if args.tag and args.by:
        raise UsageError("give --tag or --by, not both")
    local = _local(args)
    now = _clock(args, local)()
    window, label = parse_period(args.period, now)
    window = _cut(window, now)
    names = _names(local)
    resources: list[Any] = []
    values: list[Any] = []
    scope = None
    if args.by:
        _check_tag(local, Scope(args.by))
        values = local.ledger.top_tag_values(args.by, window, limit=args.limit)
    else:
        keys: list[str]
        if args.tag:
            scope = parse_scope(args.tag)
            _check_tag(local, scope)
            found = local.ledger.top_resources(scope, window, limit=args.limit)
        else:
            keys = sorted({g.scope.key for g in local.policy.guardrails})
            best: dict[tuple[str, str, str, str], Any] = {}
            for key in keys:
                for r in local.ledger.top_resources(Scope(key), window, limit=args.limit):
                    ident = (r.resource_id, r.cloud, r.instance_type, r.currency)
                    if ident not in best or best[ident].amount < r.amount:
                        best[ident] = r
            found = sorted(best.values(), key=lambda r: (-r.amount, r.resource_id))[:args.limit]
        resources = found
    local.close()
    if args.json:
        _dump({"period": label, "as_of": now, "scope": str(scope) if scope else None, "by": args.by,
               "resources": [_resource_json(r, names) for r in resources],
               "values": [{"value": v.scope_value, "currency": v.currency, "amount": _amount(v.amount),
                           "gpu_amount": _amount(v.gpu_amount)} for v in values]})
        return EXIT_OK
    if args.by:
        render([(f"{args.by}={v.scope_value}", _num(v.amount), v.currency, _num(v.gpu_amount)) for v in values],
               ["value", "amount", "currency", "GPU"], right=("amount", "GPU"),
               title=f"top values of {args.by} in {label}")
    else:
        _render_resources(resources, names, f"top resources{' of ' + str(scope) if scope else ''} in {label}")
    return EXIT_OK


def _status_rows(local: Any, now: datetime) -> list[Any]:
    from burnguard.services.status import guardrail_status

    return list(guardrail_status(local.policy, local.ledger, now, wall=datetime.now(UTC), estimates=local.ledger))


def _print_status(local: Any, now: datetime) -> None:
    from burnguard.notify.content import money

    rows = [(s.guardrail, str(s.scope), s.period, money(s.spend) if s.spend else "",
             money(s.budget) if s.budget else "", f"{s.percent}%" if s.percent is not None else "",
             money(s.forecast) if s.forecast else "", s.state)
            for s in _status_rows(local, now)]
    render(rows, ["guardrail", "scope", "period", "spend", "budget", "used", "forecast", "state"],
           right=("spend", "budget", "used", "forecast"))


def cmd_guardrails(args: argparse.Namespace) -> int:
    local = _local(args)
    now = _clock(args, local)()
    if args.json:
        _dump({"as_of": now, "guardrails": [{
            "guardrail": s.guardrail, "scope": str(s.scope), "period": s.period,
            "currency": (s.budget or s.spend or s.gpu_rate).currency if (s.budget or s.spend or s.gpu_rate) else None,
            "spend": _amount(s.spend.amount) if s.spend else None,
            "budget": _amount(s.budget.amount) if s.budget else None,
            "percent": str(s.percent) if s.percent is not None else None,
            "forecast": _amount(s.forecast.amount) if s.forecast else None,
            "gpu_per_hour": str(s.gpu_rate.amount) if s.gpu_rate else None,
            "state": s.state, "estimated": _amount(s.estimated.amount) if s.estimated else None,
            "projection": s.projection} for s in _status_rows(local, now)]})
    else:
        note(f"as of {now:%Y-%m-%d %H:%M} UTC")
        _print_status(local, now)
    local.close()
    return EXIT_OK


def _print_deliveries(local: Any) -> None:
    rows = [(d.delivery.provider, d.delivery.source, d.delivery.billing_period, d.delivery.version,
             d.status + (" (counted)" if d.counted else ""), f"{d.rows:,}", d.reason)
            for d in local.ledger.deliveries(include_superseded=True)]
    render(rows, ["cloud", "source", "period", "version", "status", "rows", "reason"], right=("rows",),
           widths={"source": 48, "version": 36, "reason": 60})


def cmd_deliveries(args: argparse.Namespace) -> int:
    local = _local(args)
    if args.json:
        _dump({"deliveries": [{
            "delivery_id": d.delivery.delivery_id, "provider": d.delivery.provider, "source": d.delivery.source,
            "billing_period": d.delivery.billing_period, "version": d.delivery.version,
            "produced_at": _ts(d.delivery.produced_at), "status": d.status, "counted": d.counted, "rows": d.rows,
            "reason": d.reason, "received_at": _ts(d.received_at), "completed_at": _ts(d.completed_at)}
            for d in local.ledger.deliveries(include_superseded=True)]})
    else:
        _print_deliveries(local)
    local.close()
    return EXIT_OK


def _stop_state(s: Any) -> str:
    return "dry-run" if s.dry_run else ("resumed" if s.resumed_at else "stopped")


def _print_stops(local: Any, guardrail: str | None, active_only: bool = True) -> None:
    rows = [(s.guardrail, s.cloud, s.name or s.instance_id, s.instance_type, f"{s.stopped_at:%Y-%m-%d %H:%M}",
             _stop_state(s)) for s in local.ledger.stops(guardrail, active_only=active_only)]
    if rows:
        render(rows, ["guardrail", "cloud", "instance", "type", "at (UTC)", "state"], widths={"instance": 48})
    else:
        what = f"guardrail {guardrail}" if guardrail else "any guardrail"
        more = " (--all shows resumed and dry-run records)" if active_only else ""
        print(f"Nothing is stopped by {what}{more}")


def cmd_stopped(args: argparse.Namespace) -> int:
    local = _local(args)
    name = _guardrail(local, args.guardrail) if args.guardrail else None
    if args.json:
        _dump({"stops": [{
            "guardrail": s.guardrail, "scope": s.scope, "cloud": s.cloud, "instance_id": s.instance_id,
            "name": s.name or None, "location": s.location, "instance_type": s.instance_type,
            "stopped_at": _ts(s.stopped_at), "dry_run": s.dry_run, "resumed_at": _ts(s.resumed_at),
            "hourly_cost": str(s.hourly_cost) if s.hourly_cost is not None else None, "currency": s.currency,
            "state": _stop_state(s)} for s in local.ledger.stops(name, active_only=not args.all)]})
    else:
        _print_stops(local, name, active_only=not args.all)
    local.close()
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    local = _local(args)
    name = _guardrail(local, args.guardrail)
    stops = local.ledger.stops(name)
    if not stops:
        print(f"{name}: nothing to resume (nothing it stopped is still stopped)")
        local.close()
        return EXIT_OK
    _print_stops(local, name)
    if not args.yes:
        if sys.stdin is None or sys.stdin.closed:
            raise UsageError("cannot ask for confirmation: standard input is closed; pass --yes")
        try:
            answer = input(f"Start these {len(stops)} instance(s) again? [y/N] ").strip().lower()
        except EOFError:
            raise UsageError("cannot ask for confirmation: standard input is closed; pass --yes") from None
        if answer not in ("y", "yes"):
            print("Nothing started.")
            local.close()
            return EXIT_FINDINGS
    report = local.service(_clock(args, local)).resume(name, actor="cli")
    print(f"started {len(report.started)}, failed {len(report.failed)}")
    for record, reason in report.failed:
        print(f"  {record.cloud} {record.name or record.instance_id}: {reason}")
    local.close()
    return EXIT_OK if not report.failed else EXIT_FINDINGS


def cmd_snooze(args: argparse.Namespace) -> int:
    from burnguard.core.ledger import AuditEvent
    from burnguard.services.commands import CommandError, parse_duration

    local = _local(args)
    name = _guardrail(local, args.guardrail)
    off = args.duration.lower() == "off"
    try:
        length = timedelta(0) if off else parse_duration(args.duration)
    except CommandError as exc:
        raise UsageError(exc.reason.replace("`", "").rstrip("."), field="DURATION") from None
    now = datetime.now(UTC)  # a snooze runs in real time, whatever the data's time
    until = now + length
    local.ledger.snooze(name, until, "cli", now)
    local.ledger.audit(AuditEvent(now, "command", "cli", "ok", name, details={
        "command": "snooze", "until": until.isoformat()}))
    local.close()
    if off:
        print(f"{name}: snooze ended; it alerts and acts again")
    else:
        print(f"{name}: snoozed for {args.duration}, until {until:%Y-%m-%d %H:%M} UTC: no alert and no stop from it "
              f"until then (end it with `burnguard snooze {name} off`)")
    return EXIT_OK


SIGNING_SECRET_ENV = "BURNGUARD_SLACK_SIGNING_SECRET"


def cmd_serve(args: argparse.Namespace) -> int:
    import errno

    from burnguard.adapters.local.deferral import ThreadDeferrer
    from burnguard.adapters.slack.http import make_server
    from burnguard.adapters.slack.respond import SLACK_HOOKS, WebhookResponder
    from burnguard.adapters.slack.verify import SlackRequestVerifier
    from burnguard.services.slack_endpoint import SlashService

    secret = os.environ.get(SIGNING_SECRET_ENV, "").strip()
    if not secret:
        raise UsageError(f"set {SIGNING_SECRET_ENV} to the Slack app's signing secret (Basic Information page)")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"{args.port} is not a TCP port (0-65535; 0 picks a free one)", field="--port")
    if args.idle_timeout <= 0:
        raise UsageError("must be a positive number of seconds", field="--idle-timeout")
    local = _local(args)
    as_of = _clock(args, local)  # questions judged at the end of the data (or --now); snoozes run in real time
    responder = WebhookResponder(allowed_prefixes=(*SLACK_HOOKS, *args.response_url_prefix))
    service = SlashService(SlackRequestVerifier(secret), local.ledger, local.policy, lambda: local.service(as_of),
                           deferrer=ThreadDeferrer(), responder=responder, as_of=as_of)
    try:
        server = make_server(service, args.host, args.port)
    except OSError as exc:
        service.close()
        local.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"port {args.port} on {args.host} is in use; stop what uses it or pass --port N "
                             "(0 picks a free one)", field="--port") from None
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", field="--host") from None
    # An idle connection (opened, nothing sent) is closed after --idle-timeout seconds, and every
    # connection has its own thread (daemon: Ctrl-C is not held up by a silent client).
    server.RequestHandlerClass.timeout = args.idle_timeout  # type: ignore[attr-defined]
    server.daemon_threads = True
    server.request_queue_size = 512
    server.socket.listen(server.request_queue_size)  # a burst of connections waits instead of being refused
    host, port = str(server.server_address[0]), int(server.server_address[1])
    print(f"burnguard serve: Slack slash commands on http://{host}:{port}/ (state in {local.home}); Ctrl-C stops",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        service.close()
        local.close()
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    local = _local(args)
    name = _guardrail(local, args.guardrail) if args.guardrail else None
    events = local.ledger.audit_log(limit=10**9, guardrail=name)
    if args.kind:
        events = [e for e in events if e.kind == args.kind]
    total = len(events)
    shown = list(reversed(events[:args.limit])) if args.limit else list(reversed(events))
    local.close()
    if args.json:
        _dump({"total": total, "shown": len(shown), "events": [{
            "at": _ts(e.at), "kind": e.kind, "actor": e.actor, "outcome": e.outcome, "guardrail": e.guardrail,
            "scope": e.scope, "details": e.details} for e in shown]})
        return EXIT_OK
    if len(shown) < total:
        note(f"the last {len(shown)} of {total} events, oldest first (--limit N, --limit 0 for all; "
             "--kind, --guardrail filter)")
    else:
        note(f"all {total} events, oldest first")
    render([(f"{e.at:%Y-%m-%d %H:%M:%S}", e.kind, e.actor, e.outcome, e.guardrail or "", e.scope or "",
             json.dumps(e.details, sort_keys=True, default=str)) for e in shown],
           ["at (UTC)", "kind", "actor", "outcome", "guardrail", "scope", "details"])
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from burnguard.app.report import build_report, write_report

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".html"):
        raise UsageError(f"{args.out}: the report is a .png or a .html file", field="--out")
    if not out.parent.is_dir():
        raise UsageError(f"cannot write {args.out}: the folder {out.parent} does not exist; create it first",
                         field="--out")
    local = _local(args)
    now = _clock(args, local)()
    data = build_report(local.ledger, local.policy, args.tag, args.period, now, basis=args.cost,
                        check_tag=lambda s: _check_tag(local, s))
    local.close()
    write_report(data, out)
    print(f"wrote {out}: daily spend of {data.title} in {data.period}")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from burnguard.app.schemas import SCHEMAS

    _dump(SCHEMAS[args.command_name])
    return EXIT_OK


def cmd_policy_schema(args: argparse.Namespace) -> int:
    from burnguard.core.policy import policy_json_schema

    json.dump(policy_json_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return EXIT_OK


def cmd_policy_check(args: argparse.Namespace) -> int:
    from burnguard.core.policy import PolicyError, load_policy

    path = Path(args.file)
    if not path.is_file():
        raise UsageError("no such file; check the path", file=args.file)
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        for issue in exc.issues:
            where = f"line {issue.line}, " if issue.line else ""
            print(f"{args.file}: {where}field {issue.field}: {issue.message}", file=sys.stderr)
        return EXIT_USAGE
    except UnicodeDecodeError as exc:
        raise UsageError(f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); save it as "
                         "UTF-8", file=args.file) from None
    print(f"{args.file}: OK, {len(policy.guardrails)} guardrail(s); dry_run={str(policy.safety.dry_run).lower()}")
    return EXIT_OK


def cmd_invoke(args: argparse.Namespace) -> int:
    from burnguard.app.invoke import InvokeContext, invoke

    event = Path(args.event)
    if not event.is_file():
        raise UsageError("no such file; check the path (see events/ for samples)", file=args.event)
    report = invoke(args.cloud, args.function, event, InvokeContext(_home(args), dict(os.environ)))
    print(json.dumps(report, indent=2, default=str))
    return EXIT_OK


# -- the parser ---------------------------------------------------------------------------------

class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: what is wrong and where the help is."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def _add_home(p: argparse.ArgumentParser, policy: bool = False, now: bool = True) -> None:
    p.add_argument("--home", help="state directory of the embedded mode (default .burnguard, or $BURNGUARD_HOME)")
    if policy:
        p.add_argument("--policy", help="policy file (default: the one the state directory was set up with)")
    if now:
        p.add_argument("--now", help="evaluate at this UTC time, e.g. 2024-09-20T12:00:00Z: data after it is not "
                                     "counted (default: the end of the billing data)")


def _add_json(p: argparse.ArgumentParser, command: str) -> None:
    p.add_argument("--json", action="store_true",
                   help=f"print JSON (keys documented by `burnguard schema {command}`)")


def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - the argparse declarations, one statement each
    parser = Parser(prog="burnguard", description="Guard cloud GPU spend per tag.", epilog=EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"burnguard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("normalize", help="normalize billing exports to FOCUS-named line items",
                       description="Read any AWS, Google Cloud, Azure or FOCUS billing export (format detected "
                                   "from its header) and write FOCUS-named line items, or a JSON summary.",
                       epilog=EXIT_CODES)
    p.add_argument("path", help="an export file, a delivery's manifest (its files, as one delivery), "
                                "or a directory of export files")
    p.add_argument("--to", choices=["jsonl", "csv", "parquet"], default="jsonl", help="output format (default jsonl)")
    p.add_argument("--out", help="output file (default: standard output)")
    p.add_argument("--summary", action="store_true",
                   help="print a JSON summary: format, rows, totals per currency and per tag")
    p.add_argument("--strict", action="store_true", help="stop at the first bad row instead of skipping it")
    p.add_argument("--currency", help="currency for files without a currency column (e.g. USD)")
    p.add_argument("--cost-basis", choices=["actual", "amortized"], help="Azure exports: the export's cost basis")
    p.add_argument("--tag-limit", type=_positive, default=50, help="tag values listed per key in a multi-file summary")
    p.set_defaults(func=cmd_normalize)

    p = sub.add_parser("demo", help="run the whole pipeline locally on the sample data in events/",
                       description="Run the whole pipeline embedded on the sample data in events/. The state "
                                   "folder (--home) is emptied first: the demo starts afresh.", epilog=EXIT_CODES)
    _add_home(p, policy=True)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("ingest", help="ingest exports (files, folders, manifests) and budget notifications",
                       description="Offer each file as a storage-object event (exports) or a budget notification; "
                                   "the guardrail runs alongside. Says what became of each delivery: counted, "
                                   "waiting for parts, rejected and why, or already counted.", epilog=EXIT_CODES)
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--currency", help="currency for files without a currency column")
    p.add_argument("--inventory", help="instance inventory JSON the local controllers act on "
                                       "(see events/inventory.json)")
    _add_home(p, policy=True)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("spend", help="spend of a tag scope, per cloud and service, with top resources",
                       epilog=EXIT_CODES)
    p.add_argument("--tag", required=True, help="key=value, or key=* for every value")
    p.add_argument("--period", help="YYYY-MM, YYYY-MM-DD or Nd (default: the month of the latest data)")
    p.add_argument("--cost", choices=["effective", "billed"], default="effective")
    p.add_argument("--limit", type=_positive, default=5, help="top resources listed (default 5)")
    _add_json(p, "spend")
    _add_home(p)
    p.set_defaults(func=cmd_spend)

    p = sub.add_parser("top", help="top resources (of a tag, or of every key the policy guards), or top tag values",
                       epilog=EXIT_CODES)
    p.add_argument("--tag", help="key=value: the top resources of this scope")
    p.add_argument("--by", metavar="KEY", help="the top values of this tag key instead of resources")
    p.add_argument("--period", help="YYYY-MM, YYYY-MM-DD or Nd (default: the month of the latest data)")
    p.add_argument("--limit", type=_positive, default=10, help="rows listed (default 10)")
    _add_json(p, "top")
    _add_home(p)
    p.set_defaults(func=cmd_top)

    p = sub.add_parser("guardrails", help="status of every guardrail: spend, budget, %% used, forecast, state",
                       epilog=EXIT_CODES)
    _add_json(p, "guardrails")
    _add_home(p)
    p.set_defaults(func=cmd_guardrails)

    p = sub.add_parser("deliveries", help="export deliveries in the ledger and their state", epilog=EXIT_CODES)
    _add_json(p, "deliveries")
    _add_home(p, now=False)
    p.set_defaults(func=cmd_deliveries)

    p = sub.add_parser("stopped", help="instances the guardrail stopped", epilog=EXIT_CODES)
    p.add_argument("guardrail", nargs="?")
    p.add_argument("--all", action="store_true", help="include resumed and dry-run records")
    _add_json(p, "stopped")
    _add_home(p, now=False)
    p.set_defaults(func=cmd_stopped)

    p = sub.add_parser("resume", help="start again what a guardrail stopped", epilog=EXIT_CODES)
    p.add_argument("guardrail")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _add_home(p)
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("snooze", help="silence a guardrail for a while (30m, 2h, 1d, 1w; off ends it)",
                       description="No alert and no stop from the guardrail until the snooze ends (at most a week; "
                                   "real time). As /burnguard snooze in Slack; audited with the actor 'cli'.",
                       epilog=EXIT_CODES)
    p.add_argument("guardrail")
    p.add_argument("duration", metavar="DURATION", help="30m, 2h, 1d, 1w, or off")
    _add_home(p, now=False)
    p.set_defaults(func=cmd_snooze)

    p = sub.add_parser("report", help="a picture of spend over time (.png or self-contained .html)",
                       description="Daily spend per tag value against the budget line and its thresholds, with "
                                   "the forecast to the period's end; billed days and estimated (forecast) days "
                                   "told apart. Needs the `report` extra (matplotlib).", epilog=EXIT_CODES)
    p.add_argument("--tag", help="key=value or key=* (default: the scope of the first budget guardrail)")
    p.add_argument("--period", help="YYYY-MM (default: the month of the latest data)")
    p.add_argument("--cost", choices=["effective", "billed"], default="effective")
    p.add_argument("--out", required=True, help="FILE.png or FILE.html")
    _add_home(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("serve", help="answer Slack slash commands over HTTP on the local state",
                       description=f"A local HTTP endpoint for the Slack app's slash command (/burnguard spend, "
                                   f"top, guardrails, stopped, snooze, resume). Requests are verified with the "
                                   f"signing secret in ${SIGNING_SECRET_ENV}; slow answers are posted to the "
                                   f"command's response_url.", epilog=EXIT_CODES)
    p.add_argument("--port", type=int, default=3000, help="TCP port (default 3000; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; put a TLS proxy "
                                                      "or tunnel in front for Slack)")
    p.add_argument("--idle-timeout", type=float, default=10.0,
                   help="seconds a connection may stay silent before it is closed (default 10)")
    p.add_argument("--response-url-prefix", action="append", default=[], help=argparse.SUPPRESS)
    _add_home(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("audit", help="the audit log: every decision and action with its outcome", epilog=EXIT_CODES)
    p.add_argument("--limit", type=_positive, default=50, help="the last N events (default 50; 0 for all)")
    p.add_argument("--kind", choices=["decision", "action", "alert", "delivery", "command", "dead-letter"])
    p.add_argument("--guardrail", help="only this guardrail's events")
    _add_json(p, "audit")
    _add_home(p, now=False)
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("schema", help="print the JSON Schema of a read command's --json output", epilog=EXIT_CODES)
    p.add_argument("command_name", metavar="COMMAND",
                   choices=["spend", "top", "guardrails", "deliveries", "stopped", "audit", "estimates"])
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("invoke", help="run a cloud function's handler here on a sample event; print what it did",
                       description="Run a cloud function's handler on this machine on an event file (see events/), "
                                   "against the cloud configured in the environment (or an emulator), or with "
                                   "nothing configured on the embedded queue and ledger of --home.",
                       epilog=EXIT_CODES)
    p.add_argument("cloud", choices=list(CLOUDS))
    p.add_argument("function", help="ingest, budget, guardrail or slack (what the cloud has)")
    p.add_argument("event", help="the event JSON file")
    p.add_argument("--home", help="state directory of the embedded mode (default .burnguard, or $BURNGUARD_HOME)")
    p.set_defaults(func=cmd_invoke)

    from burnguard.app.estimates_cli import register as register_estimates

    register_estimates(sub, _add_home, _add_json, EXIT_CODES)

    p = sub.add_parser("policy", help="policy tools", epilog=EXIT_CODES)
    psub = p.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")
    q = psub.add_parser("schema", help="print the policy's JSON Schema")
    q.set_defaults(func=cmd_policy_schema)
    q = psub.add_parser("check", help="validate a policy file; errors name the line and the field")
    q.add_argument("file")
    q.set_defaults(func=cmd_policy_check)
    return parser


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    if not lines:
        return "failed (no reason given)"
    return lines[0] + (f" (and {len(lines) - 1} more line(s))" if len(lines) > 1 else "")


def _fail(message: str, code: int) -> int:
    print(f"burnguard: {_one_line(message)}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0911 - one return per documented exit code
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed in one line
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    from burnguard.app.runtime import tune_arrow

    tune_arrow()
    try:
        return int(args.func(args))
    except BurnguardError as exc:
        from burnguard.core.policy import PolicyError

        if not isinstance(exc, PolicyError):
            return _fail(str(exc), EXIT_USAGE)
        more = f" (and {len(exc.issues) - 1} more; `burnguard policy check {exc.file}` lists them)" if len(
            exc.issues) > 1 else ""
        first = exc.issues[0]
        where = f"{exc.file}, " + (f"line {first.line}, " if first.line else "") + f"field {first.field}"
        return _fail(f"{where}: {first.message}{more}", EXIT_USAGE)
    except BrokenPipeError:  # e.g. `burnguard normalize ... | head`
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - no flush error at exit
        return EXIT_OK
    except KeyboardInterrupt:
        print("burnguard: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UnicodeDecodeError as exc:
        return _fail(f"a file is not UTF-8 text ({exc.reason} at offset {exc.start}); save it as UTF-8", EXIT_USAGE)
    except sqlite3.DatabaseError as exc:
        return _fail(f"the local state is damaged ({exc}); move the --home folder away and run `burnguard demo` "
                     "or `burnguard ingest --policy FILE` again", EXIT_USAGE)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}", EXIT_USAGE)
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        return _fail(f"internal error ({type(exc).__name__}: {exc}); this is a bug in burnguard: please report "
                     f"it with the command line ({DEBUG_ENV}=1 shows the traceback)", EXIT_BUG)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
