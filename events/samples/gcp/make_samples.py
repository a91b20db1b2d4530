"""Write the sample Google Cloud billing export (deterministic).

    .venv/bin/python events/samples/gcp/make_samples.py     (events/make_samples.py runs it too)

From one list of rows it writes:

* here, the reader's samples, three containers of the same rows:

  * ``billing-export-202409.jsonl``: newline-delimited JSON as BigQuery ``EXPORT DATA ...
    format='JSON'`` writes it (nested records, FLOAT64 as JSON numbers, INT64 and NUMERIC as
    JSON strings, TIMESTAMP as ``2024-09-02 14:00:00 UTC``);
  * ``billing-export-202409.jsonl.gz``: the same bytes, gzip-compressed;
  * ``billing-export-202409.parquet``: the same rows as ``format='PARQUET'`` would hold them
    (nested structs and lists, FLOAT64 as DOUBLE, timestamps in UTC);

* under ``events/exports/gcp/``, the same gzip bytes as one run of burnguard's GCS layout
  (``shared/burnguard/delivery.py``)::

      <bucket>/<prefix>/01D4EE-079462-DFD6EC/2024-09/<run_id>/part-000000000000.json.gz
      <bucket>/<prefix>/01D4EE-079462-DFD6EC/2024-09/<run_id>/manifest.json

  which ``burnguard demo`` ingests. The samples live outside ``events/exports`` so the demo
  does not count the same rows three times.

The rows are synthetic (see ``events/README.md`` and ``README.md`` here): amounts are exact
decimals of at most 6 places, as the export rounds them, so a FLOAT64 holds each one's text
exactly. :data:`VMS` is also where ``events/make_samples.py`` takes the Compute Engine instances
of ``events/inventory.json`` from, so the inventory and the export name the same machines.
"""

from __future__ import annotations

import gzip
import io
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
EVENTS = HERE.parents[1]
STEM = "billing-export-202409"
ACCOUNT = "01D4EE-079462-DFD6EC"
INVOICE_MONTH = "202409"
MICRO = Decimal("0.000001")
GIB = 1 << 30

# The GCS run the demo ingests: gs://<EXPORT_BUCKET>/<EXPORT_PREFIX>/<ACCOUNT>/2024-09/<RUN_ID>/...
EXPORT_BUCKET = "acme-finops-billing"
EXPORT_PREFIX = "bigquery-export"
BILLING_PERIOD = "2024-09"
RUN_ID = "20240921T060000Z"
CREATED_AT = "2024-09-21T06:04:10Z"
PART = "part-000000000000.json.gz"

COMPUTE = {"id": "6F81-5844-456A", "description": "Compute Engine"}
STORAGE = {"id": "95FF-2EF5-5EA1", "description": "Cloud Storage"}
BIGQUERY = {"id": "24E6-581D-38E5", "description": "BigQuery"}
INVOICE = {"id": "", "description": "Invoice"}

PROJECTS: dict[str, dict[str, Any]] = {
    "ml-research-prod": {"number": "418257631092", "name": "ML Research", "ancestry": "/731840573625/203385211470/",
                         "labels": {"team": "ml-research", "env": "prod", "cost-center": "cc-4711"}},
    "inference-prod": {"number": "902163554871", "name": "Inference", "ancestry": "/731840573625/203385211470/",
                       "labels": {"team": "inference", "env": "prod"}},
    "platform-shared": {"number": "553019846127", "name": "Platform Shared", "ancestry": "/731840573625/",
                        "labels": {"env": "prod"}},
}

# (sku id, description, unit, hourly price per unit of usage, usage per hour, usage is bytes)
Sku = tuple[str, str, str, Decimal, int, bool]
A2_1G: list[Sku] = [
    ("F449-33EC-A5EF", "A2 Instance Core running in Americas", "seconds", Decimal("0.031611"), 12, False),
    ("3E7D-AB88-4E3E", "A2 Instance Ram running in Americas", "byte-seconds", Decimal("0.004237"), 85, True),
    ("039F-D0DA-4055", "Nvidia Tesla A100 GPU running in Americas", "seconds", Decimal("2.933908"), 1, False)]
G2_8: list[Sku] = [
    ("9B3D-5B1C-F6B4", "G2 Instance Core running in Americas", "seconds", Decimal("0.024988"), 8, False),
    ("2D1F-8C3A-1E77", "G2 Instance Ram running in Americas", "byte-seconds", Decimal("0.002927"), 32, True),
    ("B7C9-1A2E-63D0", "Nvidia L4 GPU running in Americas", "seconds", Decimal("0.560040"), 1, False)]
N1_8_T4: list[Sku] = [
    ("2E27-4F75-95CD", "N1 Predefined Instance Core running in Americas", "seconds", Decimal("0.031611"), 8, False),
    ("6C71-E4A4-5A8B", "N1 Predefined Instance Ram running in Americas", "byte-seconds", Decimal("0.004237"), 30,
     True),
    ("58A4-7C1E-0B2D", "Nvidia Tesla T4 GPU running in Americas", "seconds", Decimal("0.350000"), 1, False)]
N2_4: list[Sku] = [
    ("BB77-5FDA-5C4E", "N2 Instance Core running in Americas", "seconds", Decimal("0.031611"), 4, False),
    ("5B01-D157-A097", "N2 Instance Ram running in Americas", "byte-seconds", Decimal("0.004237"), 16, True)]


@dataclass(frozen=True)
class Vm:
    """A Compute Engine instance: its billing lines (one per SKU per hour) and its inventory entry."""

    name: str
    project: str
    zone: str
    machine: str
    instance_id: str
    labels: dict[str, str]  # the instance's labels: the export's resource labels
    skus: list[Sku]
    start: datetime  # first billed hour
    hours: int
    accelerators: tuple[str, ...] = ()  # guestAccelerators of an N1 instance
    state: str = "running"  # state in the inventory
    extra: dict[str, Any] = field(default_factory=dict)  # more inventory fields

    @property
    def hourly(self) -> Decimal:
        """List price per hour (the inventory's ``hourly_cost``)."""
        return sum((rate * per_hour for _, _, _, rate, per_hour, _ in self.skus), Decimal(0))


SEP19 = datetime(2024, 9, 19, tzinfo=UTC)
SEP20 = datetime(2024, 9, 20, tzinfo=UTC)
# Data ends with the hour that starts at 2024-09-20T23:00Z, as on the other clouds.
VMS: list[Vm] = [
    Vm("trainer-a100-1", "ml-research-prod", "us-central1-a", "a2-highgpu-1g", "4415720948361057812",
       {"team": "ml-research", "project": "llm-finetune", "env": "dev"}, A2_1G, SEP19 + timedelta(hours=12), 36),
    Vm("nb-t4-1", "ml-research-prod", "us-central1-b", "n1-standard-8", "5120034981276650113",
       {"team": "ml-research", "project": "vision-eval"}, N1_8_T4, SEP19, 48, accelerators=("nvidia-tesla-t4",)),
    Vm("eval-l4-1", "ml-research-prod", "us-central1-b", "g2-standard-8", "6630198247715530021",
       {"team": "ml-research", "project": "llm-eval", "burnguard-protect": "true"}, G2_8, SEP20, 24),
    Vm("infer-l4-1", "inference-prod", "us-central1-b", "g2-standard-8", "7730192846601183529",
       {"team": "inference", "project": "chat-serving", "app": "llm-serving"}, G2_8, SEP20, 24),
    Vm("infer-l4-2", "inference-prod", "us-central1-b", "g2-standard-8", "7730192846601190417",
       {"team": "inference", "project": "chat-serving", "app": "llm-serving", "burnguard-protect": "true"}, G2_8,
       SEP20, 24),
    Vm("api-n2-1", "platform-shared", "us-central1-a", "n2-standard-4", "2268410937715502234",
       {"team": "platform", "app": "billing-api"}, N2_4, SEP20, 24),
]


class Int64(str):
    """An INT64 or NUMERIC value: BigQuery's JSON export writes it as a string."""


def money(value: Decimal) -> Decimal:
    return value.quantize(MICRO, rounding=ROUND_HALF_EVEN)


def labels(pairs: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in pairs.items()]


def project(pid: str) -> dict[str, Any]:
    p = PROJECTS[pid]
    return {"id": pid, "number": Int64(p["number"]), "name": p["name"], "labels": labels(p["labels"]),
            "ancestry_numbers": p["ancestry"]}


def location(zone: str | None, region: str = "us-central1") -> dict[str, Any]:
    return {"location": zone or region, "country": "US", "region": region, "zone": zone}


def global_name(vm: Vm) -> str:
    return f"//compute.googleapis.com/projects/{vm.project}/zones/{vm.zone}/instances/{vm.instance_id}"


def row(*, service: dict[str, str], sku: tuple[str, str], start: datetime, end: datetime, pid: str,  # noqa: PLR0913 - one keyword per export column
        cost: Decimal, usage: tuple[Any, str], credits: list[dict[str, Any]] | None = None,
        resource_labels: dict[str, str] | None = None, system: dict[str, str] | None = None,
        loc: dict[str, Any] | None = None, resource: dict[str, str] | None = None, cost_type: str = "regular",
        export: datetime, adjustment: dict[str, str] | None = None) -> dict[str, Any]:
    amount, unit = usage
    record: dict[str, Any] = {
        "billing_account_id": ACCOUNT,
        "service": service,
        "sku": {"id": sku[0], "description": sku[1]},
        "usage_start_time": start,
        "usage_end_time": end,
        "project": project(pid),
        "labels": labels(resource_labels or {}),
        "system_labels": labels(system or {}),
        "location": loc or location(None),
        "resource": resource or {"name": None, "global_name": None},
        "export_time": export,
        "cost": cost,
        "cost_at_list": cost,
        "currency": "USD",
        "currency_conversion_rate": Decimal(1),
        "usage": {"amount": amount, "unit": unit},
        "credits": credits or [],
        "invoice": {"month": INVOICE_MONTH},
        "cost_type": cost_type,
    }
    if adjustment:
        record["adjustment_info"] = adjustment
    return record


def build_rows() -> list[dict[str, Any]]:
    rnd = random.Random(202409)
    rows: list[dict[str, Any]] = []
    sud = {"name": "Sustained Usage Discount", "full_name": None, "id": "", "type": "SUSTAINED_USAGE_DISCOUNT"}
    promo = {"name": "FreeTrial:Credit-01D4EE-079462-DFD6EC", "full_name": None,
             "id": "FreeTrial:Credit-01D4EE-079462-DFD6EC", "type": "PROMOTION"}
    for vm in VMS:
        spec = {"compute.googleapis.com/machine_spec": vm.machine,
                "compute.googleapis.com/cores": str(vm.skus[0][4]),
                "compute.googleapis.com/memory": str(vm.skus[1][4] * 1024)}
        resource = {"name": vm.name, "global_name": global_name(vm)}
        for h in range(vm.hours):
            start = vm.start + timedelta(hours=h)
            # Usage of the last minutes of a machine's first hour is sometimes reported a few seconds short.
            seconds = 3600 - (rnd.choice([0, 0, 0, 12, 40]) if h == 0 else 0)
            export = start + timedelta(hours=6, minutes=rnd.randrange(60), seconds=rnd.randrange(60),
                                       microseconds=rnd.randrange(1000) * 1000)
            for sku_id, description, unit, rate, per_hour, is_bytes in vm.skus:
                units = Decimal(per_hour) * seconds / 3600
                cost = money(rate * units)
                amount: Any = Int64(str(per_hour * GIB * seconds)) if is_bytes else Decimal(per_hour * seconds)
                credits: list[dict[str, Any]] = []
                if vm.machine.startswith(("n1-", "n2-")) and "GPU" not in description:
                    credits.append({**sud, "amount": -money(cost * Decimal("0.2"))})
                    if vm.machine.startswith("n2-") and h < 3:
                        credits.append({**promo, "amount": -money(cost * Decimal("0.8"))})
                elif vm.machine.startswith("a2-") and h < 4:
                    credits.append({**promo, "amount": -cost})
                rows.append(row(service=COMPUTE, sku=(sku_id, description), start=start,
                                end=start + timedelta(hours=1), pid=vm.project, cost=cost, usage=(amount, unit),
                                credits=credits, resource_labels=vm.labels, system=spec,
                                loc=location(vm.zone), resource=resource, export=export))
    # Egress of the first serving VM.
    serving = VMS[3]
    for h in range(24):
        start = SEP20 + timedelta(hours=h)
        egress = rnd.randrange(2_000_000_000, 9_000_000_000)
        cost = money(Decimal(egress) / GIB * Decimal("0.12"))
        rows.append(row(service=COMPUTE, sku=("9DE9-9092-B3BC", "Network Internet Egress from Americas to Americas"),
                        start=start, end=start + timedelta(hours=1), pid=serving.project, cost=cost,
                        usage=(Int64(str(egress)), "bytes"), resource_labels=serving.labels,
                        loc=location(None), export=start + timedelta(hours=7),
                        resource={"name": serving.name, "global_name": global_name(serving)}))
    # The training data set bucket, billed per day.
    for d in range(20):
        start = datetime(2024, 9, 1, tzinfo=UTC) + timedelta(days=d)
        stored = (2_400 + 35 * d) * GIB * 86400
        cost = money(Decimal(stored) / GIB / Decimal(730 * 3600) * Decimal("0.026"))
        rows.append(row(service=STORAGE, sku=("E5F0-6A5D-7BAD", "Standard Storage US Multi-region"), start=start,
                        end=start + timedelta(days=1), pid="ml-research-prod", cost=cost,
                        usage=(Int64(str(stored)), "byte-seconds"), resource_labels={"project": "llm-finetune"},
                        loc={"location": "us", "country": "US", "region": None, "zone": None},
                        resource={"name": "ml-datasets-418257",
                                  "global_name": "//storage.googleapis.com/projects/_/buckets/ml-datasets-418257"},
                        export=start + timedelta(days=1, hours=3)))
    # BigQuery analysis for the FinOps views (tiny amounts: exponent-form FLOAT64 texts).
    for h in range(0, 24, 4):
        start = SEP20 + timedelta(hours=h)
        scanned = rnd.randrange(10_000_000, 60_000_000)
        cost = money(Decimal(scanned) / (1 << 40) * Decimal("6.25"))
        rows.append(row(service=BIGQUERY, sku=("3362-E469-6BEF", "Analysis"), start=start,
                        end=start + timedelta(hours=1), pid="platform-shared", cost=cost,
                        usage=(Int64(str(scanned)), "bytes"), loc={"location": "US", "country": "US", "region": None,
                                                                 "zone": None},
                        export=start + timedelta(hours=5)))
    # Late usage: an August hour reported after the August invoice closed, billed in September.
    trainer = VMS[0]
    late = datetime(2024, 8, 31, 23, tzinfo=UTC)
    rows.append(row(service=COMPUTE, sku=A2_1G[2][:2], start=late, end=late + timedelta(hours=1),
                    pid=trainer.project, cost=Decimal("2.933908"), usage=(Decimal(3600), "seconds"),
                    resource_labels=trainer.labels, system={"compute.googleapis.com/machine_spec": trainer.machine},
                    loc=location(trainer.zone), export=datetime(2024, 9, 2, 4, 10, 2, 517000, tzinfo=UTC),
                    resource={"name": trainer.name, "global_name": global_name(trainer)}))
    month_start = datetime(2024, 9, 1, tzinfo=UTC)
    month_end = datetime(2024, 9, 30, 23, 59, 59, tzinfo=UTC)
    # A goodwill adjustment (negative) and a rounding error line.
    rows.append(row(service=COMPUTE, sku=("0000-0000-0001", "Billing adjustment"), start=month_start, end=month_end,
                    pid="inference-prod", cost=Decimal("-12.5"), usage=(None, "requests"), cost_type="adjustment",
                    export=datetime(2024, 9, 3, 9, 0, tzinfo=UTC),
                    adjustment={"id": "ADJ-7342-0912", "description": "Goodwill credit for an L4 capacity incident",
                                "mode": "MANUAL_ADJUSTMENT", "type": "GENERAL_ADJUSTMENT"}))
    rows.append(row(service=INVOICE, sku=("0000-0000-0002", "Rounding error"), start=month_start, end=month_end,
                    pid="platform-shared", cost=Decimal("-0.000004"), usage=(None, "requests"),
                    cost_type="rounding_error", export=datetime(2024, 9, 3, 9, 0, tzinfo=UTC)))
    # Tax: one line per project, on the cost before credits of the rows above.
    by_project: dict[str, Decimal] = {}
    for r in rows:
        by_project[r["project"]["id"]] = by_project.get(r["project"]["id"], Decimal(0)) + r["cost"]
    for pid, subtotal in sorted(by_project.items()):
        rows.append(row(service=INVOICE, sku=("0000-0000-0003", "Tax"), start=month_start, end=month_end, pid=pid,
                        cost=money(subtotal * Decimal("0.0725")), usage=(None, "requests"), cost_type="tax",
                        export=datetime(2024, 9, 21, 5, 0, tzinfo=UTC)))
    return rows


def inventory() -> list[dict[str, Any]]:
    """The instances of :data:`VMS` as ``events/inventory.json`` lists them."""
    out = []
    for vm in VMS:
        entry: dict[str, Any] = {"cloud": "gcp", "id": vm.instance_id, "name": vm.name, "location": vm.zone,
                                 "type": vm.machine, "state": vm.state, "tags": dict(vm.labels)}
        if vm.accelerators:
            entry["accelerators"] = list(vm.accelerators)
        entry.update({"hourly_cost": str(vm.hourly), "currency": "USD", **vm.extra})
        out.append(entry)
    return out


# -- JSON lines ---------------------------------------------------------------------------------

def number_text(value: Decimal) -> str:
    """A FLOAT64 as BigQuery writes it in JSON: its shortest round-trip text (``1.2e-05``)."""
    text = repr(float(value))
    assert Decimal(text) == value, (value, text)
    return text[:-2] if text.endswith(".0") else text


def to_json(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Int64):
        return json.dumps(str(value))
    if isinstance(value, str):
        # BigQuery escapes <, > and & in its JSON output.
        return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return number_text(value)
    if isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        if value.microsecond:
            text += f".{value.microsecond:06d}".rstrip("0")
        return json.dumps(text + " UTC")
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{to_json(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def jsonl_bytes(rows: list[dict[str, Any]]) -> bytes:
    return "".join(to_json(r) + "\n" for r in rows).encode("utf-8")


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


# -- Parquet -------------------------------------------------------------------------------------

LABEL = pa.struct([("key", pa.string()), ("value", pa.string())])
TS = pa.timestamp("us", tz="UTC")
PARQUET_SCHEMA = pa.schema([
    ("billing_account_id", pa.string()),
    ("service", pa.struct([("id", pa.string()), ("description", pa.string())])),
    ("sku", pa.struct([("id", pa.string()), ("description", pa.string())])),
    ("usage_start_time", TS),
    ("usage_end_time", TS),
    ("project", pa.struct([("id", pa.string()), ("number", pa.string()), ("name", pa.string()),
                           ("labels", pa.list_(LABEL)), ("ancestry_numbers", pa.string())])),
    ("labels", pa.list_(LABEL)),
    ("system_labels", pa.list_(LABEL)),
    ("location", pa.struct([("location", pa.string()), ("country", pa.string()), ("region", pa.string()),
                            ("zone", pa.string())])),
    ("resource", pa.struct([("name", pa.string()), ("global_name", pa.string())])),
    ("export_time", TS),
    ("cost", pa.float64()),
    ("cost_at_list", pa.float64()),
    ("currency", pa.string()),
    ("currency_conversion_rate", pa.float64()),
    ("usage", pa.struct([("amount", pa.float64()), ("unit", pa.string())])),
    ("credits", pa.list_(pa.struct([("name", pa.string()), ("amount", pa.float64()), ("full_name", pa.string()),
                                    ("id", pa.string()), ("type", pa.string())]))),
    ("invoice", pa.struct([("month", pa.string())])),
    ("cost_type", pa.string()),
    ("adjustment_info", pa.struct([("id", pa.string()), ("description", pa.string()), ("mode", pa.string()),
                                   ("type", pa.string())])),
])


def to_parquet_value(value: Any, t: pa.DataType) -> Any:
    if value is None:
        return None
    if pa.types.is_struct(t):
        return {t.field(i).name: to_parquet_value(value.get(t.field(i).name), t.field(i).type)
                for i in range(t.num_fields)}
    if pa.types.is_list(t):
        return [to_parquet_value(v, t.value_type) for v in value]
    if pa.types.is_floating(t):
        return float(Decimal(value))  # a FLOAT64 column: what BigQuery stores
    if pa.types.is_decimal(t):
        return Decimal(value)
    return value


def parquet_bytes(rows: list[dict[str, Any]]) -> bytes:
    records = [to_parquet_value(r, pa.struct(list(PARQUET_SCHEMA))) for r in rows]
    table = pa.Table.from_pylist(records, schema=PARQUET_SCHEMA)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", row_group_size=128)
    return sink.getvalue()


# -- the GCS run ----------------------------------------------------------------------------------

def run_folder(exports: Path) -> Path:
    return exports / "gcp" / EXPORT_BUCKET / EXPORT_PREFIX / ACCOUNT / BILLING_PERIOD / RUN_ID


def manifest(rows: int) -> dict[str, Any]:
    return {"billingAccountId": ACCOUNT, "billingPeriod": BILLING_PERIOD, "runId": RUN_ID,
            "files": [{"name": PART, "rows": rows}], "totalRows": rows, "format": "json", "createdAt": CREATED_AT}


def main(exports: Path = EVENTS / "exports") -> None:
    rows = build_rows()
    data = jsonl_bytes(rows)
    packed = gzip_bytes(data)
    (HERE / f"{STEM}.jsonl").write_bytes(data)
    (HERE / f"{STEM}.jsonl.gz").write_bytes(packed)
    (HERE / f"{STEM}.parquet").write_bytes(parquet_bytes(rows))
    run = run_folder(exports)
    run.mkdir(parents=True, exist_ok=True)
    (run / PART).write_bytes(packed)
    # manifest.json last: it is the run's completion marker.
    (run / "manifest.json").write_text(json.dumps(manifest(len(rows)), indent=2) + "\n")
    for path in [HERE / f"{STEM}{s}" for s in (".jsonl", ".jsonl.gz", ".parquet")] + [run / PART]:
        print(f"{path.relative_to(EVENTS.parent)}: {len(rows)} rows, {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
