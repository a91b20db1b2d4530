"""``burnguard meter``, ``estimates`` and ``prices refresh`` on the embedded mode.

The price refresh is tested against a local HTTP server standing in for the Azure Retail Prices
API (a STAND-IN serving the documented response shape: ``Items``, ``NextPageLink``), and with
nothing listening (offline: one line, exit 1, the table kept)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest

from burnguard.app.estimates_cli import load_prices
from burnguard.app.schemas import SCHEMAS
from tests.cli_helpers import demo_home, run
from tests.emulators import QuietHandler, free_port, http_server

ROOT = Path(__file__).parents[2]
EVENTS = ROOT / "events"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    return demo_home(path)


def test_meter_once_then_estimates_and_guardrails_show_it(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    running = [i for i in json.loads((EVENTS / "inventory.json").read_text())["instances"]
               if i["state"] == "running"]
    code, out, err = run(capsys, "meter", "--once", "--home", str(home))
    # 1: done with findings, the sample inventory refuses one stop (trainer-a100-az's fail_stop)
    assert code == 1, err
    assert "could not stop 1 instance" in out and "Triggered with estimates" in out
    last = out.splitlines()[-1]
    assert "GPU instances running" in last and "accrued" in last
    # The sample ledger's billing ends in 2024: instances without a start time backfill at most
    # 72 hours (a stale ledger is not three years of GPU time).
    code, out, err = run(capsys, "estimates", "--json", "--home", str(home))
    assert code == 0, err
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMAS["estimates"])
    assert doc["estimates"], "running GPU instances of the inventory are estimated"
    assert {e["instance_id"] for e in doc["estimates"]} <= {i["id"] for i in running}
    assert all(Decimal(e["hours"]) <= 72 for e in doc["estimates"])
    assert all(e["rate_source"] in ("billing:instance", "billing:type@region", "billing:type", "price-table") for e in doc["estimates"])
    code, out, err = run(capsys, "guardrails", "--json", "--home", str(home))
    assert code == 0, err
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMAS["guardrails"])
    assert any(g["estimated"] for g in doc["guardrails"])
    code, out, _ = run(capsys, "estimates", "--home", str(home))
    assert code == 0 and "billing covers:" in out and "rate source" in out


def test_meter_every_is_checked(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "meter", "--every", "10s", "--once", "--home", str(home))
    assert code == 2 and err.count("\n") == 1 and "at most once a minute" in err


def _retail_stand_in(pages: dict[str, list[dict[str, Any]]]) -> type[QuietHandler]:
    """Answers ``GET /api/retail/prices?$filter=... armSkuName eq 'X'`` with X's items, two per
    page, following ``NextPageLink`` (``&page=N``)."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            sku = query["$filter"][0].rsplit("'", 2)[-2]
            page = int(query.get("page", ["0"])[0])
            items = pages.get(sku, [])
            body: dict[str, Any] = {"BillingCurrency": "USD", "CustomerEntityId": "Default",
                                    "Items": items[page * 2:page * 2 + 2], "Count": len(items[page * 2:page * 2 + 2])}
            base = f"http://{self.headers['Host']}{url.path}?{url.query.split('&page=')[0]}"
            body["NextPageLink"] = f"{base}&page={page + 1}" if len(items) > page * 2 + 2 else None
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _item(sku: str, region: str, price: float, *, name: str = "", kind: str = "Consumption") -> dict[str, Any]:
    return {"armSkuName": sku, "armRegionName": region, "retailPrice": price, "unitPrice": price, "type": kind,
            "currencyCode": "USD", "productName": f"Virtual Machines Series{name}", "skuName": sku.split("_")[1],
            "serviceName": "Virtual Machines", "unitOfMeasure": "1 Hour", "priceType": "Consumption"}


def test_prices_refresh_reads_the_retail_prices_api(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sku = "Standard_ND96asr_v4"
    pages = {sku: [_item(sku, "eastus", 28.5), _item(sku, "eastus", 9.1, name=" Spot"),
                   _item(sku, "westeurope", 30.25), _item(sku, "eastus", 31.0, name=" Windows")]}
    home = tmp_path / "h"
    with http_server(_retail_stand_in(pages)) as url:
        code, out, err = run(capsys, "prices", "refresh", "--cloud", "azure", "--azure-url",
                             f"{url}/api/retail/prices", "--home", str(home))
    assert code == 0, err
    assert "2 azure prices read" in out
    table = load_prices(home)
    assert table.date == datetime.now(UTC).strftime("%Y-%m-%d")
    assert table.price("azure", sku, "eastus") == Decimal("28.5")
    assert table.price("azure", sku, "westeurope") == Decimal("30.25")
    assert table.price("aws", "p5.48xlarge") == load_prices().price("aws", "p5.48xlarge")  # kept


def test_prices_refresh_offline_is_one_line_and_keeps_the_table(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "prices", "refresh", "--cloud", "azure", "--azure-url",
                         f"http://127.0.0.1:{free_port()}/prices", "--home", str(tmp_path / "h"))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "cannot read the azure prices" in err and "stay as they were" in err
    assert not (tmp_path / "h" / "gpu_prices.json").exists()


def test_meter_reads_at_a_state_change_event(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.test_state_events import EC2

    event = tmp_path / "ec2-running.json"
    event.write_text(json.dumps({**EC2, "detail": {"instance-id": "i-0c2d8f4b6e1a93c03", "state": "running"}}))
    code, out, err = run(capsys, "meter", "--once", "--event", f"aws={event}", "--home", str(home))
    assert code in (0, 1), err  # 1: the sample inventory refuses one stop
    assert "GPU instances running" in out.splitlines()[-1]
    code, _, err = run(capsys, "meter", "--once", "--event", f"aws={tmp_path / 'missing.json'}", "--home", str(home))
    assert code == 2 and err.count("\n") == 1 and "missing.json" in err
    bad = tmp_path / "bucket.json"
    bad.write_text(json.dumps({**EC2, "detail-type": "Object Created"}))
    code, _, err = run(capsys, "meter", "--once", "--event", f"aws={bad}", "--home", str(home))
    assert code == 2 and "no instance start or stop" in err


def _pricing_stand_in(prices: dict[str, str], seen: list[dict[str, Any]]) -> type[QuietHandler]:
    """A STAND-IN for the AWS Price List Query API (awsJson1_1 ``AWSPriceListService.GetProducts``,
    its documented response: ``PriceList`` of JSON documents, ``FormatVersion``)."""

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body)
            assert self.headers["X-Amz-Target"] == "AWSPriceListService.GetProducts"
            itype = next(f["Value"] for f in body["Filters"] if f["Field"] == "instanceType")
            items = []
            if itype in prices:
                items.append(json.dumps({"product": {"productFamily": "Compute Instance", "attributes": {
                    "instanceType": itype, "location": "US East (N. Virginia)", "operatingSystem": "Linux"}},
                    "terms": {"OnDemand": {"SKU.JRTCKXETXF": {"priceDimensions": {"SKU.JRTCKXETXF.6YS6EN2CT7": {
                        "unit": "Hrs", "pricePerUnit": {"USD": prices[itype]}, "description": f"{itype} Linux"}}}}}}))
            data = json.dumps({"FormatVersion": "aws_v1", "PriceList": items}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def test_prices_refresh_reads_the_aws_price_list(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    seen: list[dict[str, Any]] = []
    home = tmp_path / "h"
    with http_server(_pricing_stand_in({"p5.48xlarge": "55.0400000000"}, seen)) as url:
        code, out, err = run(capsys, "prices", "refresh", "--cloud", "aws", "--aws-endpoint", url,
                             "--home", str(home))
    assert code == 0, err
    assert "1 aws prices read" in out
    assert load_prices(home).price("aws", "p5.48xlarge") == Decimal("55.04")
    assert load_prices(home).price("aws", "g5.xlarge") == load_prices().price("aws", "g5.xlarge")  # not listed: kept
    assert len(seen) == len({e.instance_type for e in load_prices().entries if e.cloud == "aws"})
    assert all({"Type": "TERM_MATCH", "Field": "operatingSystem", "Value": "Linux"} in b["Filters"] for b in seen)
