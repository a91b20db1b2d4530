"""Generate realistic legacy AWS CUR files of any size, for benchmarks.

The shape follows real CUR deliveries (see tests/fixtures/PROVENANCE.md): about 120 columns in
the order AWS writes them, hourly usage rows for GPU (p4d, p5, g5, g6) and non-GPU (m5, c6i,
t3, S3, data transfer) resources, every ``lineItem/LineItemType`` with its cost semantics
(Savings Plan covered usage and negation, RI discounted usage and fees, tax, credits, refunds),
scientific-notation and long-decimal costs, and sparse ``resourceTags/user:*`` columns.

Columnar (numpy + pyarrow), so 1M rows take a few seconds plus gzip time. Usage::

    python tests/bench/gen_cur.py --rows 1000000 --out /tmp/cur-1m.csv.gz
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

BASE_COLUMNS = [
    "identity/LineItemId", "identity/TimeInterval", "bill/InvoiceId", "bill/InvoicingEntity",
    "bill/BillingEntity", "bill/BillType", "bill/PayerAccountId", "bill/BillingPeriodStartDate",
    "bill/BillingPeriodEndDate", "lineItem/UsageAccountId", "lineItem/LineItemType",
    "lineItem/UsageStartDate", "lineItem/UsageEndDate", "lineItem/ProductCode",
    "lineItem/UsageType", "lineItem/Operation", "lineItem/AvailabilityZone",
    "lineItem/ResourceId", "lineItem/UsageAmount", "lineItem/NormalizationFactor",
    "lineItem/NormalizedUsageAmount", "lineItem/CurrencyCode", "lineItem/UnblendedRate",
    "lineItem/UnblendedCost", "lineItem/BlendedRate", "lineItem/BlendedCost",
    "lineItem/LineItemDescription", "lineItem/TaxType", "lineItem/LegalEntity",
]
PRODUCT_COLUMNS = [
    "product/ProductName", "product/availability", "product/clockSpeed", "product/currentGeneration",
    "product/durability", "product/ecu", "product/enhancedNetworkingSupported", "product/eventType",
    "product/feeCode", "product/feeDescription", "product/fromLocation", "product/fromLocationType",
    "product/fromRegionCode", "product/gpu", "product/gpuMemory", "product/group",
    "product/groupDescription", "product/instanceFamily", "product/instanceType",
    "product/licenseModel", "product/location", "product/locationType", "product/memory",
    "product/networkPerformance", "product/normalizationSizeFactor", "product/operatingSystem",
    "product/operation", "product/physicalProcessor", "product/preInstalledSw",
    "product/processorArchitecture", "product/productFamily", "product/region",
    "product/regionCode", "product/servicecode", "product/servicename", "product/sku",
    "product/storage", "product/storageClass", "product/storageMedia", "product/tenancy",
    "product/toLocation", "product/toLocationType", "product/toRegionCode",
    "product/transferType", "product/usagetype", "product/vcpu", "product/version",
    "product/volumeType",
]
PRICING_COLUMNS = [
    "pricing/LeaseContractLength", "pricing/OfferingClass", "pricing/PurchaseOption",
    "pricing/RateCode", "pricing/RateId", "pricing/currency", "pricing/publicOnDemandCost",
    "pricing/publicOnDemandRate", "pricing/term", "pricing/unit",
]
RESERVATION_COLUMNS = [
    "reservation/AmortizedUpfrontCostForUsage", "reservation/AmortizedUpfrontFeeForBillingPeriod",
    "reservation/AvailabilityZone", "reservation/EffectiveCost", "reservation/EndTime",
    "reservation/ModificationStatus", "reservation/NormalizedUnitsPerReservation",
    "reservation/NumberOfReservations", "reservation/RecurringFeeForUsage",
    "reservation/ReservationARN", "reservation/StartTime", "reservation/SubscriptionId",
    "reservation/TotalReservedNormalizedUnits", "reservation/TotalReservedUnits",
    "reservation/UnitsPerReservation", "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod",
    "reservation/UnusedNormalizedUnitQuantity", "reservation/UnusedQuantity",
    "reservation/UnusedRecurringFee", "reservation/UpfrontValue",
]
SAVINGS_PLAN_COLUMNS = [
    "savingsPlan/AmortizedUpfrontCommitmentForBillingPeriod", "savingsPlan/EndTime",
    "savingsPlan/InstanceTypeFamily", "savingsPlan/NetAmortizedUpfrontCommitmentForBillingPeriod",
    "savingsPlan/OfferingType", "savingsPlan/PaymentOption", "savingsPlan/PurchaseTerm",
    "savingsPlan/RecurringCommitmentForBillingPeriod", "savingsPlan/Region",
    "savingsPlan/SavingsPlanARN", "savingsPlan/SavingsPlanEffectiveCost",
    "savingsPlan/SavingsPlanRate", "savingsPlan/StartTime", "savingsPlan/TotalCommitmentToDate",
    "savingsPlan/UsedCommitment",
]
TAG_COLUMNS = [
    "resourceTags/aws:createdBy", "resourceTags/user:Name", "resourceTags/user:team",
    "resourceTags/user:project", "resourceTags/user:env", "resourceTags/user:owner",
    "resourceTags/user:burnguard:protect",
]
COST_CATEGORY_COLUMNS = ["costCategory/CostCenter", "costCategory/Environment"]
COLUMNS = (
    BASE_COLUMNS + PRODUCT_COLUMNS + PRICING_COLUMNS + RESERVATION_COLUMNS
    + SAVINGS_PLAN_COLUMNS + TAG_COLUMNS + COST_CATEGORY_COLUMNS
)

# (product code, usage type prefix, instance type, hourly rate, weight); GPU first.
RESOURCES = [
    ("AmazonEC2", "BoxUsage", "p4d.24xlarge", 32.7726, 3),
    ("AmazonEC2", "BoxUsage", "p5.48xlarge", 98.32, 1),
    ("AmazonEC2", "SpotUsage", "g5.xlarge", 0.4024, 4),
    ("AmazonEC2", "BoxUsage", "g6.2xlarge", 0.9776, 3),
    ("AmazonEC2", "BoxUsage", "m5.xlarge", 0.192, 20),
    ("AmazonEC2", "BoxUsage", "c6i.2xlarge", 0.34, 15),
    ("AmazonEC2", "BoxUsage", "t3.medium", 0.0416, 20),
    ("AmazonS3", "TimedStorage-ByteHrs", "", 0.0000319, 15),
    ("AWSDataTransfer", "DataTransfer-Out-Bytes", "", 0.09, 10),
    ("AmazonCloudWatch", "CW:MetricMonitorUsage", "", 0.0004, 9),
]
LINE_ITEM_TYPES = [
    ("Usage", 820), ("SavingsPlanCoveredUsage", 60), ("SavingsPlanNegation", 60),
    ("DiscountedUsage", 30), ("SavingsPlanRecurringFee", 4), ("SavingsPlanUpfrontFee", 1),
    ("RIFee", 4), ("Fee", 2), ("Tax", 10), ("Credit", 4), ("Refund", 1), ("BundledDiscount", 2),
    ("EdpDiscount", 2),
]
TEAMS = np.array(["ml-research", "inference", "platform", "data", "web"])
PROJECTS = np.array(["llm-pretrain", "vision", "search", "etl", "site", "batch"])


def _choice(rng: np.random.Generator, values: np.ndarray, n: int, p: np.ndarray | None = None) -> np.ndarray:
    return values[rng.choice(len(values), size=n, p=p)]


def _sparse(rng: np.random.Generator, values: np.ndarray, share: float) -> np.ndarray:
    mask = rng.random(len(values)) < share
    return np.where(mask, values, "")


def _money(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Format like CUR does: mostly fixed 10 decimals, some scientific notation, some long."""
    out = np.char.mod("%.10f", values).astype(object)
    tiny = np.abs(values) < 1e-6
    out[tiny] = np.char.mod("%.2E", values[tiny])
    longer = rng.random(len(values)) < 0.05
    out[longer] = np.char.mod("%.16f", values[longer])
    return out.astype(str)


def generate_table(rows: int, seed: int, start_row: int = 0, period: str = "2024-09") -> pa.Table:  # noqa: PLR0915 - one statement per generated CUR column
    rng = np.random.default_rng(seed + start_row)
    n = rows
    year, month = (int(x) for x in period.split("-"))
    next_month = f"{year + (month == 12):04d}-{month % 12 + 1:02d}"
    period_start = np.datetime64(f"{period}-01T00:00:00")
    period_end = np.datetime64(f"{next_month}-01T00:00:00")
    hours_in_period = int((period_end - period_start) / np.timedelta64(1, "h"))

    weights = np.array([r[4] for r in RESOURCES], dtype=float)
    res_idx = rng.choice(len(RESOURCES), size=n, p=weights / weights.sum())
    product_code = np.array([r[0] for r in RESOURCES])[res_idx]
    usage_prefix = np.array([r[1] for r in RESOURCES])[res_idx]
    instance_type = np.array([r[2] for r in RESOURCES])[res_idx]
    rate = np.array([r[3] for r in RESOURCES])[res_idx]
    is_ec2 = product_code == "AmazonEC2"

    lit_w = np.array([w for _, w in LINE_ITEM_TYPES], dtype=float)
    lit = _choice(rng, np.array([t for t, _ in LINE_ITEM_TYPES]), n, lit_w / lit_w.sum())
    # Savings Plan and RI rows only make sense on EC2.
    lit = np.where(~is_ec2 & np.isin(lit, ["SavingsPlanCoveredUsage", "SavingsPlanNegation", "DiscountedUsage"]), "Usage", lit)

    hour = rng.integers(0, hours_in_period, size=n)
    start = period_start + hour.astype("timedelta64[h]")
    end = start + np.timedelta64(1, "h")
    monthly = np.isin(lit, ["Tax", "RIFee", "SavingsPlanRecurringFee", "SavingsPlanUpfrontFee", "Fee", "Credit", "Refund"])
    start = np.where(monthly, period_start, start)
    end = np.where(monthly, period_end, end)
    fmt = lambda a: np.char.add(np.datetime_as_string(a, unit="ms"), "Z")  # noqa: E731

    amount = np.where(is_ec2, 1.0, rng.gamma(2.0, 50.0, size=n))
    unblended = rate * amount
    unblended = np.where(lit == "SavingsPlanNegation", -unblended, unblended)
    unblended = np.where(lit == "DiscountedUsage", 0.0, unblended)
    unblended = np.where(np.isin(lit, ["Credit", "Refund", "BundledDiscount", "EdpDiscount"]), -rng.gamma(2.0, 5.0, size=n), unblended)
    unblended = np.where(lit == "Tax", rng.gamma(2.0, 20.0, size=n), unblended)
    unblended = np.where(np.isin(lit, ["RIFee", "SavingsPlanRecurringFee", "SavingsPlanUpfrontFee", "Fee"]), rng.gamma(3.0, 300.0, size=n), unblended)
    unblended = np.round(unblended, 10)

    n_resources = max(50, n // 2000)
    res_num = rng.integers(0, n_resources, size=n)
    hexid = np.char.mod("%017x", res_num * 7919 + 0x0ABCDEF012345)
    resource_id = np.where(is_ec2, np.char.add("i-", hexid), np.char.add("arn:aws:s3:::bucket-", np.char.mod("%d", res_num)))
    resource_id = np.where(monthly, "", resource_id)
    usage_type = np.where(instance_type != "", np.char.add(np.char.add(np.char.add("USE1-", usage_prefix), ":"), instance_type), np.char.add("USE1-", usage_prefix))

    col: dict[str, np.ndarray] = {c: np.full(n, "", dtype=object) for c in COLUMNS}
    row_no = np.arange(start_row, start_row + n)
    col["identity/LineItemId"] = np.char.mod("%052x", row_no * 2654435761 % (1 << 62))
    col["identity/TimeInterval"] = np.char.add(np.char.add(fmt(start), "/"), fmt(end))
    col["bill/InvoicingEntity"] = np.full(n, "Amazon Web Services, Inc.")
    col["bill/BillingEntity"] = np.full(n, "AWS")
    col["bill/BillType"] = np.full(n, "Anniversary")
    col["bill/PayerAccountId"] = np.full(n, "123456789012")
    col["bill/BillingPeriodStartDate"] = np.full(n, f"{period}-01T00:00:00.000Z")
    col["bill/BillingPeriodEndDate"] = np.full(n, f"{next_month}-01T00:00:00.000Z")
    col["lineItem/UsageAccountId"] = _choice(rng, np.array(["123456789012", "210987654321", "111122223333"]), n)
    col["lineItem/LineItemType"] = lit
    col["lineItem/UsageStartDate"] = fmt(start)
    col["lineItem/UsageEndDate"] = fmt(end)
    col["lineItem/ProductCode"] = product_code
    col["lineItem/UsageType"] = usage_type
    col["lineItem/Operation"] = np.where(is_ec2, "RunInstances", "GetObject")
    col["lineItem/AvailabilityZone"] = np.where(is_ec2, "us-east-1a", "")
    col["lineItem/ResourceId"] = resource_id
    col["lineItem/UsageAmount"] = np.char.mod("%.8f", amount)
    col["lineItem/NormalizationFactor"] = np.where(is_ec2, "8.0", "")
    col["lineItem/CurrencyCode"] = np.full(n, "USD")
    col["lineItem/UnblendedRate"] = np.char.mod("%.10f", rate)
    col["lineItem/UnblendedCost"] = _money(unblended, rng)
    col["lineItem/BlendedRate"] = np.char.mod("%.10f", rate)
    col["lineItem/BlendedCost"] = _money(unblended, rng)
    col["lineItem/LineItemDescription"] = np.where(
        is_ec2,
        np.char.add(np.char.add(np.char.add("$", np.char.mod("%.4f", rate)), " per On Demand Linux "),
                    np.char.add(instance_type, " Instance Hour")),
        "$0.09 per GB - first 10 TB / month data transfer out beyond the global free tier",
    )
    col["lineItem/TaxType"] = np.where(lit == "Tax", "Sales Tax", "")
    col["lineItem/LegalEntity"] = np.full(n, "Amazon Web Services, Inc.")
    col["product/ProductName"] = np.where(is_ec2, "Amazon Elastic Compute Cloud", product_code)
    ec2_attrs = {
        "product/vcpu": "96", "product/memory": "1152 GiB", "product/clockSpeed": "3 GHz",
        "product/networkPerformance": "400 Gigabit", "product/physicalProcessor": "Intel Xeon Platinum 8275L",
        "product/processorArchitecture": "64-bit", "product/tenancy": "Shared",
        "product/licenseModel": "No License required", "product/preInstalledSw": "NA",
        "product/currentGeneration": "Yes", "product/enhancedNetworkingSupported": "Yes",
        "product/storage": "8 x 1000 SSD", "product/ecu": "NA", "product/normalizationSizeFactor": "192",
        "product/operation": "RunInstances", "product/availability": "", "product/locationType": "AWS Region",
        "pricing/currency": "USD", "pricing/LeaseContractLength": "", "pricing/PurchaseOption": "",
    }
    for name, value in ec2_attrs.items():
        col[name] = np.where(is_ec2, value, "")
    col["pricing/RateCode"] = np.char.add(np.char.mod("SKU%08d", res_idx * 131), ".JRTCKXETXF.6YS6EN2CT7")
    col["pricing/RateId"] = np.char.mod("%d", res_idx * 7919 + 1000000)
    col["product/instanceType"] = np.where(monthly, "", instance_type)
    col["product/instanceFamily"] = np.where(is_ec2, "Accelerated Computing", "")
    is_gpu = np.char.startswith(instance_type.astype(str), "p") | np.char.startswith(instance_type.astype(str), "g")
    col["product/gpu"] = np.where(is_gpu, "8", "")
    col["product/gpuMemory"] = np.where(is_gpu, "320 GB", "")
    col["product/region"] = np.full(n, "us-east-1")
    col["product/regionCode"] = np.full(n, "us-east-1")
    col["product/location"] = np.full(n, "US East (N. Virginia)")
    col["product/servicecode"] = product_code
    col["product/servicename"] = col["product/ProductName"]
    col["product/productFamily"] = np.where(is_ec2, "Compute Instance", "Storage")
    col["product/operatingSystem"] = np.where(is_ec2, "Linux", "")
    col["product/sku"] = np.char.mod("SKU%08d", res_idx * 131)
    col["product/usagetype"] = usage_type
    col["pricing/publicOnDemandCost"] = _money(np.abs(rate * amount), rng)
    col["pricing/publicOnDemandRate"] = np.char.mod("%.10f", rate)
    col["pricing/term"] = np.where(np.isin(lit, ["DiscountedUsage", "RIFee"]), "Reserved", "OnDemand")
    col["pricing/unit"] = np.where(is_ec2, "Hrs", "GB-Mo")

    sp = np.isin(lit, ["SavingsPlanCoveredUsage", "SavingsPlanNegation", "SavingsPlanRecurringFee", "SavingsPlanUpfrontFee"])
    sp_arn = "arn:aws:savingsplans::123456789012:savingsplan/7a7a1e2b-aaaa-bbbb-cccc-0123456789ab"
    col["savingsPlan/SavingsPlanARN"] = np.where(sp, sp_arn, "")
    sp_eff = np.round(rate * amount * 0.72, 10)
    col["savingsPlan/SavingsPlanEffectiveCost"] = np.where(lit == "SavingsPlanCoveredUsage", _money(sp_eff, rng), "")
    col["savingsPlan/SavingsPlanRate"] = np.where(lit == "SavingsPlanCoveredUsage", np.char.mod("%.6f", rate * 0.72), "")
    total_commit = np.round(unblended, 10)
    used_commit = np.round(unblended * rng.uniform(0.7, 1.0, size=n), 10)
    is_sprf = lit == "SavingsPlanRecurringFee"
    col["savingsPlan/TotalCommitmentToDate"] = np.where(is_sprf, _money(total_commit, rng), "")
    col["savingsPlan/UsedCommitment"] = np.where(is_sprf, _money(used_commit, rng), "")
    col["savingsPlan/RecurringCommitmentForBillingPeriod"] = np.where(is_sprf, _money(total_commit, rng), "")

    ri = np.isin(lit, ["DiscountedUsage", "RIFee"]) | ((lit == "Fee") & (rng.random(n) < 0.5))
    ri_arn = "arn:aws:ec2:us-east-1:123456789012:reserved-instances/0f0e0d0c-1111-2222-3333-444455556666"
    col["reservation/ReservationARN"] = np.where(ri, ri_arn, "")
    ri_eff = np.round(rate * amount * 0.6, 10)
    col["reservation/EffectiveCost"] = np.where(lit == "DiscountedUsage", _money(ri_eff, rng), "")
    is_rifee = lit == "RIFee"
    unused_upfront = np.round(unblended * rng.uniform(0.0, 0.2, size=n), 10)
    unused_recurring = np.round(unblended * rng.uniform(0.0, 0.2, size=n), 10)
    col["reservation/UnusedAmortizedUpfrontFeeForBillingPeriod"] = np.where(is_rifee, _money(unused_upfront, rng), "")
    col["reservation/UnusedRecurringFee"] = np.where(is_rifee, _money(unused_recurring, rng), "")
    col["reservation/AmortizedUpfrontFeeForBillingPeriod"] = np.where(is_rifee, _money(unblended, rng), "")

    # Tags belong to resources, not rows: a resource carries the same tags on every row
    # (sparse across resources, as cost allocation tags are in real accounts).
    tagged = ~monthly

    def per_resource(values: np.ndarray, share: float, salt: int) -> np.ndarray:
        keep = (res_num * 2654435761 + salt) % 1000 < share * 1000
        return np.where(tagged & keep, values, "")

    col["resourceTags/aws:createdBy"] = per_resource(np.full(n, "AssumedRole:AROAEXAMPLE:ci"), 0.3, 11)
    col["resourceTags/user:Name"] = per_resource(np.char.add("box-", np.char.mod("%d", res_num)), 0.5, 23)
    col["resourceTags/user:team"] = per_resource(TEAMS[res_num % len(TEAMS)], 0.8, 37)
    col["resourceTags/user:project"] = per_resource(PROJECTS[res_num % len(PROJECTS)], 0.5, 41)
    col["resourceTags/user:env"] = per_resource(np.where(res_num % 3 == 0, "prod", "dev"), 0.4, 53)
    col["resourceTags/user:owner"] = per_resource(np.char.mod("user%d@example.com", res_num % 40), 0.2, 67)
    col["resourceTags/user:burnguard:protect"] = np.where(tagged & (res_num % 17 == 0), "true", "")
    col["costCategory/CostCenter"] = _sparse(rng, np.char.mod("CC%03d", res_num % 25), 0.6)

    arrays = [pa.array(np.asarray(col[c]).astype(str), type=pa.string()) for c in COLUMNS]
    return pa.Table.from_arrays(arrays, names=COLUMNS)


def _csv_field(arr: pa.Array) -> pa.Array:
    """Quote a value only when it needs it, as AWS writes CUR (``"Amazon Web Services, Inc."``)."""
    needs = pc.match_substring_regex(arr, r'[",\n]')
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(arr, '"', '""'), '"', "")
    return pc.if_else(needs, quoted, arr)


def csv_lines(table: pa.Table) -> bytes:
    fields = [_csv_field(table.column(i).combine_chunks()) for i in range(table.num_columns)]
    lines = pc.binary_join_element_wise(*fields, ",")
    joined = pc.binary_join(pa.array([lines.to_pylist()], pa.list_(pa.string())), "\n")[0].as_py()
    return (joined + "\n").encode()


def write_cur(path: Path, rows: int, seed: int = 7, chunk: int = 100_000, period: str = "2024-09") -> Path:
    """Write a gzip CUR CSV of ``rows`` rows to ``path`` (gzip level 1, like a fast exporter)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    with gzip.open(tmp, "wb", compresslevel=1) as gz:
        gz.write((",".join(COLUMNS) + "\n").encode())
        done = 0
        while done < rows:
            n = min(chunk, rows - done)
            gz.write(csv_lines(generate_table(n, seed, start_row=done, period=period)))
            done += n
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--period", default="2024-09")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    write_cur(args.out, args.rows, args.seed, period=args.period)
    print(f"wrote {args.rows} rows, {len(COLUMNS)} columns to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
