"""The FOCUS reader, one behaviour at a time: provider tag rules, x_Cloud, version detection,
NULL handling, credits, instance types and accelerators, missing columns, bad rows, strict mode."""

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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from burnguard.core.errors import InputError, MissingColumnError
from burnguard.core.tags import normalize_tags
from burnguard.normalize import Header, Normalizer, detect
from burnguard.normalize.aws import AwsCurFormat
from burnguard.normalize.focus import FocusFormat, azure_vm_size, cloud_of, focus_version
from tests.helpers import fixture, read_rows

SAMPLE = "focus-sample-data/focus_sample.subset.csv"
BASE = ["ProviderName", "BilledCost", "EffectiveCost", "BillingCurrency", "ChargePeriodStart", "ChargeCategory",
        "ChargeFrequency"]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read(path: Path, **kwargs: Any) -> tuple[list[dict[str, Any]], Any]:
    normalizer = Normalizer.from_path(path, **kwargs)
    return normalizer.read_all().to_pylist(), normalizer.stats


def sample() -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    _, raw = read_rows(fixture(SAMPLE))
    out, stats = read(fixture(SAMPLE))
    assert stats.error_count == 0
    assert [r["x_SourceRow"] for r in out] == list(range(1, len(raw) + 1))
    return raw, out


# -- tags --------------------------------------------------------------------------------------

def test_sample_microsoft_tags_follow_the_azure_rule() -> None:
    raw, out = sample()
    seen_space_org = 0
    for r, item in zip(raw, out, strict=True):
        if r["ProviderName"] != "Microsoft" or r["Tags"] in ("", "NULL"):
            continue
        source = json.loads(r["Tags"])
        tags = dict(item["Tags"])
        # Keys stripped and lower-cased: " org" and "org" are one key.
        assert set(tags) == {k.strip().lower() for k in source}
        assert all(k == k.strip().lower() for k in tags)
        if " org" in source:
            seen_space_org += 1
            assert tags["org"] == "trey"
        if "CostCenter" in source:
            assert tags["costcenter"] == source["CostCenter"]
    assert seen_space_org > 0


def test_sample_aws_and_oracle_tags_keep_their_keys() -> None:
    raw, out = sample()
    checked = set()
    for r, item in zip(raw, out, strict=True):
        if r["ProviderName"] == "Microsoft":
            continue
        want = json.loads(r["Tags"]) if r["Tags"] not in ("", "NULL") else {}
        assert dict(item["Tags"] or []) == want
        checked.add(r["ProviderName"])
    assert checked == {"AWS", "Oracle"}


def test_provider_tag_rules(tmp_path: Path) -> None:
    rows = [
        ["AWS", "1", "1", "USD", "2025-01-01T00:00:00Z", json.dumps({"user:Team": "ml", "aws:createdBy": "me",
                                                                     "Team": "x"})],
        ["Microsoft", "1", "1", "USD", "2025-01-01T00:00:00Z", json.dumps({" org": "", "Org": "trey", "ENV": "Prod"})],
        ["Google", "1", "1", "USD", "2025-01-01T00:00:00Z", json.dumps({"team": "ml", " cost-center ": " 42 "})],
        ["Acme Co", "1", "1", "USD", "2025-01-01T00:00:00Z", json.dumps({"Team": "ml", "valueless": True, "n": 3})],
        ["AWS", "1", "1", "USD", "2025-01-01T00:00:00Z", "NULL"],
        ["AWS", "1", "1", "USD", "2025-01-01T00:00:00Z", "{}"],
    ]
    path = write_csv(tmp_path / "f.csv", [*BASE[:5], "Tags"], rows)
    out, stats = read(path)
    assert stats.error_count == 0
    assert [dict(r["Tags"]) for r in out] == [
        {"Team": "ml", "aws:createdBy": "me"},  # user:Team and Team are one key: the first value wins
        {"org": "trey", "env": "Prod"},  # an empty first value gives way to a later one
        {"team": "ml", "cost-center": "42"},
        {"Team": "ml", "valueless": "true", "n": "3"},
        {},
        {},
    ]


def test_tags_that_are_not_json_are_a_row_error(tmp_path: Path) -> None:
    rows = [
        ["AWS", "1.5", "1.5", "USD", "2025-01-01T00:00:00Z", '{"team": "ml"}'],
        ["AWS", "2.5", "2.5", "USD", "2025-01-01T00:00:00Z", "team=ml"],
        ["AWS", "4", "4", "USD", "2025-01-01T00:00:00Z", '["team"]'],
        ["AWS", "8", "8", "USD", "2025-01-01T00:00:00Z", '{"team": "ml"}'],
    ]
    path = write_csv(tmp_path / "tags.csv", [*BASE[:5], "Tags"], rows)
    out, stats = read(path)
    assert [(e.row, e.field) for e in stats.errors] == [(2, "Tags"), (3, "Tags")]
    assert "team=ml" in stats.errors[0].reason
    assert "\x1f" not in str(stats.errors[0])
    assert [r["x_SourceRow"] for r in out] == [1, 4]
    assert sum(r["BilledCost"] for r in out) == Decimal("9.5")


pairs = st.lists(st.tuples(st.sampled_from(["org", " org", "Org", "user:team", "team", "env", " ", "k"]),
                           st.sampled_from(["", " ", "trey", "Prod", " x "])), max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.sampled_from(["AWS", "Microsoft", "Google", "Oracle", None]),
                               st.one_of(st.none(), pairs)), min_size=1, max_size=8))
def test_parquet_map_tags_follow_the_rule(tmp_path: Path, rows: list[tuple[str | None, Any]]) -> None:
    """The columnar map path agrees with the tag rule applied pair by pair."""
    table = pa.table({
        "ProviderName": pa.array([p for p, _ in rows], pa.string()),
        "BilledCost": pa.array([Decimal(1)] * len(rows), pa.decimal128(10, 2)),
        "BillingCurrency": pa.array(["USD"] * len(rows)),
        "ChargePeriodStart": pa.array([datetime(2025, 1, 1, tzinfo=UTC)] * len(rows), pa.timestamp("ms", tz="UTC")),
        "Tags": pa.array([t for _, t in rows], pa.map_(pa.string(), pa.string())),
    })
    path = tmp_path / "tags.parquet"
    pq.write_table(table, path)
    out, stats = read(path)
    assert stats.error_count == 0
    for (provider, tags), item in zip(rows, out, strict=True):
        want = normalize_tags(cloud_of(provider), tags or [])
        assert list(item["Tags"] or []) == list(want.items())


# -- x_Cloud, ProviderName, version ------------------------------------------------------------

@pytest.mark.parametrize(("provider", "cloud"), [
    ("AWS", "aws"), ("Amazon Web Services", "aws"), ("aws", "aws"), ("Microsoft", "azure"),
    ("Microsoft Azure", "azure"), ("Azure", "azure"), ("Google Cloud", "gcp"), ("Google", "gcp"),
    ("Oracle", "other"), ("Acme Co", "other"), ("Lawson", "other"), (None, "other"), ("", "other"),
])
def test_cloud_of(provider: str | None, cloud: str) -> None:
    assert cloud_of(provider) == cloud


def test_sample_x_cloud_per_provider() -> None:
    raw, out = sample()
    want = {"AWS": "aws", "Microsoft": "azure", "Oracle": "other"}
    assert [r["x_Cloud"] for r in out] == [want[r["ProviderName"]] for r in raw]
    assert [r["ProviderName"] for r in out] == [r["ProviderName"] for r in raw]


def test_focus_1_3_service_provider_name(tmp_path: Path) -> None:
    header = ["ServiceProviderName", "HostProviderName", "BilledCost", "BillingCurrency", "ChargePeriodStart"]
    path = write_csv(tmp_path / "f13.csv", header, [["Microsoft", "Microsoft", "3", "USD", "2025-01-01"],
                                                     ["Snowflake", "AWS", "4", "USD", "2025-01-01"]])
    out, stats = read(path)
    assert stats.variant == "focus-1.3"
    assert [(r["ProviderName"], r["x_Cloud"]) for r in out] == [("Microsoft", "azure"), ("Snowflake", "other")]
    assert [r["EffectiveCost"] for r in out] == [Decimal(3), Decimal(4)]


def azure_header(name: str) -> Header:
    meta = json.loads(fixture(f"finops-toolkit/{name}").read_text(encoding="utf-8-sig"))
    return Header([c["ColumnName"] for c in meta["Columns"]])


@pytest.mark.parametrize(("columns", "version"), [
    (BASE, "1.0"),
    ([*BASE, "BillingAccountType", "SubAccountType"], "1.0"),  # Microsoft's FocusCost 1.0 has these
    ([*BASE, "SkuMeter"], "1.1"),
    ([*BASE, "CommitmentDiscountQuantity", "CommitmentDiscountUnit"], "1.1"),
    ([*BASE, "BillingAccountType", "CapacityReservationId"], "1.2"),
    ([*BASE, "InvoiceId"], "1.2"),
    ([*BASE, "PricingCurrencyEffectiveCost"], "1.2"),
    ([*BASE, "SkuMeter", "InvoiceId", "HostProviderName"], "1.3"),
])
def test_version_from_columns(columns: list[str], version: str) -> None:
    assert focus_version(Header(columns)) == version


@pytest.mark.parametrize(("relative", "variant"), [
    (SAMPLE, "focus-1.0"),
    ("focus-spec/commitment_discount_purchase_scenario_2.csv", "focus-1.1"),
    ("focus-spec/commitment_discount_usage_scenario_3.csv", "focus-1.1"),
    ("focus-spec/saas_spend_agreements_a2.csv", "focus-1.1"),
])
def test_version_of_fixtures(relative: str, variant: str) -> None:
    assert Normalizer.from_path(fixture(relative), default_currency="USD").stats.variant == variant


@pytest.mark.parametrize(("name", "version"), [("FocusCost_1.0.json", "1.0"), ("FocusCost_1.2-preview.json", "1.2")])
def test_azure_focus_exports_are_focus_and_their_version(name: str, version: str) -> None:
    header = azure_header(name)
    assert header.get("x_ResourceGroupName") and header.get("x_SkuDetails")
    assert detect(header).name == "focus"
    assert focus_version(header) == version
    assert FocusFormat().score(header) > 100


def test_aws_focus_export_is_focus_not_cur() -> None:
    header = Header([*BASE, "x_CostCategories", "x_Discounts", "x_Operation", "x_ServiceCode", "x_UsageType",
                     "BillingPeriodStart", "SubAccountId"])
    assert detect(header).name == "focus"
    assert FocusFormat().score(header) > AwsCurFormat().score(header)


@pytest.mark.parametrize("relative", [
    "focus-converters/aws-cur-sample-anonymous-export-dataset.truncated.csv",
    "focus-converters/azure-ea-sample-anonymous-export-dataset.csv",
    "finops-toolkit/EA_ActualCost_Small.csv",
    "finops-toolkit/EA_AmortizedCost_Small.csv",
    "koku/aws/test_cur.csv",
    "koku/azure/azure_version_2.csv",
    "koku/azure/camel_azure_version_2.csv",
])
def test_legacy_exports_are_not_focus(relative: str) -> None:
    header, _ = read_rows(fixture(relative))
    assert FocusFormat().score(Header(header)) == 0


def test_legacy_gcp_exports_are_not_focus() -> None:
    files = sorted(fixture("koku/gcp").glob("*.csv"))
    assert files
    for path in files:
        header, _ = read_rows(path)
        assert FocusFormat().score(Header(header)) == 0, path.name


# -- values ------------------------------------------------------------------------------------

def test_null_handling_in_the_sample() -> None:
    raw, out = sample()
    for r, item in zip(raw, out, strict=True):
        for column in ("ChargeClass", "CommitmentDiscountId", "ResourceName", "ResourceType", "RegionId",
                       "AvailabilityZone", "PricingCategory", "ConsumedUnit"):
            if r[column] in ("", "NULL"):
                assert item[column] is None, (r, column)
            else:
                assert item[column] is not None, (r, column)
        if r["ConsumedQuantity"] == "NULL":
            assert item["ConsumedQuantity"] is None
        else:
            assert item["ConsumedQuantity"] == Decimal(r["ConsumedQuantity"])
    assert any(r["ChargeClass"] == "NULL" for r in raw)


def test_lower_case_null_in_spec_example() -> None:
    path = fixture("focus-spec/commitment_discount_usage_scenario_3.csv")
    out, _ = read(path, default_currency="USD")
    assert [r["ConsumedQuantity"] for r in out] == [Decimal("1.00"), None]
    assert [r["ConsumedUnit"] for r in out] == ["Hour", None]


def test_sample_spellings_are_the_spec_spellings() -> None:
    raw, out = sample()
    assert {r["ChargeFrequency"] for r in raw} == {"Usage-Based", "Usage-based", "One-Time"}
    assert {r["ChargeFrequency"] for r in out} == {"Usage-Based", "One-Time"}
    for r, item in zip(raw, out, strict=True):
        assert item["ChargeFrequency"].casefold() == r["ChargeFrequency"].casefold()
        assert item["ChargeCategory"] == r["ChargeCategory"]


def test_spellings_compared_ignoring_case(tmp_path: Path) -> None:
    rows = [
        ["AWS", "1", "1", "USD", "2025-01-01", "usage", "usage-based", "standard", "correction"],
        ["AWS", "1", "1", "USD", "2025-01-01", "CREDIT", "one-time", "committed", "NULL"],
        ["AWS", "1", "1", "USD", "2025-01-01", "Purchase", "Recurring", "Dynamic", ""],
        ["AWS", "1", "1", "USD", "2025-01-01", "Refund", "UsageBased", "other", ""],
    ]
    path = write_csv(tmp_path / "s.csv", [*BASE, "PricingCategory", "ChargeClass"], rows)
    out, stats = read(path)
    got = [(r["ChargeCategory"], r["ChargeFrequency"], r["PricingCategory"], r["ChargeClass"]) for r in out]
    assert got == [
        ("Usage", "Usage-Based", "Standard", "Correction"),
        ("Credit", "One-Time", "Committed", None),
        ("Purchase", "Recurring", "Dynamic", None),
        ("Refund", "Usage-Based", "Other", None),
    ]
    assert any("'Refund'" in w and "ChargeCategory" in w for w in stats.warnings)


def test_credit_row_keeps_billed_and_effective_cost() -> None:
    raw, out = sample()
    credits = [(r, item) for r, item in zip(raw, out, strict=True) if r["ChargeCategory"] == "Credit"]
    assert len(credits) == 1
    r, item = credits[0]
    assert item["ChargeCategory"] == "Credit"
    assert item["BilledCost"] == Decimal(r["BilledCost"]) < 0
    assert item["EffectiveCost"] == Decimal(r["EffectiveCost"]) < item["BilledCost"]
    assert item["x_Cloud"] == "aws"


def test_timestamps_are_utc(tmp_path: Path) -> None:
    _, out = sample()
    assert out[0]["ChargePeriodStart"].utcoffset().total_seconds() == 0
    saas, _ = read(fixture("focus-spec/saas_spend_agreements_a2.csv"))
    assert saas[0]["ChargePeriodStart"] == datetime(2025, 4, 1, tzinfo=UTC)
    assert saas[0]["BillingPeriodEnd"] == datetime(2025, 5, 1, tzinfo=UTC)
    assert saas[-1]["ChargePeriodEnd"] == datetime(2026, 4, 1, tzinfo=UTC)


# -- instance types and accelerators -----------------------------------------------------------

def test_instance_type_and_accelerator_from_aws_usage_type(tmp_path: Path) -> None:
    rows = [
        ["AWS", "32.77", "32.77", "USD", "2025-01-01", "Usage", "Usage-Based", "USE1-BoxUsage:p4d.24xlarge", "x"],
        ["AWS", "1.2", "1.2", "USD", "2025-01-01", "Usage", "Usage-Based", "SpotUsage:g5.xlarge", "x"],
        ["AWS", "0.1", "0.1", "USD", "2025-01-01", "Usage", "Usage-Based", "BoxUsage:m5.large", "x"],
        ["AWS", "3", "3", "USD", "2025-01-01", "Usage", "Usage-Based", "EUC1-BoxUsage:trn1.32xlarge", "x"],
        ["AWS", "0.01", "0.01", "USD", "2025-01-01", "Usage", "Usage-Based", "DataTransfer-Out-Bytes", "x"],
        ["AWS", "0.01", "0.01", "USD", "2025-01-01", "Usage", "Usage-Based", "NULL", "x"],
    ]
    path = write_csv(tmp_path / "aws-focus.csv", [*BASE, "x_UsageType", "x_ServiceCode"], rows)
    out, stats = read(path)
    assert stats.error_count == 0
    got = [(r["x_InstanceType"], r["x_AcceleratorClass"], r["x_AcceleratorFamily"], r["x_UsageType"]) for r in out]
    assert got == [
        ("p4d.24xlarge", "gpu", "nvidia-a100", "USE1-BoxUsage:p4d.24xlarge"),
        ("g5.xlarge", "gpu", "nvidia-a10g", "SpotUsage:g5.xlarge"),
        ("m5.large", None, None, "BoxUsage:m5.large"),
        ("trn1.32xlarge", "ai-accelerator", "aws-trainium", "EUC1-BoxUsage:trn1.32xlarge"),
        (None, None, None, "DataTransfer-Out-Bytes"),
        (None, None, None, None),
    ]


def test_azure_vm_size_and_sku_accelerators(tmp_path: Path) -> None:
    header = [*BASE, "x_SkuDetails", "x_SkuMeterName", "x_SkuMeterCategory", "ChargeDescription", "SkuMeter"]
    rows = [
        ["Microsoft", "5", "5", "USD", "2025-01-01", "Usage", "Usage-Based",
         json.dumps({"VMSize": "Standard_ND96asr_v4"}), "", "Virtual Machines", "", ""],
        ["Microsoft", "5", "5", "USD", "2025-01-01", "Usage", "Usage-Based",
         json.dumps({"UsageType": "ComputeHR", "ServiceType": "Standard_NC6s_v3", "VCPUs": 6}), "", "", "", ""],
        ["Microsoft", "5", "5", "USD", "2025-01-01", "Usage", "Usage-Based",
         json.dumps({"ServiceType": "SQLThreatDetection"}), "", "", "", ""],
        ["Microsoft", "5", "5", "USD", "2025-01-01", "Usage", "Usage-Based",
         "", "NC24ads A100 v4 Spot", "Virtual Machines", "", ""],
        ["Microsoft", "5", "5", "USD", "2025-01-01", "Usage", "Usage-Based",
         "", "D2 v3/D2s v3", "Virtual Machines", "", ""],
        ["Microsoft", "5", "5", "USD", "2025-01-01", "Usage", "Usage-Based",
         "{not json", "D4s v5", "Virtual Machines", "", ""],
        ["Google", "5", "5", "USD", "2025-01-01", "Usage", "Usage-Based",
         "", "", "", "Nvidia Tesla T4 GPU running in Americas", ""],
        ["Acme", "5", "5", "USD", "2025-01-01", "Usage", "Usage-Based",
         "", "", "", "", "Nvidia L4 GPU attached to Spot Preemptible VMs"],
    ]
    path = write_csv(tmp_path / "azure-focus.csv", header, rows)
    out, stats = read(path)
    assert stats.error_count == 0  # a bad x_SkuDetails costs its instance type, not the row
    got = [(r["x_InstanceType"], r["x_AcceleratorClass"], r["x_AcceleratorFamily"]) for r in out]
    assert got == [
        ("Standard_ND96asr_v4", "gpu", "nvidia-a100"),
        ("Standard_NC6s_v3", "gpu", "nvidia-v100"),
        (None, None, None),
        ("Standard_NC24ads_A100_v4", "gpu", "nvidia-a100"),
        (None, None, None),
        ("Standard_D4s_v5", None, None),
        (None, "gpu", "nvidia-t4"),
        (None, "gpu", "nvidia-l4"),
    ]


def test_azure_vm_size_rules() -> None:
    assert azure_vm_size('{"VMSize": " Standard_NC6 "}', None, None) == "Standard_NC6"
    assert azure_vm_size(None, "NC6s v3", "virtual machines") == "Standard_NC6s_v3"
    assert azure_vm_size(None, "NC6s v3", "Storage") is None
    assert azure_vm_size(None, "NC6s v3 Low Priority", "Virtual Machines") == "Standard_NC6s_v3"


# -- required columns, bad rows, strict mode ---------------------------------------------------

def test_missing_currency_column_is_an_error_unless_a_default_is_given() -> None:
    path = fixture("focus-spec/commitment_discount_usage_scenario_3.csv")
    with pytest.raises(MissingColumnError) as info:
        Normalizer.from_path(path)
    assert info.value.field == "BillingCurrency"
    assert info.value.file == path.name
    assert path.name in str(info.value)
    out, stats = read(path, default_currency="EUR")
    assert {r["BillingCurrency"] for r in out} == {"EUR"}
    assert stats.error_count == 0


def test_empty_currency_cell_uses_default_or_is_a_row_error(tmp_path: Path) -> None:
    rows = [["AWS", "1", "1", "USD", "2025-01-01"], ["AWS", "2", "2", "NULL", "2025-01-01"]]
    path = write_csv(tmp_path / "c.csv", BASE[:5], rows)
    out, stats = read(path)
    assert [(e.row, e.field) for e in stats.errors] == [(2, "BillingCurrency")]
    assert [r["BilledCost"] for r in out] == [Decimal(1)]
    out, stats = read(path, default_currency="GBP")
    assert [r["BillingCurrency"] for r in out] == ["USD", "GBP"]


def test_missing_billed_cost_or_charge_period_start_is_not_focus() -> None:
    assert FocusFormat().score(Header(["ProviderName", "EffectiveCost", "ChargePeriodStart"])) == 0
    assert FocusFormat().score(Header(["ProviderName", "BilledCost", "BillingPeriodStart"])) == 0
    assert FocusFormat().score(Header(["BilledCost", "ChargePeriodStart"])) == 0
    assert FocusFormat().score(Header(["BilledCost", "ChargePeriodStart", "ChargeCategory"])) > 0


def test_missing_effective_cost_falls_back_to_billed_and_warns_once(tmp_path: Path) -> None:
    rows = [["AWS", str(i), "USD", f"2025-01-0{1 + i % 9}"] for i in range(1, 12)]
    path = write_csv(tmp_path / "min.csv", ["ProviderName", "BilledCost", "BillingCurrency", "ChargePeriodStart"],
                     rows)
    out, stats = read(path, chunk_rows=4)
    assert [r["EffectiveCost"] for r in out] == [r["BilledCost"] for r in out] == [Decimal(i) for i in range(1, 12)]
    assert len([w for w in stats.warnings if "EffectiveCost" in w]) == 1
    assert stats.variant == "focus-1.0"


def test_empty_effective_cell_falls_back_to_billed(tmp_path: Path) -> None:
    rows = [["AWS", "2", "1.5", "USD", "2025-01-01"], ["AWS", "3", "NULL", "USD", "2025-01-01"]]
    path = write_csv(tmp_path / "e.csv", BASE[:5], rows)
    out, stats = read(path)
    assert [r["EffectiveCost"] for r in out] == [Decimal("1.5"), Decimal(3)]
    assert any("EffectiveCost" in w for w in stats.warnings)
    assert stats.error_count == 0


def bad_rows_file(tmp_path: Path) -> Path:
    rows = [
        ["AWS", "1", "1", "USD", "2025-01-01T00:00:00Z", "{}"],
        ["AWS", "", "1", "USD", "2025-01-01T00:00:00Z", "{}"],  # row 2: BilledCost empty
        ["AWS", "1", "1", "USD", "2025-13-01T00:00:00Z", "{}"],  # row 3: month 13
        ["AWS", "abc", "1", "USD", "2025-01-01T00:00:00Z", "{}"],  # row 4: not a number
        ["AWS", "4", "4", "USD", "NULL", "{}"],  # row 5: ChargePeriodStart empty
        ["AWS", "8", "8", "USD", "2025-01-01T00:00:00Z", "{oops"],  # row 6: Tags not JSON
        ["AWS", "16", "16", "USD", "2025-01-01T00:00:00Z", "{}"],
    ]
    return write_csv(tmp_path / "bad.csv", [*BASE[:5], "Tags"], rows)


def test_bad_rows_are_reported_and_the_rest_goes_on(tmp_path: Path) -> None:
    path = bad_rows_file(tmp_path)
    out, stats = read(path)
    assert sorted((e.row, e.field) for e in stats.errors) == [
        (2, "BilledCost"), (3, "ChargePeriodStart"), (4, "BilledCost"), (5, "ChargePeriodStart"), (6, "Tags")]
    assert all(e.file == "bad.csv" for e in stats.errors)
    assert [r["x_SourceRow"] for r in out] == [1, 7]
    assert sum(r["BilledCost"] for r in out) == Decimal(17)
    assert stats.rows_read == 7 and stats.rows_normalized == 2


def test_strict_mode_raises_at_the_first_bad_row(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        Normalizer.from_path(bad_rows_file(tmp_path), strict=True).read_all()
    assert (info.value.row, info.value.field) == (2, "BilledCost")
    hour30 = fixture("focus-spec/commitment_discount_purchase_scenario_2.csv")
    with pytest.raises(InputError) as info:
        Normalizer.from_path(hour30, strict=True, default_currency="USD").read_all()
    assert (info.value.file, info.value.row, info.value.field) == (hour30.name, 3, "ChargePeriodEnd")


def test_unknown_columns_and_duplicates_do_not_matter(tmp_path: Path) -> None:
    header = ["Id", *BASE, "x_Whatever", "ProviderName"]
    rows = [["7", "AWS", "1.25", "1", "USD", "2025-01-01", "Usage", "Usage-Based", "z", "Other"]]
    out, stats = read(write_csv(tmp_path / "d.csv", header, rows))
    assert stats.error_count == 0
    assert (out[0]["ProviderName"], out[0]["BilledCost"]) == ("AWS", Decimal("1.25"))


def test_service_provider_name_falls_back_to_provider_name_per_row(tmp_path: Path) -> None:
    header = ["ServiceProviderName", "ProviderName", "BilledCost", "BillingCurrency", "ChargePeriodStart"]
    path = write_csv(tmp_path / "f13.csv", header, [["NULL", "AWS", "1", "USD", "2025-01-01"],
                                                     ["Google", "Google", "1", "USD", "2025-01-01"],
                                                     ["", "", "1", "USD", "2025-01-01"]])
    out, _ = read(path)
    assert [(r["ProviderName"], r["x_Cloud"]) for r in out] == [("AWS", "aws"), ("Google", "gcp"), (None, "other")]


def test_parquet_map_tag_past_the_limit_is_a_row_error(tmp_path: Path) -> None:
    table = pa.table({
        "ProviderName": ["AWS", "AWS", "AWS"],
        "BilledCost": pa.array([Decimal(1), Decimal(2), Decimal(4)], pa.decimal128(10, 2)),
        "BillingCurrency": ["USD"] * 3,
        "ChargePeriodStart": pa.array([datetime(2025, 1, 1, tzinfo=UTC)] * 3, pa.timestamp("ms", tz="UTC")),
        "Tags": pa.array([[("team", "ml")], [("team", "x" * 5000)], None], pa.map_(pa.string(), pa.string())),
    })
    path = tmp_path / "long.parquet"
    pq.write_table(table, path)
    out, stats = read(path)
    assert [(e.row, e.field) for e in stats.errors] == [(2, "Tags")]
    assert [(r["x_SourceRow"], r["Tags"]) for r in out] == [(1, [("team", "ml")]), (3, [])]


def test_json_lines_tags_object(tmp_path: Path) -> None:
    records = [
        {"ProviderName": "Microsoft", "BilledCost": 1.25, "EffectiveCost": 1.5, "BillingCurrency": "USD",
         "ChargePeriodStart": "2025-01-01T00:00:00Z", "Tags": {" org": "trey", "Env": "prod"}},
        {"ProviderName": "AWS", "BilledCost": 2, "EffectiveCost": 2, "BillingCurrency": "USD",
         "ChargePeriodStart": "2025-01-01T00:00:00Z", "Tags": {"user:team": "ml"}},
        {"ProviderName": "AWS", "BilledCost": 2, "EffectiveCost": 2, "BillingCurrency": "USD",
         "ChargePeriodStart": "2025-01-01T00:00:00Z", "Tags": None},
    ]
    path = tmp_path / "f.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out, stats = read(path)
    assert stats.format == "focus" and stats.error_count == 0
    assert [r["Tags"] for r in out] == [[("org", "trey"), ("env", "prod")], [("team", "ml")], []]
    assert [r["BilledCost"] for r in out] == [Decimal("1.25"), Decimal(2), Decimal(2)]
