"""Focused behaviour of the Azure cost export reader (burnguard.normalize.azure)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from burnguard.core.errors import InputError, MissingColumnError
from burnguard.core.lineitem import LineItem, iter_line_items
from burnguard.core.tags import TagError
from burnguard.normalize import Header, Normalizer
from burnguard.normalize.azure import AzureCostFormat, meter_vm_size, parse_additional_info, parse_tags
from tests.helpers import fixture, normalized_totals, read_rows
from tests.unit.normalize.test_golden_azure import expected

HEADER = ["SubscriptionId", "SubscriptionName", "Date", "MeterCategory", "MeterSubCategory", "MeterName", "MeterId",
          "CostInBillingCurrency", "BillingCurrencyCode", "ChargeType", "PricingModel", "Frequency", "ReservationId",
          "ResourceId", "ResourceLocation", "Tags", "AdditionalInfo", "BillingPeriodStartDate", "BillingPeriodEndDate"]
DEFAULTS = {
    "SubscriptionId": "11111111-2222-3333-4444-555555555555", "SubscriptionName": "ml-research",
    "Date": "09/21/2023", "MeterCategory": "Storage", "MeterSubCategory": "Tiered Block Blob",
    "MeterName": "Hot LRS Write Operations", "MeterId": "m-1", "CostInBillingCurrency": "1.25",
    "BillingCurrencyCode": "USD", "ChargeType": "Usage", "PricingModel": "OnDemand", "Frequency": "UsageBased",
    "ResourceId": "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg/providers/"
                  "Microsoft.Storage/storageAccounts/acct1",
    "ResourceLocation": "EastUS2", "BillingPeriodStartDate": "09/01/2023", "BillingPeriodEndDate": "09/30/2023",
}


def write_csv(tmp_path: Path, rows: list[dict[str, str]], header: list[str] | None = None,
              name: str = "export.csv", bom: bool = False) -> Path:
    header = header or HEADER
    path = tmp_path / name
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            full = {**DEFAULTS, **row}
            writer.writerow([full.get(h, "") for h in header])
    return path


def read(path: Path, **kwargs: Any) -> tuple[list[LineItem], Any]:
    normalizer = Normalizer.from_path(path, **kwargs)
    return list(iter_line_items(normalizer.read_all())), normalizer.stats


# -- tags ---------------------------------------------------------------------------------------

def test_tags_with_and_without_braces_read_the_same() -> None:
    with_braces = parse_tags('{"Team": "ml-research", "env": "prod"}')
    without = parse_tags('"Team": "ml-research","env": "prod"')
    assert with_braces == without == {"team": "ml-research", "env": "prod"}


def test_tags_keep_empty_values_and_values_case() -> None:
    tags = parse_tags('"aks-managed-createOperationID": "","Owner": "Alice Smith"')
    assert tags == {"aks-managed-createoperationid": "", "owner": "Alice Smith"}


def test_tag_keys_differing_in_case_merge_first_non_empty_wins() -> None:
    assert parse_tags('{"Team": "", "TEAM": "ml", "team": "other"}') == {"team": "ml"}
    # Exactly duplicated keys too (a plain dict would keep only the last one).
    assert parse_tags('"env": "prod", "env": "dev"') == {"env": "prod"}


@pytest.mark.parametrize("text", [None, "", "  ", "{}", "NULL"])
def test_empty_tags(text: str | None) -> None:
    assert parse_tags(text) == {}


def test_bad_tags_raise_tag_error() -> None:
    with pytest.raises(TagError, match="not a JSON object"):
        parse_tags('"env": prod')
    with pytest.raises(TagError):
        parse_tags('["env", "prod"]')


def test_tags_through_the_reader_and_a_bad_tag_row_is_reported(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [
        {"Tags": '"Team": "ml","team": "x","aks-managed-createOperationID": ""'},
        {"Tags": '{"Team": "ml"'},  # broken JSON
        {"Tags": '{"project": "p1"}'},
    ])
    items, stats = read(path)
    assert [i.x_SourceRow for i in items] == [1, 3]
    assert items[0].Tags == {"team": "ml", "aks-managed-createoperationid": ""}
    assert items[1].Tags == {"project": "p1"}
    assert stats.error_count == 1
    err = stats.errors[0]
    assert (err.file, err.row, err.field) == ("export.csv", 2, "Tags")
    assert "JSON" in err.reason


# -- costs and their errors ------------------------------------------------------------------------

def test_non_numeric_cost_names_row_and_field_and_the_rest_goes_on(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [{"CostInBillingCurrency": "1.5"}, {"CostInBillingCurrency": "12,50"},
                                {"CostInBillingCurrency": "5.64902E-05"}])
    items, stats = read(path)
    assert [(i.x_SourceRow, i.BilledCost) for i in items] == [(1, Decimal("1.5")), (3, Decimal("0.0000564902"))]
    assert stats.rows_read == 3 and stats.rows_normalized == 2
    assert stats.error_count == 1
    err = stats.errors[0]
    assert (err.row, err.field) == (2, "CostInBillingCurrency")
    assert "12,50" in str(err) and "export.csv" in str(err)


def test_strict_mode_raises_at_the_first_bad_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [{}, {"CostInBillingCurrency": "abc"}])
    with pytest.raises(InputError) as info:
        Normalizer.from_path(path, strict=True).read_all()
    assert (info.value.file, info.value.row, info.value.field) == ("export.csv", 2, "CostInBillingCurrency")


def test_empty_currency_is_a_bad_row_unless_a_default_is_given(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [{}, {"BillingCurrencyCode": ""}])
    items, stats = read(path)
    assert [i.x_SourceRow for i in items] == [1]
    assert (stats.errors[0].row, stats.errors[0].field) == (2, "BillingCurrencyCode")
    items, stats = read(path, default_currency="EUR")
    assert [i.BillingCurrency for i in items] == ["USD", "EUR"]
    assert stats.error_count == 0


def test_no_currency_column_needs_a_default_currency() -> None:
    path = fixture("opencost-azure-billingexports/values/VirtualMachine.csv")
    with pytest.raises(MissingColumnError) as info:
        Normalizer.from_path(path)
    assert info.value.field == "BillingCurrency"
    assert "BillingCurrencyCode" in str(info.value) and "VirtualMachine.csv" in str(info.value)
    items, _ = read(path, default_currency="USD")
    assert [i.BillingCurrency for i in items] == ["USD"]


# -- actual vs amortized -----------------------------------------------------------------------------

AMORTIZED_ROWS = [
    {"CostInBillingCurrency": "2.00"},  # on demand
    {"CostInBillingCurrency": "3.00", "PricingModel": "Reservation", "ReservationId": "r-1"},  # covered usage
    {"CostInBillingCurrency": "0.50", "ChargeType": "UnusedReservation", "PricingModel": "Reservation",
     "ReservationId": "r-1"},
]
ACTUAL_ROWS = [
    {"CostInBillingCurrency": "2.00"},
    {"CostInBillingCurrency": "0", "PricingModel": "Reservation", "ReservationId": "r-1"},  # covered: 0 in actual
    {"CostInBillingCurrency": "100.00", "ChargeType": "Purchase", "Frequency": "OneTime",
     "PricingModel": "Reservation", "ReservationId": "r-1"},
]


def _costs(items: list[LineItem]) -> list[tuple[Decimal, Decimal]]:
    return [(i.BilledCost, i.EffectiveCost) for i in items]


def test_amortized_is_inferred_from_unused_and_covered_rows(tmp_path: Path) -> None:
    items, stats = read(write_csv(tmp_path, AMORTIZED_ROWS))
    assert _costs(items) == [(Decimal(2), Decimal(2)), (Decimal(0), Decimal(3)), (Decimal(0), Decimal("0.5"))]
    assert any("inferred as amortized" in w and "row 2" in w for w in stats.warnings)
    assert stats.variant == "azure-ea-2021"
    unused = items[2]
    assert unused.ChargeCategory == "Usage"
    assert unused.x_UsageType == "UnusedReservation"
    assert unused.PricingCategory == "Committed"


def test_actual_is_inferred_from_commitment_purchases(tmp_path: Path) -> None:
    items, stats = read(write_csv(tmp_path, ACTUAL_ROWS))
    assert _costs(items) == [(Decimal(2), Decimal(2)), (Decimal(0), Decimal(0)), (Decimal(100), Decimal(100))]
    assert any("inferred as actual" in w and "row 3" in w for w in stats.warnings)
    purchase = items[2]
    assert (purchase.ChargeCategory, purchase.ChargeFrequency, purchase.CommitmentDiscountId) == (
        "Purchase", "One-Time", "r-1")


def test_no_commitment_rows_no_inference_but_a_note(tmp_path: Path) -> None:
    items, stats = read(write_csv(tmp_path, [{}, {"CostInBillingCurrency": "4"}]))
    assert _costs(items) == [(Decimal("1.25"), Decimal("1.25")), (Decimal(4), Decimal(4))]
    assert not any("inferred as" in w for w in stats.warnings)
    assert any("cost basis" in w and "not given" in w for w in stats.warnings)


def test_manifest_cost_basis_wins_over_the_rows(tmp_path: Path) -> None:
    # An amortized-looking file declared actual: the cost column is BilledCost, nothing zeroed.
    items, stats = read(write_csv(tmp_path, AMORTIZED_ROWS), cost_basis="actual")
    assert _costs(items) == [(Decimal(2), Decimal(2)), (Decimal(3), Decimal(3)), (Decimal("0.5"), Decimal("0.5"))]
    assert stats.variant == "azure-ea-2021-actual"
    assert any("manifest says actual" in w for w in stats.warnings)
    assert not any("inferred" in w for w in stats.warnings)
    # An actual-looking file declared amortized: the purchase is amortized away (EffectiveCost 0).
    items, stats = read(write_csv(tmp_path, ACTUAL_ROWS, name="b.csv"), cost_basis="AmortizedCost")
    assert _costs(items) == [(Decimal(2), Decimal(2)), (Decimal(0), Decimal(0)), (Decimal(100), Decimal(0))]
    assert stats.variant == "azure-ea-2021-amortized"
    assert any("manifest says amortized" in w for w in stats.warnings)


def test_unknown_cost_basis_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="neither 'actual' nor 'amortized'"):
        Normalizer.from_path(write_csv(tmp_path, [{}]), cost_basis="blended")


def test_charge_type_frequency_and_pricing_mappings(tmp_path: Path) -> None:
    rows = [
        {"ChargeType": "Usage", "PricingModel": "Spot", "Frequency": "UsageBased"},
        {"ChargeType": "Refund", "PricingModel": "Reservation", "Frequency": "OneTime", "CostInBillingCurrency": "-5",
         "ReservationId": "r-2"},
        {"ChargeType": "RoundingAdjustment", "PricingModel": "", "Frequency": ""},
        {"ChargeType": "Tax", "PricingModel": "", "Frequency": "OneTime"},
        {"ChargeType": "UnusedSavingsPlan", "PricingModel": "SavingsPlan", "Frequency": "Recurring"},
        {"ChargeType": "Purchase", "PricingModel": "OnDemand", "Frequency": "Recurring"},
        {"ChargeType": "", "PricingModel": "Something", "Frequency": ""},
    ]
    items, _ = read(write_csv(tmp_path, rows), cost_basis="amortized")
    got = [(i.ChargeCategory, i.ChargeClass, i.ChargeFrequency, i.PricingCategory) for i in items]
    assert got == [
        ("Usage", None, "Usage-Based", "Dynamic"),
        ("Purchase", "Correction", "One-Time", "Committed"),
        ("Adjustment", None, "One-Time", None),
        ("Tax", None, "One-Time", None),
        ("Usage", None, "Recurring", "Committed"),
        ("Purchase", None, "Recurring", "Standard"),
        ("Usage", None, "Usage-Based", "Other"),
    ]
    refund = items[1]
    assert (refund.BilledCost, refund.EffectiveCost) == (Decimal(-5), Decimal(0))


# -- GPU classification --------------------------------------------------------------------------------

def test_vm_size_from_additional_info_classifies_gpu(tmp_path: Path) -> None:
    info = '"UsageType": "ComputeHR", "ServiceType": "Standard_NC6s_v3", "VMName": "gpu-box-1", "VCPUs": 6'
    rows = [
        {"MeterCategory": "Virtual Machines", "MeterSubCategory": "NCSv3 Series", "MeterName": "NC6s v3",
         "AdditionalInfo": info, "CostInBillingCurrency": "3.06"},
        {"MeterCategory": "Virtual Machines", "MeterSubCategory": "Dv3/DSv3 Series", "MeterName": "D2 v3/D2s v3",
         "AdditionalInfo": '{"ServiceType": "Standard_D2s_v3", "UsageType": "ComputeHR"}'},
        {"AdditionalInfo": '{"ServiceType": "SQLThreatDetection"}'},  # a ServiceType that is no VM size
    ]
    items, stats = read(write_csv(tmp_path, rows))
    assert stats.error_count == 0
    gpu, cpu, other = items
    assert (gpu.x_InstanceType, gpu.x_AcceleratorClass, gpu.x_AcceleratorFamily, gpu.x_UsageType) == (
        "Standard_NC6s_v3", "gpu", "nvidia-v100", "ComputeHR")
    assert (cpu.x_InstanceType, cpu.x_AcceleratorClass) == ("Standard_D2s_v3", None)
    assert (other.x_InstanceType, other.x_AcceleratorClass) == (None, None)


def test_gpu_meter_classifies_rows_without_additional_info(tmp_path: Path) -> None:
    rows = [
        {"MeterCategory": "Virtual Machines", "MeterSubCategory": "NCSv3 Series", "MeterName": ""},
        {"MeterCategory": "Virtual Machines", "MeterSubCategory": "NCasT4 v3 Series Windows",
         "MeterName": "NC4as T4 v3"},
        {"MeterCategory": "Virtual Machines", "MeterSubCategory": "NDasrA100 v4 Series",
         "MeterName": "ND96asr A100 v4 Spot"},
        {"MeterCategory": "Virtual Machines", "MeterSubCategory": "BS Series", "MeterName": "B2s"},
        {"MeterCategory": "Networking", "MeterSubCategory": "NGINX", "MeterName": "NG1"},  # not a VM meter
    ]
    items, _ = read(write_csv(tmp_path, rows))
    assert [(i.x_AcceleratorClass, i.x_AcceleratorFamily) for i in items] == [
        ("gpu", "nvidia-v100"), ("gpu", "nvidia-t4"), ("gpu", "nvidia-a100"), (None, None), (None, None)]
    assert all(i.x_InstanceType is None for i in items)


@pytest.mark.parametrize(("meter", "size"), [
    ("NC6s v3", "Standard_NC6s_v3"),
    ("NC6s v3 Low Priority", "Standard_NC6s_v3"),
    ("NC24ads A100 v4", "Standard_NC24ads_A100_v4"),
    ("NCSv3 Series", "Standard_NCS1_v3"),
    ("NCv2 Series", "Standard_NC1_v2"),
    ("NC Series", "Standard_NC1"),
    ("D2 v3/D2s v3", None),
    ("Network Watcher", None),
    (None, None),
])
def test_meter_vm_size(meter: str | None, size: str | None) -> None:
    assert meter_vm_size(meter) == size


def test_additional_info_without_braces_and_a_bad_one_keeps_the_row(tmp_path: Path) -> None:
    assert parse_additional_info('"ServiceType": "Standard_ND96asr_v4",  "VCPUs": 96') == {
        "size": "Standard_ND96asr_v4", "usage": None}
    path = write_csv(tmp_path, [{"AdditionalInfo": '{"ServiceType": '}, {}])
    items, stats = read(path)
    assert [i.x_SourceRow for i in items] == [1, 2]  # the cost is good: nothing is lost
    assert stats.error_count == 1
    assert (stats.errors[0].row, stats.errors[0].field) == (1, "AdditionalInfo")


# -- dates -------------------------------------------------------------------------------------------------

def day(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


def test_month_first_file_is_not_read_day_first(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [{"Date": "09/04/2023"}, {"Date": "09/21/2023"}, {"Date": "10/01/2023"}])
    items, _ = read(path)
    assert [i.ChargePeriodStart for i in items] == [day(2023, 9, 4), day(2023, 9, 21), day(2023, 10, 1)]
    assert [i.ChargePeriodEnd for i in items] == [day(2023, 9, 5), day(2023, 9, 22), day(2023, 10, 2)]


def test_ambiguous_short_dates_are_month_first(tmp_path: Path) -> None:
    items, _ = read(write_csv(tmp_path, [{"Date": "9/2/2023"}, {"Date": "9/3/2023"}]))
    assert [i.ChargePeriodStart for i in items] == [day(2023, 9, 2), day(2023, 9, 3)]


def test_day_first_file_is_detected_from_the_whole_column(tmp_path: Path) -> None:
    items, _ = read(write_csv(tmp_path, [{"Date": "04/09/2023"}, {"Date": "21/09/2023"}]))
    assert [i.ChargePeriodStart for i in items] == [day(2023, 9, 4), day(2023, 9, 21)]


def test_real_mm_dd_fixture_reads_september(tmp_path: Path) -> None:
    path = fixture("finops-toolkit/EA_AmortizedCost_Small.csv")
    _, rows = read_rows(path)
    items, _ = read(path)
    for item, row in zip(items, rows, strict=True):
        month, dd, year = (int(p) for p in row["Date"].split("/"))
        assert item.ChargePeriodStart == day(year, month, dd)


def test_iso_and_space_separated_dates(tmp_path: Path) -> None:
    items, _ = read(fixture("koku/azure/costreport_a243c6f2-199f-4074-9a2c-40e671cf1584.csv"))
    assert [i.ChargePeriodStart for i in items] == [day(2019, 7, 29), day(2019, 7, 28), day(2019, 7, 28)]


def test_billing_period_end_is_exclusive(tmp_path: Path) -> None:
    items, _ = read(write_csv(tmp_path, [{}]))
    assert (items[0].BillingPeriodStart, items[0].BillingPeriodEnd) == (day(2023, 9, 1), day(2023, 10, 1))


# -- the other columns ---------------------------------------------------------------------------------------

def test_identity_resource_and_region_columns(tmp_path: Path) -> None:
    items, _ = read(write_csv(tmp_path, [{}], bom=True))
    item = items[0]
    assert item.ProviderName == "Microsoft" and item.x_Cloud == "azure"
    assert (item.SubAccountId, item.SubAccountName) == (DEFAULTS["SubscriptionId"], "ml-research")
    assert item.ResourceId == DEFAULTS["ResourceId"]
    assert (item.ResourceName, item.ResourceType) == ("acct1", "Microsoft.Storage/storageAccounts")
    assert item.RegionId == "eastus2"
    assert (item.ServiceName, item.ServiceCategory, item.SkuId) == ("Storage", "Storage", "m-1")


def test_mca_camel_case_with_product_and_instance_name() -> None:
    path = fixture("koku/azure/camel_azure_version_2.csv")
    _, rows = read_rows(path)
    items, stats = read(path)
    assert stats.variant == "azure-mca"
    for item, row in zip(items, rows, strict=True):
        assert item.ResourceId == row["InstanceName"]
        assert item.ChargeDescription == row["product"]
        assert item.BillingAccountId == row["billingAccountId"]
        assert item.RegionId == row["resourceLocation"].lower()


def test_localized_german_headers() -> None:
    path = fixture("opencost-azure-billingexports/headersets/German.csv")
    _, rows = read_rows(path)
    items, stats = read(path)
    assert stats.variant == "azure-payg"
    (item,), (row,) = items, rows
    assert item.SubAccountId == row["Abonnement-GUID (SubscriptionGuid)"]
    assert item.BilledCost == Decimal(row["PreTaxCost (PreTaxCost)"])
    assert item.ServiceName == row["Kategorie der Verbrauchseinheit (MeterCategory)"]


# -- detection ------------------------------------------------------------------------------------------------

def test_azure_focus_export_is_not_claimed() -> None:
    meta = json.loads(fixture("finops-toolkit/FocusCost_1.0.json").read_text(encoding="utf-8"))
    names = [c["ColumnName"] for c in meta["Columns"]]
    assert "BilledCost" in names and any(n.startswith("x_") for n in names)
    assert AzureCostFormat().score(Header(names)) == 0
    # Even with Azure's own cost-details columns mixed in, FOCUS columns mean FOCUS.
    hybrid = [*names, "MeterCategory", "SubscriptionId", "CostInBillingCurrency"]
    assert AzureCostFormat().score(Header(hybrid)) == 0


def test_score_needs_azure_columns() -> None:
    fmt = AzureCostFormat()
    assert fmt.score(Header(HEADER)) > 0
    assert fmt.score(Header([h for h in HEADER if h != "MeterCategory"])) == 0
    assert fmt.score(Header([h for h in HEADER if h != "SubscriptionId"])) == 0
    aws = ["lineItem/LineItemType", "lineItem/UnblendedCost", "lineItem/UsageStartDate", "lineItem/CurrencyCode"]
    assert fmt.score(Header(aws)) == 0
    header, _ = read_rows(fixture("opencost-azure-billingexports/values/Template.csv"))
    assert fmt.score(Header(header)) > 0


def test_missing_date_column_is_a_clear_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [{}], header=[h for h in HEADER if h != "Date"])
    with pytest.raises(MissingColumnError, match="date"):
        Normalizer.from_path(path)


def test_storage_sku_service_type_is_no_vm_size() -> None:
    assert parse_additional_info('{"ServiceType": "Standard_LRS"}') == {"size": None, "usage": None}


# -- containers and streaming ---------------------------------------------------------------------------------

def test_parquet_export_with_typed_columns(tmp_path: Path) -> None:
    source = fixture("finops-toolkit/EA_AmortizedCost_Small.csv")
    table = pacsv.read_csv(source)  # Cost becomes double, like a Parquet export's
    table = table.set_column(table.schema.get_field_index("Date"), "Date",
                             pc.strptime(table["Date"], format="%m/%d/%Y", unit="s"))
    pq.write_table(table, tmp_path / "part_0_0001.parquet")
    want, _, good_rows, _ = expected(source)
    got, stats = normalized_totals(tmp_path / "part_0_0001.parquet")
    assert (stats.container, stats.variant, stats.rows_normalized, stats.error_count) == (
        "parquet", "azure-ea", good_rows, 0)
    assert got == want


def test_first_evidence_decides_for_the_rest_of_a_streamed_file(tmp_path: Path) -> None:
    filler = {"ResourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/"
                            + "x" * 200}
    rows = [ACTUAL_ROWS[2], *([filler] * 8000), AMORTIZED_ROWS[2]]
    path = write_csv(tmp_path, rows)
    assert path.stat().st_size > 2 << 20  # several parser blocks, several transforms
    normalizer = Normalizer.from_path(path, chunk_rows=1000)
    tables = list(normalizer.batches())
    assert len(tables) > 1
    items = list(iter_line_items(tables[-1]))
    unused = items[-1]
    assert unused.x_SourceRow == len(rows)
    # Read as actual (the first evidence): the unused row is not zeroed in BilledCost.
    assert (unused.BilledCost, unused.EffectiveCost) == (Decimal("0.5"), Decimal("0.5"))
    warnings = normalizer.stats.warnings
    assert any("inferred as actual" in w and "row 1)" in w for w in warnings)
    assert any("read as actual cost, but the file has unused" in w for w in warnings)
