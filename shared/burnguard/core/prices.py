"""The public on-demand price table of GPU instance types (``burnguard/data/gpu_prices.json``).

The live estimate's last resort for an instance's hourly rate, after the instance's own
effective rate and its type's in the billing data. Pure: the table is parsed from its JSON
text; :func:`azure_retail_items` turns a page of the Azure Retail Prices API into entries
(``burnguard prices refresh`` fetches the pages).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from burnguard.core.errors import InputError


@dataclass(frozen=True)
class PriceEntry:
    cloud: str
    instance_type: str
    region: str
    hourly: Decimal


@dataclass(frozen=True)
class PriceTable:
    date: str
    currency: str
    entries: tuple[PriceEntry, ...]
    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        index: dict[tuple[str, str], dict[str, Decimal]] = {}
        for e in self.entries:
            index.setdefault((e.cloud, e.instance_type.casefold()), {})[e.region.casefold()] = e.hourly
        object.__setattr__(self, "_index", index)

    def price(self, cloud: str, instance_type: str, location: str = "") -> Decimal | None:
        """The list price of the type in the location's region, else in the table's region for it."""
        regions: dict[str, Decimal] = self._index.get((cloud, instance_type.casefold()), {})  # type: ignore[attr-defined]
        if not regions:
            return None
        region = region_of(cloud, location)
        return regions.get(region, next(iter(regions.values())))

    def to_json(self) -> str:
        return json.dumps({
            "date": self.date, "currency": self.currency, "sources": dict(self.sources),
            "prices": [{"cloud": e.cloud, "instance_type": e.instance_type, "region": e.region,
                        "hourly": str(e.hourly)} for e in self.entries],
        }, indent=1) + "\n"


def region_of(cloud: str, location: str) -> str:
    """``us-east-1a`` → ``us-east-1``; ``us-central1-a`` → ``us-central1``; Azure as given."""
    loc = location.casefold()
    if cloud == "aws":
        return re.sub(r"(\d)[a-z]$", r"\1", loc)
    if cloud == "gcp":
        return re.sub(r"-[a-z]$", "", loc)
    return loc


def parse_price_table(text: str, *, file: str = "gpu_prices.json") -> PriceTable:
    try:
        doc = json.loads(text)
        entries = tuple(PriceEntry(str(p["cloud"]), str(p["instance_type"]), str(p.get("region", "")),
                                   Decimal(str(p["hourly"]))) for p in doc["prices"])
        return PriceTable(str(doc["date"]), str(doc.get("currency", "USD")), entries, dict(doc.get("sources", {})))
    except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
        raise InputError(f"price table is not readable ({type(exc).__name__}: {exc})", file=file) from None


def azure_retail_items(page: Mapping[str, Any], wanted: Iterable[str]) -> list[PriceEntry]:
    """Linux pay-as-you-go prices of the ``wanted`` VM sizes in one page of the Azure Retail
    Prices API (``Items`` of ``{armSkuName, armRegionName, retailPrice, type, productName,
    skuName, unitOfMeasure}``): Spot, Low Priority and Windows meters are left out."""
    want = {w.casefold() for w in wanted}
    out = []
    for item in page.get("Items", []):
        sku = str(item.get("armSkuName", ""))
        if sku.casefold() not in want or item.get("type") != "Consumption":
            continue
        name = f"{item.get('productName', '')} {item.get('skuName', '')}"
        if "Windows" in name or "Spot" in name or "Low Priority" in name or item.get("unitOfMeasure") != "1 Hour":
            continue
        out.append(PriceEntry("azure", sku, str(item.get("armRegionName", "")), Decimal(str(item["retailPrice"]))))
    return out


def merge(table: PriceTable, fresh: Sequence[PriceEntry], date: str, sources: Mapping[str, str]) -> PriceTable:
    """The table with ``fresh`` entries replacing those of the same cloud, type and region."""
    keyed = {(e.cloud, e.instance_type, e.region): e for e in table.entries}
    for e in fresh:
        keyed[(e.cloud, e.instance_type, e.region)] = e
    return PriceTable(date, table.currency, tuple(keyed.values()), {**table.sources, **sources})


#: AWS Price List location names of the regions the table prices (the API filters by location)
AWS_LOCATIONS = {"us-east-1": "US East (N. Virginia)", "us-west-2": "US West (Oregon)",
                 "eu-west-1": "EU (Ireland)", "eu-central-1": "EU (Frankfurt)"}


def aws_price_list_items(price_list: Iterable[str], region: str) -> list[PriceEntry]:
    """On-demand hourly USD prices from AWS Price List Query API ``GetProducts`` items (each a
    JSON document: ``product.attributes.instanceType``, ``terms.OnDemand.*.priceDimensions.*
    .pricePerUnit.USD``). Items without an hourly on-demand USD price are left out."""
    out = []
    for text in price_list:
        item = json.loads(text)
        itype = item.get("product", {}).get("attributes", {}).get("instanceType")
        for term in item.get("terms", {}).get("OnDemand", {}).values():
            for dim in term.get("priceDimensions", {}).values():
                usd = dim.get("pricePerUnit", {}).get("USD")
                if itype and usd and str(dim.get("unit", "")).lower() in ("hrs", "hours") and Decimal(usd) > 0:
                    out.append(PriceEntry("aws", str(itype), region, Decimal(usd)))
    return out


# -- Google Cloud: Compute Engine prices composed from the Cloud Billing Catalog ----------------

#: The Cloud Billing Catalog's service id of Compute Engine
GCE_SERVICE = "6F81-5844-456A"
#: Google prices a month as 730 hours (local SSD SKUs are priced per GiB-month)
HOURS_PER_MONTH = Decimal(730)


@dataclass(frozen=True)
class MachineShape:
    """What a Compute Engine machine type is billed for: ``vcpus`` × its family's core SKU +
    ``memory_gib`` × the family's RAM SKU + ``gpus`` × the GPU's SKU (+ ``local_ssd_gib`` of
    bundled local SSD at the local SSD SKU, priced per GiB-month)."""

    machine_type: str
    family: str  # the SKU description's prefix: "A2" in "A2 Instance Core running in Americas"
    vcpus: int
    memory_gib: Decimal
    gpu: str = ""  # the SKU description's GPU name: "Tesla A100" in "Nvidia Tesla A100 GPU running in ..."
    gpus: int = 0
    local_ssd_gib: int = 0


def parse_machine_shapes(text: str, *, file: str = "gce_machine_shapes.json") -> dict[str, MachineShape]:
    try:
        doc = json.loads(text)
        shapes = {str(name): MachineShape(str(name), str(s["family"]), int(s["vcpus"]), Decimal(str(s["memory_gib"])),
                                          str(s.get("gpu", "")), int(s.get("gpus", 0)), int(s.get("local_ssd_gib", 0)))
                  for name, s in doc["machine_types"].items()}
    except (ValueError, KeyError, TypeError, AttributeError, InvalidOperation) as exc:
        raise InputError(f"machine shapes are not readable ({type(exc).__name__}: {exc})", file=file) from None
    return shapes


class CatalogError(ValueError):
    """A Cloud Billing Catalog response that is not the documented ``ListSkusResponse``."""


def _sku_price(sku: Mapping[str, Any], currency: str) -> tuple[Decimal, str]:
    """The unit price of the SKU's latest pricing (the tier starting at 0 usage) and its
    usage unit (``h``, ``GiBy.h``, ``GiBy.mo``)."""
    infos = sku.get("pricingInfo") or []
    if not infos:
        raise CatalogError(f"SKU {sku.get('skuId')} ({sku.get('description')}) has no pricingInfo")
    info = max(infos, key=lambda i: str(i.get("effectiveTime", "")))
    expression = info.get("pricingExpression") or {}
    tiers = sorted(expression.get("tieredRates") or [], key=lambda t: float(t.get("startUsageAmount", 0) or 0))
    if not tiers:
        raise CatalogError(f"SKU {sku.get('skuId')} ({sku.get('description')}) has no tieredRates")
    price = tiers[0].get("unitPrice") or {}
    if price.get("currencyCode", currency) != currency:
        raise CatalogError(f"SKU {sku.get('skuId')} is priced in {price.get('currencyCode')}, not {currency}")
    try:
        amount = Decimal(str(price.get("units", "0") or "0")) + Decimal(int(price.get("nanos", 0) or 0)) / 10**9
    except (ValueError, TypeError, InvalidOperation):
        raise CatalogError(f"SKU {sku.get('skuId')} has an unreadable unitPrice {price!r}") from None
    return amount, str(expression.get("usageUnit", ""))


_PART = re.compile(r"^(?:(?P<family>[A-Z0-9]+) (?:Predefined )?Instance (?P<kind>Core|Ram)"
                   r"|Nvidia (?P<gpu>.+?) GPU"
                   r"|(?P<ssd>SSD backed Local Storage)) (?:running )?in ", re.IGNORECASE)


def gce_sku_parts(skus: Iterable[Mapping[str, Any]], currency: str = "USD",
                  ) -> dict[tuple[str, str], dict[str, tuple[Decimal, str]]]:
    """The on-demand unit prices of the SKUs a GPU machine is composed of, by (part, region):
    parts ``core:A2``, ``ram:A2``, ``gpu:Tesla A100``, ``ssd``. Spot, preemptible, commitment
    and reservation SKUs (``category.usageType`` other than ``OnDemand``), and SKUs of other
    resource groups, are left out. A region's price is the SKU's for every region it lists in
    ``serviceRegions``."""
    out: dict[tuple[str, str], dict[str, tuple[Decimal, str]]] = {}
    for sku in skus:
        if not isinstance(sku, Mapping):
            raise CatalogError(f"a SKU is not an object: {str(sku)[:60]!r}")
        category = sku.get("category") or {}
        if category.get("usageType") != "OnDemand" or category.get("resourceFamily") not in ("Compute", "Storage"):
            continue
        m = _PART.match(str(sku.get("description", "")))
        if m is None:
            continue
        group = str(category.get("resourceGroup", ""))
        if m["family"]:
            if group not in ("CPU", "RAM", "N1Standard"):
                continue
            part = f"{'core' if m['kind'].lower() == 'core' else 'ram'}:{m['family'].upper()}"
        elif m["gpu"]:
            if group != "GPU":
                continue
            part = f"gpu:{m['gpu'].casefold()}"
        else:
            if group != "LocalSSD":
                continue
            part = "ssd"
        price = _sku_price(sku, currency)
        for region in sku.get("serviceRegions") or []:
            out.setdefault((part, str(region)), {})[str(sku.get("skuId", ""))] = price
    return out


def gce_machine_prices(skus: Iterable[Mapping[str, Any]], shapes: Mapping[str, MachineShape],
                       regions: Iterable[str], currency: str = "USD") -> tuple[list[PriceEntry], list[str]]:
    """On-demand hourly prices of the machine ``shapes`` in ``regions``, composed from the
    Compute Engine SKUs of the catalog: vCPUs × core + GiB × RAM + GPUs × GPU (+ local SSD
    GiB × its monthly price / 730). A type whose parts the catalog does not price in a region
    (or prices twice, ambiguously) is left out, and said so in the second list."""
    parts = gce_sku_parts(skus, currency)
    out: list[PriceEntry] = []
    missing: list[str] = []
    for region in regions:
        for shape in shapes.values():
            wanted = [("core", f"core:{shape.family.upper()}", Decimal(shape.vcpus), "h"),
                      ("RAM", f"ram:{shape.family.upper()}", shape.memory_gib, "GiBy.h")]
            if shape.gpus:
                wanted.append(("GPU", f"gpu:{shape.gpu.casefold()}", Decimal(shape.gpus), "h"))
            if shape.local_ssd_gib:
                wanted.append(("local SSD", "ssd", Decimal(shape.local_ssd_gib), "GiBy.mo"))
            total, why = Decimal(0), ""
            for label, part, quantity, unit in wanted:
                found = set(parts.get((part, region), {}).values())
                if len(found) != 1:
                    why = f"{'no' if not found else 'more than one'} {label} SKU ({part.split(':')[-1]})"
                    break
                price, got = found.pop()
                if got != unit:
                    why = f"the {label} SKU is priced per {got!r}, not {unit!r}"
                    break
                total += quantity * price / (HOURS_PER_MONTH if unit == "GiBy.mo" else 1)
            if why:
                missing.append(f"{shape.machine_type} in {region}: {why}")
                continue
            out.append(PriceEntry("gcp", shape.machine_type, region, _plain(total)))
    return out, missing


def _plain(amount: Decimal) -> Decimal:
    """Without trailing zeros, never in exponent form (``2.000`` → ``2``, not ``2E+0``)."""
    return amount.quantize(Decimal(1)) if amount == amount.to_integral_value() else amount.normalize()
