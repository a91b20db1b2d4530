"""``burnguard meter``, ``burnguard estimates`` and ``burnguard prices refresh``: the live
estimate on the embedded mode (registered by :func:`register` from ``app/cli.py``)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from burnguard.core.errors import InputError
from burnguard.core.prices import PriceTable, merge, parse_price_table

PRICES_FILE = "gpu_prices.json"
MIN_EVERY = 60


def load_prices(home: Path | None = None) -> PriceTable:
    """The price table: the one ``prices refresh`` wrote into ``home``, else the shipped one."""
    if home is not None and (home / PRICES_FILE).is_file():
        path = home / PRICES_FILE
        return parse_price_table(path.read_text(), file=str(path))
    text = resources.files("burnguard").joinpath("data", PRICES_FILE).read_text()
    return parse_price_table(text, file=f"burnguard/data/{PRICES_FILE}")


def parse_every(text: str) -> int:
    """``5m``, ``90s``, ``1h`` → seconds (at least a minute)."""
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        seconds = int(text[:-1]) * units[text[-1]] if text and text[-1] in units else int(text) * 60
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 5m, 90s or 1h") from None
    if seconds < MIN_EVERY:
        raise argparse.ArgumentTypeError(f"{text!r} is too short: the meter ticks at most once a minute")
    return seconds


def meter_service(local: Any, clock: Callable[[], datetime]) -> Any:
    """The meter of the embedded mode: the inventory's controllers (stamping start and stop
    times on the clock), its SQLite ledger (bill and estimate), its notifier."""
    from burnguard.adapters.local.inventory import InventoryController
    from burnguard.core.clouds import CLOUDS
    from burnguard.ports.instances import InstanceController
    from burnguard.services.guardrail import GuardrailService
    from burnguard.services.meter import MeterService

    if local.inventory is None:
        raise InputError("the meter reads an instance inventory: pass --inventory FILE (see events/inventory.json)",
                         field="--inventory")
    controllers: dict[str, InstanceController] = {
        c: InventoryController(c, local.inventory, clock=clock) for c in CLOUDS}
    guardrail = GuardrailService(local.policy, local.ledger, local.notifier, controllers, clock=clock)
    guardrail.estimates = local.ledger
    return MeterService(local.policy, local.ledger, controllers, load_prices(local.home), guardrail, clock=clock)


def _tick_line(report: Any) -> str:
    accrued = ", ".join(f"{a.quantize(Decimal('0.01'))} {c}" for c, a in sorted(report.accrued.items())) or "0"
    sources = ", ".join(f"{n} {s}" for s, n in sorted(report.sources.items()))
    line = (f"{report.at:%Y-%m-%d %H:%M:%S} UTC: {report.running} of {report.read} GPU instances running,"
            f" accrued {accrued}" + (f" (rates: {sources})" if sources else ""))
    for p in report.projections:
        line += f"; {p.guardrail} {p.scope}: {p.text()}"
    return line


def cmd_meter(args: argparse.Namespace) -> int:
    from burnguard.app.cli_common import EXIT_FINDINGS, EXIT_OK
    from burnguard.app.cli_common import local_mode as _local
    from burnguard.services.meter import next_tick

    local = _local(args)
    meter = meter_service(local, lambda: datetime.now(UTC))
    code = EXIT_OK
    change = _event(args.event) if args.event else None
    try:
        while True:
            started = time.monotonic()
            report = meter.on_state_change(change) if change is not None else meter.tick()
            change = None
            print(_tick_line(report), flush=True)
            for problem in report.problems + report.unpriced:
                print(f"  {problem}", file=sys.stderr)
            if report.problems or any(r.failed for r in report.reports):
                code = EXIT_FINDINGS
            if args.once:
                return code
            # the next tick, or the projected crossing of a stopping threshold if sooner
            wake = next_tick(report, timedelta(seconds=args.every))
            time.sleep(max(0.0, min(args.every - (time.monotonic() - started),
                                    (wake - datetime.now(UTC)).total_seconds())))
    finally:
        local.close()


def _event(text: str) -> Any:
    """``CLOUD=FILE``: a state-change event of that cloud (see ``events/``)."""
    import json

    from burnguard.core.state_events import parse_state_change

    cloud, sep, path = text.partition("=")
    if not sep or cloud not in ("aws", "gcp", "azure"):
        raise InputError("give the event as CLOUD=FILE (aws, gcp or azure)", field="--event")
    try:
        event = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the event ({exc})", file=path, field="--event") from None
    if isinstance(event, dict) and isinstance(event.get("data"), dict) and "protoPayload" in event["data"]:
        event = event["data"]  # a CloudEvent as Eventarc delivers it: the log entry is its data
    change = parse_state_change(cloud, event)
    if change is None:
        raise InputError("the event is no instance start or stop", file=path, field="--event")
    return change


def cmd_estimates(args: argparse.Namespace) -> int:
    from burnguard.app.cli_common import EXIT_OK
    from burnguard.app.cli_common import dump_json as _dump
    from burnguard.app.cli_common import local_mode as _local
    from burnguard.app.tables import render
    from burnguard.services.meter import project

    local = _local(args)
    rows, errors = local.ledger.estimates(), local.ledger.estimate_errors()
    now = datetime.now(UTC)
    projections = project(local.policy, local.ledger, now)
    coverage = local.ledger.coverage()
    local.close()
    if args.json:
        _dump({"coverage": coverage, "estimates": [{
            "cloud": r.cloud, "instance_id": r.instance_id, "instance_type": r.instance_type, "rate_source": r.source,
            "currency": r.currency, "amount": str(r.amount.quantize(Decimal("0.01"))),
            "hours": str((Decimal(r.seconds) / 3600).quantize(Decimal("0.01"))), "from": r.first_hour,
            "accrued_until": r.accrued_until} for r in rows],
            "accuracy": [{"instance_type": e.instance_type, "rate_source": e.source, "instances": e.instances,
                          "hours": str(e.hours), "estimated": str(e.estimated.quantize(Decimal("0.01"))),
                          "billed": str(e.billed.quantize(Decimal("0.01"))), "currency": e.currency,
                          "error_percent": str(e.percent) if e.percent is not None else None} for e in errors],
            "projections": [{"guardrail": p.guardrail, "scope": str(p.scope), "rate_per_hour": str(p.rate.amount),
                             "currency": p.rate.currency, "threshold": p.label, "at": p.at} for p in projections]})
        return EXIT_OK
    cov = ", ".join(f"{c} until {t:%Y-%m-%d %H:%M}" for c, t in sorted(coverage.items())) or "no counted delivery"
    print(f"billing covers: {cov} UTC; estimates count after that")
    render([(r.cloud, r.instance_id, r.instance_type, r.source,
             f"{(Decimal(r.seconds) / 3600).quantize(Decimal('0.01'))}",
             f"{r.amount.quantize(Decimal('0.01'))} {r.currency}") for r in rows],
           ["cloud", "instance", "type", "rate source", "hours", "estimated"], right=("hours", "estimated"),
           widths={"instance": 48})
    if errors:
        print("\naccuracy (estimates against the bill, for the hours it covered):")
        render([(e.instance_type, e.source, str(e.instances), str(e.hours),
                 f"{e.estimated.quantize(Decimal('0.01'))}", f"{e.billed.quantize(Decimal('0.01'))} {e.currency}",
                 f"{e.percent:+}%" if e.percent is not None else "n/a") for e in errors],
               ["type", "rate source", "instances", "hours", "estimated", "billed", "error"],
               right=("instances", "hours", "estimated", "billed", "error"))
    for p in projections:
        print(f"{p.guardrail} {p.scope}: {p.text()}")
    return EXIT_OK


def _refresh_azure(table: PriceTable, url: str) -> tuple[list[Any], str]:
    from burnguard.adapters.azure.prices import AzureRetailPrices

    skus = sorted({e.instance_type for e in table.entries if e.cloud == "azure"})
    return AzureRetailPrices(url).prices(skus), f"Azure Retail Prices API ({url})"


def _refresh_aws(table: PriceTable, endpoint: str | None) -> tuple[list[Any], str]:
    from burnguard.adapters.aws.prices import AwsPriceList

    client = None
    if endpoint:
        import boto3

        client = boto3.client("pricing", region_name="us-east-1", endpoint_url=endpoint)
    types = sorted({e.instance_type for e in table.entries if e.cloud == "aws"})
    return AwsPriceList(client).prices(types), "AWS Price List Query API (pricing:GetProducts, us-east-1)"


SHAPES_FILE = "gce_machine_shapes.json"


def load_machine_shapes() -> Any:
    """What each Compute Engine GPU machine type is billed for (shipped data)."""
    from burnguard.core.prices import parse_machine_shapes

    text = resources.files("burnguard").joinpath("data", SHAPES_FILE).read_text()
    return parse_machine_shapes(text, file=f"burnguard/data/{SHAPES_FILE}")


def _refresh_gcp(table: PriceTable, url: str | None) -> tuple[list[Any], str]:
    """The table's Compute Engine types, in the regions the table prices them in (us-central1
    when it has none), composed from the Cloud Billing Catalog's SKUs."""
    from burnguard.adapters.gcp.prices import CATALOG_URL, GceCatalogPrices
    from burnguard.core.prices import CatalogError

    session = None
    if url:  # a stand-in: no credentials
        import requests

        session = requests.Session()
    shapes = load_machine_shapes()
    wanted = {e.instance_type for e in table.entries if e.cloud == "gcp"}
    regions = sorted({e.region for e in table.entries if e.cloud == "gcp" and e.region}) or ["us-central1"]
    catalog = GceCatalogPrices(session, base_url=url or CATALOG_URL, currency=table.currency)
    entries, missing = catalog.prices({t: s for t, s in shapes.items() if t in wanted or not wanted}, regions)
    if not entries and missing:  # nothing composed: the catalog is not what it was
        raise CatalogError(f"the catalog priced none of the {len(missing)} machine types ({missing[0]}, ...)")
    for line in missing:
        print(f"burnguard: gcp {line}; its price stays as it was", file=sys.stderr)
    for itype in sorted(wanted - set(shapes)):
        print(f"burnguard: gcp {itype}: no machine shape in burnguard/data/{SHAPES_FILE}; its price stays as it was",
              file=sys.stderr)
    return entries, f"Google Cloud Billing Catalog ({url or CATALOG_URL}/v1/services/6F81-5844-456A/skus, composed)"


def cmd_prices_refresh(args: argparse.Namespace) -> int:
    from burnguard.adapters.azure.prices import RETAIL_PRICES_URL
    from burnguard.app.cli_common import EXIT_FINDINGS, EXIT_OK
    from burnguard.app.cli_common import home_of as _home

    home = _home(args)
    table = load_prices(home)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    fresh: list[Any] = []
    sources: dict[str, str] = {}
    failed: list[str] = []
    readers = {"azure": lambda: _refresh_azure(table, args.azure_url or RETAIL_PRICES_URL),
               "aws": lambda: _refresh_aws(table, args.aws_endpoint),
               "gcp": lambda: _refresh_gcp(table, args.gcp_url)}
    for cloud in ([args.cloud] if args.cloud else ["aws", "azure", "gcp"]):
        try:
            entries, source = readers[cloud]()
        except Exception as exc:  # offline, no credentials, a refused call: one line, the rest goes on
            reason = getattr(exc, "reason", None) or exc
            print(f"burnguard: cannot read the {cloud} prices ({type(exc).__name__}: {reason}); they stay as they"
                  f" were (dated {table.date})", file=sys.stderr)
            failed.append(cloud)
            continue
        fresh += entries
        sources[cloud] = f"{source}, {today}"
        print(f"{len(entries)} {cloud} prices read")
    if not sources:
        return EXIT_FINDINGS
    updated = merge(table, fresh, today, sources)
    out = Path(args.out) if args.out else home / "gpu_prices.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(updated.to_json())
    kept = f"; {', '.join(failed)} prices kept from {table.date}" if failed else ""
    print(f"table written to {out}{kept}")
    return EXIT_FINDINGS if failed else EXIT_OK


def register(sub: Any, add_home: Callable[..., None], add_json: Callable[..., None], epilog: str) -> None:
    p = sub.add_parser("meter", help="the live estimate: read running instances every few minutes and accrue",
                       description="Read the instances of every guardrail's scope (the inventory) every --every, "
                                   "accrue hours x hourly rate for the hours no counted bill covers yet, and "
                                   "evaluate the guardrails with billed + estimated spend.", epilog=epilog)
    p.add_argument("--every", type=parse_every, default=300, help="tick interval: 5m (default), 90s, 1h; at least 1m")
    p.add_argument("--once", action="store_true", help="one tick, then exit")
    p.add_argument("--event", metavar="CLOUD=FILE",
                   help="first read at this instance state-change event (EC2 EventBridge notification, GCE audit "
                        "log entry, Azure Event Grid resource event), taking its time as the start or stop")
    p.add_argument("--inventory", help="instance inventory JSON (see events/inventory.json)")
    add_home(p, policy=True, now=False)
    p.set_defaults(func=cmd_meter)

    p = sub.add_parser("estimates", help="the live estimate per instance, its accuracy against the bill, projections",
                       epilog=epilog)
    add_json(p, "estimates")
    add_home(p, now=False)
    p.set_defaults(func=cmd_estimates)

    p = sub.add_parser("prices", help="the price table of GPU instance types the estimate falls back on", epilog=epilog)
    psub = p.add_subparsers(dest="prices_command", required=True, metavar="COMMAND")
    q = psub.add_parser("refresh", help="read the clouds' public price lists into the local price table",
                        epilog=epilog)
    q.add_argument("--out", help="where to write the table (default: gpu_prices.json in --home)")
    q.add_argument("--cloud", choices=["aws", "azure", "gcp"],
                   help="only this cloud (default all three; AWS needs credentials allowed pricing:GetProducts, "
                        "Google Cloud any Application Default Credentials)")
    q.add_argument("--azure-url", help=argparse.SUPPRESS)
    q.add_argument("--aws-endpoint", help=argparse.SUPPRESS)
    q.add_argument("--gcp-url", help=argparse.SUPPRESS)
    add_home(q, now=False)
    q.set_defaults(func=cmd_prices_refresh)
