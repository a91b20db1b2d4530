"""Azure Cost Management cost details exports (CSV, or Parquet from "improved" exports).

Every schema the exports have written is read, resolved by name from the file's own header
(case-insensitive, BOM stripped, localized ``Name (EnglishName)`` headers seen through):

* ``azure-ea``: Enterprise Agreement, older schema: ``Cost``, ``BillingCurrency``, ``Date``,
  ``Product`` (finops-toolkit ``EA_*``);
* ``azure-ea-2021``: EA 2021-10-01 and later, PascalCase: ``CostInBillingCurrency``,
  ``BillingCurrencyCode``, ``ProductName``;
* ``azure-mca``: Microsoft Customer Agreement, camelCase: ``costInBillingCurrency``,
  ``billingCurrency``, ``date``, ``ProductName`` or ``product``, ``ResourceId`` or ``InstanceName``;
* ``azure-payg``: the legacy pay-as-you-go "Usage" schema: ``PreTaxCost``, ``UsageDateTime``,
  ``InstanceId``, ``Currency``, ``SubscriptionGuid`` (also localized, e.g. German);
* ``azure-cost``: any other mix, e.g. lower-case headers without a currency column; the
  currency then comes from ``ReadContext.default_currency`` (else :class:`MissingColumnError`).

The variant gets ``-actual`` / ``-amortized`` when the export manifest gave the cost basis.

Costs (FOCUS semantics, as Microsoft's own actual+amortized → FOCUS conversion defines them):

* The cost column is ``CostInBillingCurrency`` / ``Cost`` / ``PreTaxCost``, in the billing currency.
* **Actual** export (invoice view): the cost column is ``BilledCost``. ``EffectiveCost`` equals
  it on every row: an actual export carries no amortization, so a reservation or savings plan
  purchase counts in full on the day it is bought (rather than vanish), and usage covered by a
  commitment costs 0 (as Azure writes it).
* **Amortized** export: the cost column is ``EffectiveCost``. ``BilledCost`` is 0 where nothing
  was invoiced for the row: usage covered by a commitment (``ChargeType`` Usage with
  ``PricingModel`` Reservation or SavingsPlan) and unused commitment rows
  (``UnusedReservation`` / ``UnusedSavingsPlan``); elsewhere it is the cost. A commitment
  purchase or refund (``ChargeType`` Purchase/Refund with ``PricingModel`` Reservation/SavingsPlan
  or a ``ReservationId``) has ``EffectiveCost`` 0 and ``BilledCost`` its cost: its amount is
  spread over the usage and unused rows already.
* Which basis: ``ReadContext.cost_basis`` (``actual`` / ``amortized``, from the export manifest)
  wins. Otherwise it is inferred per file from the rows and said in a warning: unused commitment
  rows, or commitment-covered usage with a non-zero cost, exist only in amortized data;
  commitment purchases with a non-zero cost exist only in actual data. Rows that are neither
  cost the same under both bases, so a file without such rows needs no decision. The first
  evidence decides for the rest of the file (rows are streamed); contrary evidence later, or
  against the manifest, is a warning.
* ``ListCost`` is ``paygCostInBillingCurrency`` when the export has it.

Other columns:

* ``ChargeCategory`` from ``ChargeType``: Usage, Purchase, Tax and Credit as they are;
  UnusedReservation / UnusedSavingsPlan → Usage (FOCUS puts unused commitment in Usage; the
  CommitmentDiscountStatus "Unused" meaning is kept in ``x_UsageType``, which holds the
  ChargeType for those rows); RoundingAdjustment and anything unknown → Adjustment. **Refund**
  → Purchase with ``ChargeClass`` "Correction": in FOCUS a refund belongs to the category of
  what it refunds ("… including refunds"), Azure refunds are refunds of reservation / savings plan
  purchases, and FOCUS ``Credit`` is reserved for credits the provider grants (promotional).
  No ``ChargeType`` column (legacy usage files) means Usage.
* ``ChargeFrequency`` from ``Frequency`` (UsageBased → Usage-Based, OneTime → One-Time,
  Recurring); when absent or unknown, Usage-Based for usage and One-Time for the rest.
* ``PricingCategory`` from ``PricingModel``: OnDemand → Standard, Reservation / SavingsPlan →
  Committed, Spot → Dynamic, other values → Other, empty → null.
* ``CommitmentDiscountId``: ``benefitId``, else ``ReservationId``.
* ``ChargePeriodStart`` is the row's date (``Date`` / ``date`` / ``UsageDateTime``; MM/DD/YYYY,
  M/D/YYYY, ISO, ``2019-07-29 00:00:00``; day-first only when the whole column says so) at day
  granularity, ``ChargePeriodEnd`` the next day (exclusive).
* ``BillingPeriodStart`` / ``BillingPeriodEnd`` from ``BillingPeriodStartDate`` /
  ``BillingPeriodEndDate`` when present. Azure's end date is the inclusive last day
  (``09/30/2023``); FOCUS ends are exclusive, so ``BillingPeriodEnd`` is the day after
  (2023-10-01T00:00:00Z).
* ``BillingAccountId``: ``BillingAccountId`` (EA enrollment, MCA billing account);
  ``SubAccountId`` / ``SubAccountName``: the subscription id (``SubscriptionId`` /
  ``SubscriptionGuid``) and name.
* ``ResourceId`` as given (``ResourceId`` / ``InstanceId`` / ``InstanceName``; its case varies,
  it is not folded); ``ResourceName`` from ``ResourceName``, else the last segment of the id;
  ``ResourceType`` from ``ResourceType``, else the provider type in the id
  (``Microsoft.Compute/virtualMachineScaleSets``).
* ``RegionId``: ``ResourceLocation`` in lower case ("Unassigned" → null).
* ``ServiceName``: ``MeterCategory``, else ``ConsumedService``; ``ServiceCategory`` from
  ``MeterCategory`` (:data:`SERVICE_CATEGORY`, default Other); ``SkuId``: ``MeterId``;
  ``ChargeDescription``: the product name, else the meter name.
* ``Tags``: a JSON object with or without braces (EA writes ``"env": "prod","org": "x"``); keys
  fold to lower case (Azure tag names are case-insensitive; spellings of one key merge, the
  first non-empty value wins); empty values are kept. A tag text that is not JSON is a bad row.
* ``x_InstanceType``: the VM size from ``AdditionalInfo``'s ``ServiceType`` (``Standard_NC6s_v3``)
  when it is one; ``x_UsageType`` its ``UsageType`` (``ComputeHR``). ``AdditionalInfo`` is JSON,
  sometimes without braces; one that cannot be read is reported, and the row kept.
* ``x_AcceleratorClass`` / ``x_AcceleratorFamily`` from the VM size; failing that, from the
  meter (``MeterSubCategory`` "NCSv3 Series", ``MeterName`` "NC6s v3" on Virtual Machines
  meters, read as the VM size they name), then :func:`classify_sku` on the meter texts.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from burnguard.core.accelerators import classify_instance_type, classify_sku
from burnguard.core.clouds import AZURE
from burnguard.core.columnar import dec_zero, map_distinct, tags_from_dicts, to_np
from burnguard.core.errors import InputError
from burnguard.core.tags import TagError, normalize_tags
from burnguard.normalize.base import Batch, Format, Header, Plan, ReadContext, constant, english_name, lookup

#: Candidate names of each column, in order of preference (matched case-insensitively).
COLUMNS: dict[str, tuple[str, ...]] = {
    "cost": ("CostInBillingCurrency", "Cost", "PreTaxCost"),
    "currency": ("BillingCurrencyCode", "BillingCurrency", "Currency"),
    "date": ("Date", "UsageDateTime", "UsageDate"),
    "charge_type": ("ChargeType",),
    "frequency": ("Frequency",),
    "pricing_model": ("PricingModel",),
    "reservation_id": ("ReservationId",),
    "benefit_id": ("benefitId",),
    "billing_account": ("BillingAccountId", "EnrollmentNumber", "Enrollment"),
    "subscription": ("SubscriptionId", "SubscriptionGuid"),
    "subscription_name": ("SubscriptionName",),
    "invoice": ("InvoiceId",),
    "period_start": ("BillingPeriodStartDate",),
    "period_end": ("BillingPeriodEndDate",),
    "product": ("ProductName", "Product"),
    "meter_category": ("MeterCategory",),
    "meter_subcategory": ("MeterSubCategory",),
    "meter_name": ("MeterName",),
    "meter_id": ("MeterId",),
    "consumed_service": ("ConsumedService",),
    "resource_id": ("ResourceId", "InstanceId", "InstanceName"),
    "resource_name": ("ResourceName",),
    "resource_type": ("ResourceType",),
    "location": ("ResourceLocation", "Location"),
    "az": ("AvailabilityZone",),
    "quantity": ("Quantity", "UsageQuantity"),
    "unit": ("UnitOfMeasure",),
    "payg_cost": ("paygCostInBillingCurrency",),
    "tags": ("Tags",),
    "additional_info": ("AdditionalInfo",),
}
#: Columns that only Azure cost exports have, beside the cost and subscription (for the score).
_AZURE_SIGNS = ("MeterId", "MeterName", "MeterSubCategory", "MeterRegion", "ConsumedService", "ResourceLocation",
                "AdditionalInfo", "ServiceInfo1", "UsageDateTime", "ResourceGroup", "ResourceGroupName")
#: FOCUS columns: a file that has them is a FOCUS export (Azure's too), not this format.
_FOCUS_SIGNS = ("BilledCost", "EffectiveCost", "ChargePeriodStart")

CHARGE_CATEGORY = {
    "Usage": "Usage", "Purchase": "Purchase", "Tax": "Tax", "Credit": "Credit", "Refund": "Purchase",
    "RoundingAdjustment": "Adjustment", "Adjustment": "Adjustment",
    "UnusedReservation": "Usage", "UnusedSavingsPlan": "Usage",
}
CHARGE_FREQUENCY = {
    "UsageBased": "Usage-Based", "Usage-Based": "Usage-Based", "OneTime": "One-Time", "One-Time": "One-Time",
    "Recurring": "Recurring",
}
PRICING_CATEGORY = {
    "OnDemand": "Standard", "Reservation": "Committed", "SavingsPlan": "Committed", "Spot": "Dynamic",
}
#: FOCUS ServiceCategory of Azure meter categories (anything else is "Other").
SERVICE_CATEGORY = {
    **dict.fromkeys((
        "Virtual Machines", "Virtual Machines Licenses", "Virtual Machine Licenses", "Cloud Services",
        "Container Instances", "Azure Container Instances", "Azure Kubernetes Service", "Functions",
        "Azure Functions", "Batch", "Azure Batch", "Azure VMware Solution", "Azure Dedicated Host",
        "Dedicated Host", "Azure Container Apps", "Azure Spring Apps", "Service Fabric",
    ), "Compute"),
    **dict.fromkeys((
        "Storage", "Backup", "Azure NetApp Files", "Data Box", "StorSimple", "Azure Data Lake Storage",
        "Azure Managed Lustre", "Azure File Sync", "Site Recovery",
    ), "Storage"),
    **dict.fromkeys((
        "Bandwidth", "Virtual Network", "Load Balancer", "VPN Gateway", "Application Gateway", "ExpressRoute",
        "Azure Front Door Service", "Azure Front Door", "Azure DNS", "DNS", "Network Watcher", "Azure Firewall",
        "Content Delivery Network", "Traffic Manager", "Azure Bastion", "NAT Gateway", "Virtual WAN",
        "Azure DDOS Protection", "Networking", "Private Link", "Azure Private Link",
    ), "Networking"),
    **dict.fromkeys((
        "SQL Database", "SQL Managed Instance", "Azure Database for MySQL", "Azure Database for PostgreSQL",
        "Azure Database for MariaDB", "Azure Cosmos DB", "Redis Cache", "Azure Cache for Redis", "SQL Server",
        "Azure Database Migration Service",
    ), "Databases"),
    **dict.fromkeys((
        "Azure Data Factory v2", "Azure Data Factory", "Azure Synapse Analytics", "HDInsight", "Azure Databricks",
        "Stream Analytics", "Azure Stream Analytics", "Azure Data Explorer", "Power BI Embedded",
        "Azure Analysis Services", "Microsoft Fabric", "Azure Purview", "Microsoft Purview",
    ), "Analytics"),
    **dict.fromkeys((
        "Cognitive Services", "Azure Cognitive Services", "Azure Machine Learning", "Machine Learning Studio",
        "Azure OpenAI", "Azure AI Services", "Foundry Models", "Foundry Tools", "Azure Cognitive Search",
        "Azure AI Search",
    ), "AI and Machine Learning"),
    **dict.fromkeys((
        "Log Analytics", "Azure Monitor", "Insight and Analytics", "Automation", "Application Insights",
        "Azure Policy", "Azure Arc", "Azure Lighthouse", "Azure Site Recovery",
    ), "Management and Governance"),
    **dict.fromkeys((
        "Advanced Threat Protection", "Advanced Data Security", "Security Center", "Microsoft Defender for Cloud",
        "Key Vault", "Sentinel", "Azure Sentinel", "Microsoft Sentinel", "Azure Defender",
    ), "Security"),
    **dict.fromkeys((
        "Event Hubs", "Service Bus", "Logic Apps", "API Management", "Event Grid", "Azure Event Grid",
        "Notification Hubs",
    ), "Integration"),
    **dict.fromkeys(("Azure App Service", "App Service", "Static Web Apps", "Azure Static Web Apps", "SignalR",
                     "Azure SignalR Service"), "Web"),
    **dict.fromkeys(("Azure DevOps", "Visual Studio", "Azure Load Testing", "Azure Lab Services"), "Developer Tools"),
    **dict.fromkeys(("IoT Hub", "Azure IoT Hub", "IoT Central", "Azure Digital Twins", "Azure Maps"),
                    "Internet of Things"),
    **dict.fromkeys(("Azure Active Directory", "Microsoft Entra ID", "Azure Active Directory B2C",
                     "Azure Active Directory Domain Services", "Microsoft Entra Domain Services"), "Identity"),
    **dict.fromkeys(("Media Services", "Azure Communication Services"), "Media"),
}

_BASIS_NAMES = {"actual": "actual", "actualcost": "actual", "amortized": "amortized", "amortizedcost": "amortized",
                "amortised": "amortized", "amortisedcost": "amortized"}
_COMMITMENT_MODELS = pa.array(["reservation", "savingsplan"])
_UNUSED_TYPES = pa.array(["unusedreservation", "unusedsavingsplan"])
_PURCHASE_TYPES = pa.array(["purchase", "refund"])
_VM_SIZE = re.compile(r"^(?:Standard|Basic)_(?!(?:LRS|GRS|ZRS|RAGRS|GZRS|RAGZRS)$)[A-Za-z0-9_-]+$", re.IGNORECASE)
_METER_GPU = re.compile(r"^(N[CDVG])([A-Za-z0-9 ]*)$")
_METER_NOISE = re.compile(r"\s+(?:series|spot|low priority|promo|windows|linux|vm|dedicated host)\b", re.IGNORECASE)
_DECISION = "azure:cost_basis"


def resolve_basis(value: str | None, file: str | None = None) -> str | None:
    """``actual`` / ``amortized`` from a manifest value (also ``ActualCost`` / ``AmortizedCost``)."""
    if value is None or not value.strip():
        return None
    basis = _BASIS_NAMES.get(value.strip().casefold().replace("_", "").replace("-", "").replace(" ", ""))
    if basis is None:
        raise InputError(f"cost basis {value!r} is neither 'actual' nor 'amortized'", file=file)
    return basis


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its (key, value) pairs, duplicates kept (``object_pairs_hook``)."""


def _plain(value: Any) -> Any:
    if isinstance(value, _Pairs):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _json_object(text: str, what: str) -> _Pairs:
    """An Azure JSON object cell, with or without its braces, as ordered pairs."""
    s = text.strip()
    if not s.startswith("{"):
        s = "{" + s + "}"
    try:
        value = json.loads(s, object_pairs_hook=_Pairs)
    except json.JSONDecodeError as exc:
        raise TagError(f"{what} is not a JSON object ({exc.msg} at character {exc.pos}): {text[:80]!r}") from None
    if not isinstance(value, _Pairs):
        raise TagError(f"{what} is not a JSON object: {text[:80]!r}")
    return value


def parse_tags(text: str | None) -> dict[str, str]:
    """Azure tags as the exports write them, normalized by the tag rule (keys folded)."""
    if text is None or text.strip() in ("", "NULL", "null", "{}"):
        return {}
    pairs = _json_object(text, "tags")
    return normalize_tags(AZURE, [(k, _plain(v)) for k, v in pairs])


def parse_additional_info(text: str | None) -> dict[str, str | None] | None:
    """The VM size (``ServiceType`` when it is one) and ``UsageType`` from ``AdditionalInfo``."""
    if text is None or text.strip() in ("", "NULL", "null", "{}"):
        return None
    info = {k.strip().casefold(): v for k, v in _json_object(text, "AdditionalInfo")}
    service_type = info.get("servicetype")
    usage_type = info.get("usagetype")
    size = service_type.strip() if isinstance(service_type, str) and _VM_SIZE.match(service_type.strip()) else None
    usage = (usage_type.strip() or None) if isinstance(usage_type, str) else None
    return {"size": size, "usage": usage}


@lru_cache(maxsize=4096)
def meter_vm_size(text: str | None) -> str | None:
    """The VM size a GPU VM meter names: ``NC6s v3`` → ``Standard_NC6s_v3``, ``NCSv3 Series`` →
    a size of that series (``Standard_NCS1_v3``), ``NCasT4 v3 Series`` → ``Standard_NC1_asT4_v3``."""
    if not text:
        return None
    s = _METER_NOISE.sub("", text.split("/", 1)[0]).strip()
    m = _METER_GPU.match(s)
    if not m:
        return None
    letters, rest = m.group(1), m.group(2).strip()
    if rest[:1].isdigit():  # a meter name: NC6s v3, NC24ads A100 v4
        return "Standard_" + letters + "_".join(rest.split())
    version = re.search(r"v(\d+)$", rest)
    if version:
        rest = rest[: version.start()].strip()
    mods = "".join(t for t in rest.split() if t.isalpha())
    models = "_".join(t for t in rest.split() if not t.isalpha())
    suffix = (f"_{models}" if models else "") + (f"_v{version.group(1)}" if version else "")
    return f"Standard_{letters}{mods}1{suffix}"


_ACC = pa.struct([("c", pa.string()), ("f", pa.string())])
_INFO = pa.struct([("size", pa.string()), ("usage", pa.string())])


def _classify_size(size: str | None) -> dict[str, str | None] | None:
    acc = classify_instance_type(AZURE, size)
    return {"c": acc.cls, "f": acc.family} if acc else None


def _classify_meter(joined: str | None) -> dict[str, str | None] | None:
    """``category \\x1f subcategory \\x1f name`` of a meter → its accelerator, if it names one."""
    if not joined:
        return None
    category, subcategory, name = [*joined.split("\x1f"), "", "", ""][:3]
    if not category or category.casefold().startswith("virtual machines"):
        for text in (name, subcategory):
            acc = classify_instance_type(AZURE, meter_vm_size(text))
            if acc:
                return {"c": acc.cls, "f": acc.family}
    for text in (subcategory, name):
        acc = classify_sku(text)
        if acc:
            return {"c": acc.cls, "f": acc.family}
    return None


@lru_cache(maxsize=65536)
def _resource_parts(resource_id: str | None) -> tuple[str | None, str | None]:
    """(name, type) of an Azure resource id: the last name segment and the provider type."""
    if not resource_id:
        return None, None
    rid = resource_id.strip()
    if rid.endswith("/"):
        return None, None
    lowered = rid.casefold()
    at = lowered.rfind("/providers/")
    if at < 0:
        last = rid.rsplit("/", 1)[-1]
        return (last or None), None
    parts = [p for p in rid[at + len("/providers/"):].split("/") if p]
    if len(parts) < 3:
        return None, None
    namespace, rest = parts[0], parts[1:]
    types = rest[0::2]
    name = rest[-1] if len(rest) % 2 == 0 else None
    return name, namespace + "/" + "/".join(types)


_RESOURCE = pa.struct([("name", pa.string()), ("type", pa.string())])


def _resource(resource_id: str | None) -> dict[str, str | None]:
    name, kind = _resource_parts(resource_id)
    return {"name": name, "type": kind}


class AzureCostFormat(Format):
    name = "azure-cost"
    description = ("Azure Cost Management cost details (EA, EA 2021, MCA, legacy pay-as-you-go usage; "
                   "actual or amortized)")

    def score(self, header: Header) -> int:
        if header.get(*_FOCUS_SIGNS) is not None:
            return 0
        if header.get("MeterCategory") is None or header.get(*COLUMNS["cost"]) is None:
            return 0
        if header.get(*COLUMNS["subscription"]) is None:
            return 0
        return 10 + header.count(*_AZURE_SIGNS)

    def plan(self, header: Header, ctx: ReadContext) -> Plan:
        return AzureCostPlan(header, ctx)


class AzureCostPlan(Plan):
    def __init__(self, header: Header, ctx: ReadContext):
        self.ctx = ctx
        self.col: dict[str, str | None] = {key: header.get(*names) for key, names in COLUMNS.items()}
        header.require("cost", *COLUMNS["cost"], file=ctx.file)
        header.require("date", *COLUMNS["date"], file=ctx.file)
        if self.col["currency"] is None and not ctx.default_currency:
            header.require("BillingCurrency", *COLUMNS["currency"], file=ctx.file)
        self.basis = resolve_basis(ctx.cost_basis, ctx.file)
        self.variant = self._variant(header) + (f"-{self.basis}" if self.basis else "")
        if self.basis is None:
            ctx.warn("cost basis (actual or amortized) not given by an export manifest: inferred from the rows; "
                     "rows without reservation or savings plan charges cost the same under both")
        self.columns = list(dict.fromkeys(c for c in self.col.values() if c))

    def _variant(self, header: Header) -> str:
        cost = self.col["cost"] or ""
        if _english(cost) == "pretaxcost":
            return "azure-payg"
        if _english(cost) == "cost":
            return "azure-ea"
        if header.get("BillingCurrencyCode") is not None:
            return "azure-ea-2021"
        if header.get("BillingCurrency") is not None:
            return "azure-mca"
        return "azure-cost"

    # -- transform -------------------------------------------------------------------------
    def transform(self, batch: Batch) -> pa.Table:
        c = self.col
        n = len(batch)
        cost_col = c["cost"]
        assert cost_col is not None
        cost = batch.money(cost_col, required=True, label="cost")
        currency = self._currency(batch)
        date = batch.timestamp(c["date"], required=True)
        start = pc.floor_temporal(date, unit="day")
        day = pa.scalar(86400, pa.duration("s"))

        charge_type = batch.text(c["charge_type"])
        kind = pc.utf8_lower(charge_type)
        model = pc.utf8_lower(batch.text(c["pricing_model"]))
        usage_like = pc.or_kleene(pc.is_null(kind), pc.equal(kind, "usage"))
        commitment_model = pc.fill_null(pc.is_in(model, value_set=_COMMITMENT_MODELS), False)
        covered = pc.fill_null(pc.and_(usage_like, commitment_model), False)
        unused = pc.fill_null(pc.is_in(kind, value_set=_UNUSED_TYPES), False)
        purchase = pc.fill_null(pc.is_in(kind, value_set=_PURCHASE_TYPES), False)
        has_reservation = pc.is_valid(batch.text(c["reservation_id"]))
        commitment_purchase = pc.and_(purchase, pc.or_(commitment_model, has_reservation))
        nonzero = pc.fill_null(pc.not_equal(cost, dec_zero()), False)
        basis = self._basis(batch, pc.or_(unused, pc.and_(covered, nonzero)), pc.and_(commitment_purchase, nonzero))

        zero = dec_zero()
        if basis == "amortized":
            effective = pc.if_else(commitment_purchase, zero, cost)
            billed = pc.if_else(pc.or_(covered, unused), zero, cost)
        else:
            billed = effective = cost

        category = self._category(charge_type, n)
        refund = pc.fill_null(pc.equal(kind, "refund"), False)
        info, bad = map_distinct(batch.text(c["additional_info"]), parse_additional_info, _INFO)
        batch.report(bad, c["additional_info"] or "AdditionalInfo", drop=False)
        size = pc.struct_field(info, "size")
        usage_type = pc.if_else(unused, charge_type, pc.struct_field(info, "usage"))
        accelerator = self._accelerators(batch, size)
        resource_id = batch.text(c["resource_id"])
        resource, _ = map_distinct(resource_id, _resource, _RESOURCE)
        location = pc.utf8_lower(batch.text(c["location"]))
        location = pc.if_else(pc.fill_null(pc.equal(location, "unassigned"), False), pa.scalar(None, pa.string()),
                              location)
        meter_category = batch.text(c["meter_category"])
        return batch.assemble({
            "ProviderName": "Microsoft",
            "BillingAccountId": batch.text(c["billing_account"]),
            "SubAccountId": batch.text(c["subscription"]),
            "SubAccountName": batch.text(c["subscription_name"]),
            "InvoiceId": batch.text(c["invoice"]),
            "BillingPeriodStart": self._day(batch, c["period_start"]),
            "BillingPeriodEnd": self._next_day(batch, c["period_end"], day),
            "ChargePeriodStart": start,
            "ChargePeriodEnd": pc.add(start, day),
            "ChargeCategory": category,
            "ChargeClass": pc.if_else(refund, pa.scalar("Correction"), pa.scalar(None, pa.string())),
            "ChargeFrequency": self._frequency(batch, category),
            "ChargeDescription": pc.coalesce(batch.text(c["product"]), batch.text(c["meter_name"])),
            "BilledCost": billed,
            "EffectiveCost": effective,
            "ListCost": batch.money(c["payg_cost"]),
            "BillingCurrency": currency,
            "PricingCategory": self._pricing(batch),
            "CommitmentDiscountId": pc.coalesce(batch.text(c["benefit_id"]), batch.text(c["reservation_id"])),
            "ConsumedQuantity": batch.money(c["quantity"]),
            "ConsumedUnit": batch.text(c["unit"]),
            "ServiceName": pc.coalesce(meter_category, batch.text(c["consumed_service"])),
            "ServiceCategory": lookup(meter_category, SERVICE_CATEGORY, "Other"),
            "SkuId": batch.text(c["meter_id"]),
            "ResourceId": resource_id,
            "ResourceName": pc.coalesce(batch.text(c["resource_name"]), pc.struct_field(resource, "name")),
            "ResourceType": pc.coalesce(batch.text(c["resource_type"]), pc.struct_field(resource, "type")),
            "RegionId": location,
            "AvailabilityZone": batch.text(c["az"]),
            "Tags": self._tags(batch),
            "x_Cloud": AZURE,
            "x_InstanceType": size,
            "x_AcceleratorClass": pc.struct_field(accelerator, "c"),
            "x_AcceleratorFamily": pc.struct_field(accelerator, "f"),
            "x_UsageType": usage_type,
        })

    def _currency(self, batch: Batch) -> pa.Array | pa.ChunkedArray:
        name = self.col["currency"]
        default = self.ctx.default_currency
        if name is None:
            return constant(default, len(batch))
        currency = batch.text(name)
        if default:
            currency = pc.coalesce(currency, pa.scalar(default, pa.string()))
        batch.require_present(currency, name, "billing currency")
        return currency

    def _basis(self, batch: Batch, amortized_rows: pa.Array, actual_rows: pa.Array) -> str | None:
        """The file's cost basis: the manifest's, else the first evidence in the rows."""
        amortized = to_np(amortized_rows)
        actual = to_np(actual_rows)
        decided = self.basis or self.ctx.decisions.get(_DECISION)
        first_amortized = int(batch.rows[np.flatnonzero(amortized)[0]]) if amortized.any() else None
        first_actual = int(batch.rows[np.flatnonzero(actual)[0]]) if actual.any() else None
        amortized_why = ("unused reservation / savings plan rows, or reservation / savings plan usage with a cost "
                         f"(first at row {first_amortized})")
        actual_why = f"reservation / savings plan purchases with a cost (first at row {first_actual})"
        if decided is None:
            if first_amortized is not None:
                decided = "amortized"
                self.ctx.warn(f"cost basis inferred as amortized: {amortized_why}")
                if first_actual is not None:
                    self.ctx.warn(f"rows of both bases: also {actual_why}; read as amortized")
            elif first_actual is not None:
                decided = "actual"
                self.ctx.warn(f"cost basis inferred as actual: {actual_why}")
            if decided is not None:
                self.ctx.decisions[_DECISION] = decided
            return decided
        source = "the export manifest says" if self.basis else "the file was read as"
        if decided == "actual" and first_amortized is not None and not self.ctx.decisions.get(_DECISION + ":mixed"):
            self.ctx.decisions[_DECISION + ":mixed"] = True
            self.ctx.warn(f"{source} actual cost, but the file has {amortized_why}")
        if decided == "amortized" and first_actual is not None and not self.ctx.decisions.get(_DECISION + ":mixed"):
            self.ctx.decisions[_DECISION + ":mixed"] = True
            self.ctx.warn(f"{source} amortized cost, but the file has {actual_why}")
        return str(decided)

    def _category(self, charge_type: pa.Array, n: int) -> pa.Array | pa.ChunkedArray:
        if self.col["charge_type"] is None:
            return constant("Usage", n)
        mapped = lookup(charge_type, CHARGE_CATEGORY)
        return pc.if_else(pc.is_null(charge_type), pa.scalar("Usage"), pc.fill_null(mapped, "Adjustment"))

    def _frequency(self, batch: Batch, category: pa.Array) -> pa.Array | pa.ChunkedArray:
        fallback = pc.if_else(pc.equal(category, "Usage"), pa.scalar("Usage-Based"), pa.scalar("One-Time"))
        if self.col["frequency"] is None:
            return fallback
        return pc.coalesce(lookup(batch.text(self.col["frequency"]), CHARGE_FREQUENCY), fallback)

    def _pricing(self, batch: Batch) -> pa.Array | pa.ChunkedArray:
        model = batch.text(self.col["pricing_model"])
        mapped = lookup(model, PRICING_CATEGORY)
        return pc.if_else(pc.is_valid(model), pc.fill_null(mapped, "Other"), pa.scalar(None, pa.string()))

    def _day(self, batch: Batch, name: str | None) -> pa.Array:
        return pc.floor_temporal(batch.timestamp(name), unit="day")

    def _next_day(self, batch: Batch, name: str | None, day: pa.Scalar) -> pa.Array:
        """Azure's inclusive last day of a period → FOCUS's exclusive end (the next midnight)."""
        return pc.add(self._day(batch, name), day)

    def _accelerators(self, batch: Batch, size: pa.Array) -> pa.Array:
        c = self.col
        by_size, _ = map_distinct(size, _classify_size, _ACC)
        if c["meter_subcategory"] is None and c["meter_name"] is None:
            return by_size
        joined = pc.binary_join_element_wise(
            batch.text(c["meter_category"]), batch.text(c["meter_subcategory"]), batch.text(c["meter_name"]),
            "\x1f", null_handling="replace", null_replacement="")
        by_meter, _ = map_distinct(joined, _classify_meter, _ACC)
        return pc.if_else(pc.is_valid(by_size), by_size, by_meter)

    def _tags(self, batch: Batch) -> pa.Array:
        name = self.col["tags"]
        n = len(batch)
        if name is None:
            return tags_from_dicts([{}]).take(pa.array(np.zeros(n, dtype=np.int64)))
        parsed: list[dict[str, str]] = []

        def index(text: str | None) -> int:
            parsed.append(parse_tags(text))
            return len(parsed) - 1

        codes, bad = map_distinct(batch.text(name), index, pa.int64())
        batch.report(bad, name)
        return tags_from_dicts(parsed).take(codes)


def _english(name: str) -> str:
    """A header name's English part, folded: ``PreTaxCost (PreTaxCost)`` → ``pretaxcost``."""
    return english_name(name).casefold()
