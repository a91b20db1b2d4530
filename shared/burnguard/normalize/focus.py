"""FOCUS (FinOps Open Cost and Usage Specification) 1.0, 1.1, 1.2 and 1.3, from any provider.

One reader for every FOCUS producer: AWS Data Exports ("FOCUS 1.0/1.2 with AWS columns",
``x_UsageType``...), Azure Cost Management ``FocusCost`` exports (many ``x_`` columns), Google's
FOCUS table extracted to GCS, Oracle, SaaS vendors, and the spec's own examples (which hold a
subset of the columns). CSV (``NULL``/``null`` are empty) and Parquet (typed columns, ``Tags``
as a map or as JSON text); JSON lines too (``Tags`` as an object).

Columns are taken by their FOCUS names; only the provider-specific ``x_`` columns are read to
derive burnguard's own fields:

* ``x_Cloud``: from ``ServiceProviderName`` (1.3) or ``ProviderName``: AWS/Amazon → ``aws``,
  Microsoft/Azure → ``azure``, Google → ``gcp``, anything else (Oracle, a SaaS vendor, none) →
  ``other``. ``ProviderName`` keeps the provider's own words.
* ``Tags``: the JSON object (or Parquet map), normalized by the rule of the row's provider
  (:mod:`burnguard.core.tags`): Microsoft keys lower-cased (``"org"`` and ``" org"`` merge), AWS
  ``user:`` prefix removed, others as written (stripped).
* ``x_InstanceType``: AWS ``x_UsageType`` (``BoxUsage:p4d.24xlarge`` → ``p4d.24xlarge``); Azure
  ``x_SkuDetails`` (``VMSize``, or ``ServiceType`` when it is a VM size), else the meter name of a
  ``Virtual Machines`` meter (``NC24ads A100 v4`` → ``Standard_NC24ads_A100_v4``).
* ``x_AcceleratorClass`` / ``x_AcceleratorFamily``: the instance type, else a GPU or TPU named by
  ``SkuMeter``, ``x_SkuMeterName`` or ``ChargeDescription``.

Values are spelled as the spec spells them whatever the case of the file: ``ChargeCategory``,
``ChargeClass``, ``ChargeFrequency`` (the sample's ``Usage-based`` → ``Usage-Based``) and
``PricingCategory``; unknown values are kept as written (with a warning).

Required: ``BilledCost`` and ``ChargePeriodStart`` in every row, and ``BillingCurrency`` (or the
caller's ``default_currency``: several spec examples have no currency column). A file without
``EffectiveCost`` (a minimal example) uses ``BilledCost`` for it, and says so once.

**Version** (``plan.variant``, e.g. ``focus-1.2``): the lowest version consistent with the
columns present, from the columns each version added:

* 1.3: ``ServiceProviderName`` or ``HostProviderName``;
* 1.2: ``InvoiceId`` or a ``PricingCurrency*`` column, or ``BillingAccountType`` /
  ``SubAccountType`` together with a 1.1 column. Alone, those two do not count: Microsoft's
  ``FocusCost`` 1.0 export already ships them (see finops-toolkit ``FocusCost_1.0.json``);
* 1.1: ``CapacityReservationId``, ``CapacityReservationStatus``, ``CommitmentDiscountQuantity``,
  ``CommitmentDiscountUnit``, ``ServiceSubcategory``, ``SkuMeter`` or ``SkuPriceDetails``;
* 1.0 otherwise.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from burnguard.core.accelerators import classify_instance_type, classify_sku
from burnguard.core.clouds import AWS, AZURE, GCP, OTHER
from burnguard.core.columnar import BadValue, as_string, distinct_apply, map_distinct, to_np
from burnguard.core.lineitem import TAGS
from burnguard.core.tags import (
    MAX_KEY_LENGTH,
    MAX_VALUE_LENGTH,
    TagError,
    normalize_key,
    normalize_tags,
    parse_tag_object,
)
from burnguard.normalize.aws import instance_type_from_usage
from burnguard.normalize.base import Batch, Format, Header, Plan, ReadContext, coalesce, constant

#: Columns each FOCUS version added (1.0 is the base set).
FOCUS_1_0 = (
    "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription",
    "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart", "CommitmentDiscountCategory",
    "CommitmentDiscountId", "CommitmentDiscountName", "CommitmentDiscountStatus", "CommitmentDiscountType",
    "ConsumedQuantity", "ConsumedUnit", "ContractedCost", "ContractedUnitPrice", "EffectiveCost",
    "InvoiceIssuerName", "ListCost", "ListUnitPrice", "PricingCategory", "PricingQuantity", "PricingUnit",
    "ProviderName", "PublisherName", "RegionId", "RegionName", "ResourceId", "ResourceName", "ResourceType",
    "ServiceCategory", "ServiceName", "SkuId", "SkuPriceId", "SubAccountId", "SubAccountName", "Tags",
)
FOCUS_1_1 = (
    "CapacityReservationId", "CapacityReservationStatus", "CommitmentDiscountQuantity", "CommitmentDiscountUnit",
    "ServiceSubcategory", "SkuMeter", "SkuPriceDetails",
)
#: 1.2 additions that only a 1.2 producer writes.
FOCUS_1_2 = (
    "InvoiceId", "PricingCurrency", "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice",
)
#: 1.2 additions that Microsoft's FocusCost 1.0 export already has.
FOCUS_1_2_EARLY = ("BillingAccountType", "SubAccountType")
FOCUS_1_3 = ("ServiceProviderName", "HostProviderName")
ALL_COLUMNS = FOCUS_1_0 + FOCUS_1_1 + FOCUS_1_2 + FOCUS_1_2_EARLY + FOCUS_1_3
#: Besides BilledCost and ChargePeriodStart, a FOCUS header holds at least one of these.
SIGNATURE = ("ProviderName", "ServiceProviderName", "ChargeCategory", "EffectiveCost", "BillingCurrency")

#: Spec spellings, keyed by the value folded (lower case, letters and digits only).
CHARGE_CATEGORY = {v.lower(): v for v in ("Usage", "Purchase", "Tax", "Credit", "Adjustment")}
CHARGE_CLASS = {"correction": "Correction"}
CHARGE_FREQUENCY = {"onetime": "One-Time", "recurring": "Recurring", "usagebased": "Usage-Based"}
PRICING_CATEGORY = {v.lower(): v for v in ("Standard", "Dynamic", "Committed", "Other")}

_SEP = "\x1f"  # joins a row's cloud code to a value, so one distinct pass sees both
_AWS_WORD = re.compile(r"\baws\b|amazon", re.IGNORECASE)
_AZURE_WORD = re.compile(r"microsoft|azure", re.IGNORECASE)
_GCP_WORD = re.compile(r"google|\bgcp\b", re.IGNORECASE)
_AZURE_VM_SIZE = re.compile(r"^(?:Standard|Basic)_[A-Za-z0-9_-]+$")
_AZURE_METER_SIZE = re.compile(r"^[A-Z][A-Za-z0-9]*\d[A-Za-z0-9]*(?: [A-Za-z0-9]+)*$")
_AZURE_METER_SUFFIX = re.compile(r"\s+(?:Spot|Low Priority)$", re.IGNORECASE)

_ACCEL = pa.struct([("c", pa.string()), ("f", pa.string())])


def focus_version(header: Header) -> str:
    """``1.0`` ... ``1.3``: the lowest version consistent with the columns (module docstring)."""
    if header.count(*FOCUS_1_3):
        return "1.3"
    has_1_1 = header.count(*FOCUS_1_1) > 0
    if header.count(*FOCUS_1_2) or (has_1_1 and header.count(*FOCUS_1_2_EARLY)):
        return "1.2"
    return "1.1" if has_1_1 else "1.0"


@lru_cache(maxsize=1024)
def cloud_of(provider: str | None) -> str:
    """burnguard's cloud code of a FOCUS provider name."""
    if not provider:
        return OTHER
    if _AWS_WORD.search(provider):
        return AWS
    if _AZURE_WORD.search(provider):
        return AZURE
    if _GCP_WORD.search(provider):
        return GCP
    return OTHER


def _fold(value: str) -> str:
    return re.sub(r"[^a-z0-9]", "", value.casefold())


def azure_vm_size(details: str | None, meter_name: str | None, meter_category: str | None) -> str | None:
    """The VM size of an Azure FOCUS row: ``x_SkuDetails`` ``VMSize`` or a VM-size
    ``ServiceType``; else the meter name of a ``Virtual Machines`` meter."""
    if details:
        try:
            info = parse_tag_object(details)
        except (TagError, ValueError):
            info = {}
        lowered = {str(k).casefold(): v for k, v in info.items()}
        for key in ("vmsize", "servicetype"):
            value = lowered.get(key)
            if isinstance(value, str) and _AZURE_VM_SIZE.match(value.strip()):
                return value.strip()
    if meter_name and meter_category and meter_category.strip().casefold() == "virtual machines":
        name = _AZURE_METER_SUFFIX.sub("", meter_name.strip())
        if _AZURE_METER_SIZE.match(name):  # "D2 v3/D2s v3" (a shared meter) names no one size
            return "Standard_" + name.replace(" ", "_")
    return None


def _joined(*parts: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """One string per row from several string columns (nulls as empty), for one distinct pass."""
    filled = [pc.fill_null(p, "") for p in parts]
    return pc.binary_join_element_wise(*filled, _SEP)


def _split(value: str, n: int) -> list[str | None]:
    parts = value.split(_SEP)
    return [p or None for p in parts[:n]] + [None] * (n - len(parts))


def _unjoined(bad: list[BadValue]) -> list[BadValue]:
    """Bad values found on joined text, quoted as the file wrote them (the last part)."""
    return [BadValue(b.index, b.text.rsplit(_SEP, 1)[-1], b.reason) for b in bad]


class FocusFormat(Format):
    name = "focus"
    description = "FOCUS 1.0-1.3 from any provider (AWS Data Exports, Azure FocusCost, Google, Oracle, SaaS)"

    def score(self, header: Header) -> int:
        if header.get("BilledCost") is None or header.get("ChargePeriodStart") is None:
            return 0
        if not header.count(*SIGNATURE):
            return 0
        # Far above the legacy readers (whose signatures are a few columns): an AWS or Azure
        # FOCUS export carries x_ columns that look like theirs, and must still come here.
        return 100 + header.count(*ALL_COLUMNS)

    def plan(self, header: Header, ctx: ReadContext) -> Plan:
        return FocusPlan(header, ctx)


class FocusPlan(Plan):
    #: canonical (or internal) key → FOCUS column names to look for, first present wins
    FIELDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "provider": ("ServiceProviderName",),
        "provider_1_0": ("ProviderName",),
        "billing_account": ("BillingAccountId",),
        "sub_account": ("SubAccountId",),
        "sub_account_name": ("SubAccountName",),
        "invoice": ("InvoiceId", "x_InvoiceId"),
        "billing_start": ("BillingPeriodStart",),
        "billing_end": ("BillingPeriodEnd",),
        "start": ("ChargePeriodStart",),
        "end": ("ChargePeriodEnd",),
        "category": ("ChargeCategory",),
        "class": ("ChargeClass",),
        "frequency": ("ChargeFrequency",),
        "description": ("ChargeDescription",),
        "billed": ("BilledCost",),
        "effective": ("EffectiveCost",),
        "list": ("ListCost",),
        "currency": ("BillingCurrency",),
        "pricing": ("PricingCategory",),
        "commitment": ("CommitmentDiscountId",),
        "quantity": ("ConsumedQuantity",),
        "unit": ("ConsumedUnit",),
        "service": ("ServiceName",),
        "service_category": ("ServiceCategory",),
        "sku": ("SkuId",),
        "sku_meter": ("SkuMeter",),
        "resource": ("ResourceId",),
        "resource_name": ("ResourceName",),
        "resource_type": ("ResourceType",),
        "region": ("RegionId",),
        "zone": ("AvailabilityZone",),
        "tags": ("Tags",),
        "usage_type": ("x_UsageType",),
        "sku_details": ("x_SkuDetails",),
        "meter_name": ("x_SkuMeterName",),
        "meter_category": ("x_SkuMeterCategory",),
    }

    def __init__(self, header: Header, ctx: ReadContext):
        self.ctx = ctx
        self.col: dict[str, str | None] = {key: header.get(*names) for key, names in self.FIELDS.items()}
        self.variant = f"focus-{focus_version(header)}"
        header.require("BilledCost", "BilledCost", file=ctx.file)
        header.require("ChargePeriodStart", "ChargePeriodStart", file=ctx.file)
        if self.col["currency"] is None and not ctx.default_currency:
            header.require("BillingCurrency", "BillingCurrency", file=ctx.file)
        if self.col["effective"] is None:
            ctx.warn("no EffectiveCost column: EffectiveCost is BilledCost for every row")
        self.columns = list(dict.fromkeys(c for c in self.col.values() if c))

    # -- the transform -----------------------------------------------------------------------
    def transform(self, batch: Batch) -> pa.Table:
        if not self.ctx.strict:
            return self._transform(batch)
        # Strict: stop at the first bad row of the file, whichever column finds it. The columns
        # are checked one after the other, so collect this batch's errors, then raise the first.
        ctx = self.ctx
        kept, count, limit = len(ctx.errors), ctx.error_count, ctx.max_kept_errors
        ctx.strict, ctx.max_kept_errors = False, kept + len(batch) * len(self.columns) + 1
        try:
            out = self._transform(batch)
        finally:
            ctx.strict, ctx.max_kept_errors = True, limit
        found = ctx.errors[kept:]
        if found:
            del ctx.errors[kept:]
            ctx.error_count = count
            raise min(found, key=lambda e: (e.row if e.row is not None else 0))
        return out

    def _transform(self, batch: Batch) -> pa.Table:
        c = self.col
        n = len(batch)
        billed = batch.money(c["billed"], required=True, label="BilledCost")
        effective = self._effective(batch, billed)
        currency = self._currency(batch)
        start = batch.timestamp(c["start"], required=True)
        provider = coalesce(batch.text(c["provider"]), batch.text(c["provider_1_0"]))
        cloud, _ = map_distinct(provider, cloud_of, pa.string())
        cloud = pc.fill_null(cloud, OTHER)
        usage_type = batch.text(c["usage_type"])
        instance_type = self._instance_type(batch, cloud, usage_type)
        accel = self._accelerators(batch, cloud, instance_type)
        return batch.assemble({
            "ProviderName": provider,
            "BillingAccountId": batch.text(c["billing_account"]),
            "SubAccountId": batch.text(c["sub_account"]),
            "SubAccountName": batch.text(c["sub_account_name"]),
            "InvoiceId": batch.text(c["invoice"]),
            "BillingPeriodStart": batch.timestamp(c["billing_start"]),
            "BillingPeriodEnd": batch.timestamp(c["billing_end"]),
            "ChargePeriodStart": start,
            "ChargePeriodEnd": batch.timestamp(c["end"]),
            "ChargeCategory": self._spelled(batch, "category", CHARGE_CATEGORY),
            "ChargeClass": self._spelled(batch, "class", CHARGE_CLASS),
            "ChargeFrequency": self._spelled(batch, "frequency", CHARGE_FREQUENCY),
            "ChargeDescription": batch.text(c["description"]),
            "BilledCost": billed,
            "EffectiveCost": effective,
            "ListCost": batch.money(c["list"]),
            "BillingCurrency": currency,
            "PricingCategory": self._spelled(batch, "pricing", PRICING_CATEGORY),
            "CommitmentDiscountId": batch.text(c["commitment"]),
            "ConsumedQuantity": batch.money(c["quantity"]),
            "ConsumedUnit": batch.text(c["unit"]),
            "ServiceName": batch.text(c["service"]),
            "ServiceCategory": batch.text(c["service_category"]),
            "SkuId": batch.text(c["sku"]),
            "ResourceId": batch.text(c["resource"]),
            "ResourceName": batch.text(c["resource_name"]),
            "ResourceType": batch.text(c["resource_type"]),
            "RegionId": batch.text(c["region"]),
            "AvailabilityZone": batch.text(c["zone"]),
            "Tags": self._tags(batch, cloud) if c["tags"] else pa.nulls(n, TAGS),
            "x_Cloud": cloud,
            "x_InstanceType": instance_type,
            "x_AcceleratorClass": pc.struct_field(accel, "c"),
            "x_AcceleratorFamily": pc.struct_field(accel, "f"),
            "x_UsageType": usage_type,
        })

    def _effective(self, batch: Batch, billed: pa.Array) -> pa.Array:
        if self.col["effective"] is None:
            return billed
        effective = batch.money(self.col["effective"])
        missing = to_np(pc.is_null(effective)) & to_np(pc.is_valid(billed))
        if missing.any():
            self.ctx.warn("EffectiveCost is empty in some rows: BilledCost is used for them")
            effective = pc.coalesce(effective, billed)
        return effective

    def _currency(self, batch: Batch) -> pa.Array | pa.ChunkedArray:
        name = self.col["currency"]
        default = self.ctx.default_currency
        if name is None:
            return constant(default, len(batch))
        currency = pc.utf8_trim_whitespace(batch.text(name))
        if default:
            currency = pc.coalesce(currency, pa.scalar(default, pa.string()))
        batch.require_present(currency, name, "BillingCurrency")
        return currency

    def _spelled(self, batch: Batch, key: str, spelling: dict[str, str]) -> pa.Array | pa.ChunkedArray:
        """A value column in the spec's spelling (compared ignoring case, spaces and dashes);
        unknown values stay as written, with one warning each."""
        name = self.col[key]
        arr = batch.text(name)
        if name is None:
            return arr
        unknown: set[str] = set()

        def spell(values: list[str | None]) -> pa.Array:
            out: list[str | None] = []
            for v in values:
                if v is None:
                    out.append(None)
                    continue
                hit = spelling.get(_fold(v))
                if hit is None:
                    unknown.add(v)
                out.append(hit or v.strip())
            return pa.array(out, pa.string())

        result = distinct_apply(arr, spell)
        for v in sorted(unknown)[:10]:
            self.ctx.warn(f"{name} value {v!r} is not one the FOCUS spec defines; kept as written")
        return result

    # -- tags --------------------------------------------------------------------------------
    def _tags(self, batch: Batch, cloud: pa.Array | pa.ChunkedArray) -> pa.Array:
        name = self.col["tags"]
        assert name is not None
        raw = batch.raw(name)
        assert raw is not None
        if pa.types.is_map(raw.type):
            return self._tags_from_map(batch, _flat(raw), cloud)
        if pa.types.is_struct(raw.type):
            # JSON lines: Arrow reads the object as a struct of every key seen. Not an export
            # format any provider delivers, so back to JSON text, once per row.
            text = pa.array([json.dumps({k: v for k, v in row.items() if v is not None}) if row is not None else None
                             for row in _flat(raw).to_pylist()], pa.string())
        else:
            text = batch.text(name)
        values, bad = map_distinct(_joined(cloud, text), _tags_from_text, TAGS)
        batch.report(_unjoined(bad), name)
        return values

    def _tags_from_map(self, batch: Batch, raw: pa.MapArray, cloud: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Parquet's ``map<string, string>``, normalized without a Python loop per row: keys
        once per distinct (cloud, key), duplicates merged with numpy (first non-empty value
        wins, at the place of the key's first spelling, as :func:`normalize_tags` does)."""
        name = self.col["tags"]
        assert name is not None
        n = len(raw)
        offsets = np.asarray(raw.offsets, dtype=np.int64)
        base = int(offsets[0])
        parent = np.repeat(np.arange(n, dtype=np.int64), np.diff(offsets))
        position = np.arange(int(offsets[-1]) - base, dtype=np.int64)
        live = np.repeat(to_np(raw.is_valid()), np.diff(offsets)) if n else np.zeros(0, dtype=bool)
        keys = as_string(raw.keys.slice(base, int(offsets[-1]) - base))
        items = as_string(raw.items.slice(base, int(offsets[-1]) - base))
        entry_cloud = pc.take(cloud, pa.array(parent))
        norm_keys, _ = map_distinct(_joined(entry_cloud, keys), _normalized_key, pa.string())
        values = pc.fill_null(pc.utf8_trim_whitespace(items), "")
        norm_keys = _flat(pc.fill_null(norm_keys, ""))
        keep = live & to_np(pc.not_equal(norm_keys, ""))
        codes = to_np(pc.dictionary_encode(norm_keys).indices)
        # Keys and values past the limits make their rows bad, as in the JSON path.
        key_len = to_np(pc.fill_null(pc.utf8_length(norm_keys), 0))
        value_len = to_np(pc.utf8_length(values))
        too_long = keep & ((key_len > MAX_KEY_LENGTH) | (value_len > MAX_VALUE_LENGTH))
        if too_long.any():
            bad_rows = np.zeros(n, dtype=bool)
            bad_rows[parent[too_long]] = True
            batch.flag(bad_rows, name,
                       f"a tag key or value is past the limits ({MAX_KEY_LENGTH}/{MAX_VALUE_LENGTH} characters)")
        idx = np.flatnonzero(keep)
        if len(idx) == 0:
            return pa.MapArray.from_arrays(pa.array(np.zeros(n + 1, dtype=np.int32)), pa.array([], pa.string()),
                                           pa.array([], pa.string()), type=TAGS)
        p = parent[idx]
        key_codes = codes[idx]
        empty = value_len[idx] == 0
        pos = position[idx]
        # Group by (row, key); within a group the first non-empty value, else the first.
        order = np.lexsort((pos, empty, key_codes, p))
        sp, sk = p[order], key_codes[order]
        start = np.ones(len(order), dtype=bool)
        start[1:] = (sp[1:] != sp[:-1]) | (sk[1:] != sk[:-1])
        starts = np.flatnonzero(start)
        chosen = idx[order[starts]]
        first_pos = np.minimum.reduceat(pos[order], starts)
        final = np.lexsort((first_pos, p[order[starts]]))
        rows_of = p[order[starts]][final]
        entries = chosen[final]
        out_offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(np.bincount(rows_of, minlength=n), out=out_offsets[1:])
        take = pa.array(entries)
        return pa.MapArray.from_arrays(pa.array(out_offsets), _flat(pc.take(norm_keys, take)),
                                       _flat(pc.take(values, take)), type=TAGS)

    # -- instance type and accelerators ------------------------------------------------------
    def _instance_type(self, batch: Batch, cloud: pa.Array | pa.ChunkedArray,
                       usage_type: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
        c = self.col
        candidates: list[pa.Array | pa.ChunkedArray] = []
        if c["usage_type"]:
            from_usage, _ = map_distinct(usage_type, instance_type_from_usage, pa.string())
            candidates.append(pc.if_else(pc.equal(cloud, AWS), from_usage, pa.scalar(None, pa.string())))
        if c["sku_details"] or (c["meter_name"] and c["meter_category"]):
            key = _joined(batch.text(c["sku_details"]), batch.text(c["meter_name"]), batch.text(c["meter_category"]))
            from_azure, _ = map_distinct(key, _azure_size_of, pa.string())
            candidates.append(pc.if_else(pc.equal(cloud, AZURE), from_azure, pa.scalar(None, pa.string())))
        if not candidates:
            return pa.nulls(len(batch), pa.string())
        return pc.coalesce(*candidates) if len(candidates) > 1 else candidates[0]

    def _accelerators(self, batch: Batch, cloud: pa.Array | pa.ChunkedArray,
                      instance_type: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
        """The instance type's class, else a GPU or TPU named by the SKU meter or description;
        each column once per distinct value of its own."""
        c = self.col
        found, _ = map_distinct(_joined(cloud, instance_type), _classify_instance, _ACCEL)
        for key in ("sku_meter", "meter_name", "description"):
            if c[key] is None:
                continue
            texts = batch.text(c[key])
            if texts.null_count == len(texts):
                continue
            from_text, _ = map_distinct(texts, _classify_sku, _ACCEL)
            found = pc.coalesce(found, from_text)
        return found


def _flat(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        return arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr


def _tags_from_text(joined: str) -> list[tuple[str, str]]:
    cloud, text = joined.split(_SEP, 1)
    try:
        raw = parse_tag_object(text or None)
    except TagError:
        raise
    except (ValueError, json.JSONDecodeError) as exc:  # pragma: no cover - parse_tag_object raises TagError
        raise TagError(f"Tags is not a JSON object: {exc}") from None
    return list(normalize_tags(cloud or OTHER, raw).items())


def _normalized_key(joined: str) -> str:
    cloud, key = joined.split(_SEP, 1)
    return normalize_key(cloud or OTHER, key)


def _azure_size_of(joined: str) -> str | None:
    details, meter_name, meter_category = _split(joined, 3)
    return azure_vm_size(details, meter_name, meter_category)


def _classify_instance(joined: str) -> dict[str, Any] | None:
    cloud, instance_type = _split(joined, 2)
    found = classify_instance_type(cloud or OTHER, instance_type)
    return {"c": found.cls, "f": found.family} if found else None


def _classify_sku(text: str | None) -> dict[str, Any] | None:
    found = classify_sku(text)
    return {"c": found.cls, "f": found.family} if found else None
