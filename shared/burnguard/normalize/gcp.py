"""Google Cloud Billing export (standard and detailed BigQuery tables) extracted to GCS.

The team's scheduled ``EXPORT DATA`` job (formats.md §4.3) lands the BigQuery rows in one of
three containers, all read here by one plan:

* newline-delimited JSON: nested records (``service{id,description}``, ``labels[{key,value}]``,
  ``credits[{amount,type,...}]``); timestamps as ``2024-09-03 14:00:00 UTC`` (or RFC 3339);
  INT64 and NUMERIC values as JSON strings. Money fields are read by Arrow straight into
  decimals (a JSON number is the decimal text it is, never a float; a string is read the same
  way), with 40 fractional digits so that FLOAT64 texts such as ``2.3198314011096954e-05``
  fit, then cut to the canonical 18 toward zero (the rule of every burnguard parser);
* CSV: dotted flattened names (``service.description``; ``service_description`` is accepted
  too) with the arrays as text: JSON (``TO_JSON_STRING``) or, as koku's pandas flattening
  writes them, Python literals with single quotes and ``None``. Amounts inside such text are
  read from their own digits, never through a float;
* Parquet: nested structs and lists with their native types (``cost`` is DOUBLE there, read
  through its shortest decimal text by :func:`burnguard.core.columnar.to_decimal`).

Each logical field is found per batch either as a flat column (``usage.amount``) or as a path
into a struct column (``usage`` → ``amount``), and array fields either as lists or as text, so
any mix the containers produce is read the same way.

Mapping decisions:

* ``BilledCost`` is ``cost``: gross, before credits (what Google calls cost);
  ``EffectiveCost`` is ``cost + SUM(credits.amount)``, Google's net cost (formats.md §4.2):
  credits are negative and, in FOCUS, part of the effective cost. A credit without an amount
  counts as 0. ``ListCost`` is ``cost_at_list`` when the export has it.
* ``ChargeCategory`` from ``cost_type``: ``regular`` → Usage, ``tax`` → Tax, ``adjustment`` →
  **Adjustment** (Google's adjustments correct earlier charges in either direction, see
  ``adjustment_info.mode``; FOCUS keeps "Credit" for reductions granted as such, which Google
  reports inside ``credits``), ``rounding_error`` → Adjustment. No ``cost_type`` (early
  exports) is Usage; an unknown value is Adjustment, with a warning.
* ``BillingPeriodStart``/``End`` are the month of ``invoice.month`` (``YYYYMM``), not of the
  usage: late usage is billed in a later month, and the ledger replaces slices by this month.
  A file without ``invoice.month`` falls back to the usage month, with a warning.
* ``Tags``: project labels apply to every line item of the project; a resource label of the
  same key wins (the rule of :mod:`burnguard.core.tags`). Labels are kept as Google writes them.
* ``x_InstanceType`` is the ``compute.googleapis.com/machine_spec`` system label;
  accelerators come from the machine series (``a2-highgpu-1g`` → ``nvidia-a100``) or, for a
  GPU billed on its own line, from the SKU text ("Nvidia L4 GPU running in Americas").
* ``PricingCategory`` (usage only): Dynamic for Spot / Preemptible SKUs, Committed when a
  committed use discount credit applies, Standard otherwise.
"""

from __future__ import annotations

import ast
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from burnguard.core.accelerators import classify_instance_type, classify_sku
from burnguard.core.clouds import GCP
from burnguard.core.columnar import (
    BadValue,
    as_string,
    blank_to_null,
    dec_add,
    dec_zero,
    map_distinct,
    to_decimal,
    to_np,
    to_timestamp,
)
from burnguard.core.errors import InputError
from burnguard.core.lineitem import MONEY, TAGS, TIMESTAMP
from burnguard.core.money import PRECISION, SCALE, NumberError, parse_decimal
from burnguard.core.tags import MAX_KEY_LENGTH, MAX_VALUE_LENGTH, parse_label_list
from burnguard.normalize.base import Batch, Format, Header, Plan, ReadContext, constant, lookup

PROVIDER = "Google Cloud"
MACHINE_SPEC = "compute.googleapis.com/machine_spec"
#: The JSON reader's decimal: up to 40 fractional digits (FLOAT64 texts), rounded to 18 after.
JSON_MONEY = pa.decimal256(76, 40)
LABEL = pa.struct([("key", pa.string()), ("value", pa.string())])
LABELS = pa.list_(LABEL)
CREDIT_SUMMARY = pa.struct([("total", MONEY), ("committed", pa.bool_())])

CHARGE_CATEGORY = {"regular": "Usage", "tax": "Tax", "adjustment": "Adjustment",
                   "rounding_error": "Adjustment", "rounding error": "Adjustment"}
CHARGE_FREQUENCY = {"regular": "Usage-Based", "tax": "One-Time", "adjustment": "One-Time",
                    "rounding_error": "One-Time", "rounding error": "One-Time"}
SERVICE_CATEGORY = {
    "Compute Engine": "Compute", "Kubernetes Engine": "Compute", "Cloud Run": "Compute",
    "Cloud Run Functions": "Compute", "Cloud Functions": "Compute", "App Engine": "Compute",
    "Batch": "Compute", "Cloud Storage": "Storage", "Filestore": "Storage", "Backup and DR Service": "Storage",
    "Artifact Registry": "Developer Tools", "Cloud Build": "Developer Tools", "BigQuery": "Analytics",
    "Dataflow": "Analytics", "Dataproc": "Analytics", "Cloud Composer": "Analytics",
    "Vertex AI": "AI and Machine Learning", "Cloud TPU": "AI and Machine Learning",
    "Gemini API": "AI and Machine Learning", "Cloud SQL": "Databases", "Cloud Spanner": "Databases",
    "Cloud Bigtable": "Databases", "Cloud Firestore": "Databases", "Firestore": "Databases",
    "Cloud Memorystore for Redis": "Databases", "AlloyDB": "Databases", "Networking": "Networking",
    "Cloud DNS": "Networking", "Cloud CDN": "Networking", "Cloud NAT": "Networking",
    "Cloud Pub/Sub": "Integration", "Pub/Sub": "Integration", "Eventarc": "Integration",
    "Cloud Scheduler": "Integration", "Workflows": "Integration", "Cloud Logging": "Management and Governance",
    "Cloud Monitoring": "Management and Governance", "Stackdriver Logging": "Management and Governance",
    "Stackdriver Monitoring": "Management and Governance", "Security Command Center": "Security",
    "Secret Manager": "Security", "Cloud Key Management Service (KMS)": "Security",
    "Identity Platform": "Identity",
}
_DYNAMIC_SKU = re.compile(r"\b(spot|preemptible)\b", re.IGNORECASE)
_INVOICE_MONTH = re.compile(r"^(\d{4})-?(\d{2})$")
_COMMITTED = "COMMITTED_USAGE_DISCOUNT"

#: Logical fields and their path in the BigQuery schema.
FIELDS: dict[str, tuple[str, ...]] = {
    "account": ("billing_account_id",), "service_id": ("service", "id"), "service": ("service", "description"),
    "sku_id": ("sku", "id"), "sku": ("sku", "description"), "start": ("usage_start_time",),
    "end": ("usage_end_time",), "project_id": ("project", "id"), "project_name": ("project", "name"),
    "project_labels": ("project", "labels"), "labels": ("labels",), "system_labels": ("system_labels",),
    "location": ("location", "location"), "region": ("location", "region"), "zone": ("location", "zone"),
    "resource_name": ("resource", "name"), "resource_global": ("resource", "global_name"),
    "cost": ("cost",), "list_cost": ("cost_at_list",), "currency": ("currency",),
    "usage_amount": ("usage", "amount"), "usage_unit": ("usage", "unit"), "credits": ("credits",),
    "invoice_month": ("invoice", "month"), "cost_type": ("cost_type",),
}
MONEY_FIELDS = frozenset({"cost", "list_cost", "usage_amount"})
LABEL_FIELDS = frozenset({"project_labels", "labels", "system_labels"})
CREDIT_TYPE = pa.list_(pa.struct([("amount", JSON_MONEY), ("type", pa.string())]))


def _flat_names(path: tuple[str, ...]) -> tuple[str, ...]:
    """How a flattened export spells a nested path: ``usage.amount`` or ``usage_amount``."""
    return (path[0],) if len(path) == 1 else (".".join(path), "_".join(path))


def _find(header: Header, path: tuple[str, ...]) -> str | None:
    """The file's name of a flat column for ``path``, if the file has one."""
    for name in _flat_names(path):
        hit = header.get(name)
        if hit is not None:
            return hit
    return None


def _field_label(path: tuple[str, ...]) -> str:
    return ".".join(path)


def _json_type(key: str) -> pa.DataType:
    if key in MONEY_FIELDS:
        return JSON_MONEY
    if key in LABEL_FIELDS:
        return LABELS
    if key == "credits":
        return CREDIT_TYPE
    return pa.string()


def json_schema_for(header: Header) -> pa.Schema:
    """The explicit schema of Arrow's JSON reader: the fields burnguard reads, nested as
    BigQuery writes them (or flat where the file's first record is flat). Other fields are
    ignored; a field absent from a record is null."""
    top: dict[str, pa.DataType | dict[str, pa.DataType]] = {}
    for key, path in FIELDS.items():
        flat = _find(header, path) if len(path) > 1 else None
        if flat is not None:
            top[flat] = _json_type(key)
        elif len(path) == 1:
            top[header.get(path[0]) or path[0]] = _json_type(key)
        else:
            sub = top.setdefault(header.get(path[0]) or path[0], {})
            assert isinstance(sub, dict)
            sub[path[1]] = _json_type(key)
    fields = [pa.field(name, pa.struct(list(t.items())) if isinstance(t, dict) else t) for name, t in top.items()]
    return pa.schema(fields)


class GcpBillingFormat(Format):
    name = "gcp-billing"
    description = ("Google Cloud Billing export (standard or detailed BigQuery table) extracted to GCS "
                   "as JSON lines, CSV with dotted names, or Parquet")

    def score(self, header: Header) -> int:
        if header.get("billing_account_id") is None or header.get("cost") is None:
            return 0
        if header.get("usage_start_time") is None:
            return 0
        if not header.count("sku", "service", "sku.id", "sku.description", "service.id", "service.description",
                            "sku_id", "sku_description", "service_id", "service_description"):
            return 0
        return 10 + header.count("invoice", "invoice.month", "invoice_month", "credits", "cost_type", "currency",
                                 "project", "project.id", "project_id", "usage_end_time", "labels", "system_labels")

    def plan(self, header: Header, ctx: ReadContext) -> Plan:
        return GcpBillingPlan(header, ctx)


class _Fields:
    """Finds each logical field in one batch: a flat column or a path into a struct."""

    def __init__(self, batch: Batch):
        self.batch = batch
        self.header = Header(batch.table.column_names)
        self._cache: dict[str, tuple[pa.Array | None, str]] = {}

    def raw(self, key: str) -> tuple[pa.Array | None, str]:
        """The field's values (one chunk) and the name to use in errors."""
        if key in self._cache:
            return self._cache[key]
        path = FIELDS[key]
        found: tuple[pa.Array | None, str] = (None, _field_label(path))
        flat = _find(self.header, path)
        top = self.header.get(path[0]) if len(path) > 1 else None
        if flat is not None:
            found = (_one(self.batch.raw(flat)), flat)
        elif top is not None:
            arr = _one(self.batch.raw(top))
            if arr is not None and pa.types.is_struct(arr.type):
                found = (_struct_child(arr, path[1]), _field_label((top, *path[1:])))
        self._cache[key] = found
        return found

    def present(self, key: str) -> bool:
        return self.raw(key)[0] is not None

    def text(self, key: str) -> pa.Array:
        arr, _ = self.raw(key)
        if arr is None:
            return pa.nulls(len(self.batch), pa.string())
        return blank_to_null(as_string(arr))

    def money(self, key: str, *, required: bool = False, label: str | None = None) -> pa.Array:
        arr, name = self.raw(key)
        if arr is None:
            return pa.nulls(len(self.batch), MONEY)
        values, bad = to_money(arr)
        self.batch.report(bad, name)
        if required:
            self.batch.require_present(values, name, label or name)
        return values

    def timestamp(self, key: str, *, required: bool = False) -> pa.Array:
        arr, name = self.raw(key)
        if arr is None:
            return pa.nulls(len(self.batch), TIMESTAMP)
        values, bad = to_utc(arr)
        self.batch.report(bad, name)
        if required:
            self.batch.require_present(values, name, name)
        return values


def _one(arr: pa.Array | pa.ChunkedArray | None) -> pa.Array | None:
    if arr is None or isinstance(arr, pa.Array):
        return arr
    if arr.num_chunks == 1:
        return arr.chunk(0)
    return arr.combine_chunks() if arr.num_chunks else pa.array([], arr.type)


def _struct_child(arr: pa.Array, name: str) -> pa.Array | None:
    t = arr.type
    for i in range(t.num_fields):
        if t.field(i).name.casefold() == name.casefold():
            return pc.struct_field(arr, [i])
    return None


def to_money(arr: pa.Array) -> tuple[pa.Array, list[BadValue]]:
    """A money column of any container → ``decimal128(36, 18)``: wide decimals (the JSON
    reader's) are truncated toward zero at 18 digits, as :func:`burnguard.core.money.parse_decimal`
    rounds text; a value with more integer digits than the canonical type holds is bad."""
    t = arr.type
    if not (pa.types.is_decimal(t) and (t.scale > SCALE or t.precision > PRECISION)):
        return to_decimal(arr)
    rounded = pc.round(arr, ndigits=SCALE, round_mode="towards_zero") if t.scale > SCALE else arr
    limit = pa.scalar(Decimal(10) ** (PRECISION - SCALE), pa.decimal256(76, 0))
    over = to_np(pc.fill_null(pc.greater_equal(pc.abs(rounded), pc.cast(limit, rounded.type)), False))
    bad: list[BadValue] = []
    if over.any():
        originals = arr.to_pylist()
        for i in np.flatnonzero(over):
            text = format(originals[i].normalize(), "f")
            bad.append(BadValue(int(i), text, f"{text} is out of range (more than {PRECISION - SCALE} integer digits)"))
        rounded = pc.if_else(pa.array(over), pa.scalar(None, rounded.type), rounded)
    return pc.cast(rounded, MONEY), bad


def to_utc(arr: pa.Array) -> tuple[pa.Array, list[BadValue]]:
    """Timestamps of any container → UTC seconds. Text is parsed once per distinct value:
    usage windows repeat on every SKU of every resource, and BigQuery's ``... UTC`` text is
    not a form Arrow's own cast takes, so casting the whole column first would be wasted."""
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)) or len(arr) == 0:
        return to_timestamp(arr)
    encoded = pc.dictionary_encode(arr)
    parsed, bad = to_timestamp(encoded.dictionary)
    values = parsed.take(encoded.indices)
    if not bad:
        return values, []
    codes = to_np(pc.fill_null(encoded.indices, -1))
    rows = [BadValue(int(i), b.text, b.reason) for b in bad for i in np.flatnonzero(codes == b.index)]
    return values, sorted(rows, key=lambda b: b.index)


# -- text arrays (CSV): labels and credits as JSON or Python-literal text ---------------------

def _value_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def parse_labels(text: str | None) -> list[dict[str, str | None]]:
    """A label list written as text → ``[{key, value}]`` (keys and values as written)."""
    return [{"key": k, "value": v} for k, v in _label_pairs(text)]


@lru_cache(maxsize=16384)
def _label_pairs(text: str | None) -> tuple[tuple[str, str | None], ...]:
    # Cached across batches: the same resource's labels recur in every chunk of a file.
    return tuple((k, _value_text(v)) for k, v in parse_label_list(text))


class _Number(str):
    """A number's own text in a literal (kept as text so no float ever holds it)."""


def _literal(node: ast.AST, source: str) -> Any:
    """A Python literal (lists, dicts, tuples, strings, numbers, None, booleans) as data, with
    numbers as their source text."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return _Number(ast.get_source_segment(source, node) or repr(node.value))
        if node.value is None or isinstance(node.value, (str, bool)):
            return node.value
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        if isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, (int, float)):
            return _Number(ast.get_source_segment(source, node) or "")
    elif isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e, source) for e in node.elts]
    elif isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise ValueError("a ** expansion is not a literal")
        return {_literal(k, source): _literal(v, source) for k, v in zip(node.keys, node.values, strict=True)
                if k is not None}
    raise ValueError(f"{ast.get_source_segment(source, node) or type(node).__name__!r} is not a literal")


def _parse_array_text(text: str, what: str) -> Any:
    s = text.strip()
    try:
        return json.loads(s, parse_float=_Number, parse_int=_Number)
    except json.JSONDecodeError:
        pass
    try:
        return _literal(ast.parse(s, mode="eval").body, s)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ValueError(f"{what} are neither JSON nor a literal list ({exc}): {text[:80]!r}") from None


@lru_cache(maxsize=4096)
def parse_credits(text: str | None) -> tuple[Decimal, bool]:
    """A credits array written as text → (sum of the amounts, whether a committed use discount
    is among them). Amounts are read from their own digits (``-5e-06`` stays exact)."""
    if text is None or text.strip() in ("", "[]", "NULL", "null", "None"):
        return Decimal(0), False
    value = _parse_array_text(text, "credits")
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"credits are not a list: {text[:80]!r}")
    total = Decimal(0)
    committed = False
    for credit in value:
        if not isinstance(credit, dict):
            raise ValueError(f"credit {credit!r} is not a record")
        amount = credit.get("amount")
        try:
            parsed = parse_decimal(str(amount)) if amount is not None else None
        except NumberError as exc:
            raise ValueError(f"credit amount {exc}") from None
        total += parsed or Decimal(0)
        committed |= str(credit.get("type") or "").upper().startswith(_COMMITTED)
    return total, committed


def _credit_summary(text: str | None) -> dict[str, object]:
    total, committed = parse_credits(text)
    return {"total": total, "committed": committed}


@lru_cache(maxsize=1024)
def billing_period(month: str | None) -> tuple[datetime, datetime] | None:
    """``202409`` → (2024-09-01, 2024-10-01), UTC."""
    if month is None:
        return None
    m = _INVOICE_MONTH.match(month.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"invoice month {month!r} is not YYYYMM")
    year, mon = int(m.group(1)), int(m.group(2))
    start = datetime(year, mon, 1, tzinfo=UTC)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=UTC)
    return start, end


def _period(month: str | None) -> dict[str, datetime] | None:
    period = billing_period(month)
    return {"start": period[0], "end": period[1]} if period else None


def _classify_machine(machine: str | None) -> dict[str, str | None] | None:
    acc = classify_instance_type(GCP, machine)
    return {"c": acc.cls, "f": acc.family} if acc else None


def _classify_sku(sku: str | None) -> dict[str, str | None] | None:
    acc = classify_sku(sku)
    return {"c": acc.cls, "f": acc.family} if acc else None


_CLASS = pa.struct([("c", pa.string()), ("f", pa.string())])
_PERIOD = pa.struct([("start", TIMESTAMP), ("end", TIMESTAMP)])


class _Entries:
    """The (row, key, value) entries of one label list field, flattened."""

    def __init__(self, rows: np.ndarray, keys: pa.Array, values: pa.Array, name: str):
        self.rows = rows
        self.keys = keys
        self.values = values
        self.name = name


class GcpBillingPlan(Plan):
    def __init__(self, header: Header, ctx: ReadContext):
        self.ctx = ctx
        wanted: list[str] = []
        for path in FIELDS.values():
            hit = _find(header, path)
            if hit is None and len(path) > 1:
                hit = header.get(path[0])
            if hit is not None:
                wanted.append(hit)
        self.columns = list(dict.fromkeys(wanted))
        # Decided from the header (a JSON file's first record): a field the file does not have
        # at all is not a value missing from each row.
        self.has_currency = header.get("currency") is not None
        self.has_invoice_month = _find(header, FIELDS["invoice_month"]) is not None or header.get("invoice") is not None
        if not self.has_currency and not ctx.default_currency:
            header.require("currency", "currency", file=ctx.file)
        header.require("usage_start_time", "usage_start_time", file=ctx.file)
        header.require("cost", "cost", file=ctx.file)
        detailed = header.count("resource", "resource.name", "resource.global_name", "resource_name",
                                "resource_global_name") > 0
        self.variant = "gcp-billing-detailed" if detailed else "gcp-billing-standard"
        self.json_schema = json_schema_for(header)

    def transform(self, batch: Batch) -> pa.Table:
        f = _Fields(batch)
        cost = f.money("cost", required=True, label="cost")
        currency = self._currency(batch, f)
        start = f.timestamp("start", required=True)
        credits, committed = self._credits(batch, f)
        effective = dec_add(cost, credits)
        period_start, period_end = self._billing_period(batch, f, start)
        cost_type = f.text("cost_type")
        category = self._category(cost_type)
        sku = f.text("sku")
        tags, machine = self._labels(batch, f)
        machine_class, _ = map_distinct(machine, _classify_machine, _CLASS)
        sku_class, _ = map_distinct(sku, _classify_sku, _CLASS)
        by_machine = pc.is_valid(pc.struct_field(machine_class, "c"))
        service = f.text("service")
        is_usage = pc.fill_null(pc.equal(category, "Usage"), False)
        dynamic = pc.fill_null(pc.match_substring_regex(sku, _DYNAMIC_SKU.pattern, ignore_case=True), False)
        pricing = pc.if_else(dynamic, pa.scalar("Dynamic"),
                             pc.if_else(committed, pa.scalar("Committed"), pa.scalar("Standard")))
        pricing = pc.if_else(is_usage, pricing, pa.scalar(None, pa.string()))
        return batch.assemble({
            "ProviderName": PROVIDER,
            "BillingAccountId": f.text("account"),
            "SubAccountId": f.text("project_id"),
            "SubAccountName": f.text("project_name"),
            "BillingPeriodStart": period_start,
            "BillingPeriodEnd": period_end,
            "ChargePeriodStart": start,
            "ChargePeriodEnd": f.timestamp("end"),
            "ChargeCategory": category,
            "ChargeFrequency": lookup(cost_type, CHARGE_FREQUENCY, "Usage-Based"),
            "ChargeDescription": sku,
            "BilledCost": cost,
            "EffectiveCost": effective,
            "ListCost": f.money("list_cost"),
            "BillingCurrency": currency,
            "PricingCategory": pricing,
            "ConsumedQuantity": f.money("usage_amount"),
            "ConsumedUnit": f.text("usage_unit"),
            "ServiceName": service,
            "ServiceCategory": lookup(service, SERVICE_CATEGORY, "Other"),
            "SkuId": f.text("sku_id"),
            "ResourceId": pc.coalesce(f.text("resource_global"), f.text("resource_name")),
            "ResourceName": f.text("resource_name"),
            "RegionId": pc.coalesce(f.text("region"), f.text("location")),
            "AvailabilityZone": f.text("zone"),
            "Tags": tags,
            "x_Cloud": GCP,
            "x_InstanceType": machine,
            "x_AcceleratorClass": pc.if_else(by_machine, pc.struct_field(machine_class, "c"),
                                             pc.struct_field(sku_class, "c")),
            "x_AcceleratorFamily": pc.if_else(by_machine, pc.struct_field(machine_class, "f"),
                                              pc.struct_field(sku_class, "f")),
            "x_UsageType": sku,
        })

    # -- columns -------------------------------------------------------------------------------
    def _currency(self, batch: Batch, f: _Fields) -> pa.Array:
        default = self.ctx.default_currency
        if not self.has_currency:
            return constant(default, len(batch))
        currency = f.text("currency")
        if default:
            currency = pc.coalesce(currency, pa.scalar(default, pa.string()))
        batch.require_present(currency, f.raw("currency")[1], "currency")
        return currency

    def _category(self, cost_type: pa.Array) -> pa.Array:
        category = lookup(cost_type, CHARGE_CATEGORY)
        unknown = pc.and_(pc.is_valid(cost_type), pc.is_null(category))
        if pc.any(unknown).as_py():
            values = sorted(v for v in pc.unique(pc.filter(cost_type, unknown)).to_pylist() if v)
            self.ctx.warn(f"unknown cost_type {', '.join(map(repr, values[:5]))}: counted as Adjustment")
            category = pc.if_else(unknown, pa.scalar("Adjustment"), category)
        return pc.fill_null(category, "Usage")

    def _billing_period(self, batch: Batch, f: _Fields, start: pa.Array) -> tuple[pa.Array, pa.Array]:
        name = f.raw("invoice_month")[1]
        if not self.has_invoice_month or not f.present("invoice_month"):
            self.ctx.warn("no invoice.month: billing period taken from the usage month")
            month = pc.strftime(start, format="%Y%m")
        else:
            month = f.text("invoice_month")
            batch.require_present(month, name, "invoice.month")
        periods, bad = map_distinct(month, _period, _PERIOD)
        batch.report(bad, name)
        return pc.struct_field(periods, "start"), pc.struct_field(periods, "end")

    def _credits(self, batch: Batch, f: _Fields) -> tuple[pa.Array, pa.Array]:
        """Per row: the sum of the credit amounts (0 without credits) and whether a committed
        use discount is among them."""
        n = len(batch)
        arr, name = f.raw("credits")
        zero = pa.repeat(dec_zero(), n)
        if arr is None:
            return zero, pa.repeat(pa.scalar(False), n)
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            summary, bad = map_distinct(arr, _credit_summary, CREDIT_SUMMARY)
            batch.report(bad, name)
            total = pc.fill_null(pc.struct_field(summary, "total"), dec_zero())
            return total, pc.fill_null(pc.struct_field(summary, "committed"), False)
        if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)) or not pa.types.is_struct(
                arr.type.value_type):
            raise InputError(f"credits have type {arr.type}; expected a list of records or text",
                             file=self.ctx.file, field=name)
        flat = pc.list_flatten(arr)
        parents = to_np(pc.list_parent_indices(arr)).astype(np.int64)
        committed = np.zeros(n, dtype=bool)
        if len(flat) == 0:
            return zero, pa.array(committed)
        amount_arr = _struct_child(flat, "amount")
        if amount_arr is None:
            return zero, pa.array(committed)
        amounts, bad = to_money(amount_arr)
        if bad:
            batch.report([BadValue(int(parents[b.index]), b.text, b.reason) for b in bad], f"{name}.amount")
        kinds = _struct_child(flat, "type")
        if kinds is not None:
            hit = to_np(pc.fill_null(pc.starts_with(pc.utf8_upper(as_string(kinds)), _COMMITTED), False))
            committed[parents[hit]] = True
        sums = pa.table({"row": parents, "amount": amounts}).group_by("row").aggregate([("amount", "sum")])
        where = pc.index_in(pa.array(np.arange(n, dtype=np.int64)), value_set=sums.column("row"))
        total = pc.cast(sums.column("amount_sum").combine_chunks().take(where), MONEY)
        return pc.fill_null(total, dec_zero()), pa.array(committed)

    # -- labels ----------------------------------------------------------------------------------
    def _entries(self, batch: Batch, f: _Fields, key: str) -> _Entries | None:
        arr, name = f.raw(key)
        if arr is None:
            return None
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            parsed, bad = map_distinct(arr, parse_labels, LABELS)
            batch.report(bad, name)
            arr = _one(parsed)
            assert arr is not None
        if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)) or not pa.types.is_struct(
                arr.type.value_type):
            raise InputError(f"labels have type {arr.type}; expected a list of {{key, value}} records or text",
                             file=self.ctx.file, field=name)
        flat = pc.list_flatten(arr)
        keys = _struct_child(flat, "key")
        values = _struct_child(flat, "value")
        if keys is None:
            return None
        rows = to_np(pc.list_parent_indices(arr)).astype(np.int64)
        values = as_string(values) if values is not None else pa.nulls(len(flat), pa.string())
        return _Entries(rows, as_string(keys), values, name)

    def _labels(self, batch: Batch, f: _Fields) -> tuple[pa.Array, pa.Array]:
        """Tags (project labels overlaid by resource labels) and the machine type."""
        n = len(batch)
        resource = self._entries(batch, f, "labels")
        project = self._entries(batch, f, "project_labels")
        tags = combine_labels(batch, n, [e for e in (resource, project) if e is not None])
        machine = pa.nulls(n, pa.string())
        system = self._entries(batch, f, "system_labels")
        if system is not None and len(system.keys):
            hit = np.flatnonzero(to_np(pc.fill_null(pc.equal(system.keys, MACHINE_SPEC), False)))
            if len(hit):
                rows, first = np.unique(system.rows[hit], return_index=True)
                pick = np.full(n, -1, dtype=np.int64)
                pick[rows] = hit[first]
                machine = system.values.take(pa.array(pick, mask=pick < 0))
                machine = blank_to_null(pc.utf8_trim_whitespace(machine))
        return tags, machine


def combine_labels(batch: Batch, n: int, sources: list[_Entries]) -> pa.Array:
    """The ``Tags`` map of each row from label lists in priority order (resource labels before
    project labels): keys and values trimmed, empty keys dropped, a key of a higher-priority
    list wins, and within one list the first non-empty value of a key wins. Columnar: one
    sort of all entries by (row, key, priority, empty value, position), first of each group."""
    parts = []
    offset = 0
    for priority, src in enumerate(sources):
        keys = pc.utf8_trim_whitespace(src.keys)
        values = pc.fill_null(pc.utf8_trim_whitespace(src.values), "")
        key_len = to_np(pc.fill_null(pc.utf8_length(keys), 0))
        value_len = to_np(pc.utf8_length(values))
        too_long = (key_len > MAX_KEY_LENGTH) | (value_len > MAX_VALUE_LENGTH)
        for i in np.flatnonzero(too_long):
            row = int(src.rows[i])
            if batch.drop[row]:
                continue
            what = (f"label key {keys[i].as_py()[:40]!r}... is {key_len[i]} characters (limit {MAX_KEY_LENGTH})"
                    if key_len[i] > MAX_KEY_LENGTH else
                    f"value of label {keys[i].as_py()[:60]!r} is {value_len[i]} characters (limit {MAX_VALUE_LENGTH})")
            batch.ctx.error(InputError(what, file=batch.ctx.file, row=int(batch.rows[row]), field=src.name))
            batch.drop[row] = True
        parts.append(pa.table({
            "row": pa.array(src.rows, pa.int64()),
            "key": keys,
            "prio": pa.repeat(pa.scalar(priority, pa.int32()), len(keys)),
            "empty": pa.array(value_len == 0, pa.bool_()),
            "pos": pa.array(np.arange(offset, offset + len(keys), dtype=np.int64)),
            "value": values,
        }).filter(pa.array(key_len > 0)))
        offset += len(keys)
    empty_map = pa.MapArray.from_arrays(pa.array(np.zeros(n + 1, dtype=np.int32)), pa.array([], pa.string()),
                                        pa.array([], pa.string()), type=TAGS)
    if not parts:
        return empty_map
    entries = pa.concat_tables(parts)
    if entries.num_rows == 0:
        return empty_map
    entries = entries.sort_by([("row", "ascending"), ("key", "ascending"), ("prio", "ascending"),
                               ("empty", "ascending"), ("pos", "ascending")])
    rows = to_np(entries.column("row"))
    keys = entries.column("key").combine_chunks()
    first = np.ones(len(rows), dtype=bool)
    if len(rows) > 1:
        same_key = to_np(pc.fill_null(pc.equal(keys.slice(1), keys.slice(0, len(keys) - 1)), False))
        first[1:] = ~((rows[1:] == rows[:-1]) & same_key)
    keep = pa.array(first)
    kept_rows = rows[first]
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(kept_rows, minlength=n), out=offsets[1:])
    return pa.MapArray.from_arrays(pa.array(offsets), keys.filter(keep),
                                   entries.column("value").combine_chunks().filter(keep), type=TAGS)


