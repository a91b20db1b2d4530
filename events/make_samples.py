"""Write the sample data of the embedded mode (deterministic): exports, manifests, inventory.

    .venv/bin/python events/make_samples.py

Everything is synthetic (see ``events/README.md`` for the story the numbers tell). Writes:

* ``exports/aws/acme-billing-cur/cur/burnguard-hourly/20240901-20241001/``: one legacy CUR
  assembly, ``<assemblyId>/burnguard-hourly-1.csv.gz`` (hourly, 131 columns) with its
  ``burnguard-hourly-Manifest.json`` in the assembly folder *and* the period folder (the same
  bytes: the period copy points at the latest assembly, formats.md §1);
* ``exports/azure/billing-exports/cost-management/burnguard-actual-daily/20240901-20240930/``:
  two runs of one "improved" ActualCost export (MCA camelCase columns, daily rows), each
  ``<runId>/part_0_0001.csv`` plus ``<runId>/manifest.json`` (formats.md §5): the run of
  September 16 (data of Sept 1-15) and the run of September 21 (Sept 1-20) that restates it;
* the Google Cloud samples and run, by ``samples/gcp/make_samples.py``;
* ``inventory.json``: the instances of all three clouds, from the same definitions as the
  exports (names, ids, tags, types, hourly list prices).

Running it again gives byte-identical files: no clock, no randomness without a fixed seed,
gzip ``mtime=0``.
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import importlib.util
import io
import json
import random
import shutil
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
EXPORTS = HERE / "exports"


def _load(path: Path, name: str) -> ModuleType:
    """A generator module of this repository, loaded by path (this script runs standalone)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
MONTH_START = datetime(2024, 9, 1, tzinfo=UTC)
MONTH_END = datetime(2024, 10, 1, tzinfo=UTC)
#: End of the billing data: the last hourly line starts at 2024-09-20T23:00Z.
DATA_END = datetime(2024, 9, 21, tzinfo=UTC)
DAYS = 30  # days in September (daily shares of monthly prices)

# ============================================================================================
# AWS: legacy CUR, hourly, one assembly
# ============================================================================================

PAYER = "123456789012"
ACCOUNT_ML = "111122223333"  # ml-research
ACCOUNT_INFERENCE = "444455556666"  # inference
ACCOUNT_SHARED = "777788889999"  # web, platform
CUR_BUCKET = "acme-billing-cur"
CUR_PREFIX = "cur"
REPORT = "burnguard-hourly"
ASSEMBLY_ID = "3f2a9c4e-7b1d-4e6a-9c8f-2d5b7a1e0c93"
SAVINGS_PLAN_ARN = "arn:aws:savingsplans::123456789012:savingsplan/0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
#: A 1-year Compute Savings Plan bought when serve-g5-1 started; it covers serve-g5-1 exactly.
SAVINGS_PLAN_START = datetime(2024, 9, 14, tzinfo=UTC)
SAVINGS_PLAN_TERMS = {
    "savingsPlan/OfferingType": "ComputeSavingsPlans", "savingsPlan/PaymentOption": "No Upfront",
    "savingsPlan/PurchaseTerm": "1yr", "savingsPlan/StartTime": "2024-09-14T00:00:00.000Z",
    "savingsPlan/EndTime": "2025-09-14T00:00:00.000Z",
}

# The CUR column layout (about 120 columns, as AWS writes them) is the benchmark generator's:
# one definition of a realistic CUR header for the samples and the benchmarks.
CUR_COLUMNS = _load(HERE.parent / "tests" / "bench" / "gen_cur.py", "burnguard_gen_cur").COLUMNS
COST_CENTERS = {"ml-research": "CC-4711", "inference": "CC-5120", "web": "CC-3300", "platform": "CC-1000"}


@dataclass(frozen=True)
class Ec2Type:
    hourly: Decimal  # on-demand Linux, the region's list price
    vcpu: str
    memory: str
    gpu: str
    gpu_memory: str
    processor: str
    size_factor: str
    network: str
    storage: str
    family: str = "GPU instance"


EC2_TYPES = {
    "p4d.24xlarge": Ec2Type(Decimal("32.7726"), "96", "1152 GiB", "8", "320 GB", "Intel Xeon Platinum 8275L", "192",
                            "400 Gigabit", "8 x 1000 SSD"),
    "p5.48xlarge": Ec2Type(Decimal("98.32"), "192", "2048 GiB", "8", "640 GB", "AMD EPYC 7R13", "384",
                           "3200 Gigabit", "8 x 3840 SSD"),
    "g5.2xlarge": Ec2Type(Decimal("1.212"), "8", "32 GiB", "1", "24 GB", "AMD EPYC 7R32", "16",
                          "Up to 10 Gigabit", "1 x 450 NVMe SSD"),
    "g5.12xlarge": Ec2Type(Decimal("5.672"), "48", "192 GiB", "4", "96 GB", "AMD EPYC 7R32", "96",
                           "40 Gigabit", "1 x 3800 NVMe SSD"),
    "g6e.24xlarge": Ec2Type(Decimal("15.06559"), "96", "768 GiB", "4", "192 GB", "AMD EPYC 7R13", "192",
                            "200 Gigabit", "2 x 1900 NVMe SSD"),
    "g4dn.xlarge": Ec2Type(Decimal("0.526"), "4", "16 GiB", "1", "16 GB", "Intel Xeon Family", "8",
                           "Up to 25 Gigabit", "1 x 125 NVMe SSD"),
    "g6.xlarge": Ec2Type(Decimal("0.8048"), "4", "16 GiB", "1", "24 GB", "AMD EPYC 7R13", "8",
                         "Up to 10 Gigabit", "1 x 250 NVMe SSD"),
    "m5.xlarge": Ec2Type(Decimal("0.192"), "4", "16 GiB", "", "", "Intel Xeon Platinum 8175", "8",
                         "Up to 10 Gigabit", "EBS only", family="General purpose"),
}
REGIONS = {"us-east-1": ("", "US East (N. Virginia)"), "us-west-2": ("USW2-", "US West (Oregon)")}


@dataclass(frozen=True)
class Ec2:
    """An EC2 instance: its hourly CUR lines from ``start`` to :data:`DATA_END`, and its inventory entry."""

    name: str
    instance_id: str
    instance_type: str
    account: str
    zone: str
    tags: dict[str, str]  # the instance's EC2 tags (CUR writes the activated ones as resourceTags/user:<key>)
    start: datetime
    savings_plan_rate: Decimal | None = None  # covered by the Compute Savings Plan at this rate
    created_by: str = ""
    state: str = "running"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def region(self) -> str:
        return self.zone[:-1]

    @property
    def spec(self) -> Ec2Type:
        return EC2_TYPES[self.instance_type]


def _tags(name: str, team: str, project: str, **more: str) -> dict[str, str]:
    return {"Name": name, "team": team, "project": project, **more}


EC2: list[Ec2] = [
    # -- ml-research (5,000 USD a month on all clouds) -----------------------------------------
    Ec2("trainer-p4d-1", "i-0a3f5c2e9b7d41a01", "p4d.24xlarge", ACCOUNT_ML, "us-east-1a",
        _tags("trainer-p4d-1", "ml-research", "llm-finetune", env="prod", owner="dana"),
        datetime(2024, 9, 16, tzinfo=UTC), created_by="IAMUser:AIDAEXAMPLEDANA01:dana"),
    Ec2("notebook-g5-1", "i-0b7e1d9c3a5f62b02", "g5.2xlarge", ACCOUNT_ML, "us-east-1b",
        _tags("notebook-g5-1", "ml-research", "vision-eval", env="dev", owner="ravi"), MONTH_START,
        created_by="IAMUser:AIDAEXAMPLERAVI02:ravi"),
    Ec2("eval-p5-1", "i-0c2d8f4b6e1a93c03", "p5.48xlarge", ACCOUNT_ML, "us-east-1a",
        _tags("eval-p5-1", "ml-research", "llm-eval", env="prod", owner="dana", **{"burnguard:protect": "true"}),
        datetime(2024, 9, 20, 20, tzinfo=UTC), created_by="IAMUser:AIDAEXAMPLEDANA01:dana"),
    Ec2("features-m5-1", "i-0d9a3e7c5b2f14d04", "m5.xlarge", ACCOUNT_ML, "us-east-1b",
        _tags("features-m5-1", "ml-research", "feature-store", env="prod"), MONTH_START),
    # -- inference (burn rate: at most 50 USD/h of GPU over the last 6 hours) --------------------
    Ec2("serve-g5-1", "i-0e4b6a2d8c3f75e05", "g5.12xlarge", ACCOUNT_INFERENCE, "us-west-2a",
        _tags("serve-g5-1", "inference", "chat-serving", env="prod"), SAVINGS_PLAN_START,
        savings_plan_rate=Decimal("3.9704")),
    Ec2("serve-g5-2", "i-0f1c5e3a7d9b26f06", "g5.12xlarge", ACCOUNT_INFERENCE, "us-west-2b",
        _tags("serve-g5-2", "inference", "chat-serving", env="prod"), datetime(2024, 9, 14, tzinfo=UTC)),
    Ec2("serve-g6e-1", "i-01a8d4f2c6e3b7a07", "g6e.24xlarge", ACCOUNT_INFERENCE, "us-west-2a",
        _tags("serve-g6e-1", "inference", "chat-serving", env="prod"), datetime(2024, 9, 20, 12, tzinfo=UTC)),
    Ec2("loadtest-p4d-1", "i-02b9e5a3d7f4c8b08", "p4d.24xlarge", ACCOUNT_INFERENCE, "us-west-2b",
        _tags("loadtest-p4d-1", "inference", "loadtest-q3", env="staging", owner="mei"),
        datetime(2024, 9, 20, 15, tzinfo=UTC), created_by="IAMUser:AIDAEXAMPLEMEI003:mei"),
    # -- other teams' GPU boxes: no guardrail may touch them -------------------------------------
    Ec2("thumbs-g4dn-1", "i-03c1f6b4e8a5d9c09", "g4dn.xlarge", ACCOUNT_SHARED, "us-east-1c",
        _tags("thumbs-g4dn-1", "web", "site-images", env="prod"), datetime(2024, 9, 9, tzinfo=UTC)),
    Ec2("ci-g6-1", "i-04d2a7c5f9b6e1d10", "g6.xlarge", ACCOUNT_SHARED, "us-east-1c",
        _tags("ci-g6-1", "platform", "ci-runners", env="prod"), datetime(2024, 9, 16, tzinfo=UTC)),
]
# S3 buckets billed per day: (bucket, account, GB stored, tags)
S3_BUCKETS = [
    ("acme-ml-datasets", ACCOUNT_ML, Decimal(6144), {"team": "ml-research", "project": "llm-finetune"}),
    ("acme-billing-cur", PAYER, Decimal("0.35"), {}),  # this CUR's own bucket: untagged
]
S3_RATE = Decimal("0.023")  # per GB-month, first 50 TB
DT_RATE = Decimal("0.09")  # per GB out to the internet, first 10 TB
TAX_RATE = Decimal("0.0635")
TEN = Decimal("1E-10")


def cur_time(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def interval(start: datetime, end: datetime) -> str:
    return f"{start:%Y-%m-%dT%H:%M:%SZ}/{end:%Y-%m-%dT%H:%M:%SZ}"


def cur_number(value: Decimal) -> str:
    """Money and rates as CUR writes them: 10 decimals, tiny amounts in exponent form (``1.2E-4``)."""
    if value and abs(value) < Decimal("0.001"):
        return format(value.normalize(), "E")
    return f"{value.quantize(TEN, rounding=ROUND_HALF_EVEN):f}"


def line_item_id(*parts: object) -> str:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return base64.b32encode(digest).decode().lower().rstrip("=")[:52]


def pseudo_sku(*parts: object) -> str:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return base64.b32encode(digest).decode()[:16].replace("=", "X")


def tag_cells(tags: dict[str, str], created_by: str = "") -> dict[str, str]:
    cells = {f"resourceTags/user:{k}": v for k, v in tags.items()}
    cells["resourceTags/aws:createdBy"] = created_by
    team = tags.get("team", "")
    cells["costCategory/CostCenter"] = COST_CENTERS.get(team, "")
    cells["costCategory/Environment"] = tags.get("env", "")
    return cells


def cur_row(start: datetime, end: datetime, **cells: str) -> dict[str, str]:
    row = dict.fromkeys(CUR_COLUMNS, "")
    row.update({
        "identity/TimeInterval": interval(start, end),
        "bill/InvoicingEntity": "Amazon Web Services, Inc.",
        "bill/BillingEntity": "AWS",
        "bill/BillType": "Anniversary",
        "bill/PayerAccountId": PAYER,
        "bill/BillingPeriodStartDate": cur_time(MONTH_START),
        "bill/BillingPeriodEndDate": cur_time(MONTH_END),
        "lineItem/UsageStartDate": cur_time(start),
        "lineItem/UsageEndDate": cur_time(end),
        "lineItem/CurrencyCode": "USD",
        "lineItem/LegalEntity": "Amazon Web Services, Inc.",
        "pricing/currency": "USD",
    })
    unknown = set(cells) - set(CUR_COLUMNS)
    assert not unknown, unknown
    row.update(cells)
    row["identity/LineItemId"] = line_item_id(row["lineItem/UsageAccountId"], row["lineItem/LineItemType"],
                                              row["lineItem/ProductCode"], row["lineItem/ResourceId"],
                                              row["lineItem/UsageType"], start)
    return row


def hours(start: datetime, end: datetime = DATA_END) -> Iterator[datetime]:
    t = start
    while t < end:
        yield t
        t += timedelta(hours=1)


def days(start: datetime = MONTH_START, end: datetime = DATA_END) -> Iterator[datetime]:
    t = start
    while t < end:
        yield t
        t += timedelta(days=1)


def ec2_rows(inst: Ec2) -> Iterator[dict[str, str]]:
    spec = inst.spec
    prefix, location = REGIONS[inst.region]
    usage_type = f"{prefix}BoxUsage:{inst.instance_type}"
    sku = pseudo_sku("ec2", inst.instance_type, inst.region)
    rate = cur_number(spec.hourly)
    size = spec.size_factor
    common = {
        "lineItem/UsageAccountId": inst.account, "lineItem/ProductCode": "AmazonEC2",
        "lineItem/UsageType": usage_type, "lineItem/Operation": "RunInstances",
        "lineItem/AvailabilityZone": inst.zone, "lineItem/ResourceId": inst.instance_id,
        "lineItem/UsageAmount": "1.0", "lineItem/NormalizationFactor": size,
        "lineItem/NormalizedUsageAmount": size,
        "product/ProductName": "Amazon Elastic Compute Cloud", "product/clockSpeed": "3.3 GHz",
        "product/currentGeneration": "Yes", "product/ecu": "NA", "product/enhancedNetworkingSupported": "Yes",
        "product/gpu": spec.gpu, "product/gpuMemory": spec.gpu_memory, "product/instanceFamily": spec.family,
        "product/instanceType": inst.instance_type, "product/licenseModel": "No License required",
        "product/location": location, "product/locationType": "AWS Region", "product/memory": spec.memory,
        "product/networkPerformance": spec.network, "product/normalizationSizeFactor": size,
        "product/operatingSystem": "Linux", "product/operation": "RunInstances",
        "product/physicalProcessor": spec.processor, "product/preInstalledSw": "NA",
        "product/processorArchitecture": "64-bit", "product/productFamily": "Compute Instance",
        "product/region": inst.region, "product/regionCode": inst.region, "product/servicecode": "AmazonEC2",
        "product/servicename": "Amazon Elastic Compute Cloud", "product/sku": sku, "product/storage": spec.storage,
        "product/tenancy": "Shared", "product/usagetype": usage_type, "product/vcpu": spec.vcpu,
        "pricing/RateCode": f"{sku}.JRTCKXETXF.6YS6EN2CT7", "pricing/RateId": str(int(sku[:8], 36) % 10**10),
        "pricing/publicOnDemandCost": rate, "pricing/publicOnDemandRate": rate, "pricing/term": "OnDemand",
        "pricing/unit": "Hrs", **tag_cells(inst.tags, inst.created_by),
    }
    description = f"${spec.hourly.normalize():f} per On Demand Linux {inst.instance_type} Instance Hour"
    for start in hours(inst.start):
        end = start + timedelta(hours=1)
        if inst.savings_plan_rate is None:
            yield cur_row(start, end, **common, **{
                "lineItem/LineItemType": "Usage", "lineItem/UnblendedRate": rate, "lineItem/UnblendedCost": rate,
                "lineItem/BlendedRate": rate, "lineItem/BlendedCost": rate,
                "lineItem/LineItemDescription": description})
            continue
        sp_rate = cur_number(inst.savings_plan_rate)
        sp = {"savingsPlan/SavingsPlanARN": SAVINGS_PLAN_ARN}
        # The covered line keeps the on-demand cost; the negation line cancels it (formats.md §1.3).
        yield cur_row(start, end, **common, **sp, **{
            "lineItem/LineItemType": "SavingsPlanCoveredUsage", "lineItem/UnblendedRate": rate,
            "lineItem/UnblendedCost": rate, "lineItem/BlendedRate": rate, "lineItem/BlendedCost": rate,
            "lineItem/LineItemDescription": description, "savingsPlan/SavingsPlanEffectiveCost": sp_rate,
            "savingsPlan/SavingsPlanRate": sp_rate, **SAVINGS_PLAN_TERMS})
        yield cur_row(start, end, **{**common, "pricing/publicOnDemandCost": "", "pricing/publicOnDemandRate": "",
                                     "pricing/term": "", "pricing/RateCode": "", "pricing/RateId": ""}, **sp, **{
            "lineItem/LineItemType": "SavingsPlanNegation", "lineItem/UnblendedRate": "-" + rate,
            "lineItem/UnblendedCost": "-" + rate, "lineItem/BlendedRate": "-" + rate,
            "lineItem/BlendedCost": "-" + rate,
            "lineItem/LineItemDescription": f"SavingsPlanNegation used by AccountId : {inst.account} and "
                                            f"UsageSku : {sku}"})


def savings_plan_fee_rows() -> Iterator[dict[str, str]]:
    """The plan's hourly recurring fee, from its purchase on. Its commitment equals the covered
    instance's usage at the plan rate, so every hour is fully used (effective cost 0: the usage
    lines carry it)."""
    covered = next(e for e in EC2 if e.savings_plan_rate is not None)
    assert covered.savings_plan_rate is not None
    commitment = cur_number(covered.savings_plan_rate)
    hours_in_period = int((MONTH_END - SAVINGS_PLAN_START) / timedelta(hours=1))
    for start in hours(SAVINGS_PLAN_START):
        yield cur_row(start, start + timedelta(hours=1), **{
            "lineItem/UsageAccountId": covered.account, "lineItem/LineItemType": "SavingsPlanRecurringFee",
            "lineItem/ProductCode": "ComputeSavingsPlans", "lineItem/UsageType": "ComputeSP:1yrNoUpfront",
            "lineItem/ResourceId": SAVINGS_PLAN_ARN, "lineItem/UsageAmount": "1.0",
            "lineItem/UnblendedRate": commitment, "lineItem/UnblendedCost": commitment,
            "lineItem/BlendedRate": commitment, "lineItem/BlendedCost": commitment,
            "lineItem/LineItemDescription": "1 year No Upfront Compute Savings Plan",
            "product/ProductName": "Savings Plans for AWS Compute usage", "product/productFamily": "Savings Plans",
            "savingsPlan/SavingsPlanARN": SAVINGS_PLAN_ARN, "savingsPlan/TotalCommitmentToDate": commitment,
            "savingsPlan/UsedCommitment": commitment,
            "savingsPlan/RecurringCommitmentForBillingPeriod": cur_number(covered.savings_plan_rate
                                                                          * hours_in_period),
            **SAVINGS_PLAN_TERMS})


def s3_rows() -> Iterator[dict[str, str]]:
    for bucket, account, gb, tags in S3_BUCKETS:
        sku = pseudo_sku("s3", "us-east-1")
        for day in days():
            amount = (gb / DAYS).quantize(TEN)  # GB-month stored that day
            cost = (amount * S3_RATE).quantize(Decimal("1E-12"))
            yield cur_row(day, day + timedelta(days=1), **{
                "lineItem/UsageAccountId": account, "lineItem/LineItemType": "Usage",
                "lineItem/ProductCode": "AmazonS3", "lineItem/UsageType": "TimedStorage-ByteHrs",
                "lineItem/Operation": "StandardStorage", "lineItem/ResourceId": bucket,
                "lineItem/UsageAmount": cur_number(amount), "lineItem/UnblendedRate": cur_number(S3_RATE),
                "lineItem/UnblendedCost": cur_number(cost), "lineItem/BlendedRate": cur_number(S3_RATE),
                "lineItem/BlendedCost": cur_number(cost),
                "lineItem/LineItemDescription": "$0.023 per GB - first 50 TB / month of storage used",
                "product/ProductName": "Amazon Simple Storage Service", "product/durability": "99.999999999%",
                "product/location": "US East (N. Virginia)", "product/locationType": "AWS Region",
                "product/productFamily": "Storage", "product/region": "us-east-1", "product/regionCode": "us-east-1",
                "product/servicecode": "AmazonS3", "product/servicename": "Amazon Simple Storage Service",
                "product/sku": sku, "product/storageClass": "General Purpose",
                "product/usagetype": "TimedStorage-ByteHrs",
                "product/volumeType": "Standard", "pricing/publicOnDemandCost": cur_number(cost),
                "pricing/publicOnDemandRate": cur_number(S3_RATE), "pricing/term": "OnDemand", "pricing/unit": "GB-Mo",
                **tag_cells(tags)})


def transfer_rows(rnd: random.Random) -> Iterator[dict[str, str]]:
    """Internet egress of the serving and thumbnail instances, per day."""
    for inst in (e for e in EC2 if e.name in ("serve-g5-1", "thumbs-g4dn-1")):
        prefix, location = REGIONS[inst.region]
        usage_type = f"{prefix}DataTransfer-Out-Bytes"
        sku = pseudo_sku("dt", inst.region)
        for day in days(inst.start):
            gb = Decimal(rnd.randrange(8_000, 30_000)) / 1000
            cost = gb * DT_RATE
            yield cur_row(day, day + timedelta(days=1), **{
                "lineItem/UsageAccountId": inst.account, "lineItem/LineItemType": "Usage",
                "lineItem/ProductCode": "AWSDataTransfer", "lineItem/UsageType": usage_type,
                "lineItem/Operation": "RunInstances", "lineItem/ResourceId": inst.instance_id,
                "lineItem/UsageAmount": cur_number(gb), "lineItem/UnblendedRate": cur_number(DT_RATE),
                "lineItem/UnblendedCost": cur_number(cost), "lineItem/BlendedRate": cur_number(DT_RATE),
                "lineItem/BlendedCost": cur_number(cost),
                "lineItem/LineItemDescription": "$0.090 per GB - first 10 TB / month data transfer out beyond the "
                                                "global free tier",
                "product/ProductName": "AWS Data Transfer", "product/fromLocation": location,
                "product/fromLocationType": "AWS Region", "product/fromRegionCode": inst.region,
                "product/productFamily": "Data Transfer", "product/region": inst.region,
                "product/regionCode": inst.region, "product/servicecode": "AWSDataTransfer",
                "product/servicename": "AWS Data Transfer", "product/sku": sku, "product/toLocation": "External",
                "product/toLocationType": "Other", "product/transferType": "AWS Outbound",
                "product/usagetype": usage_type, "pricing/publicOnDemandCost": cur_number(cost),
                "pricing/publicOnDemandRate": cur_number(DT_RATE), "pricing/term": "OnDemand", "pricing/unit": "GB",
                **tag_cells(inst.tags)})


def tax_rows(rows: list[dict[str, str]]) -> Iterator[dict[str, str]]:
    """One Tax line per product for the whole month (start = month start, end = next month)."""
    names = {"AmazonEC2": "Amazon Elastic Compute Cloud", "AmazonS3": "Amazon Simple Storage Service",
             "AWSDataTransfer": "AWS Data Transfer", "ComputeSavingsPlans": "Savings Plans for AWS Compute usage"}
    subtotal: dict[str, Decimal] = {}
    for r in rows:
        code = r["lineItem/ProductCode"]
        subtotal[code] = subtotal.get(code, Decimal(0)) + Decimal(r["lineItem/UnblendedCost"])
    for code in sorted(subtotal):
        tax = (subtotal[code] * TAX_RATE).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
        yield cur_row(MONTH_START, MONTH_END, **{
            "lineItem/UsageAccountId": PAYER, "lineItem/LineItemType": "Tax", "lineItem/ProductCode": code,
            "lineItem/UsageAmount": "1.0", "lineItem/UnblendedCost": cur_number(tax),
            "lineItem/BlendedCost": cur_number(tax), "lineItem/LineItemDescription": f"Tax for product code {code}",
            "lineItem/TaxType": "Sales Tax", "product/ProductName": names[code], "pricing/publicOnDemandCost": "0.0"})


def cur_rows() -> list[dict[str, str]]:
    rnd = random.Random(20240921)
    rows = [r for inst in EC2 for r in ec2_rows(inst)] + list(savings_plan_fee_rows()) + list(s3_rows()) + list(
        transfer_rows(rnd))
    rows.sort(key=lambda r: (r["lineItem/UsageStartDate"], r["lineItem/UsageAccountId"], r["lineItem/ResourceId"],
                             r["lineItem/LineItemType"]))
    return rows + list(tax_rows(rows))


def cur_csv_gz(rows: list[dict[str, str]]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CUR_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
        gz.write(text.getvalue().encode("utf-8"))
    return buf.getvalue()


def column_type(name: str) -> str:
    if name.endswith(("Date", "Time")) and not name.startswith("product/"):
        return "DateTime"
    if name == "identity/TimeInterval":
        return "Interval"
    if name.endswith(("Cost", "Rate", "Amount", "Factor", "Fee")) and not name.startswith("product/"):
        return "OptionalBigDecimal"
    return "OptionalString"


def cur_manifest(report_key: str) -> dict[str, Any]:
    columns = [{"category": c.split("/", 1)[0], "name": c.split("/", 1)[1], "type": column_type(c)}
               for c in CUR_COLUMNS]
    return {
        "assemblyId": ASSEMBLY_ID,
        "account": PAYER,
        "columns": columns,
        "charset": "UTF-8",
        "compression": "GZIP",
        "contentType": "text/csv",
        "reportId": hashlib.sha256(f"{PAYER}/{REPORT}".encode()).hexdigest(),
        "reportName": REPORT,
        "billingPeriod": {"start": "20240901T000000.000Z", "end": "20241001T000000.000Z"},
        "bucket": CUR_BUCKET,
        "reportKeys": [report_key],
        "additionalArtifactKeys": [],
    }


def write_aws() -> None:
    period = f"{CUR_PREFIX}/{REPORT}/20240901-20241001"
    report_key = f"{period}/{ASSEMBLY_ID}/{REPORT}-1.csv.gz"
    bucket = EXPORTS / "aws" / CUR_BUCKET
    rows = cur_rows()
    data = bucket / report_key
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_bytes(cur_csv_gz(rows))
    manifest = (json.dumps(cur_manifest(report_key), indent=2) + "\n").encode()
    # The assembly's manifest, then the period folder's copy that points at the latest assembly.
    (data.parent / f"{REPORT}-Manifest.json").write_bytes(manifest)
    (bucket / period / f"{REPORT}-Manifest.json").write_bytes(manifest)
    print(f"{data.relative_to(HERE.parent)}: {len(rows)} rows, {data.stat().st_size:,} bytes")


# ============================================================================================
# Azure: an "improved" ActualCost export (MCA), daily rows, two runs
# ============================================================================================

AZ_CONTAINER = "billing-exports"
AZ_ROOT = "cost-management"
AZ_EXPORT = "burnguard-actual-daily"
AZ_BILLING_ACCOUNT = "7c1b5e4a-9d3f-4e21-8b6a-0f2d4c6e8a10:3e5f7a9b-1c2d-4e6f-8a0b-2c4d6e8f0a1b_2019-05-31"
AZ_BILLING_PROFILE = "AB12-CD34-EF5-GH6"
AZ_INVOICE_SECTION = "IJ78-KL90-MN1-OP2"
AZ_SCOPE = f"/providers/Microsoft.Billing/billingAccounts/{AZ_BILLING_ACCOUNT}/billingProfiles/{AZ_BILLING_PROFILE}"
AZ_SUB_ML = ("5f1c3a7e-2b4d-4c6e-8f0a-1b3d5e7f9a2c", "ml-research")
AZ_SUB_SHARED = ("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "shared-services")
BURNGUARD_PRINCIPAL = "b3d1f0a2-7c4e-4d5f-9a8b-6c7d8e9f0a1b"

MCA_COLUMNS = [
    "invoiceId", "previousInvoiceId", "billingAccountId", "billingAccountName", "billingProfileId",
    "billingProfileName", "invoiceSectionId", "invoiceSectionName", "resellerName", "resellerMpnId", "costCenter",
    "billingPeriodEndDate", "billingPeriodStartDate", "servicePeriodEndDate", "servicePeriodStartDate", "date",
    "serviceFamily", "productOrderId", "productOrderName", "consumedService", "meterId", "meterName",
    "meterCategory", "meterSubCategory", "meterRegion", "ProductId", "ProductName", "SubscriptionId",
    "subscriptionName", "publisherType", "publisherId", "publisherName", "resourceGroupName", "ResourceId",
    "resourceLocation", "location", "effectivePrice", "quantity", "unitOfMeasure", "chargeType", "billingCurrency",
    "pricingCurrency", "costInBillingCurrency", "costInPricingCurrency", "costInUsd", "paygCostInBillingCurrency",
    "paygCostInUsd", "exchangeRatePricingToBilling", "exchangeRateDate", "isAzureCreditEligible", "serviceInfo1",
    "serviceInfo2", "additionalInfo", "tags", "PayGPrice", "frequency", "term", "reservationId", "reservationName",
    "pricingModel", "unitPrice", "costAllocationRuleName", "benefitId", "benefitName", "provider",
]


@dataclass(frozen=True)
class AzureResource:
    """A billed Azure resource: a VM (``size`` set; also in the inventory) or another meter."""

    name: str
    subscription: tuple[str, str]
    group: str
    provider_type: str  # Microsoft.Compute/virtualMachines ...
    tags: dict[str, str]
    price: Decimal  # per unit of ``unit``
    unit: str
    meter: tuple[str, str, str, str]  # category, subcategory, name, product name
    service_family: str
    consumed_service: str
    #: usage per day of September (hours for VMs; a share of the month for disks; GB for bandwidth)
    usage: dict[int, Decimal]
    size: str | None = None
    vcpus: int = 0
    state: str = "running"
    fail_stop: str | None = None
    resource_name: str | None = None  # the billed resource when it is not this one (bandwidth of a VM)

    @property
    def resource_id(self) -> str:
        return (f"/subscriptions/{self.subscription[0]}/resourceGroups/{self.group}/providers/{self.provider_type}/"
                f"{self.resource_name or self.name}")


def _full_days(first: int, last: int, amount: Decimal) -> dict[int, Decimal]:
    return dict.fromkeys(range(first, last + 1), amount)


DAY_HOURS = Decimal(24)
DISK_SHARE = Decimal("0.0333333333")  # a day of a 30-day month
A100_FAILURE = (
    f"AuthorizationFailed: The client '{BURNGUARD_PRINCIPAL}' with object id '{BURNGUARD_PRINCIPAL}' does not have "
    "authorization to perform action 'Microsoft.Compute/virtualMachines/deallocate/action' over scope "
    f"'/subscriptions/{AZ_SUB_ML[0]}/resourceGroups/ml-research-rg/providers/Microsoft.Compute/virtualMachines/"
    "trainer-a100-az' or the scope is invalid. If access was recently granted, please refresh your credentials."
)
AZURE: list[AzureResource] = [
    AzureResource("trainer-a100-az", AZ_SUB_ML, "ml-research-rg", "Microsoft.Compute/virtualMachines",
                  {"team": "ml-research", "project": "llm-finetune", "owner": "dana@acme.example"},
                  Decimal("3.673"), "1 Hour",
                  ("Virtual Machines", "NCadsA100v4 Series", "NC24ads A100 v4",
                   "Virtual Machines NCadsA100v4 Series - NC24ads A100 v4 - US East"), "Compute", "Microsoft.Compute",
                  {18: Decimal(15), 19: DAY_HOURS, 20: DAY_HOURS}, size="Standard_NC24ads_A100_v4", vcpus=24,
                  fail_stop=A100_FAILURE),
    AzureResource("vision-nc6s-az", AZ_SUB_ML, "ml-research-rg", "Microsoft.Compute/virtualMachines",
                  {"team": "ml-research", "project": "vision-eval", "owner": "ravi@acme.example"},
                  Decimal("3.06"), "1 Hour",
                  ("Virtual Machines", "NCSv3 Series", "NC6s v3", "Virtual Machines NCSv3 Series - NC6s v3 - US East"),
                  "Compute", "Microsoft.Compute", {2: Decimal(16), 3: DAY_HOURS, 4: Decimal(12)},
                  size="Standard_NC6s_v3", vcpus=6, state="stopped"),
    AzureResource("ml-scratch-disk", AZ_SUB_ML, "ml-research-rg", "Microsoft.Compute/disks",
                  {"team": "ml-research", "project": "llm-finetune"}, Decimal("135.17"), "1/Month",
                  ("Storage", "Premium SSD Managed Disks", "P30 LRS Disk",
                   "Premium SSD Managed Disks - P30 LRS - US East"), "Storage", "Microsoft.Compute",
                  _full_days(1, 20, DISK_SHARE)),
    # Tag names are case-insensitive in Azure: "Team" and "team" are one key (tags.py rule 4).
    AzureResource("thumbs-nv-az", AZ_SUB_SHARED, "web-rg", "Microsoft.Compute/virtualMachines",
                  {"Team": "web", "Project": "site-images"}, Decimal("0.454"), "1 Hour",
                  ("Virtual Machines", "NVadsA10v5 Series", "NV6ads A10 v5",
                   "Virtual Machines NVadsA10v5 Series - NV6ads A10 v5 - US East"), "Compute", "Microsoft.Compute",
                  _full_days(1, 20, DAY_HOURS), size="Standard_NV6ads_A10_v5", vcpus=6),
    AzureResource("thumbs-nv-az-egress", AZ_SUB_SHARED, "web-rg", "Microsoft.Compute/virtualMachines",
                  {"Team": "web", "Project": "site-images"}, Decimal("0.087"), "1 GB",
                  ("Bandwidth", "", "Standard Data Transfer Out", "Rtn Preference: MGN - Standard Data Transfer Out"),
                  "Networking", "Microsoft.Compute",
                  {d: Decimal(40 + (d * 37) % 23) for d in range(1, 21)}, resource_name="thumbs-nv-az"),
    AzureResource("jump-d2s-az", AZ_SUB_SHARED, "platform-rg", "Microsoft.Compute/virtualMachines",
                  {"team": "platform", "project": "ci-runners"}, Decimal("0.096"), "1 Hour",
                  ("Virtual Machines", "Dsv5 Series", "D2s v5", "Virtual Machines Dsv5 Series - D2s v5 - US East"),
                  "Compute", "Microsoft.Compute", _full_days(1, 20, DAY_HOURS), size="Standard_D2s_v5", vcpus=2),
]


@dataclass(frozen=True)
class AzureRun:
    run_id: str
    submitted: str  # runInfo.submittedTime
    last_day: int  # data through this day of September
    partial: dict[str, Decimal]  # resource name -> share of its last day this run already saw


AZURE_RUNS = [
    # The run of September 16 saw 18 of the 24 hours of September 15 (billing data lags).
    AzureRun("1c6f2e8a-4b3d-4f5e-9a7c-0d2b4e6f8a13", "2024-09-16T04:12:31.5521987Z", 15,
             {"thumbs-nv-az": Decimal("0.75"), "jump-d2s-az": Decimal("0.75"), "ml-scratch-disk": Decimal("0.75"),
              "thumbs-nv-az-egress": Decimal("0.75")}),
    # The run of September 21 restates the whole month to date, September 15 included.
    AzureRun("8e3a5c7d-1f2b-4d6e-8a9c-5b7d9f1e3a24", "2024-09-21T04:09:58.1187342Z", 20, {}),
]


def az_date(day: date) -> str:
    return day.strftime("%m/%d/%Y")


def az_number(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def azure_rows(run: AzureRun) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for res in AZURE:
        category, subcategory, meter_name, product = res.meter
        meter_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"meter/{meter_name}"))
        sub_id, sub_name = res.subscription
        info = ""
        if res.size:
            info = json.dumps({"UsageType": "ComputeHR", "ImageType": "Canonical", "ServiceType": res.size,
                               "VMName": "", "VMProperties": None, "VCPUs": res.vcpus, "CPUs": 0},
                              separators=(",", ":"))
        for day_no, usage in sorted(res.usage.items()):
            if day_no > run.last_day:
                continue
            quantity = usage
            if day_no == run.last_day and res.name in run.partial:
                quantity = usage * run.partial[res.name]
            cost = quantity * res.price
            cost_text = az_number(cost.quantize(Decimal("1E-12"), rounding=ROUND_HALF_EVEN))
            day = date(2024, 9, day_no)
            rows.append({
                "invoiceId": "", "previousInvoiceId": "", "billingAccountId": AZ_BILLING_ACCOUNT,
                "billingAccountName": "Acme Research Inc.", "billingProfileId": AZ_BILLING_PROFILE,
                "billingProfileName": "Acme Research", "invoiceSectionId": AZ_INVOICE_SECTION,
                "invoiceSectionName": "Engineering", "resellerName": "", "resellerMpnId": "", "costCenter": "",
                "billingPeriodEndDate": "09/30/2024", "billingPeriodStartDate": "09/01/2024",
                "servicePeriodEndDate": "09/30/2024", "servicePeriodStartDate": "09/01/2024", "date": az_date(day),
                "serviceFamily": res.service_family,
                "productOrderId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"order/{sub_id}")),
                "productOrderName": "Azure plan", "consumedService": res.consumed_service, "meterId": meter_id,
                "meterName": meter_name, "meterCategory": category, "meterSubCategory": subcategory,
                "meterRegion": "US East", "ProductId": pseudo_sku("az", product)[:12], "ProductName": product,
                "SubscriptionId": sub_id, "subscriptionName": sub_name, "publisherType": "Microsoft",
                "publisherId": "", "publisherName": "Microsoft", "resourceGroupName": res.group,
                "ResourceId": res.resource_id, "resourceLocation": "eastus", "location": "US East",
                "effectivePrice": az_number(res.price), "quantity": az_number(quantity),
                "unitOfMeasure": res.unit, "chargeType": "Usage", "billingCurrency": "USD",
                "pricingCurrency": "USD", "costInBillingCurrency": cost_text, "costInPricingCurrency": cost_text,
                "costInUsd": cost_text, "paygCostInBillingCurrency": cost_text, "paygCostInUsd": cost_text,
                "exchangeRatePricingToBilling": "1", "exchangeRateDate": "09/01/2024",
                "isAzureCreditEligible": "True", "serviceInfo1": "", "serviceInfo2": "", "additionalInfo": info,
                "tags": json.dumps(res.tags, separators=(",", ":")), "PayGPrice": az_number(res.price),
                "frequency": "UsageBased", "term": "", "reservationId": "", "reservationName": "",
                "pricingModel": "OnDemand", "unitPrice": az_number(res.price), "costAllocationRuleName": "",
                "benefitId": "", "benefitName": "", "provider": "Azure",
            })
    rows.sort(key=lambda r: (r["date"], r["ResourceId"], r["meterName"]))
    return rows


def azure_csv(rows: list[dict[str, str]]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=MCA_COLUMNS)  # \r\n line ends, as the exports write them
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode("utf-8")


def azure_manifest(run: AzureRun, blob: str, data: bytes, rows: int) -> dict[str, Any]:
    return {
        "manifestVersion": "2024-04-01",
        "byteCount": len(data),
        "blobCount": 1,
        "dataRowCount": rows,
        "exportConfig": {
            "exportName": AZ_EXPORT,
            "resourceId": f"{AZ_SCOPE}/providers/Microsoft.CostManagement/exports/{AZ_EXPORT}",
            "dataVersion": "2023-12-01-preview",
            "apiVersion": "2023-07-01-preview",
            "type": "ActualCost",
            "timeFrame": "MonthToDate",
            "granularity": "Daily",
        },
        "deliveryConfig": {
            "partitionData": True,
            "dataOverwriteBehavior": "CreateNewReport",
            "fileFormat": "Csv",
            "compressionMode": "None",
            "containerUri": f"/subscriptions/{AZ_SUB_SHARED[0]}/resourceGroups/finops-rg/providers/"
                            "Microsoft.Storage/storageAccounts/acmefinopsexports",
            "rootFolderPath": AZ_ROOT,
        },
        "runInfo": {
            "executionType": "Scheduled",
            "submittedTime": run.submitted,
            "runId": run.run_id,
            "startDate": "2024-09-01T00:00:00",
            "endDate": f"2024-09-{run.last_day + 1:02d}T00:00:00",
        },
        "blobs": [{"blobName": blob, "byteCount": len(data), "dataRowCount": rows}],
    }


def write_azure() -> None:
    container = EXPORTS / "azure" / AZ_CONTAINER
    for run in AZURE_RUNS:
        folder = f"{AZ_ROOT}/{AZ_EXPORT}/20240901-20240930/{run.run_id}"
        blob = f"{folder}/part_0_0001.csv"
        rows = azure_rows(run)
        data = azure_csv(rows)
        (container / folder).mkdir(parents=True, exist_ok=True)
        (container / blob).write_bytes(data)
        # manifest.json last: it is the run's completion marker.
        manifest = azure_manifest(run, blob, data, len(rows))
        (container / folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        print(f"{(container / blob).relative_to(HERE.parent)}: {len(rows)} rows, {len(data):,} bytes")


# ============================================================================================
# Inventory
# ============================================================================================

def load_gcp_generator() -> ModuleType:
    return _load(HERE / "samples" / "gcp" / "make_samples.py", "burnguard_gcp_samples")


def inventory(gcp: ModuleType) -> dict[str, Any]:
    instances: list[dict[str, Any]] = []
    for inst in EC2:
        instances.append({"cloud": "aws", "id": inst.instance_id, "name": inst.name, "location": inst.zone,
                          "type": inst.instance_type, "state": inst.state, "tags": dict(inst.tags),
                          "hourly_cost": str(inst.spec.hourly), "currency": "USD", **inst.extra})
    instances += gcp.inventory()
    for res in AZURE:
        if res.size is None or res.resource_name is not None:
            continue
        entry: dict[str, Any] = {"cloud": "azure", "id": res.resource_id, "name": res.name, "location": res.group,
                                 "type": res.size, "state": res.state, "tags": dict(res.tags),
                                 "hourly_cost": str(res.price), "currency": "USD"}
        if res.fail_stop:
            entry["fail_stop"] = res.fail_stop
        instances.append(entry)
    return {
        "_comment": "Synthetic instances of the embedded mode, written by events/make_samples.py: the same machines "
                    "as the sample exports. burnguard works on a copy in its state directory.",
        "instances": instances,
    }


def main() -> None:
    for provider in ("aws", "azure", "gcp"):
        shutil.rmtree(EXPORTS / provider, ignore_errors=True)
    write_aws()
    write_azure()
    gcp = load_gcp_generator()
    gcp.main(EXPORTS)
    (HERE / "inventory.json").write_text(json.dumps(inventory(gcp), indent=2) + "\n")
    print(f"inventory.json: {len(inventory(gcp)['instances'])} instances")


if __name__ == "__main__":
    main()
