"""AWS Cost and Usage Reports: legacy CUR (``lineItem/UnblendedCost`` CSV, or its Athena /
Parquet ``line_item_unblended_cost`` names) and CUR 2.0 / Data Exports (fixed snake_case
columns with ``resource_tags`` as a map, or as JSON text in CSV).

Costs:

* ``BilledCost`` is ``lineItem/UnblendedCost`` (what the invoice shows);
* ``EffectiveCost`` is the amortized cost, with AWS's own definition (the CUR query library's
  "amortized cost" case): Savings Plan covered usage at ``SavingsPlanEffectiveCost``, negation
  and up-front fee rows at 0, the recurring fee's unused commitment
  (``TotalCommitmentToDate - UsedCommitment``), RI discounted usage at
  ``reservation/EffectiveCost``, the RI fee's unused part (unused amortized up-front plus
  unused recurring fee), an RI up-front ``Fee`` at 0, everything else at its unblended cost.
* ``ListCost`` is ``pricing/publicOnDemandCost``.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from burnguard.core.accelerators import classify_instance_type
from burnguard.core.clouds import AWS
from burnguard.core.columnar import (
    TAG_LIST,
    dec_add,
    dec_sub,
    dec_zero,
    map_distinct,
    map_tag_rows,
    tag_counts,
    tag_entries,
    tag_list_to_map,
    tags_from_columns,
    to_np,
)
from burnguard.core.errors import InputError
from burnguard.core.lineitem import TAGS
from burnguard.core.tags import (
    MAX_KEY_LENGTH,
    MAX_VALUE_LENGTH,
    TagError,
    normalize_cur2_key,
    normalize_key,
    normalize_tags,
    parse_tag_object,
)
from burnguard.normalize.base import Batch, Distinct, Format, Header, Plan, ReadContext, constant

CHARGE_CATEGORY = {
    "Usage": "Usage", "DiscountedUsage": "Usage", "SavingsPlanCoveredUsage": "Usage",
    "SavingsPlanNegation": "Usage", "BundledDiscount": "Usage", "Discount": "Usage",
    "EdpDiscount": "Usage", "PrivateRateDiscount": "Usage", "DistributorDiscount": "Usage",
    "RIFee": "Purchase", "Fee": "Purchase", "SavingsPlanUpfrontFee": "Purchase",
    "SavingsPlanRecurringFee": "Purchase", "Tax": "Tax", "Credit": "Credit", "Refund": "Adjustment",
}
CHARGE_FREQUENCY = {
    "RIFee": "Recurring", "SavingsPlanRecurringFee": "Recurring", "Fee": "One-Time",
    "SavingsPlanUpfrontFee": "One-Time", "Tax": "One-Time", "Credit": "One-Time", "Refund": "One-Time",
}
SERVICE_CATEGORY = {
    "AmazonEC2": "Compute", "AWSLambda": "Compute", "AmazonECS": "Compute", "AmazonEKS": "Compute",
    "AmazonLightsail": "Compute", "AWSBatch": "Compute", "AmazonS3": "Storage", "AmazonEFS": "Storage",
    "AmazonFSx": "Storage", "AmazonGlacier": "Storage", "AmazonECR": "Storage", "AWSBackup": "Storage",
    "AWSDataTransfer": "Networking", "AmazonVPC": "Networking", "AmazonCloudFront": "Networking",
    "AmazonRoute53": "Networking", "AWSELB": "Networking", "AmazonRDS": "Databases",
    "AmazonDynamoDB": "Databases", "AmazonElastiCache": "Databases", "AmazonRedshift": "Analytics",
    "AmazonAthena": "Analytics", "AWSGlue": "Analytics", "AmazonSageMaker": "AI and Machine Learning",
    "AmazonBedrock": "AI and Machine Learning", "AmazonCloudWatch": "Management and Governance",
    "AWSCloudTrail": "Management and Governance", "AWSConfig": "Management and Governance",
    "AmazonSQS": "Integration", "AmazonSNS": "Integration", "AWSSecretsManager": "Security",
    "awskms": "Security", "AmazonGuardDuty": "Security",
}
_INSTANCE_FROM_USAGE = re.compile(
    r"(?:BoxUsage|SpotUsage|DedicatedUsage|HostUsage|ReservedHostUsage|UnusedBox|UnusedDed|HeavyUsage|Fargate)[^:]*:"
    r"([a-z][a-z0-9-]*\.[a-z0-9]+)"
)


def athena_name(name: str) -> str:
    """The Athena / Parquet / CUR 2.0 spelling of a legacy CUR column name:
    ``lineItem/UnblendedCost`` → ``line_item_unblended_cost``,
    ``reservation/ReservationARN`` → ``reservation_reservation_a_r_n``."""
    s = re.sub(r"([A-Z])", r"_\1", name).lower()
    return re.sub(r"[^a-z0-9]+", "_", s).strip("_")


@lru_cache(maxsize=4096)
def instance_type_from_usage(usage_type: str | None) -> str | None:
    if not usage_type:
        return None
    m = _INSTANCE_FROM_USAGE.search(usage_type)
    return m.group(1) if m else None


def _classify(instance_type: str | None) -> tuple[str | None, str | None]:
    acc = classify_instance_type(AWS, instance_type)
    return (acc.cls, acc.family) if acc else (None, None)


_CLASSES = pa.struct([("c", pa.string()), ("f", pa.string())])


def _classify_safe(instance_type: str) -> tuple[str | None, str | None] | None:
    try:
        return _classify(instance_type)
    except (ValueError, TagError):
        return None


class AwsCurFormat(Format):
    name = "aws-cur"
    description = "AWS Cost and Usage Report: legacy CUR (CSV, CSV.gz, Parquet) and CUR 2.0 / Data Exports"

    def score(self, header: Header) -> int:
        names = {athena_name(n) for n in header.names}
        need = {"line_item_line_item_type", "line_item_unblended_cost"}
        if not need <= names:
            return 0
        return 10 + len(names & {"line_item_usage_start_date", "bill_payer_account_id", "line_item_currency_code"})

    def plan(self, header: Header, ctx: ReadContext) -> Plan:
        return AwsCurPlan(header, ctx)


class AwsCurPlan(Plan):
    FIELDS: ClassVar[dict[str, str]] = {
        "type": "line_item_line_item_type", "unblended": "line_item_unblended_cost",
        "currency": "line_item_currency_code", "start": "line_item_usage_start_date",
        "end": "line_item_usage_end_date", "payer": "bill_payer_account_id",
        "account": "line_item_usage_account_id", "account_name": "line_item_usage_account_name",
        "invoice": "bill_invoice_id", "period_start": "bill_billing_period_start_date",
        "period_end": "bill_billing_period_end_date", "description": "line_item_line_item_description",
        "product_code": "line_item_product_code", "usage_type": "line_item_usage_type",
        "resource": "line_item_resource_id", "az": "line_item_availability_zone",
        "usage_amount": "line_item_usage_amount", "product_name": "product_product_name",
        "instance_type": "product_instance_type", "region_code": "product_region_code",
        "region": "product_region", "sku": "product_sku", "public_cost": "pricing_public_on_demand_cost",
        "unit": "pricing_unit",
        "sp_effective": "savings_plan_savings_plan_effective_cost",
        "sp_total": "savings_plan_total_commitment_to_date", "sp_used": "savings_plan_used_commitment",
        "sp_arn": "savings_plan_savings_plan_a_r_n", "ri_effective": "reservation_effective_cost",
        "ri_unused_upfront": "reservation_unused_amortized_upfront_fee_for_billing_period",
        "ri_unused_recurring": "reservation_unused_recurring_fee", "ri_arn": "reservation_reservation_a_r_n",
    }

    def __init__(self, header: Header, ctx: ReadContext):
        self.ctx = ctx
        by_snake: dict[str, str] = {}
        for n in header.names:
            by_snake.setdefault(athena_name(n), n)
        self.col = {key: by_snake.get(snake) for key, snake in self.FIELDS.items()}
        self.cur2 = "resource_tags" in by_snake and not any(n.startswith("resourceTags/") for n in header.names)
        self.variant = "aws-cur2" if self.cur2 or "bill_payer_account_name" in by_snake else "aws-cur"
        if self.col["currency"] is None and not ctx.default_currency:
            header.require("lineItem/CurrencyCode", "lineItem/CurrencyCode", "line_item_currency_code", file=ctx.file)
        header.require("lineItem/UsageStartDate", "lineItem/UsageStartDate", "line_item_usage_start_date",
                       file=ctx.file)
        # Tag columns: legacy CSV resourceTags/<key>; Athena resource_tags_<key>; CUR 2.0 map.
        self.tag_columns: list[tuple[str, str]] = []
        for n in header.names:
            if n.startswith("resourceTags/"):
                self.tag_columns.append((normalize_key(AWS, n[len("resourceTags/"):]), n))
            elif n.startswith("resource_tags_"):
                self.tag_columns.append((normalize_cur2_key(n[len("resource_tags_"):]), n))
        self.tag_map = by_snake.get("resource_tags")
        wanted = [c for c in self.col.values() if c] + [n for _, n in self.tag_columns]
        if self.tag_map:
            wanted.append(self.tag_map)
        self.columns = list(dict.fromkeys(wanted))

    def transform(self, batch: Batch) -> pa.Table:
        c = self.col
        n = len(batch)
        line_type = batch.text(c["type"])
        batch.require_present(line_type, c["type"] or "lineItem/LineItemType", "line item type")
        # Line item types, usage types and instance types repeat: derived columns are
        # computed once per distinct value (see Distinct), never per row.
        types = batch.distinct(c["type"])
        unblended = batch.money(c["unblended"], required=True, label="unblended cost")
        if c["currency"]:
            currency = batch.text(c["currency"])
            if self.ctx.default_currency:
                currency = pc.coalesce(currency, pa.scalar(self.ctx.default_currency, pa.string()))
            batch.require_present(currency, c["currency"], "currency")
        else:
            currency = constant(self.ctx.default_currency, n)
        start = batch.timestamp(c["start"], required=True)
        effective = self._effective(batch, types, unblended)
        usage_type = batch.text(c["usage_type"])
        usages = batch.distinct(c["usage_type"])
        instance_type = batch.text(c["instance_type"])
        instance_type = pc.coalesce(instance_type, usages.map(instance_type_from_usage, pa.string()))
        classes = Distinct(instance_type).map(_classify_safe, _CLASSES)
        product_code = batch.text(c["product_code"])
        pricing = types.lookup({"SavingsPlanCoveredUsage": "Committed", "DiscountedUsage": "Committed",
                                "Usage": "Standard"})
        spot = pc.fill_null(usages.map(lambda v: "SpotUsage" in v, pa.bool_()), False)
        pricing = pc.if_else(spot, pa.scalar("Dynamic"), pricing)
        return batch.assemble({
            "ProviderName": "AWS",
            "BillingAccountId": batch.text(c["payer"]),
            "SubAccountId": batch.text(c["account"]),
            "SubAccountName": batch.text(c["account_name"]),
            "InvoiceId": batch.text(c["invoice"]),
            "BillingPeriodStart": batch.timestamp(c["period_start"]),
            "BillingPeriodEnd": batch.timestamp(c["period_end"]),
            "ChargePeriodStart": start,
            "ChargePeriodEnd": batch.timestamp(c["end"]),
            "ChargeCategory": types.lookup(CHARGE_CATEGORY, "Adjustment"),
            "ChargeFrequency": types.lookup(CHARGE_FREQUENCY, "Usage-Based"),
            "ChargeDescription": batch.text(c["description"]),
            "BilledCost": unblended,
            "EffectiveCost": effective,
            "ListCost": batch.money(c["public_cost"]),
            "BillingCurrency": currency,
            "PricingCategory": pricing,
            "CommitmentDiscountId": pc.coalesce(batch.text(c["sp_arn"]), batch.text(c["ri_arn"])),
            "ConsumedQuantity": batch.money(c["usage_amount"]),
            "ConsumedUnit": batch.text(c["unit"]),
            "ServiceName": pc.coalesce(batch.text(c["product_name"]), product_code),
            "ServiceCategory": batch.distinct(c["product_code"]).lookup(SERVICE_CATEGORY, "Other"),
            "SkuId": batch.text(c["sku"]),
            "ResourceId": batch.text(c["resource"]),
            "RegionId": pc.coalesce(batch.text(c["region_code"]), batch.text(c["region"])),
            "AvailabilityZone": batch.text(c["az"]),
            "Tags": self._tags(batch),
            "x_Cloud": AWS,
            "x_InstanceType": instance_type,
            "x_AcceleratorClass": pc.struct_field(classes, "c"),
            "x_AcceleratorFamily": pc.struct_field(classes, "f"),
            "x_UsageType": usage_type,
        })

    def _effective(self, batch: Batch, types: Distinct, unblended: pa.Array) -> pa.Array:
        """The amortized cost. The Savings Plan and reservation columns are read on the rows
        of the line item types that use them only (a few percent of a CUR's rows)."""
        c = self.col
        zero = dec_zero()

        def is_(value: str) -> np.ndarray:
            return types.equals(value)

        def required(name: str | None, where: np.ndarray, label: str, reason: str) -> pa.Array:
            values = batch.money_where(name, where)
            missing = to_np(pc.is_null(values))
            if missing.any():
                rows = np.zeros(len(where), dtype=bool)
                rows[np.flatnonzero(where)[missing]] = True
                batch.flag(rows, name or label, reason)
            return values

        def optional(name: str | None, where: np.ndarray) -> pa.Array:
            return pc.fill_null(batch.money_where(name, where), zero)

        eff = unblended
        sp_cov = is_("SavingsPlanCoveredUsage")
        if sp_cov.any():
            eff = pc.replace_with_mask(eff, pa.array(sp_cov), required(
                c["sp_effective"], sp_cov, "savingsPlan/SavingsPlanEffectiveCost",
                "SavingsPlanCoveredUsage row without a Savings Plan effective cost"))
        sp_fee = is_("SavingsPlanRecurringFee")
        if sp_fee.any():
            unused = dec_sub(optional(c["sp_total"], sp_fee), optional(c["sp_used"], sp_fee))
            eff = pc.replace_with_mask(eff, pa.array(sp_fee), unused)
        eff = pc.if_else(is_("SavingsPlanNegation") | is_("SavingsPlanUpfrontFee"), zero, eff)
        ri_use = is_("DiscountedUsage")
        if ri_use.any():
            eff = pc.replace_with_mask(eff, pa.array(ri_use), required(
                c["ri_effective"], ri_use, "reservation/EffectiveCost",
                "DiscountedUsage row without a reservation effective cost"))
        ri_fee = is_("RIFee")
        if ri_fee.any():
            unused = dec_add(optional(c["ri_unused_upfront"], ri_fee), optional(c["ri_unused_recurring"], ri_fee))
            eff = pc.replace_with_mask(eff, pa.array(ri_fee), unused)
        fee = is_("Fee")
        if c["ri_arn"] and fee.any():
            has_ri = to_np(pc.is_valid(batch.text(c["ri_arn"])))
            eff = pc.if_else(fee & has_ri, zero, eff)
        return eff

    def _tags(self, batch: Batch) -> pa.Array:
        n = len(batch)
        if self.tag_map:
            raw = batch.raw(self.tag_map)
            assert raw is not None
            if pa.types.is_map(raw.type):
                return self._tags_from_map(batch, raw)
            values, bad = map_distinct(raw, _cur2_tags, TAG_LIST)
            batch.report(bad, self.tag_map)
            return tag_list_to_map(values) if len(values) else pa.array([], TAGS)
        tags, bad = tags_from_columns([(k, batch.text(name)) for k, name in self.tag_columns], n, blanks_are_null=True)
        if bad:
            names = dict(self.tag_columns)
            for b in bad:
                key = b.text.split("=", 1)[0]
                batch.ctx.error(InputError(b.reason, file=batch.ctx.file, row=int(batch.rows[b.index]),
                                           field=names.get(key, "resourceTags")))
                batch.drop[b.index] = True
        return tags

    def _tags_from_map(self, batch: Batch, raw: pa.Array) -> pa.Array:
        """Parquet CUR 2.0: ``resource_tags`` is a map. Keys are normalized once per distinct
        key and values trimmed in one pass; a batch where the rule needs more than that (two
        keys of a row that normalize to one, a key or value past the limits) is normalized
        once per distinct map, row by row."""
        assert self.tag_map is not None
        fast = _cur2_tags_columnar(raw)
        if fast is not None:
            return fast
        values, bad = map_tag_rows(raw, lambda pairs: normalize_tags(AWS, [(normalize_cur2_key(k), v)
                                                                           for k, v in pairs]))
        batch.report(bad, self.tag_map)
        return values


def _cur2_tags(text: str | None) -> list[dict[str, str]] | None:
    """CUR 2.0 in CSV writes the ``resource_tags`` map as JSON text."""
    if text is None:
        return []
    try:
        raw = parse_tag_object(text)
    except TagError:
        raise
    except (ValueError, json.JSONDecodeError) as exc:
        raise TagError(f"resource_tags is not a JSON object: {exc}") from None
    tags = normalize_tags(AWS, [(normalize_cur2_key(k), v) for k, v in raw.items()])
    return [{"key": k, "value": v} for k, v in tags.items()]


def _cur2_tags_columnar(tags: pa.Array | pa.ChunkedArray) -> pa.Array | None:
    """The ``Tags`` map of a CUR 2.0 ``resource_tags`` map column, or ``None`` when a row
    needs the per-row rule (see :meth:`AwsCurPlan._tags_from_map`)."""
    tags = tags.combine_chunks() if isinstance(tags, pa.ChunkedArray) else tags
    n = len(tags)
    counts = tag_counts(tags)
    parents, keys, values = tag_entries(tags)
    if len(keys) == 0:
        return tag_list_to_map(pa.array([[]] * n, TAG_LIST)) if n else pa.array([], TAGS)
    distinct = Distinct(keys)
    if None in distinct.values or distinct.codes.null_count:
        return None
    normalized = [normalize_key(AWS, normalize_cur2_key(str(k))) for k in distinct.values]
    kept = [k for k in normalized if k]
    if len(set(kept)) != len(kept) or any(len(k) > MAX_KEY_LENGTH for k in kept):
        return None  # two spellings of one key, or a key past the limit: the per-row rule
    values = pc.utf8_trim_whitespace(pc.fill_null(values.cast(pa.string()), ""))
    # Bytes bound characters: characters are counted only when some value is long in bytes.
    if len(values) and pc.max(pc.binary_length(values)).as_py() > MAX_VALUE_LENGTH \
            and pc.max(pc.utf8_length(values)).as_py() > MAX_VALUE_LENGTH:
        return None
    new_keys = pa.array(normalized, pa.string()).take(distinct.codes)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    if "" in normalized:  # empty keys are dropped
        keep = to_np(pc.not_equal(new_keys, ""))
        new_keys, values = new_keys.filter(keep), values.filter(keep)
        offsets[1:] = np.cumsum(np.bincount(to_np(parents)[keep], minlength=n))
    return pa.MapArray.from_arrays(pa.array(offsets.astype(np.int32)), new_keys, values, type=TAGS)

