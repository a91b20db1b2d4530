"""The canonical line item: FOCUS 1.2 column names, plus the few ``x_`` fields burnguard needs.

Line items travel as Arrow record batches with :data:`SCHEMA` (the hot path is columnar: a
normalizer never builds a Python object per row). :class:`LineItem` is the per-row view for
the places a person looks at one: tests, ``--to jsonl``, Slack "top resources".

Money columns are ``decimal128(36, 18)`` and become ``Decimal``; timestamps are UTC seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from burnguard.core.money import PRECISION, SCALE

MONEY = pa.decimal128(PRECISION, SCALE)
#: Sums of money: 76 digits, so no sum of line items can wrap (Arrow's decimal128 sums wrap
#: silently past 38 digits). Cast a money column to it before summing.
MONEY_SUM = pa.decimal256(76, SCALE)


def wide_money(arr: Any) -> Any:
    """A money column as :data:`MONEY_SUM` (exact, before any sum)."""
    return arr if arr.type == MONEY_SUM else arr.cast(MONEY_SUM)
TIMESTAMP = pa.timestamp("s", tz="UTC")
TAGS = pa.map_(pa.string(), pa.string())

#: ``x_Cloud`` holds the cloud ids of :mod:`burnguard.core.clouds`; FOCUS ``ProviderName`` keeps
#: the provider's own words.
FIELDS: list[pa.Field] = [
    pa.field("ProviderName", pa.string()),
    pa.field("BillingAccountId", pa.string()),
    pa.field("SubAccountId", pa.string()),
    pa.field("SubAccountName", pa.string()),
    pa.field("InvoiceId", pa.string()),
    pa.field("BillingPeriodStart", TIMESTAMP),
    pa.field("BillingPeriodEnd", TIMESTAMP),
    pa.field("ChargePeriodStart", TIMESTAMP),
    pa.field("ChargePeriodEnd", TIMESTAMP),
    pa.field("ChargeCategory", pa.string()),
    pa.field("ChargeClass", pa.string()),
    pa.field("ChargeFrequency", pa.string()),
    pa.field("ChargeDescription", pa.string()),
    pa.field("BilledCost", MONEY),
    pa.field("EffectiveCost", MONEY),
    pa.field("ListCost", MONEY),
    pa.field("BillingCurrency", pa.string()),
    pa.field("PricingCategory", pa.string()),
    pa.field("CommitmentDiscountId", pa.string()),
    pa.field("ConsumedQuantity", MONEY),
    pa.field("ConsumedUnit", pa.string()),
    pa.field("ServiceName", pa.string()),
    pa.field("ServiceCategory", pa.string()),
    pa.field("SkuId", pa.string()),
    pa.field("ResourceId", pa.string()),
    pa.field("ResourceName", pa.string()),
    pa.field("ResourceType", pa.string()),
    pa.field("RegionId", pa.string()),
    pa.field("AvailabilityZone", pa.string()),
    pa.field("Tags", TAGS),
    pa.field("x_Cloud", pa.string()),
    pa.field("x_InstanceType", pa.string()),
    pa.field("x_AcceleratorClass", pa.string()),
    pa.field("x_AcceleratorFamily", pa.string()),
    pa.field("x_UsageType", pa.string()),
    pa.field("x_SourceFile", pa.string()),
    pa.field("x_SourceRow", pa.int64()),
]
SCHEMA = pa.schema(FIELDS)


class LineItem(BaseModel):
    """One normalized line item (the per-row view of a :data:`SCHEMA` record)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ProviderName: str | None = None
    BillingAccountId: str | None = None
    SubAccountId: str | None = None
    SubAccountName: str | None = None
    InvoiceId: str | None = None
    BillingPeriodStart: datetime | None = None
    BillingPeriodEnd: datetime | None = None
    ChargePeriodStart: datetime | None = None
    ChargePeriodEnd: datetime | None = None
    ChargeCategory: str | None = None
    ChargeClass: str | None = None
    ChargeFrequency: str | None = None
    ChargeDescription: str | None = None
    BilledCost: Decimal
    EffectiveCost: Decimal
    ListCost: Decimal | None = None
    BillingCurrency: str
    PricingCategory: str | None = None
    CommitmentDiscountId: str | None = None
    ConsumedQuantity: Decimal | None = None
    ConsumedUnit: str | None = None
    ServiceName: str | None = None
    ServiceCategory: str | None = None
    SkuId: str | None = None
    ResourceId: str | None = None
    ResourceName: str | None = None
    ResourceType: str | None = None
    RegionId: str | None = None
    AvailabilityZone: str | None = None
    Tags: dict[str, str] = Field(default_factory=dict)
    x_Cloud: str | None = None
    x_InstanceType: str | None = None
    x_AcceleratorClass: str | None = None
    x_AcceleratorFamily: str | None = None
    x_UsageType: str | None = None
    x_SourceFile: str | None = None
    x_SourceRow: int | None = None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> LineItem:
        data = dict(record)
        tags = data.get("Tags")
        data["Tags"] = dict(tags) if tags else {}
        return cls(**data)


def iter_line_items(batch: pa.RecordBatch | pa.Table) -> Iterator[LineItem]:
    """Materialize per-row objects (for people and tests, not for the hot path)."""
    for record in batch.to_pylist():
        yield LineItem.from_record(record)
