"""The Cloud Billing Catalog (``cloudbilling.googleapis.com/v1/services/6F81-5844-456A/skus``,
Compute Engine): public list prices of the SKUs GPU machines are billed by, read by
``burnguard prices refresh`` on an operator's machine.

Compute Engine has no price per machine type: a GPU machine's on-demand hourly price is composed
of its family's core and RAM SKUs, its GPUs' SKU and any bundled local SSD
(:func:`burnguard.core.prices.gce_machine_prices`, with the shapes of ``data/gce_machine_shapes.json``).

Client: google-auth's :class:`~google.auth.transport.requests.AuthorizedSession` (a
``requests.Session``) with the operator's Application Default Credentials, over the REST API.
Chosen over ``google-cloud-billing`` because google-auth is already installed with the ``gcp``
extra (no new dependency for one list call), and the catalog's JSON is what the price
arithmetic reads (``units``/``nanos`` as documented). The session is a parameter: tests pass a
plain ``requests.Session`` pointed at a fake serving the documented response shape. Paged by
``nextPageToken`` (``pageSize`` 5000, the documented maximum).

Who may call it: any authenticated principal (the catalog is public; no IAM role on any
resource), or an API key (``key=``) instead. burnguard uses the credentials (``gcloud auth
application-default login``), so no key is kept anywhere; with user credentials the quota
project must have the Cloud Billing API enabled.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from burnguard.core.prices import GCE_SERVICE, CatalogError, MachineShape, PriceEntry, gce_machine_prices

CATALOG_URL = "https://cloudbilling.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
PAGE_SIZE = 5000
#: No IAM permission: the catalog answers any authenticated principal (or an API key).
PERMISSIONS: tuple[str, ...] = ()


def default_session() -> Any:
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    credentials, _ = google.auth.default(scopes=list(SCOPES))
    return AuthorizedSession(credentials)  # type: ignore[no-untyped-call]


class GceCatalogPrices:
    def __init__(self, session: Any = None, *, base_url: str = CATALOG_URL, currency: str = "USD",
                 max_pages: int = 100, timeout: float = 60.0):
        self._session = session
        self.base_url = base_url.rstrip("/")
        self.currency = currency
        self.max_pages = max_pages
        self.timeout = timeout

    @property
    def session(self) -> Any:
        if self._session is None:
            self._session = default_session()
        return self._session

    def skus(self) -> Iterator[Mapping[str, Any]]:
        """Every SKU of Compute Engine, page after page."""
        url = f"{self.base_url}/v1/services/{GCE_SERVICE}/skus"
        token = ""
        for number in range(1, self.max_pages + 1):
            params = {"pageSize": str(PAGE_SIZE), "currencyCode": self.currency}
            if token:
                params["pageToken"] = token
            response = self.session.get(url, params=params, timeout=self.timeout)
            page = _page(response, number)
            yield from page.get("skus") or []
            token = str(page.get("nextPageToken") or "")
            if not token:
                return
        raise CatalogError(f"Cloud Billing Catalog: still more pages after {self.max_pages}; stopped")

    def prices(self, shapes: Mapping[str, MachineShape], regions: Iterable[str]) -> tuple[list[PriceEntry], list[str]]:
        """The on-demand hourly prices of the machine types ``shapes`` in ``regions``, and the
        types the catalog could not price there (with why)."""
        skus = list(self.skus())
        if not skus:
            raise CatalogError(f"Cloud Billing Catalog: no SKU listed for services/{GCE_SERVICE}")
        return gce_machine_prices(skus, shapes, list(regions), self.currency)


def _page(response: Any, number: int) -> Mapping[str, Any]:
    """The JSON page, or one line saying what came instead."""
    where = f"Cloud Billing Catalog page {number}"
    status = getattr(response, "status_code", 200)
    try:
        body = response.json()
    except ValueError:
        raise CatalogError(f"{where}: HTTP {status}, not JSON ({response.text[:80]!r})") from None
    if status != 200:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        message = error.get("message") if isinstance(error, dict) else None
        raise CatalogError(f"{where}: HTTP {status}: {message or str(body)[:80]}")
    if not isinstance(body, dict) or not isinstance(body.get("skus", []), list) or (
            body and not {"skus", "nextPageToken"} & body.keys()):
        raise CatalogError(f"{where}: not a SKU list (no 'skus' array): {str(body)[:80]!r}")
    return body
