"""Golden totals of every FOCUS fixture: the normalizer against an independent reading.

The expected side reads the raw CSV with the csv module and ``Decimal`` (and, for the
multi-provider sample, a second time with DuckDB), applying the FOCUS rules written here: the
currency is ``BillingCurrency`` (or the caller's default when the file has no such column),
``EffectiveCost`` falls back to ``BilledCost`` when empty, and a row whose timestamp is not a
valid date is an error (file, row, field) and is left out of the totals.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from burnguard.normalize import Normalizer
from tests.helpers import cents, dec, fixture, normalized_totals, totals_by_currency

NULLS = ("", "NULL", "null")
TIMESTAMP_COLUMNS = ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")

#: (fixture, default currency the caller gives: the spec examples without BillingCurrency)
FOCUS_FILES = [
    ("focus-sample-data/focus_sample.subset.csv", None),
    ("focus-spec/commitment_discount_purchase_scenario_2.csv", "USD"),
    ("focus-spec/commitment_discount_usage_scenario_3.csv", "USD"),
    ("focus-spec/one_hundred_percent_utilization_with_commitment_discount_flexibility_with_2_resources.csv", "USD"),
    ("focus-spec/saas_spend_agreements_a2.csv", None),
]


def data_records(path: Path) -> list[dict[str, str]]:
    """The data records of a CSV, numbered from 1 as a person counts them (blank lines, which
    some spec examples have between records, are not records)."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return [dict(zip(header, row, strict=True)) for row in reader if row]


def valid_timestamp(text: str) -> bool:
    """Independent check of the timestamp spellings FOCUS files use."""
    text = text.strip()
    if text in NULLS:
        return True
    for fmt in ("%m/%d/%y", "%m/%d/%Y"):
        try:
            datetime.strptime(text, fmt)
            return True
        except ValueError:
            pass
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
        return True
    except ValueError:
        return False


def expected(path: Path, default_currency: str | None) -> tuple[dict[str, tuple[Decimal, Decimal]], set[tuple[int, str]]]:
    """Per-currency (BilledCost, EffectiveCost) to the cent, and the (row, field) of bad rows."""
    items: list[tuple[str, Decimal, Decimal]] = []
    bad: set[tuple[int, str]] = set()
    for number, row in enumerate(data_records(path), start=1):
        invalid = [c for c in TIMESTAMP_COLUMNS if c in row and not valid_timestamp(row[c])]
        if invalid:
            bad.update((number, c) for c in invalid)
            continue
        currency = row.get("BillingCurrency") or default_currency
        assert currency and currency not in NULLS
        billed = dec(row["BilledCost"])
        raw_effective = row.get("EffectiveCost", "").strip()
        effective = billed if raw_effective in NULLS else Decimal(raw_effective)
        items.append((currency, billed, effective))
    return totals_by_currency(items), bad


@pytest.mark.parametrize(("relative", "default_currency"), FOCUS_FILES)
def test_focus_totals_match_independent_computation(relative: str, default_currency: str | None) -> None:
    path = fixture(relative)
    want, bad = expected(path, default_currency)
    got, stats = normalized_totals(path, default_currency=default_currency)
    assert stats.format == "focus"
    assert stats.variant.startswith("focus-1.")
    assert got == want
    assert {(e.row, e.field) for e in stats.errors} == bad
    assert stats.error_count == len({row for row, _ in bad})
    assert stats.rows_normalized == len(data_records(path)) - stats.error_count
    assert all(e.file == path.name for e in stats.errors)


def test_hour_30_row_is_reported_and_skipped_not_the_file() -> None:
    path = fixture("focus-spec/commitment_discount_purchase_scenario_2.csv")
    normalizer = Normalizer.from_path(path, default_currency="USD")
    table = normalizer.read_all()
    stats = normalizer.stats
    assert stats.rows_read == 3
    assert stats.rows_normalized == 2
    assert stats.error_count == 1
    [err] = stats.errors
    assert (err.file, err.row, err.field) == (path.name, 3, "ChargePeriodEnd")
    assert "2023-02-01T30:00:00Z" in err.reason
    assert "row 3" in str(err) and "ChargePeriodEnd" in str(err)
    # The two good rows are there, with their source row numbers.
    assert table.column("x_SourceRow").to_pylist() == [1, 2]
    assert sum(table.column("BilledCost").to_pylist()) == Decimal("2.00")


def test_sample_totals_match_duckdb() -> None:
    """A second independent reading of the multi-provider sample: DuckDB's own CSV reader."""
    duckdb = pytest.importorskip("duckdb")
    path = fixture("focus-sample-data/focus_sample.subset.csv")
    rows = duckdb.sql(
        f"""
        SELECT BillingCurrency,
               sum(CAST(BilledCost AS DECIMAL(38, 18))) AS billed,
               sum(CAST(coalesce(EffectiveCost, BilledCost) AS DECIMAL(38, 18))) AS effective,
               count(*) AS n
        FROM read_csv('{path}', header = true, nullstr = ['NULL', ''], all_varchar = true)
        GROUP BY BillingCurrency
        """
    ).fetchall()
    want = {currency: (cents(billed), cents(effective)) for currency, billed, effective, _ in rows}
    got, stats = normalized_totals(path)
    assert got == want
    assert stats.rows_normalized == sum(n for *_, n in rows) == 374


# -- Parquet twin ----------------------------------------------------------------------------

#: A FOCUS 1.2 file as AWS, Azure and Google write it; Tags as a dict (written as a map or as
#: JSON text). None is a null cell.
TWIN_ROWS: list[dict[str, Any]] = [
    {"ProviderName": "AWS", "BilledCost": "12.3456789012", "EffectiveCost": "10.5", "BillingCurrency": "USD",
     "ChargeCategory": "Usage", "ChargeFrequency": "Usage-Based", "x_UsageType": "USE1-BoxUsage:p4d.24xlarge",
     "ChargePeriodStart": datetime(2025, 3, 1, 10, tzinfo=UTC), "Tags": {"user:team": "ml", "aws:createdBy": "x"}},
    {"ProviderName": "AWS", "BilledCost": "-2.61", "EffectiveCost": "-3.00", "BillingCurrency": "USD",
     "ChargeCategory": "Credit", "ChargeFrequency": "One-Time", "x_UsageType": None,
     "ChargePeriodStart": datetime(2025, 3, 1, tzinfo=UTC), "Tags": None},
    {"ProviderName": "Microsoft", "BilledCost": "0.1", "EffectiveCost": "0.2", "BillingCurrency": "EUR",
     "ChargeCategory": "Usage", "ChargeFrequency": "Usage-based", "x_UsageType": None,
     "ChargePeriodStart": datetime(2025, 3, 2, 23, 0, 0, tzinfo=UTC),
     "Tags": {" org": "trey", "org": "", "Env": "Prod", "env": "dev"}},
    {"ProviderName": "Google Cloud", "BilledCost": "7", "EffectiveCost": "7", "BillingCurrency": "EUR",
     "ChargeCategory": "Usage", "ChargeFrequency": "Usage-Based", "x_UsageType": None,
     "ChargePeriodStart": datetime(2025, 3, 3, tzinfo=UTC), "Tags": {"team": "ml-research"}},
]
TWIN_EXTRA = {"BillingAccountType": "Billing Account", "InvoiceId": "INV-1", "PricingCurrency": "USD",
              "SkuMeter": "Compute", "ServiceSubcategory": "Virtual Machines"}


def _write_twins(tmp_path: Path) -> tuple[Path, Path, Path]:  # noqa: C901 - one branch per column type of three writers
    columns = [*TWIN_ROWS[0].keys(), *TWIN_EXTRA.keys()]
    csv_path = tmp_path / "focus12.csv"
    with open(csv_path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in TWIN_ROWS:
            values = {**row, **TWIN_EXTRA}
            out = []
            for c in columns:
                v = values[c]
                if v is None:
                    out.append("NULL")
                elif isinstance(v, datetime):
                    out.append(v.strftime("%Y-%m-%dT%H:%M:%SZ"))
                elif isinstance(v, dict):
                    out.append(json.dumps(v))
                else:
                    out.append(v)
            writer.writerow(out)

    def table(tags_type: pa.DataType) -> pa.Table:
        data: dict[str, pa.Array] = {}
        for c in columns:
            values = [{**r, **TWIN_EXTRA}[c] for r in TWIN_ROWS]
            if c == "BilledCost":
                data[c] = pa.array([Decimal(v) for v in values], pa.decimal128(38, 12))
            elif c == "EffectiveCost":
                data[c] = pa.array([float(v) for v in values], pa.float64())
            elif c == "ChargePeriodStart":
                data[c] = pa.array(values, pa.timestamp("ms", tz="UTC"))
            elif c == "Tags" and pa.types.is_map(tags_type):
                data[c] = pa.array([list(v.items()) if v is not None else None for v in values], tags_type)
            elif c == "Tags":
                data[c] = pa.array([json.dumps(v) if v is not None else None for v in values], pa.string())
            else:
                data[c] = pa.array(values, pa.string())
        return pa.table(data)

    map_path, text_path = tmp_path / "focus12-map.parquet", tmp_path / "focus12-text.parquet"
    pq.write_table(table(pa.map_(pa.string(), pa.string())), map_path)
    pq.write_table(table(pa.string()), text_path)
    return csv_path, map_path, text_path


def test_parquet_twins_give_the_csv_totals(tmp_path: Path) -> None:
    csv_path, map_path, text_path = _write_twins(tmp_path)
    assert pq.read_schema(map_path).field("ChargePeriodStart").type == pa.timestamp("ms", tz="UTC")
    assert pa.types.is_map(pq.read_schema(map_path).field("Tags").type)
    want = totals_by_currency([(r["BillingCurrency"], Decimal(r["BilledCost"]), Decimal(r["EffectiveCost"]))
                               for r in TWIN_ROWS])
    assert set(want) == {"USD", "EUR"}
    outputs = []
    for path in (csv_path, map_path, text_path):
        normalizer = Normalizer.from_path(path)
        out = normalizer.read_all()
        got, stats = normalized_totals(path)
        assert stats.format == "focus" and stats.variant == "focus-1.2", path.name
        assert stats.error_count == 0, stats.errors
        assert got == want, path.name
        outputs.append(out)
    container = {Normalizer.from_path(p).stats.container for p in (map_path, text_path)}
    assert container == {"parquet"}
    first = outputs[0]
    for other in outputs[1:]:
        for column in ("ChargePeriodStart", "BilledCost", "EffectiveCost", "Tags", "x_Cloud", "x_InstanceType",
                       "x_AcceleratorFamily", "ChargeFrequency", "InvoiceId"):
            assert other.column(column).to_pylist() == first.column(column).to_pylist(), column
    tags = [dict(t) if t else {} for t in first.column("Tags").to_pylist()]
    assert tags == [{"team": "ml", "aws:createdBy": "x"}, {}, {"org": "trey", "env": "Prod"}, {"team": "ml-research"}]
    assert first.column("x_Cloud").to_pylist() == ["aws", "aws", "azure", "gcp"]
    assert first.column("x_InstanceType").to_pylist() == ["p4d.24xlarge", None, None, None]
    assert first.column("ChargePeriodStart").to_pylist()[2] == datetime(2025, 3, 2, 23, tzinfo=UTC)
