"""The Google Cloud billing export reader, one behaviour at a time.

Each test builds the smallest export that shows the behaviour (JSON lines, a flattened CSV or
Parquet, in a temporary directory), or reads the committed samples and public fixtures, and
derives what it expects from the raw records, not from the normalizer.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from burnguard.core.errors import InputError, MissingColumnError
from burnguard.core.lineitem import LineItem, iter_line_items
from burnguard.core.money import parse_decimal
from burnguard.normalize import Header, Normalizer, detect
from burnguard.normalize.gcp import GcpBillingFormat
from tests.helpers import EVENTS, FIXTURES, fixture, read_rows

SAMPLES = EVENTS / "samples" / "gcp"
JSONL = SAMPLES / "billing-export-202409.jsonl"
PARQUET = SAMPLES / "billing-export-202409.parquet"
KOKU = "koku/gcp/202011_30c31bca571d9b7f3b2c8459dd8bc34a_2020-11-08_2020-11-11.csv"


def record(**overrides: Any) -> dict[str, Any]:
    """One nested export row as BigQuery's JSON export writes it."""
    base: dict[str, Any] = {
        "billing_account_id": "01D4EE-079462-DFD6EC",
        "service": {"id": "6F81-5844-456A", "description": "Compute Engine"},
        "sku": {"id": "BB77-5FDA-5C4E", "description": "N2 Instance Core running in Americas"},
        "usage_start_time": "2024-09-02 10:00:00 UTC",
        "usage_end_time": "2024-09-02 11:00:00 UTC",
        "project": {"id": "proj-a", "number": "1234", "name": "Project A", "labels": []},
        "labels": [],
        "system_labels": [],
        "location": {"location": "us-central1-a", "country": "US", "region": "us-central1", "zone": "us-central1-a"},
        "cost": 1.25,
        "currency": "USD",
        "usage": {"amount": 3600, "unit": "seconds"},
        "credits": [],
        "invoice": {"month": "202409"},
        "cost_type": "regular",
    }
    base.update(overrides)
    return base


def write_jsonl(path: Path, records: Sequence[dict[str, Any] | str]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def read(path: Path, **kwargs: Any) -> tuple[list[LineItem], Normalizer]:
    normalizer = Normalizer.from_path(path, **kwargs)
    return list(iter_line_items(normalizer.read_all())), normalizer


FLAT_COLUMNS = ["billing_account_id", "service.id", "service.description", "sku.id", "sku.description",
                "usage_start_time", "usage_end_time", "project.id", "project.name", "project.labels", "labels",
                "system_labels", "location.location", "location.region", "location.zone", "cost", "currency",
                "usage.amount", "usage.unit", "credits", "invoice.month", "cost_type"]


def flat_row(**overrides: str) -> dict[str, str]:
    row = {
        "billing_account_id": "01D4EE-079462-DFD6EC", "service.id": "6F81-5844-456A",
        "service.description": "Compute Engine", "sku.id": "BB77-5FDA-5C4E",
        "sku.description": "N2 Instance Core running in Americas",
        "usage_start_time": "2024-09-02 10:00:00+00:00", "usage_end_time": "2024-09-02 11:00:00+00:00",
        "project.id": "proj-a", "project.name": "Project A", "project.labels": "[]", "labels": "[]",
        "system_labels": "[]", "location.location": "us-central1-a", "location.region": "us-central1",
        "location.zone": "us-central1-a", "cost": "1.25", "currency": "USD", "usage.amount": "3600",
        "usage.unit": "seconds", "credits": "[]", "invoice.month": "202409", "cost_type": "regular",
    }
    row.update(overrides)
    return row


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str] = FLAT_COLUMNS) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def raw_labels(pairs: list[dict[str, Any]] | None) -> dict[str, str]:
    return {p["key"]: p["value"] for p in pairs or []}


# -- detection --------------------------------------------------------------------------------

def test_detects_the_three_containers_and_koku_csv() -> None:
    for path in (JSONL, PARQUET, SAMPLES / "billing-export-202409.jsonl.gz", fixture(KOKU)):
        _, normalizer = read(path)
        assert normalizer.stats.format == "gcp-billing", path


def _csv_fixtures() -> list[Path]:
    return sorted(p for p in FIXTURES.rglob("*.csv") if "koku/gcp" not in p.as_posix())


@pytest.mark.parametrize("path", _csv_fixtures(), ids=lambda p: str(p.relative_to(FIXTURES)))
def test_does_not_claim_other_exports(path: Path) -> None:
    header, _ = read_rows(path)
    assert GcpBillingFormat().score(Header(header)) == 0


def test_score_needs_the_signature_fields() -> None:
    fmt = GcpBillingFormat()
    assert fmt.score(Header(FLAT_COLUMNS)) > 10
    assert fmt.score(Header(list(record()))) > 10
    for missing in ("billing_account_id", "cost", "usage_start_time"):
        assert fmt.score(Header([c for c in FLAT_COLUMNS if c != missing])) == 0
    assert fmt.score(Header(["billing_account_id", "cost", "usage_start_time", "currency"])) == 0
    assert detect(Header(list(record()))).name == "gcp-billing"


# -- mapping ----------------------------------------------------------------------------------

def test_sample_row_maps_every_field() -> None:
    raw = json.loads(JSONL.read_text(encoding="utf-8").splitlines()[0], parse_float=Decimal)
    items, normalizer = read(JSONL)
    item = items[0]
    assert normalizer.stats.variant == "gcp-billing-detailed"
    assert item.ProviderName == "Google Cloud"
    assert item.x_Cloud == "gcp"
    assert item.BillingAccountId == raw["billing_account_id"] == "01D4EE-079462-DFD6EC"
    assert item.SubAccountId == raw["project"]["id"]
    assert item.SubAccountName == raw["project"]["name"]
    assert item.BillingPeriodStart == datetime(2024, 9, 1, tzinfo=UTC)
    assert item.BillingPeriodEnd == datetime(2024, 10, 1, tzinfo=UTC)
    assert item.ChargePeriodStart == datetime.strptime(raw["usage_start_time"], "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC)
    assert item.ChargePeriodEnd == datetime.strptime(raw["usage_end_time"], "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC)
    assert item.ChargePeriodStart.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert item.BilledCost == raw["cost"]
    assert item.ListCost == raw["cost_at_list"]
    assert item.BillingCurrency == raw["currency"]
    assert item.ServiceName == raw["service"]["description"]
    assert item.ServiceCategory == "Compute"
    assert item.SkuId == raw["sku"]["id"]
    assert item.ChargeDescription == item.x_UsageType == raw["sku"]["description"]
    assert item.ResourceId == raw["resource"]["global_name"]
    assert item.ResourceName == raw["resource"]["name"]
    assert item.RegionId == raw["location"]["region"]
    assert item.AvailabilityZone == raw["location"]["zone"]
    assert item.ConsumedQuantity == Decimal(str(raw["usage"]["amount"]))
    assert item.ConsumedUnit == raw["usage"]["unit"]
    assert item.ChargeCategory == "Usage"
    assert item.ChargeFrequency == "Usage-Based"
    assert item.x_SourceFile == JSONL.name
    assert item.x_SourceRow == 1


def test_charge_category_from_cost_type(tmp_path: Path) -> None:
    kinds = ["regular", "tax", "adjustment", "rounding_error", "rounding error", None, "something_new"]
    path = write_jsonl(tmp_path / "kinds.jsonl", [record(cost_type=k) for k in kinds])
    items, normalizer = read(path)
    assert [i.ChargeCategory for i in items] == ["Usage", "Tax", "Adjustment", "Adjustment", "Adjustment", "Usage",
                                                 "Adjustment"]
    assert [i.PricingCategory for i in items][:2] == ["Standard", None]
    assert any("something_new" in w for w in normalizer.stats.warnings)


def test_resource_falls_back_to_name_and_region_to_location(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", [record(resource={"name": "vm-1", "global_name": None},
                                                     location={"location": "us", "region": None, "zone": None})])
    [item], _ = read(path)
    assert item.ResourceId == item.ResourceName == "vm-1"
    assert item.RegionId == "us"
    assert item.AvailabilityZone is None


# -- labels -----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [JSONL, PARQUET], ids=lambda p: p.name)
def test_sample_tags_are_project_labels_overlaid_by_resource_labels(path: Path) -> None:
    records = [json.loads(line) for line in JSONL.read_text(encoding="utf-8").splitlines()]
    items, _ = read(path)
    assert len(items) == len(records)
    for item in items:
        raw = records[item.x_SourceRow - 1]  # type: ignore[operator]
        assert item.Tags == {**raw_labels(raw["project"]["labels"]), **raw_labels(raw["labels"])}
    trainer = next(i for i in items if i.ResourceName == "trainer-a100-1")
    assert trainer.Tags["env"] == "dev"  # the resource's env=dev wins over the project's env=prod
    bucket = next(i for i in items if i.ResourceName == "ml-datasets-418257")
    assert bucket.Tags["team"] == "ml-research"  # from the project: the bucket has no team label
    protected = {i.ResourceName for i in items if i.Tags.get("burnguard-protect") == "true"}
    assert protected == {"infer-l4-2", "eval-l4-1"}


def test_label_rule_edge_cases(tmp_path: Path) -> None:
    rec = record(
        project={"id": "p", "name": "P", "labels": [{"key": "team", "value": "from-project"},
                                                    {"key": "env", "value": "prod"},
                                                    {"key": "owner", "value": "alice"}]},
        labels=[{"key": "team", "value": "  ml-research "}, {"key": "owner", "value": ""},
                {"key": "dup", "value": ""}, {"key": "dup", "value": "second"}, {"key": "  ", "value": "no key"},
                {"key": "novalue", "value": None}],
    )
    path = write_jsonl(tmp_path / "l.jsonl", [rec, record()])
    items, _ = read(path)
    assert items[0].Tags == {
        "team": "ml-research",  # resource wins, trimmed
        "env": "prod",  # project only
        "owner": "",  # a resource label wins even when empty
        "dup": "second",  # within one list, the first non-empty value
        "novalue": "",
    }
    assert items[1].Tags == {}


def test_python_literal_and_json_label_text_read_the_same(tmp_path: Path) -> None:
    pairs = [{"key": "team", "value": "ml-research"}, {"key": "project", "value": "llm-finetune"}]
    project = [{"key": "env", "value": "prod"}, {"key": "team", "value": "platform"}]
    rows = [
        flat_row(labels=json.dumps(pairs), **{"project.labels": json.dumps(project)}),
        flat_row(labels=repr(pairs), **{"project.labels": repr(project)}),
        flat_row(labels="[{'key': 'note', 'value': None}]"),
    ]
    items, normalizer = read(write_csv(tmp_path / "flat.csv", rows))
    assert normalizer.stats.error_count == 0
    expected = {**raw_labels(project), **raw_labels(pairs)}
    assert items[0].Tags == items[1].Tags == expected
    assert items[2].Tags == {"note": ""}


def test_koku_labels_are_read_from_python_literals() -> None:
    _, rows = read_rows(fixture(KOKU))
    items, _ = read(fixture(KOKU))
    for item in items:
        raw = rows[item.x_SourceRow - 1]  # type: ignore[operator]
        expected = {p["key"]: p["value"] for p in eval_literal(raw["labels"])}
        assert item.Tags == expected
    assert any(i.Tags.get("goog-resource-type") == "bigquery_dataset" for i in items)


def eval_literal(text: str) -> list[dict[str, Any]]:
    import ast

    return ast.literal_eval(text) if text else []


# -- numbers ----------------------------------------------------------------------------------

def test_int64_and_numeric_strings_read_like_numbers(tmp_path: Path) -> None:
    as_numbers = record(cost=0.000123, usage={"amount": 328558821376000, "unit": "byte-seconds"},
                        credits=[{"amount": -0.00002, "type": "PROMOTION"}])
    as_strings = record(cost="0.000123", usage={"amount": "328558821376000", "unit": "byte-seconds"},
                        credits=[{"amount": "-0.00002", "type": "PROMOTION"}])
    items, normalizer = read(write_jsonl(tmp_path / "n.jsonl", [as_numbers, as_strings]))
    assert normalizer.stats.error_count == 0
    for item in items:
        assert item.BilledCost == Decimal("0.000123")
        assert item.EffectiveCost == Decimal("0.000103")
        assert item.ConsumedQuantity == Decimal(328558821376000)


def test_sample_int64_usage_strings() -> None:
    records = [json.loads(line) for line in JSONL.read_text(encoding="utf-8").splitlines()]
    strings = [r for r in records if isinstance(r["usage"]["amount"], str)]
    assert strings, "the sample writes some INT64 usage amounts as strings"
    items, _ = read(JSONL)
    for item in items:
        raw = records[item.x_SourceRow - 1]["usage"]["amount"]  # type: ignore[operator]
        assert item.ConsumedQuantity == (Decimal(str(raw)) if raw is not None else None)


def test_json_numbers_with_many_digits_are_exact_to_18_places(tmp_path: Path) -> None:
    # FLOAT64 texts need 21 and 22 decimal places; like every burnguard parser, the reader
    # keeps 18 and cuts toward zero: the same values as money.parse_decimal gives the texts.
    cost, credit = "2.3198314011096954e-05", "-1.1574074074074078e-05"
    line = json.dumps(record(credits=[{"amount": 0}])).replace('"cost": 1.25', f'"cost": {cost}').replace(
        '"amount": 0}', f'"amount": {credit}}}')
    [item], normalizer = read(write_jsonl(tmp_path / "d.jsonl", [line]))
    assert normalizer.stats.error_count == 0
    assert item.BilledCost == parse_decimal(cost) == Decimal("0.000023198314011096")
    assert item.EffectiveCost == parse_decimal(cost) + parse_decimal(credit)  # type: ignore[operator]
    assert parse_decimal(credit) == Decimal("-0.000011574074074074")


def test_credits_are_in_effective_cost_not_billed_cost(tmp_path: Path) -> None:
    rec = record(cost=10.5, credits=[
        {"name": "Sustained Usage Discount", "amount": -2.1, "type": "SUSTAINED_USAGE_DISCOUNT"},
        {"name": "FreeTrial", "amount": -0.4, "type": "PROMOTION", "full_name": None, "id": "x"},
    ])
    no_credit = record(cost=3, credits=[])
    null_credits = record(cost=3, credits=None)
    committed = record(cost=5, credits=[{"amount": -1, "type": "COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE"}])
    items, _ = read(write_jsonl(tmp_path / "c.jsonl", [rec, no_credit, null_credits, committed]))
    assert [(i.BilledCost, i.EffectiveCost) for i in items] == [
        (Decimal("10.5"), Decimal("8.0")), (Decimal(3), Decimal(3)), (Decimal(3), Decimal(3)), (Decimal(5), Decimal(4))]
    assert items[3].PricingCategory == "Committed"


def test_credit_text_in_csv_is_exact(tmp_path: Path) -> None:
    rows = [
        flat_row(cost="5e-06", credits="[{'name': 'FreeTrial', 'amount': -5e-06, 'full_name': None, 'type': 'PROMOTION'}]"),
        flat_row(cost="0.3", credits='[{"amount": -0.1, "type": "SUSTAINED_USAGE_DISCOUNT"}, {"amount": -0.1}]'),
        flat_row(cost="0.3", credits="[{'amount': '-0.05'}]"),
    ]
    items, normalizer = read(write_csv(tmp_path / "credits.csv", rows))
    assert normalizer.stats.error_count == 0
    assert [i.EffectiveCost for i in items] == [Decimal(0), Decimal("0.1"), Decimal("0.25")]


# -- accelerators -----------------------------------------------------------------------------

def test_gpu_classification_from_machine_spec_and_from_sku(tmp_path: Path) -> None:
    spec = "compute.googleapis.com/machine_spec"
    rows = [
        record(system_labels=[{"key": spec, "value": "a2-highgpu-1g"}],
               sku={"id": "1", "description": "A2 Instance Core running in Americas"}),
        record(system_labels=[{"key": "compute.googleapis.com/cores", "value": "8"}, {"key": spec, "value": "n2-standard-8"}],
               sku={"id": "2", "description": "N2 Instance Core running in Americas"}),
        record(system_labels=[{"key": spec, "value": "n1-standard-8"}],
               sku={"id": "3", "description": "Nvidia Tesla T4 GPU running in Americas"}),
        record(sku={"id": "4", "description": "Nvidia L4 GPU attached to Spot Preemptible VMs running in Americas"}),
        record(sku={"id": "5", "description": "Network Internet Egress from Americas to Americas"}),
    ]
    items, _ = read(write_jsonl(tmp_path / "g.jsonl", rows))
    got = [(i.x_InstanceType, i.x_AcceleratorClass, i.x_AcceleratorFamily) for i in items]
    assert got == [
        ("a2-highgpu-1g", "gpu", "nvidia-a100"),
        ("n2-standard-8", None, None),
        ("n1-standard-8", "gpu", "nvidia-t4"),  # the GPU billed on its own line
        (None, "gpu", "nvidia-l4"),
        (None, None, None),
    ]
    assert items[3].PricingCategory == "Dynamic"


def test_sample_gpu_lines() -> None:
    items, _ = read(JSONL)
    gpu_sku = [i for i in items if i.x_UsageType and "GPU" in i.x_UsageType]
    assert {i.x_AcceleratorFamily for i in gpu_sku} == {"nvidia-a100", "nvidia-l4", "nvidia-t4"}
    families = {(i.x_InstanceType, i.x_AcceleratorFamily) for i in items if i.x_InstanceType}
    assert families == {("a2-highgpu-1g", "nvidia-a100"), ("g2-standard-8", "nvidia-l4"), ("n2-standard-4", None),
                        # an N1 machine with a T4 attached: only the GPU's own line is GPU spend
                        ("n1-standard-8", None), ("n1-standard-8", "nvidia-t4")}


# -- billing period ---------------------------------------------------------------------------

def test_billing_period_is_the_invoice_month_not_the_usage_month() -> None:
    items, _ = read(JSONL)
    late = [i for i in items if i.ChargePeriodStart and i.ChargePeriodStart.month == 8]
    assert late, "the sample has a late August hour"
    assert {(i.BillingPeriodStart, i.BillingPeriodEnd) for i in items} == {
        (datetime(2024, 9, 1, tzinfo=UTC), datetime(2024, 10, 1, tzinfo=UTC))}


def test_december_invoice_ends_next_year_and_rfc3339_times(tmp_path: Path) -> None:
    rec = record(invoice={"month": "202412"}, usage_start_time="2024-12-31T23:00:00Z",
                 usage_end_time="2025-01-01T00:00:00+00:00")
    [item], _ = read(write_jsonl(tmp_path / "dec.jsonl", [rec]))
    assert item.BillingPeriodEnd == datetime(2025, 1, 1, tzinfo=UTC)
    assert item.ChargePeriodStart == datetime(2024, 12, 31, 23, tzinfo=UTC)
    assert item.ChargePeriodEnd == datetime(2025, 1, 1, tzinfo=UTC)


def test_without_invoice_month_the_usage_month_is_used(tmp_path: Path) -> None:
    rows = [flat_row()]
    columns = [c for c in FLAT_COLUMNS if c != "invoice.month"]
    [item], normalizer = read(write_csv(tmp_path / "noinv.csv", rows, columns))
    assert item.BillingPeriodStart == datetime(2024, 9, 1, tzinfo=UTC)
    assert any("invoice.month" in w for w in normalizer.stats.warnings)


# -- bad input --------------------------------------------------------------------------------

def test_bad_label_text_names_row_and_field_and_keeps_the_rest(tmp_path: Path) -> None:
    rows = [flat_row(), flat_row(labels="[{'key': 'team', 'value': 'x'"), flat_row(),
            flat_row(**{"project.labels": "not labels at all"}), flat_row(credits="[{'amount': 'abc'}]"), flat_row()]
    items, normalizer = read(write_csv(tmp_path / "bad.csv", rows))
    errors = {(e.row, e.field) for e in normalizer.stats.errors}
    assert errors == {(2, "labels"), (4, "project.labels"), (5, "credits")}
    assert all(e.file == "bad.csv" for e in normalizer.stats.errors)
    assert [i.x_SourceRow for i in items] == [1, 3, 6]
    assert normalizer.stats.rows_skipped == 3


def test_bad_json_records_name_row_and_field_and_keep_the_rest(tmp_path: Path) -> None:
    lines: list[dict[str, Any] | str] = [
        record(cost=1),
        record(cost=2, labels="team=ml"),  # labels not a list
        record(cost=3),
        '{"billing_account_id": "x", "cost": 4, ',  # truncated line
        record(cost=5, labels=[{"key": "team", "value": 7}]),  # label value not a string
        record(cost=6, cost_type=None),
        record(cost=1e-45),  # more digits than the reader keeps
    ]
    items, normalizer = read(write_jsonl(tmp_path / "bad.jsonl", lines))
    assert [i.x_SourceRow for i in items] == [1, 3, 6]
    assert [i.BilledCost for i in items] == [Decimal(1), Decimal(3), Decimal(6)]
    by_row = {e.row: e for e in normalizer.stats.errors}
    assert set(by_row) == {2, 4, 5, 7}
    assert by_row[2].field == "labels"
    assert by_row[5].field == "labels.value"
    assert by_row[7].field == "cost"
    assert normalizer.stats.rows_read == len(lines)


def test_bad_json_line_after_several_blocks_resumes_where_the_fast_path_stopped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from burnguard.normalize import source

    monkeypatch.setattr(source, "JSON_BLOCK_SIZE", 4096)  # about 5 records per block
    lines: list[dict[str, Any] | str] = [record(cost=i) for i in range(1, 61)]
    lines[44] = "{not json"
    lines.insert(10, "")  # a blank line is not a record
    path = write_jsonl(tmp_path / "blocks.jsonl", lines)
    gz = tmp_path / "blocks.jsonl.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    for target in (path, gz):
        items, normalizer = read(target, chunk_rows=8)
        assert [e.row for e in normalizer.stats.errors] == [45]
        assert [i.x_SourceRow for i in items] == [r for r in range(1, 61) if r != 45]
        assert [i.BilledCost for i in items] == [Decimal(r) for r in range(1, 61) if r != 45]
        assert normalizer.stats.rows_read == 60


def test_bad_values_in_json_fields(tmp_path: Path) -> None:
    lines = [record(), record(usage_start_time="2024-13-40 99:00:00 UTC"), record(invoice={"month": "2024-13"}),
             record(cost=None), record(currency=None), record(cost="1" + "0" * 20)]
    items, normalizer = read(write_jsonl(tmp_path / "vals.jsonl", lines))
    assert [i.x_SourceRow for i in items] == [1]
    fields = {(e.row, e.field) for e in normalizer.stats.errors}
    assert fields == {(2, "usage_start_time"), (3, "invoice.month"), (4, "cost"), (5, "currency"), (6, "cost")}


def test_strict_mode_stops_at_the_first_bad_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "strict.csv", [flat_row(), flat_row(labels="[oops")])
    with pytest.raises(InputError) as info:
        read(path, strict=True)
    assert info.value.row == 2
    assert info.value.field == "labels"


def test_missing_currency_column(tmp_path: Path) -> None:
    columns = [c for c in FLAT_COLUMNS if c != "currency"]
    path = write_csv(tmp_path / "nocur.csv", [flat_row(), flat_row()], columns)
    with pytest.raises(MissingColumnError) as info:
        Normalizer.from_path(path)
    assert info.value.field == "currency"
    items, _ = read(path, default_currency="EUR")
    assert [i.BillingCurrency for i in items] == ["EUR", "EUR"]
    no_currency = {k: v for k, v in record().items() if k != "currency"}
    with pytest.raises(MissingColumnError):
        Normalizer.from_path(write_jsonl(tmp_path / "nocur.jsonl", [no_currency]))


# -- containers -------------------------------------------------------------------------------

def test_gzip_jsonl_equals_plain_jsonl(tmp_path: Path) -> None:
    plain = Normalizer.from_path(JSONL).read_all()
    committed_gz = Normalizer.from_path(SAMPLES / "billing-export-202409.jsonl.gz").read_all()
    assert gzip.decompress((SAMPLES / "billing-export-202409.jsonl.gz").read_bytes()) == JSONL.read_bytes()
    fresh = tmp_path / "again.jsonl.gz"
    fresh.write_bytes(gzip.compress(JSONL.read_bytes()))
    again = Normalizer.from_path(fresh).read_all()
    for other in (committed_gz, again):
        assert other.drop_columns(["x_SourceFile"]).equals(plain.drop_columns(["x_SourceFile"]))


def test_small_chunks_keep_row_numbers_and_totals() -> None:
    whole = Normalizer.from_path(JSONL).read_all()
    chunked = pa.concat_tables(list(Normalizer.from_path(JSONL, chunk_rows=7).batches()))
    assert chunked.equals(whole)


def test_flattened_parquet_with_label_text_reads_like_the_csv(tmp_path: Path) -> None:
    # koku's flattened frame written to Parquet (every column a string, arrays as text).
    source = fixture(KOKU)
    table = pacsv.read_csv(source, convert_options=pacsv.ConvertOptions(
        column_types=dict.fromkeys(read_rows(source)[0], pa.string()), strings_can_be_null=True))
    target = tmp_path / "koku.parquet"
    pq.write_table(table, target)
    from_csv = Normalizer.from_path(source).read_all().drop_columns(["x_SourceFile"])
    from_parquet = Normalizer.from_path(target).read_all().drop_columns(["x_SourceFile"])
    assert from_parquet.num_rows == from_csv.num_rows == table.num_rows
    assert from_parquet.equals(from_csv)
