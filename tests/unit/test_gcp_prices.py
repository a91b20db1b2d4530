"""``burnguard prices refresh --cloud gcp``: Compute Engine GPU machine prices composed from the
Cloud Billing Catalog.

The catalog has no emulator: a FAKE HTTP server serves the SKUs of
``tests/fixtures/gcp_catalog_skus.json`` (the documented ``ListSkusResponse`` shape, see its
provenance) three per page, following ``nextPageToken``. Expected prices are computed here by
hand from the fixture's literal unit prices, never by burnguard."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from burnguard.adapters.gcp.prices import GceCatalogPrices
from burnguard.app.cli import main
from burnguard.app.estimates_cli import load_machine_shapes, load_prices
from burnguard.core.prices import CatalogError
from tests.emulators import QuietHandler, http_server

SKUS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "gcp_catalog_skus.json").read_text())["skus"]
PAGE = 3


def _catalog_fake(seen: list[dict[str, list[str]]], *, status: int = 200, body: Any = None) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            seen.append(query)
            if url.path != "/v1/services/6F81-5844-456A/skus":
                return self._send(404, {"error": {"code": 404, "message": f"no {url.path}", "status": "NOT_FOUND"}})
            if body is not None:
                return self._send(status, body)
            start = int(query.get("pageToken", ["0"])[0])
            page: dict[str, Any] = {"skus": SKUS[start:start + PAGE]}
            if start + PAGE < len(SKUS):
                page["nextPageToken"] = str(start + PAGE)
            self._send(200, page)

        def _send(self, code: int, doc: Any) -> None:
            data = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def test_refresh_composes_gce_prices_from_the_catalog(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[dict[str, list[str]]] = []
    home = tmp_path / "h"
    with http_server(_catalog_fake(seen)) as url:
        code = main(["prices", "refresh", "--cloud", "gcp", "--gcp-url", url, "--home", str(home)])
    out, err = capsys.readouterr()
    assert code == 0, err
    # every page read, in USD, at the largest page size
    assert len(seen) == -(-len(SKUS) // PAGE)
    assert [q.get("pageToken", [""])[0] for q in seen] == [""] + [str(n) for n in range(PAGE, len(SKUS), PAGE)]
    assert all(q["currencyCode"] == ["USD"] and q["pageSize"] == ["5000"] for q in seen)
    table = load_prices(home)
    gcp_types = {e.instance_type for e in load_prices().entries if e.cloud == "gcp"}
    assert f"{len(gcp_types)} gcp prices read" in out
    # by hand, from the fixture: vCPUs x core + GiB x RAM + GPUs x GPU (+ local SSD GiB x month / 730)
    a2_core, a2_ram, a100, a100_80, ssd_month = (Decimal("0.031611"), Decimal("0.004237"), Decimal("2.933908"),
                                                 Decimal("3.92828"), Decimal("0.08"))
    g2_core, g2_ram, l4 = Decimal("0.024988"), Decimal("0.002928"), Decimal("0.5598")
    a3_core, a3_ram, h100 = Decimal("0.0317"), Decimal("0.002863"), Decimal("9.796")
    assert table.price("gcp", "a2-highgpu-1g", "us-central1-a") == Decimal("3.673385")  # the shipped figure
    assert table.price("gcp", "a2-highgpu-8g") == 96 * a2_core + 680 * a2_ram + 8 * a100
    assert table.price("gcp", "a2-megagpu-16g") == 96 * a2_core + 1360 * a2_ram + 16 * a100
    assert table.price("gcp", "a2-ultragpu-1g") == 12 * a2_core + 170 * a2_ram + a100_80 + 375 * ssd_month / 730
    assert table.price("gcp", "g2-standard-8") == 8 * g2_core + 32 * g2_ram + l4
    assert table.price("gcp", "g2-standard-24") == 24 * g2_core + 96 * g2_ram + 2 * l4
    assert table.price("gcp", "a3-highgpu-8g") == 208 * a3_core + 1872 * a3_ram + 8 * h100 + 6000 * ssd_month / 730
    # the spot GPU (1.1) and the commitment core SKUs are not on-demand: never used
    assert table.price("gcp", "a2-highgpu-1g") != 12 * a2_core + 85 * a2_ram + Decimal("1.1")
    assert "Google Cloud Billing Catalog" in table.sources["gcp"]
    assert table.price("aws", "p5.48xlarge") == load_prices().price("aws", "p5.48xlarge")  # other clouds kept


def test_a_region_missing_a_part_is_left_out_and_said() -> None:
    seen: list[dict[str, list[str]]] = []
    shapes = {k: v for k, v in load_machine_shapes().items() if k == "a2-highgpu-1g"}
    with http_server(_catalog_fake(seen)) as url:
        prices, missing = GceCatalogPrices(requests.Session(), base_url=url).prices(
            shapes, ["us-central1", "europe-west4"])
    assert [(p.instance_type, p.region) for p in prices] == [("a2-highgpu-1g", "us-central1")]
    assert missing == ["a2-highgpu-1g in europe-west4: no RAM SKU (A2)"]  # only its core SKU is listed there


@pytest.mark.parametrize(("status", "body", "expected"), [
    (403, {"error": {"code": 403, "message": "Cloud Billing API has not been used in project 123",
                     "status": "PERMISSION_DENIED"}}, "HTTP 403: Cloud Billing API has not been used"),
    (200, {"services": []}, "not a SKU list"),
    (200, {"skus": SKUS[-2:]}, "priced none of the"),  # E2 and a European A2 core: no GPU machine composed
])
def test_a_bad_answer_is_one_line_and_the_table_is_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        status: int, body: Any, expected: str) -> None:
    with http_server(_catalog_fake([], status=status, body=body)) as url:
        code = main(["prices", "refresh", "--cloud", "gcp", "--gcp-url", url, "--home", str(tmp_path / "h")])
        if status != 200 or "skus" not in body:
            with pytest.raises(CatalogError, match=expected):
                list(GceCatalogPrices(requests.Session(), base_url=url).skus())
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "cannot read the gcp prices" in err and expected in err
    assert not (tmp_path / "h" / "gpu_prices.json").exists()
