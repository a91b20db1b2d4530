"""``burnguard meter``, ``estimates`` and ``prices refresh`` on the embedded mode.

The price refresh is tested against a local HTTP server standing in for the Azure Retail Prices
API (a STAND-IN serving the documented response shape: ``Items``, ``NextPageLink``), and with
nothing listening (offline: one line, exit 1, the table kept)."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest

from burnguard.app.cli import main
from burnguard.app.estimates_cli import load_prices
from burnguard.app.schemas import SCHEMAS
from tests.emulators import QuietHandler, free_port, http_server

ROOT = Path(__file__).parents[2]
EVENTS = ROOT / "events"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        assert main(["demo", "--home", str(path)]) == 0
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


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
    assert all(e["rate_source"] in ("billing:instance", "billing:type", "price-table") for e in doc["estimates"])
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
        code, out, err = run(capsys, "prices", "refresh", "--azure-url", f"{url}/api/retail/prices",
                             "--home", str(home))
    assert code == 0, err
    assert "2 Azure prices" in out
    table = load_prices(home)
    assert table.date == datetime.now(UTC).strftime("%Y-%m-%d")
    assert table.price("azure", sku, "eastus") == Decimal("28.5")
    assert table.price("azure", sku, "westeurope") == Decimal("30.25")
    assert table.price("aws", "p5.48xlarge") == load_prices().price("aws", "p5.48xlarge")  # kept


def test_prices_refresh_offline_is_one_line_and_keeps_the_table(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "prices", "refresh", "--azure-url", f"http://127.0.0.1:{free_port()}/prices",
                         "--home", str(tmp_path / "h"))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "cannot read the Azure Retail Prices API" in err and "stays as it was" in err
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
