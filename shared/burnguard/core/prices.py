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
