"""``burnguard demo`` end to end on the sample data in ``events/``: the story it tells, checked
against an independent reading of the raw files.

The expected side never calls burnguard. The exports are read with ``csv``, ``json`` and ``gzip``
into ``Decimal``, and the rules are re-stated here from the documentation:

* tags: AWS ``resourceTags/user:<key>`` columns (empty cell = no tag); Azure tag keys folded to
  lower case; Google Cloud project labels overlaid by resource labels; scope keys compared
  case-insensitively, values exactly;
* effective cost: CUR Savings Plan covered usage at its effective cost, negation 0, recurring
  fee its unused commitment; Azure ActualCost the cost; Google Cloud cost plus credits;
* a month's spend: charges of up to a day count on the day they start, longer ones (tax,
  monthly adjustments) in their billing period;
* deliveries: the demo offers the manifests in path order; per export slice the run produced
  last counts (a CUR manifest has no time: the later arrival wins);
* edge-triggered decisions after each counted delivery; a stop touches running GPU instances
  of the scope without the protect tag.

The demo runs once per module (it takes a few seconds); its output is captured like capsys does.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import EVENTS, cents, dec, read_rows

EXPORTS = EVENTS / "exports"
POLICY: dict[str, Any] = yaml.safe_load((EVENTS / "policies" / "demo.yaml").read_text())
INVENTORY: list[dict[str, Any]] = json.loads((EVENTS / "inventory.json").read_text())["instances"]
SEPT_START = datetime(2024, 9, 1, tzinfo=UTC)
SEPT_END = datetime(2024, 10, 1, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
PROTECT_KEYS = {"burnguard:protect", "burnguard-protect", "burnguard_protect"}
AWS_GPU_FAMILIES = {"p4d", "p5", "g4dn", "g5", "g6", "g6e"}
GCP_GPU_SERIES = ("a2-", "a3-", "g2-")


# -- the raw exports ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Charge:
    cloud: str
    start: datetime
    end: datetime
    period: str  # YYYY-MM of the billing period
    billed: Decimal
    effective: Decimal
    tags: dict[str, str]
    gpu: bool
    resource: str = ""

    @property
    def dated(self) -> bool:
        """A charge of up to a day counts on the day it starts; a longer one in its period."""
        return self.end - self.start <= DAY

    @property
    def in_september(self) -> bool:
        return SEPT_START <= self.start < SEPT_END if self.dated else self.period == "2024-09"


@dataclass
class RawDelivery:
    cloud: str
    source: str
    version: str
    produced: str | None  # ISO text (Azure submittedTime, GCS createdAt); None for CUR
    manifests: list[Path]
    files: list[Path]
    promised_rows: int | None
    charges: list[Charge] = field(default_factory=list)


def utc(text: str, fmt: str | None = None) -> datetime:
    if fmt:
        return datetime.strptime(text, fmt).replace(tzinfo=UTC)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def tag(tags: dict[str, str], key: str) -> str | None:
    return next((v for k, v in tags.items() if k.casefold() == key.casefold()), None)


def aws_charges(path: Path) -> list[Charge]:
    _, rows = read_rows(path)
    out = []
    for r in rows:
        kind = r["lineItem/LineItemType"]
        billed = dec(r["lineItem/UnblendedCost"])
        if kind == "SavingsPlanCoveredUsage":
            effective = dec(r["savingsPlan/SavingsPlanEffectiveCost"])
        elif kind == "SavingsPlanNegation":
            effective = Decimal(0)
        elif kind == "SavingsPlanRecurringFee":
            effective = dec(r["savingsPlan/TotalCommitmentToDate"]) - dec(r["savingsPlan/UsedCommitment"])
        else:
            assert kind in ("Usage", "Tax"), kind
            effective = billed
        tags = {k.removeprefix("resourceTags/").removeprefix("user:"): v for k, v in r.items()
                if k.startswith("resourceTags/") and v}
        family = (r["product/instanceType"] or r["lineItem/UsageType"].rpartition(":")[2]).split(".")[0]
        out.append(Charge("aws", utc(r["lineItem/UsageStartDate"]), utc(r["lineItem/UsageEndDate"]),
                          r["bill/BillingPeriodStartDate"][:7], billed, effective, tags, family in AWS_GPU_FAMILIES,
                          r["lineItem/ResourceId"]))
    return out


def azure_charges(path: Path) -> list[Charge]:
    _, rows = read_rows(path)
    out = []
    for r in rows:
        day = utc(r["date"], "%m/%d/%Y")
        info = json.loads(r["additionalInfo"]) if r["additionalInfo"] else {}
        tags = {k.lower(): v for k, v in json.loads(r["tags"] or "{}").items()}
        cost = dec(r["costInBillingCurrency"])
        period = utc(r["billingPeriodStartDate"], "%m/%d/%Y").strftime("%Y-%m")
        out.append(Charge("azure", day, day + DAY, period, cost, cost, tags,
                          str(info.get("ServiceType", "")).startswith("Standard_N"), r["ResourceId"]))
    return out


def json_money(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def gcp_records(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line, parse_float=Decimal) for line in fh if line.strip()]


def gcp_charges(path: Path) -> list[Charge]:
    out = []
    for r in gcp_records(path):
        cost = json_money(r["cost"])
        credits = sum((json_money(c["amount"]) for c in r.get("credits") or []), Decimal(0))
        tags = {p["key"]: p["value"] or "" for p in r["project"]["labels"]}
        tags.update({p["key"]: p["value"] or "" for p in r["labels"]})
        spec = {p["key"]: p["value"] for p in r["system_labels"]}.get("compute.googleapis.com/machine_spec", "")
        gpu = spec.startswith(GCP_GPU_SERIES) or " GPU " in f" {r['sku']['description']} "
        month = r["invoice"]["month"]
        out.append(Charge("gcp", utc(r["usage_start_time"], "%Y-%m-%d %H:%M:%S UTC"),
                          utc(r["usage_end_time"], "%Y-%m-%d %H:%M:%S UTC"), f"{month[:4]}-{month[4:]}", cost,
                          cost + credits, tags, gpu, (r.get("resource") or {}).get("global_name") or ""))
    return out


def raw_deliveries() -> list[RawDelivery]:
    """The deliveries in the order the demo offers their manifests (sorted paths)."""
    found: dict[tuple[str, str, str], RawDelivery] = {}
    for manifest in sorted(p for p in EXPORTS.rglob("*") if p.is_file() and p.name.lower().endswith("manifest.json")):
        cloud, bucket_name = manifest.relative_to(EXPORTS).parts[:2]
        bucket = EXPORTS / cloud / bucket_name
        doc = json.loads(manifest.read_text())
        if cloud == "aws":
            source, version, produced = f"{doc['account']}|{doc['reportName']}", doc["assemblyId"], None
            files, promised = [bucket / k for k in doc["reportKeys"]], None
        elif cloud == "azure":
            source = doc["exportConfig"]["resourceId"].lower()
            version, produced = doc["runInfo"]["runId"], doc["runInfo"]["submittedTime"]
            files, promised = [bucket / b["blobName"] for b in doc["blobs"]], doc["dataRowCount"]
        else:
            source, version, produced = doc["billingAccountId"], doc["runId"], doc["createdAt"]
            files, promised = [manifest.parent / f["name"] for f in doc["files"]], doc["totalRows"]
        ident = (cloud, source, version)
        if ident in found:
            found[ident].manifests.append(manifest)
            continue
        reader = {"aws": aws_charges, "azure": azure_charges, "gcp": gcp_charges}[cloud]
        found[ident] = RawDelivery(cloud, source, version, produced, [manifest], files, promised,
                                   [c for f in files for c in reader(f)])
    return list(found.values())


DELIVERIES = raw_deliveries()


def steps() -> list[tuple[RawDelivery, list[RawDelivery] | None]]:
    """Each delivery in arrival order, with what counts after it (``None``: it was superseded)."""
    current: dict[tuple[str, str], RawDelivery] = {}
    out: list[tuple[RawDelivery, list[RawDelivery] | None]] = []
    for d in DELIVERIES:
        before = current.get((d.cloud, d.source))
        if before is not None and before.produced and d.produced and before.produced > d.produced:
            out.append((d, None))
            continue
        current[(d.cloud, d.source)] = d
        out.append((d, list(current.values())))
    return out


STEPS = steps()
COUNTED = STEPS[-1][1] or []
CHARGES = [c for d in COUNTED for c in d.charges]


# -- the policy, re-read from the YAML -------------------------------------------------------------

def guardrail(name: str) -> dict[str, Any]:
    return next(g for g in POLICY["guardrails"] if g["name"] == name)


def scope(g: dict[str, Any]) -> tuple[str, str | None]:
    key, _, value = g["scope"].partition("=")
    return key, None if value == "*" else value


def budget(g: dict[str, Any]) -> Decimal:
    b = g["budget"]
    return Decimal(str(b["amount"])) if isinstance(b, dict) else Decimal(str(b).split()[0])


def percent(text: object) -> Decimal:
    return Decimal(str(text).rstrip("%"))


def spend(charges: Iterable[Charge], key: str, value: str | None) -> dict[str, Decimal]:
    out: dict[str, Decimal] = defaultdict(Decimal)
    for c in charges:
        found = tag(c.tags, key)
        if c.in_september and found is not None and (value is None or found == value):
            out[found] += c.effective
    return dict(out)


def data_end(charges: Iterable[Charge]) -> datetime:
    return max(c.end for c in charges if c.dated and c.end > c.start)


def gpu_burn(charges: Iterable[Charge], key: str, value: str | None, until: datetime,
             window: int) -> dict[str, Decimal]:
    """GPU effective cost per hour over the ``window`` hours before ``until`` (charges of up to a
    day spread evenly over the hours they cover)."""
    since = until - timedelta(hours=window)
    total: dict[str, Decimal] = defaultdict(Decimal)
    for c in charges:
        found = tag(c.tags, key)
        if not (c.gpu and c.dated and c.end > c.start and found is not None and (value is None or found == value)):
            continue
        n = math.ceil((c.end - c.start) / HOUR)
        first = c.start.replace(minute=0, second=0, microsecond=0)
        for i in range(n):
            if since <= first + i * HOUR < until:
                total[found] += c.effective / n
    return {v: t / window for v, t in total.items()}


@dataclass(frozen=True)
class Expected:
    kind: str  # threshold | forecast | burn-rate
    guardrail: str
    scope: str
    label: str
    crossed: tuple[str, ...]
    actions: frozenset[str]
    amount: Decimal  # spend, forecast or rate per hour


def expected_decisions() -> list[Expected]:
    """Every decision of the demo's run, re-derived delivery by delivery (edge-triggered)."""
    announced: set[tuple[str, ...]] = set()
    out: list[Expected] = []
    for _, counted in STEPS:
        if counted is None:
            continue
        charges = [c for d in counted for c in d.charges]
        until = data_end(charges)
        month = Decimal(int((SEPT_END - SEPT_START).total_seconds()))
        elapsed = Decimal(int((min(until, SEPT_END) - SEPT_START).total_seconds()))
        for g in POLICY["guardrails"]:
            key, value = scope(g)
            if "budget" in g:
                limit = budget(g)
                for v, spent in sorted(spend(charges, key, value).items()):
                    for kind, amount, levels in (("threshold", spent, g.get("thresholds", [])),
                                                 ("forecast", spent * month / elapsed, g.get("forecast_thresholds", []))):
                        new = [t for t in sorted(levels, key=lambda t: percent(t["at"]))
                               if amount >= limit * percent(t["at"]) / 100
                               and (kind, g["name"], v, str(t["at"])) not in announced]
                        announced |= {(kind, g["name"], v, str(t["at"])) for t in new}
                        if new:
                            prefix = "forecast " if kind == "forecast" else ""
                            out.append(Expected(kind, g["name"], f"{key}={v}", prefix + str(new[-1]["at"]),
                                                tuple(prefix + str(t["at"]) for t in new),
                                                frozenset(a for t in new for a in t["actions"]), amount))
            if "burn_rate" in g:
                burn = g["burn_rate"]
                for v, rate in sorted(gpu_burn(charges, key, value, until, burn["window_hours"]).items()):
                    ident = ("burn", g["name"], v, until.strftime("%Y-%m-%d"))
                    if rate > Decimal(str(burn["gpu_per_hour"]["limit"])) and ident not in announced:
                        announced.add(ident)
                        out.append(Expected("burn-rate", g["name"], f"{key}={v}", "burn rate", (),
                                            frozenset(burn["actions"]), rate))
    return out


DECISIONS = expected_decisions()


# -- instances and the safety rules ----------------------------------------------------------------

def is_gpu(inst: dict[str, Any]) -> bool:
    kind = inst["type"]
    if inst["cloud"] == "aws":
        return kind.split(".")[0] in AWS_GPU_FAMILIES
    if inst["cloud"] == "gcp":
        return kind.startswith(GCP_GPU_SERIES) or bool(inst.get("accelerators"))
    return kind.startswith("Standard_N")


def is_protected(inst: dict[str, Any]) -> bool:
    return any(k.casefold() in PROTECT_KEYS and str(v).strip().casefold() == "true" for k, v in inst["tags"].items())


def in_scope(inst: dict[str, Any], scope_text: str) -> bool:
    key, _, value = scope_text.partition("=")
    return tag(inst["tags"], key) == value


@dataclass
class StopPlan:
    stopped: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # guardrail -> ids
    failed: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))  # guardrail -> id: why
    protected: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # guardrail -> names


def expected_stops() -> StopPlan:
    plan = StopPlan()
    state = {i["id"]: i["state"] for i in INVENTORY}
    for d in DECISIONS:
        if "stop" not in d.actions:
            continue
        for inst in INVENTORY:
            if not in_scope(inst, d.scope):
                continue
            if is_protected(inst):
                plan.protected[d.guardrail].add(inst["name"])
            elif state[inst["id"]] == "running" and is_gpu(inst):
                if inst.get("fail_stop"):
                    plan.failed[d.guardrail][inst["id"]] = inst["fail_stop"]
                else:
                    plan.stopped[d.guardrail].add(inst["id"])
                    state[inst["id"]] = "stopped"
    return plan


STOPS = expected_stops()
STOPPED_IDS = {i for ids in STOPS.stopped.values() for i in ids}


# -- the demo run ---------------------------------------------------------------------------------

@dataclass
class DemoRun:
    home: Path
    rc: int
    out: str
    err: str

    def messages(self) -> list[tuple[str, str, list[str]]]:
        """The console "Slack" messages: (channel, first line, following lines)."""
        found: list[tuple[str, str, list[str]]] = []
        for line in self.out.splitlines():
            m = re.match(r"^\[slack (\S+)\] (.*)$", line)
            if m:
                found.append((m.group(1), m.group(2), []))
            elif found and line.startswith("    "):
                found[-1][2].append(line.strip())
            elif found and line.strip():
                found.append(("", "", []))  # end of the last message
        return [f for f in found if f[0]]

    def section(self, number: int) -> str:
        return self.out.split(f"== {number}.", 1)[1].split("\n== ", 1)[0]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    from burnguard.app.cli import main

    home = tmp_path_factory.mktemp("demo") / "home"
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["demo", "--home", str(home)])
    return DemoRun(home, rc, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def ledger(demo: DemoRun) -> Any:
    from burnguard.adapters.local.ledger import SqliteLedger

    led = SqliteLedger(demo.home / "ledger.sqlite")
    yield led
    led.close()


def usd(amount: Decimal) -> str:
    return f"{cents(amount):,} USD"


# -- the sample files themselves --------------------------------------------------------------------

def test_manifests_describe_their_files() -> None:
    clouds = {d.cloud for d in DELIVERIES}
    assert clouds == {"aws", "azure", "gcp"}
    for d in DELIVERIES:
        assert all(f.exists() for f in d.files), d.files
        if d.promised_rows is not None:
            assert d.promised_rows == len(d.charges), d.manifests
    cur = next(d for d in DELIVERIES if d.cloud == "aws")
    # One CUR assembly, its manifest in the period folder and the assembly folder, byte for byte.
    assert len(cur.manifests) == 2
    assert cur.manifests[0].read_bytes() == cur.manifests[1].read_bytes()
    assert {m.parent.name for m in cur.manifests} == {cur.version, "20240901-20241001"}
    assert all(f.stat().st_size < 300_000 for f in cur.files)
    header, rows = read_rows(cur.files[0])
    assert {"resourceTags/user:team", "resourceTags/user:project", "resourceTags/user:burnguard:protect"} <= set(header)
    kinds = {r["lineItem/LineItemType"] for r in rows}
    assert {"Usage", "Tax", "SavingsPlanCoveredUsage", "SavingsPlanNegation"} <= kinds
    azure = [d for d in DELIVERIES if d.cloud == "azure"]
    assert len(azure) == 2 and len({d.source for d in azure}) == 1  # two runs of one export
    # The GCS run holds the rows of the reader's samples (events/samples/gcp), byte for byte.
    [gcp] = [d for d in DELIVERIES if d.cloud == "gcp"]
    assert gcp.files[0].read_bytes() == (EVENTS / "samples" / "gcp" / "billing-export-202409.jsonl.gz").read_bytes()



def test_inventory_names_the_machines_of_the_exports() -> None:
    charges = [c for d in DELIVERIES for c in d.charges]
    assert len({i["id"] for i in INVENTORY}) == len(INVENTORY)
    for inst in INVENTORY:
        billed = [c for c in charges if c.cloud == inst["cloud"]
                  and (c.resource == inst["id"] or c.resource.endswith(f"/instances/{inst['id']}"))]
        assert billed, f"{inst['name']} is not in the {inst['cloud']} export"
        assert {tag(c.tags, "team") for c in billed} == {tag(inst["tags"], "team")}, inst["name"]
        assert {tag(c.tags, "project") for c in billed} == {tag(inst["tags"], "project")}, inst["name"]
        assert any(c.gpu for c in billed) == is_gpu(inst), inst["name"]  # (egress lines are not GPU)
        assert inst["hourly_cost"] and Decimal(inst["hourly_cost"]) > 0
    teams = {tag(i["tags"], "team") for i in INVENTORY if is_gpu(i)}
    assert {"ml-research", "inference", "web", "platform"} <= teams


def test_story_numbers_are_in_the_intended_ranges() -> None:
    ml = guardrail("ml-research-monthly")
    key, value = scope(ml)
    total = spend(CHARGES, key, value)[value or ""]
    assert Decimal(110) <= total / budget(ml) * 100 <= Decimal(120)
    projects = guardrail("per-project-monthly")
    shares = {v: s / budget(projects) * 100 for v, s in spend(CHARGES, *scope(projects)).items()}
    assert 1 <= sum(1 for s in shares.values() if s >= 80) <= 2
    burn = guardrail("inference-burn-rate")
    rate = gpu_burn(CHARGES, *scope(burn), data_end(CHARGES), burn["burn_rate"]["window_hours"])
    assert max(rate.values()) > Decimal(str(burn["burn_rate"]["gpu_per_hour"]["limit"]))
    assert data_end(CHARGES) == datetime(2024, 9, 21, tzinfo=UTC)


# -- the run --------------------------------------------------------------------------------------

def test_demo_runs_without_dead_letters(demo: DemoRun) -> None:
    from burnguard.adapters.local.queue import SqliteQueue

    assert demo.rc == 0, demo.err
    assert "dead letter" not in demo.out and "dead-lettered" not in demo.out
    queue = SqliteQueue(demo.home / "queue.sqlite")
    try:
        assert queue.pending() == 0
        assert queue.dead_letters() == []
    finally:
        queue.close()
    stops = sum(len(ids) for ids in STOPS.stopped.values())
    m = re.search(r"guardrail: (\d+) messages handled, (\d+) decisions, (\d+) stops\n", demo.out)
    assert m is not None
    assert int(m.group(3)) == stops
    natives = [h for _, h, _ in demo.messages() if "native budget alert" in h]
    assert int(m.group(2)) == len(DECISIONS) + len(natives)


def test_threshold_and_forecast_messages_match_the_raw_exports(demo: DemoRun) -> None:
    got = []
    for _, headline, lines in demo.messages():
        m = re.match(r"^(\S+): (\S+) (crossed (\S+) of its budget|is forecast to cross (\S+))$", headline)
        if m:
            kind = "threshold" if m.group(4) else "forecast"
            label = m.group(4) or f"forecast {m.group(5)}"
            crossed = next((ln.removeprefix("Crossed at once: ").split(", ") for ln in lines
                            if ln.startswith("Crossed at once: ")), [label])
            amount = next(ln for ln in lines if ln.startswith("Spend " if kind == "threshold" else "Forecast "))
            got.append((kind, m.group(1), m.group(2), label, tuple(crossed), amount))
    expected = [(d.kind, d.guardrail, d.scope, d.label, d.crossed,
                 f"Spend {usd(d.amount)} of {usd(budget(guardrail(d.guardrail)))} "
                 f"({(d.amount / budget(guardrail(d.guardrail)) * 100).quantize(Decimal('0.1'))}% used), "
                 "period 2024-09" if d.kind == "threshold" else f"Forecast for the period: {usd(d.amount)}")
                for d in DECISIONS if d.kind != "burn-rate"]
    assert sorted(got) == sorted(expected)
    # The headline: ml-research crosses 50, 80 and 100 % in one decision, which stops.
    ml = [d for d in DECISIONS if d.guardrail == "ml-research-monthly" and d.kind == "threshold"]
    assert len(ml) == 1
    assert ml[0].crossed == ("50%", "80%", "100%") and "stop" in ml[0].actions
    assert any(d.kind == "forecast" and d.guardrail == "ml-research-monthly" for d in DECISIONS)


def test_ml_research_spend_per_cloud_in_the_ledger_and_the_status(demo: DemoRun, ledger: Any) -> None:
    from burnguard.core.ledger import Scope, Window

    g = guardrail("ml-research-monthly")
    key, value = scope(g)
    assert value is not None
    window = Window(date(2024, 9, 1), date(2024, 10, 1), ("2024-09",))
    for cloud in ("aws", "azure", "gcp"):
        expected = spend((c for c in CHARGES if c.cloud == cloud), key, value)[value]
        rows = ledger.spend(Scope(key, value), window, clouds=[cloud])
        assert [(r.scope_value, r.currency) for r in rows] == [(value, "USD")]
        assert abs(rows[0].amount - expected) < Decimal("0.000001"), cloud
    total = spend(CHARGES, key, value)[value]
    row = next(ln for ln in demo.section(5).splitlines() if ln.startswith(f"{g['name']} "))
    used = (total / budget(g) * 100).quantize(Decimal("0.1"))
    assert usd(total) in row and f"{used}%" in row
    assert f"crossed 100%, {len(STOPS.stopped[g['name']])} stopped" in row
    projects = guardrail("per-project-monthly")
    for v, spent in spend(CHARGES, *scope(projects)).items():
        line = next(ln for ln in demo.section(5).splitlines() if f" project={v} " in ln)
        assert usd(spent) in line


def test_burn_rate_decision_and_status(demo: DemoRun) -> None:
    g = guardrail("inference-burn-rate")
    [decision] = [d for d in DECISIONS if d.kind == "burn-rate"]
    channel, headline, lines = next(m for m in demo.messages() if m[1].startswith(f"{g['name']}:"))
    assert channel == g["notify_channel"]
    limit = Decimal(str(g["burn_rate"]["gpu_per_hour"]["limit"]))
    assert headline == (f"{g['name']}: {decision.scope} burns {usd(decision.amount.quantize(Decimal('0.01')))}/h "
                        f"of GPU (limit {usd(limit)}/h)")
    final = gpu_burn(CHARGES, *scope(g), data_end(CHARGES), g["burn_rate"]["window_hours"])
    [rate] = final.values()
    row = next(ln for ln in demo.section(5).splitlines() if ln.startswith(f"{g['name']} "))
    assert f"burn {rate.quantize(Decimal('0.01'))} USD/h > {limit}" in row
    names = {i["id"]: i["name"] for i in INVENTORY}
    stopped_line = next(ln for ln in lines if ln.startswith("Stopped "))
    assert {names[i] for i in STOPS.stopped[g["name"]]} == set(re.findall(r" (\S+) \(", stopped_line))


def gpu_by_resource(charges: Iterable[Charge], key: str, value: str, since: datetime,
                    until: datetime) -> dict[tuple[str, str], Decimal]:
    """GPU effective cost per (cloud, resource) over the hours ``[since, until)`` (spread evenly
    over the hours a charge covers, as :func:`gpu_burn`)."""
    out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for c in charges:
        if not (c.gpu and c.dated and c.end > c.start and c.resource and tag(c.tags, key) == value):
            continue
        n = math.ceil((c.end - c.start) / HOUR)
        first = c.start.replace(minute=0, second=0, microsecond=0)
        out[(c.cloud, c.resource)] += c.effective / n * sum(since <= first + i * HOUR < until for i in range(n))
    return {k: v for k, v in out.items() if v}


def test_the_burn_rate_alert_covers_its_window_and_saves_no_more_than_the_burn(demo: DemoRun) -> None:
    """Per cloud and top resources over the alert's hours (not the whole day); the saving from
    each stopped instance's effective cost in those hours (a Savings Plan covered one at its
    effective cost, not its on-demand price), so never more than the burn it stops."""
    g = guardrail("inference-burn-rate")
    key, value = scope(g)
    assert value is not None
    hours = g["burn_rate"]["window_hours"]
    limit = Decimal(str(g["burn_rate"]["gpu_per_hour"]["limit"]))
    # The delivery after which the burn first crossed (the decisions are edge-triggered).
    charges, until = next((cs, data_end(cs)) for cs in ([c for d in counted for c in d.charges]
                                                        for _, counted in STEPS if counted is not None)
                          if gpu_burn(cs, key, value, data_end(cs), hours).get(value, Decimal(0)) > limit)
    rate = gpu_burn(charges, key, value, until, hours)[value]
    spent = gpu_by_resource(charges, key, value, until - timedelta(hours=hours), until)
    _, headline, lines = next(m for m in demo.messages() if m[1].startswith(f"{g['name']}:"))
    assert f"burns {usd(rate.quantize(Decimal('0.01')))}/h" in headline
    per_cloud: dict[str, Decimal] = defaultdict(Decimal)
    for (cloud, _), amount in spent.items():
        per_cloud[cloud] += amount
    names = {"aws": "AWS", "gcp": "Google Cloud", "azure": "Azure"}
    assert next(ln for ln in lines if ln.startswith("Per cloud: ")) == "Per cloud: " + ", ".join(
        f"{names[c]} {cents(a):,}" for c, a in sorted(per_cloud.items(), key=lambda kv: -kv[1]))
    top = sorted(spent.items(), key=lambda kv: (-kv[1], kv[0][1]))[:5]
    shown = re.findall(r"(\S+) \([^)]*\) ([\d,.]+) USD", next(ln for ln in lines if ln.startswith("Top resources: ")))
    assert shown == [(rid, f"{cents(a):,}") for (_, rid), a in top]
    # The saving: each stopped instance's share of the burn; one with no GPU spend in the window
    # is named apart (its on-demand price is not part of the burn).
    inventory = {i["id"]: i for i in INVENTORY}
    stopped = [inventory[i] for i in STOPS.stopped[g["name"]]]

    def billed(inst: dict[str, Any]) -> Decimal | None:
        mine = [a for (cloud, rid), a in spent.items() if cloud == inst["cloud"]
                and (rid.lower() == inst["id"].lower() or rid.lower().endswith("/" + inst["id"].lower()))]
        return sum(mine, Decimal(0)) / hours if mine else None

    saving = sum((b for i in stopped if (b := billed(i)) is not None), Decimal(0))
    on_demand = sum((Decimal(i["hourly_cost"]) for i in stopped), Decimal(0))
    assert saving <= rate < on_demand  # the on-demand prices would claim more than the burn
    saving_line = next(ln for ln in lines if ln.startswith("Estimated saving: "))
    assert saving_line.startswith(f"Estimated saving: {usd(saving)}/h")
    outside = sorted(i["name"] for i in stopped if billed(i) is None)
    if outside:
        apart = next(ln for ln in lines if ln.startswith("No GPU spend in the window"))
        assert re.findall(r"(\S+) \(on-demand", apart) == outside


def test_stops_follow_the_safety_rules(demo: DemoRun, ledger: Any) -> None:
    # The story: each stop decision leaves protected instances running, and one stop fails.
    assert STOPS.protected["ml-research-monthly"] and STOPS.protected["inference-burn-rate"]
    assert len(STOPS.failed["ml-research-monthly"]) == 1
    assert sum(len(v) for v in STOPS.stopped.values()) <= POLICY["safety"]["max_stops_per_run"]
    # The inventory state: exactly the expected instances stopped, every other one as it was.
    state = {i["id"]: i["state"] for i in json.loads((demo.home / "inventory.json").read_text())["instances"]}
    for inst in INVENTORY:
        assert state[inst["id"]] == ("stopped" if inst["id"] in STOPPED_IDS else inst["state"]), inst["name"]
    # The ledger's stop records, stamped with the real time of the stop (the data is judged
    # at its end, but a stop happens now).
    records = ledger.stops()
    assert {(r.guardrail, r.instance_id) for r in records} == {
        (g, i) for g, ids in STOPS.stopped.items() for i in ids}
    assert all(timedelta(0) <= datetime.now(UTC) - r.stopped_at < timedelta(hours=1) for r in records)
    assert not any(r.dry_run for r in records)
    # The audit log: one ok action per stop, the failure with the cloud's reason.
    audit = ledger.audit_log(limit=10_000)
    actions = [e for e in audit if e.kind == "action"]
    assert {e.details["instance"].split(":", 1)[1] for e in actions if e.outcome == "ok"} == STOPPED_IDS
    failed = {e.details["instance"].split(":", 1)[1]: e.details["reason"] for e in actions if e.outcome == "failed"}
    assert failed == {i: why for f in STOPS.failed.values() for i, why in f.items()}
    assert not [e for e in audit if e.kind == "dead-letter"]
    # The Slack messages say what was stopped, what was protected and what failed.
    names = {i["id"]: i["name"] for i in INVENTORY}
    for g, ids in STOPS.stopped.items():
        _, _, lines = next(m for m in demo.messages() if m[1].startswith(f"{g}:") and
                           any(ln.startswith("Stopped ") for ln in m[2]))
        stopped_line = next(ln for ln in lines if ln.startswith("Stopped "))
        assert stopped_line.startswith(f"Stopped {len(ids)} GPU instance(s): ")
        assert set(re.findall(r" (\S+) \(", stopped_line)) == {names[i] for i in ids}
        protected = next(ln for ln in lines if ln.startswith("Protected, left running: "))
        assert set(protected.removeprefix("Protected, left running: ").split(", ")) == STOPS.protected[g]
    for g, reasons in STOPS.failed.items():
        _, headline, lines = next(m for m in demo.messages() if m[1].startswith(f"{g}: could not stop"))
        assert headline == f"{g}: could not stop {len(reasons)} instance(s) for {scope_text(g)}"
        assert {f"- azure {names[i]}: {why}" for i, why in reasons.items()} <= set(lines)


def scope_text(name: str) -> str:
    key, value = scope(guardrail(name))
    return f"{key}={value if value is not None else '*'}"


def test_deliveries_and_the_restated_azure_run(demo: DemoRun, ledger: Any) -> None:
    statuses = ledger.deliveries(include_superseded=True)
    by_version = {s.delivery.version: s for s in statuses}
    assert set(by_version) == {d.version for d in DELIVERIES}
    counted = {d.version for d in COUNTED}
    for d in DELIVERIES:
        s = by_version[d.version]
        assert s.delivery.provider == d.cloud
        assert s.delivery.billing_period == "2024-09"
        assert s.rows == len(d.charges)
        assert s.counted == (d.version in counted)
        assert s.status == ("complete" if d.version in counted else "superseded")
    azure = sorted((d for d in DELIVERIES if d.cloud == "azure"), key=lambda d: d.produced or "")
    assert [a.version in counted for a in azure] == [False, True]  # the later run restates the earlier
    assert ledger.latest_data() == data_end(CHARGES)
    line = next(ln for ln in demo.section(4).splitlines() if azure[0].version[:20] in ln)
    assert "superseded" in line


def notification_text(path: Path) -> str:
    """A notification file's text, with a Pub/Sub message's base64 ``data`` decoded."""
    text = path.read_text()
    message = json.loads(text).get("data", {}).get("message", {})
    if isinstance(message, dict) and isinstance(message.get("data"), str):
        text += base64.b64decode(message["data"]).decode("utf-8")
    return text


def test_each_native_budget_notification_alerts_once(demo: DemoRun) -> None:
    mapped = guardrail("ml-research-monthly")["budget_notifications"]
    names = [n for cloud in ("aws", "gcp", "azure") for n in mapped.get(cloud, [])]
    raw = [notification_text(p) for p in (EVENTS / "budget").glob("*.json")]
    natives = [lines for _, h, lines in demo.messages() if "native budget alert" in h]
    for name in names:
        assert any(name in text for text in raw), name  # the notification is in events/budget
        assert sum(1 for lines in natives if any(f"budget '{name}'" in ln for ln in lines)) == 1, name
    assert len(natives) == len(names)


def test_normalize_summary_totals_equal_the_raw_files(capsys: pytest.CaptureFixture[str]) -> None:
    from burnguard.app.cli import main

    assert main(["normalize", str(EXPORTS), "--summary"]) == 0
    report = json.loads(capsys.readouterr().out)
    # It normalizes every data file: the superseded Azure run too.
    charges = [c for d in DELIVERIES for c in d.charges]
    assert report["rows"] == len(charges)
    assert report["rows_skipped"] == 0
    assert report["totals"] == {"USD": {
        "rows": len(charges),
        "BilledCost": str(cents(sum((c.billed for c in charges), Decimal(0)))),
        "EffectiveCost": str(cents(sum((c.effective for c in charges), Decimal(0)))),
    }}
    files = {Path(f["file"]).resolve(): f for f in report["files"]}
    assert len(files) == len(DELIVERIES)
    for d in DELIVERIES:
        [path] = d.files  # one data file per delivery in the samples
        got = files[path.resolve()]
        assert (got["rows_normalized"], got["error_count"]) == (len(d.charges), 0)
        assert got["totals"]["USD"]["BilledCost"] == str(cents(sum((c.billed for c in d.charges), Decimal(0))))
        assert got["totals"]["USD"]["EffectiveCost"] == str(cents(sum((c.effective for c in d.charges), Decimal(0))))
