"""The Azure Retail Prices API (``https://prices.azure.com/api/retail/prices``): public list
prices, no authentication, paged by ``NextPageLink``. Read by ``burnguard prices refresh``.

The API has no SDK; the client is the standard library's ``urllib`` (a parameter, so tests point
it at a local stand-in serving the documented response shape).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlencode
from urllib.request import urlopen

from burnguard.core.prices import PriceEntry, azure_retail_items

RETAIL_PRICES_URL = "https://prices.azure.com/api/retail/prices"
API_VERSION = "2023-01-01-preview"
#: Public, unauthenticated: no cloud permission is needed.
PERMISSIONS: tuple[str, ...] = ()

Fetch = Callable[[str], dict[str, Any]]


def _get(url: str) -> dict[str, Any]:
    with urlopen(url, timeout=30) as response:
        data: dict[str, Any] = json.loads(response.read())
        return data


class AzureRetailPrices:
    def __init__(self, base_url: str = RETAIL_PRICES_URL, fetch: Fetch | None = None, *, max_pages: int = 50):
        self.base_url = base_url
        self.fetch = fetch or _get
        self.max_pages = max_pages

    def pages(self, sku: str) -> Iterator[dict[str, Any]]:
        flt = f"serviceName eq 'Virtual Machines' and priceType eq 'Consumption' and armSkuName eq '{sku}'"
        url: str | None = f"{self.base_url}?{urlencode({'api-version': API_VERSION, '$filter': flt})}"
        for _ in range(self.max_pages):
            if not url:
                return
            page = self.fetch(url)
            yield page
            url = page.get("NextPageLink")

    def prices(self, skus: Iterable[str]) -> list[PriceEntry]:
        """Linux pay-as-you-go hourly prices of the VM sizes ``skus`` in every region."""
        out: list[PriceEntry] = []
        for sku in skus:
            for page in self.pages(sku):
                out += azure_retail_items(page, [sku])
        return out
