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

from burnguard import __version__
from burnguard.core.clouds import CLOUDS
from burnguard.core.errors import BurnguardError, InputError

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


def _normalizers(paths: Sequence[Path], args: argparse.Namespace, cost_basis: str | None = None) -> Iterator[Any]:
    from burnguard.normalize import Normalizer

    for p in paths:
        yield Normalizer.from_path(p, name=str(p), strict=args.strict, default_currency=args.currency,
                                   cost_basis=args.cost_basis or cost_basis)


def cmd_normalize(args: argparse.Namespace) -> int:  # noqa: C901, PLR0912 - app/cli.py is reworked under issue 14; split it there
    from burnguard.app.embedded import delivery_paths, describe
    from burnguard.core.summary import Summary
    from burnguard.normalize.writers import LineItemWriter

    target = Path(args.path)
    delivery: dict[str, Any] | None = None
    if target.is_file() and _is_manifest(target):
        delivery, paths = delivery_paths(target)  # the files the manifest names, as one delivery
    else:
        paths = expand_paths(target)
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
        basis = (delivery or {}).get("cost_basis")
        for normalizer in _normalizers(paths, args, basis if basis in ("actual", "amortized") else None):
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
            files.append({**_file_report(normalizer, summary), "delivery": delivery or describe(Path(stats.file))})
    finally:
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


# -- embedded mode ------------------------------------------------------------------------------

REPO_EVENTS = Path(__file__).resolve().parents[2] / "events"


def _events_dir() -> Path:
    """The sample data: ./events when run from a checkout, else the repository's."""
    return Path("events") if Path("events/exports").is_dir() else REPO_EVENTS


def table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _local(args: argparse.Namespace, **kwargs: Any) -> Any:
    from burnguard.app.embedded import LocalMode, default_home

    home = Path(args.home) if args.home else default_home()
    inventory = getattr(args, "inventory", None)
    return LocalMode.open(home, Path(args.policy) if getattr(args, "policy", None) else None,
                          Path(inventory) if inventory else None, **kwargs)


def _clock(args: argparse.Namespace, local: Any) -> Any:
    from burnguard.core.timeparse import parse_timestamp

    if getattr(args, "now", None):
        fixed = parse_timestamp(args.now)
        return lambda: fixed
    return local.data_clock


def _print_outcomes(outcomes: Sequence[Any]) -> None:
    shown = [o for o in outcomes if o.action != "skipped" or "manifest" not in o.reason]
    if shown:
        print(table([(o.action, _short(o.path), o.reason) for o in shown], ["outcome", "object", "details"]))


def _short(path: str, width: int = 72) -> str:
    return path if len(path) <= width else "..." + path[-(width - 3):]


def _print_drain(report: Any) -> None:
    stops = sum(len(r.stopped) for r in report.reports)
    dead = f", {len(report.dead_letters)} dead-lettered" if report.dead_letters else ""
    print(f"\nguardrail: {report.handled} messages handled, {len(report.reports)} decisions, {stops} stops{dead}")
    for message_id, reason in report.dead_letters:
        print(f"  dead letter {message_id}: {reason}")


def cmd_demo(args: argparse.Namespace) -> int:
    import shutil

    from burnguard.app.embedded import LocalMode, Progress, default_home

    events = _events_dir()
    home = Path(args.home) if args.home else default_home()
    if home.exists():
        shutil.rmtree(home)
    local = LocalMode.create(home, Path(args.policy) if args.policy else events / "policies" / "demo.yaml",
                             events / "inventory.json")
    print(f"burnguard demo: embedded mode in {home}/ (SQLite queue and ledger, inventory {events / 'inventory.json'})")
    print(f"\n== 1. ingest: the billing exports in {events / 'exports'} (each manifest brings its delivery)")
    _print_outcomes(local.ingest([events / "exports"], progress=Progress()))
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
    print(f"\nTry: burnguard spend --tag team=ml-research    (state kept in {home}/)")
    local.close()
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from burnguard.app.embedded import Progress

    local = _local(args)
    paths = [Path(p) for p in args.paths]
    notifications = [p for p in paths if p.is_file() and p.suffix == ".json" and "manifest" not in p.name.lower()
                     and _looks_like_notification(p)]
    exports = [p for p in paths if p not in notifications]
    # The guardrail consumes the queue while the exports are read, as the cloud's functions do.
    with local.guardrail_alongside(local.service(_clock(args, local))) as report:
        outcomes = local.ingest(exports, progress=Progress(), default_currency=args.currency) if exports else []
        outcomes += local.ingest_notifications(notifications) if notifications else []
    _print_outcomes(outcomes)
    _print_drain(report)
    local.close()
    return 1 if any(o.action == "failed" for o in outcomes) else 0


def _looks_like_notification(path: Path) -> bool:
    try:
        head = path.read_bytes()[:4096].decode("utf-8", "replace")
    except OSError:
        return False
    return any(k in head for k in ('"Records"', '"Sns"', '"schemaId"', '"specversion"', '"budgetDisplayName"',
                                   '"Type": "Notification"'))


def cmd_spend(args: argparse.Namespace) -> int:
    from burnguard.services.queries import spend_report

    local = _local(args)
    report = spend_report(local.ledger, args.tag, args.period, now=_clock(args, local)(), basis=args.cost)
    print(report.text())
    local.close()
    return 0


def _print_status(local: Any, now: Any) -> None:
    from burnguard.notify.content import money
    from burnguard.services.status import guardrail_status

    rows = [(s.guardrail, str(s.scope), s.period, money(s.spend) if s.spend else "",
             money(s.budget) if s.budget else "", f"{s.percent}%" if s.percent is not None else "",
             money(s.forecast) if s.forecast else "", s.state)
            for s in guardrail_status(local.policy, local.ledger, now)]
    print(table(rows, ["guardrail", "scope", "period", "spend", "budget", "used", "forecast", "state"]))


def cmd_guardrails(args: argparse.Namespace) -> int:
    local = _local(args)
    _print_status(local, _clock(args, local)())
    local.close()
    return 0


def _print_deliveries(local: Any) -> None:
    rows = [(d.delivery.provider, _short(d.delivery.source, 48), d.delivery.billing_period, d.delivery.version[:20],
             d.status + (" (counted)" if d.counted else ""), f"{d.rows:,}", d.reason[:60])
            for d in local.ledger.deliveries(include_superseded=True)]
    print(table(rows, ["cloud", "source", "period", "version", "status", "rows", "reason"]))


def cmd_deliveries(args: argparse.Namespace) -> int:
    local = _local(args)
    _print_deliveries(local)
    local.close()
    return 0


def _print_stops(local: Any, guardrail: str | None, active_only: bool = True) -> None:
    rows = [(s.guardrail, s.cloud, s.name or s.instance_id, s.instance_type, f"{s.stopped_at:%Y-%m-%d %H:%M}",
             "dry-run" if s.dry_run else ("resumed" if s.resumed_at else "stopped"))
            for s in local.ledger.stops(guardrail, active_only=active_only)]
    print(table(rows, ["guardrail", "cloud", "instance", "type", "at (UTC)", "state"]) if rows else "(none)")


def cmd_stopped(args: argparse.Namespace) -> int:
    local = _local(args)
    _print_stops(local, args.guardrail, active_only=not args.all)
    local.close()
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    local = _local(args)
    stops = local.ledger.stops(args.guardrail)
    if not stops:
        print(f"{args.guardrail}: nothing to resume")
        return 0
    _print_stops(local, args.guardrail)
    if not args.yes:
        answer = input(f"Start these {len(stops)} instance(s) again? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("Nothing started.")
            return 1
    report = local.service(_clock(args, local)).resume(args.guardrail, actor="cli")
    print(f"started {len(report.started)}, failed {len(report.failed)}")
    for record, reason in report.failed:
        print(f"  {record.cloud} {record.name or record.instance_id}: {reason}")
    local.close()
    return 0 if not report.failed else 1


SIGNING_SECRET_ENV = "BURNGUARD_SLACK_SIGNING_SECRET"


def cmd_serve(args: argparse.Namespace) -> int:
    import os

    from burnguard.adapters.local.deferral import ThreadDeferrer
    from burnguard.adapters.slack.http import make_server
    from burnguard.adapters.slack.respond import SLACK_HOOKS, WebhookResponder
    from burnguard.adapters.slack.verify import SlackRequestVerifier
    from burnguard.services.slack_endpoint import SlashService

    secret = os.environ.get(SIGNING_SECRET_ENV, "").strip()
    if not secret:
        raise InputError(f"set {SIGNING_SECRET_ENV} to the Slack app's signing secret (Basic Information page)")
    local = _local(args)
    as_of = _clock(args, local)  # questions judged at the end of the data (or --now); snoozes run in real time
    responder = WebhookResponder(allowed_prefixes=(*SLACK_HOOKS, *args.response_url_prefix))
    service = SlashService(SlackRequestVerifier(secret), local.ledger, local.policy, lambda: local.service(as_of),
                           deferrer=ThreadDeferrer(), responder=responder, as_of=as_of)
    server = make_server(service, args.host, args.port)
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
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    local = _local(args)
    rows = [(f"{e.at:%Y-%m-%d %H:%M:%S}", e.kind, e.actor, e.outcome, e.guardrail or "", e.scope or "",
             json.dumps(e.details, sort_keys=True)[:80]) for e in reversed(local.ledger.audit_log(limit=args.limit))]
    print(table(rows, ["at (UTC)", "kind", "actor", "outcome", "guardrail", "scope", "details"]))
    local.close()
    return 0


def cmd_policy_schema(args: argparse.Namespace) -> int:
    from burnguard.core.policy import policy_json_schema

    json.dump(policy_json_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def cmd_policy_check(args: argparse.Namespace) -> int:
    from burnguard.core.policy import PolicyError, load_policy

    try:
        policy = load_policy(Path(args.file))
    except PolicyError as exc:
        for issue in exc.issues:
            where = f"line {issue.line}, " if issue.line else ""
            print(f"{args.file}: {where}field {issue.field}: {issue.message}", file=sys.stderr)
        return 2
    print(f"{args.file}: OK, {len(policy.guardrails)} guardrail(s); dry_run={str(policy.safety.dry_run).lower()}")
    return 0


def cmd_invoke(args: argparse.Namespace) -> int:
    import os

    from burnguard.app.embedded import default_home
    from burnguard.app.invoke import InvokeContext, invoke

    home = Path(args.home) if args.home else default_home()
    report = invoke(args.cloud, args.function, Path(args.event), InvokeContext(home, dict(os.environ)))
    print(json.dumps(report, indent=2, default=str))
    return 0


def _add_home(p: argparse.ArgumentParser, policy: bool = False) -> None:
    p.add_argument("--home", help="state directory of the embedded mode (default .burnguard, or $BURNGUARD_HOME)")
    if policy:
        p.add_argument("--policy", help="policy file (default: the one the state directory was set up with)")
    p.add_argument("--now", help="evaluate at this UTC time (default: the end of the billing data)")


def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - the argparse declarations, one statement each
    parser = argparse.ArgumentParser(prog="burnguard", description="Guard cloud GPU spend per tag.")
    parser.add_argument("--version", action="version", version=f"burnguard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("normalize", help="normalize billing exports to FOCUS-named line items",
                       description="Read any AWS, Google Cloud, Azure or FOCUS billing export (format detected "
                                   "from its header) and write FOCUS-named line items, or a JSON summary.")
    p.add_argument("path", help="an export file, a delivery's manifest (its files, as one delivery), "
                                "or a directory of export files")
    p.add_argument("--to", choices=["jsonl", "csv", "parquet"], default="jsonl", help="output format (default jsonl)")
    p.add_argument("--out", help="output file (default: standard output)")
    p.add_argument("--summary", action="store_true",
                   help="print a JSON summary: format, rows, totals per currency and per tag")
    p.add_argument("--strict", action="store_true", help="stop at the first bad row instead of skipping it")
    p.add_argument("--currency", help="currency for files without a currency column (e.g. USD)")
    p.add_argument("--cost-basis", choices=["actual", "amortized"], help="Azure exports: the export's cost basis")
    p.add_argument("--tag-limit", type=int, default=50, help="tag values listed per key in a multi-file summary")
    p.set_defaults(func=cmd_normalize)

    p = sub.add_parser("demo", help="run the whole pipeline locally on the sample data in events/")
    _add_home(p, policy=True)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("ingest", help="ingest exports (files, directories, manifests) and budget notifications")
    p.add_argument("paths", nargs="+")
    p.add_argument("--currency", help="currency for files without a currency column")
    p.add_argument("--inventory", help="instance inventory JSON the local controllers act on "
                                       "(see events/inventory.json)")
    _add_home(p, policy=True)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("spend", help="spend of a tag scope, per cloud and service, with top resources")
    p.add_argument("--tag", required=True, help="key=value, or key=* for every value")
    p.add_argument("--period", help="YYYY-MM or YYYY-MM-DD (default: the month of the latest data)")
    p.add_argument("--cost", choices=["effective", "billed"], default="effective")
    _add_home(p)
    p.set_defaults(func=cmd_spend)

    p = sub.add_parser("guardrails", help="status of every guardrail: spend, budget, % used, forecast, state")
    _add_home(p)
    p.set_defaults(func=cmd_guardrails)

    p = sub.add_parser("deliveries", help="export deliveries in the ledger and their state")
    _add_home(p)
    p.set_defaults(func=cmd_deliveries)

    p = sub.add_parser("stopped", help="instances the guardrail stopped")
    p.add_argument("guardrail", nargs="?")
    p.add_argument("--all", action="store_true", help="include resumed and dry-run records")
    _add_home(p)
    p.set_defaults(func=cmd_stopped)

    p = sub.add_parser("resume", help="start again what a guardrail stopped")
    p.add_argument("guardrail")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _add_home(p)
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("serve", help="answer Slack slash commands over HTTP on the local state",
                       description=f"A local HTTP endpoint for the Slack app's slash command (/burnguard spend, "
                                   f"top, guardrails, stopped, snooze, resume). Requests are verified with the "
                                   f"signing secret in ${SIGNING_SECRET_ENV}; slow answers are posted to the "
                                   f"command's response_url.")
    p.add_argument("--port", type=int, default=3000, help="TCP port (default 3000; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; put a TLS proxy "
                                                      "or tunnel in front for Slack)")
    p.add_argument("--response-url-prefix", action="append", default=[], help=argparse.SUPPRESS)
    _add_home(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("audit", help="the audit log: every decision and action with its outcome")
    p.add_argument("--limit", type=int, default=50)
    _add_home(p)
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("invoke", help="run a cloud function's handler here on a sample event; print what it did",
                       description="Run a cloud function's handler on this machine on an event file (see events/), "
                                   "against the cloud configured in the environment (or an emulator), or with "
                                   "nothing configured on the embedded queue and ledger of --home.")
    p.add_argument("cloud", choices=list(CLOUDS))
    p.add_argument("function", help="ingest, budget, guardrail or slack (what the cloud has)")
    p.add_argument("event", help="the event JSON file")
    p.add_argument("--home", help="state directory of the embedded mode (default .burnguard, or $BURNGUARD_HOME)")
    p.set_defaults(func=cmd_invoke)

    p = sub.add_parser("policy", help="policy tools")
    psub = p.add_subparsers(dest="policy_command", required=True)
    q = psub.add_parser("schema", help="print the policy's JSON Schema")
    q.set_defaults(func=cmd_policy_schema)
    q = psub.add_parser("check", help="validate a policy file; errors name the line and the field")
    q.add_argument("file")
    q.set_defaults(func=cmd_policy_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from burnguard.app.runtime import tune_arrow

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
