"""Delivery identity and manifests: the public fixtures' real layouts, URL-encoded event keys,
and every bad input named by its key and field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from burnguard.core.delivery import (
    Delivery,
    DeliveryFile,
    ObjectRole,
    blob_path_from_subject,
    classify_object,
    delivery_for_single_file,
    delivery_id,
    parse_azure_manifest,
    parse_cur_manifest,
    parse_data_exports_manifest,
    parse_gcp_manifest,
    parse_s3_key,
)
from burnguard.core.errors import InputError
from tests.helpers import FIXTURES, fixture

# --------------------------------------------------------------------------------------------
# AWS legacy CUR: the real koku layout

CUR_ROOT = FIXTURES / "koku/aws-cur-s3-layout"
ASSEMBLY = "861af42f-713c-4a42-9562-9158a7625630"
PERIOD_MANIFEST = "my-prefix/my-report/20180801-20180901/my-report-Manifest.json"
ASSEMBLY_MANIFEST = f"my-prefix/my-report/20180801-20180901/{ASSEMBLY}/my-report-Manifest.json"
DATA_FILE = f"my-prefix/my-report/20180801-20180901/{ASSEMBLY}/my-report-1.csv.gz"


def cur_bytes(key: str = PERIOD_MANIFEST) -> bytes:
    return fixture(f"koku/aws-cur-s3-layout/{key}").read_bytes()


def cur_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(cur_bytes())
    return doc


def test_both_cur_manifests_are_one_delivery() -> None:
    period = parse_cur_manifest(cur_bytes(PERIOD_MANIFEST), PERIOD_MANIFEST, bucket="billing-bucket")
    assembly = parse_cur_manifest(cur_bytes(ASSEMBLY_MANIFEST), ASSEMBLY_MANIFEST, bucket="billing-bucket")
    assert period == assembly
    assert period.delivery_id == assembly.delivery_id
    assert period.provider == "aws"
    assert period.layout == "cur"
    assert period.billing_period == "2018-08"
    assert period.version == ASSEMBLY
    assert period.source == "aws-cur|4090136019287|my-prefix|my-report"
    assert period.files == (DeliveryFile(key=DATA_FILE),)
    assert (CUR_ROOT / period.files[0].key).is_file()
    assert period.complete is True
    assert period.expected_rows is None
    assert period.cost_basis is None
    assert period.is_cost_data
    assert period.bucket == "billing-bucket"


def test_cur_delivery_id_is_pinned() -> None:
    # The id is stored in the ledger: a change of scheme must be a deliberate migration.
    d = parse_cur_manifest(cur_bytes(), PERIOD_MANIFEST)
    assert d.delivery_id == "aws-2018-08-043c403f5c5b4559c078f8494d638ac3"
    assert d.delivery_id == delivery_id("aws", d.source, "2018-08", ASSEMBLY)


def test_every_object_of_the_koku_layout_is_classified() -> None:
    roles = {str(p.relative_to(CUR_ROOT)): classify_object("aws", "bkt", str(p.relative_to(CUR_ROOT)))
             for p in CUR_ROOT.rglob("*") if p.is_file()}
    assert set(roles) == {PERIOD_MANIFEST, ASSEMBLY_MANIFEST, DATA_FILE}
    assert roles[PERIOD_MANIFEST].kind == "manifest"
    assert roles[PERIOD_MANIFEST].manifest_format == "cur"
    assert roles[PERIOD_MANIFEST].version is None
    assert roles[ASSEMBLY_MANIFEST].kind == "manifest"
    assert roles[ASSEMBLY_MANIFEST].version == ASSEMBLY
    data = roles[DATA_FILE]
    assert (data.kind, data.billing_period, data.version, data.export_name, data.prefix) == (
        "data", "2018-08", ASSEMBLY, "my-report", "my-prefix")
    assert not data.is_trigger
    # The account is only in the manifest, so the key alone cannot name the delivery.
    assert data.delivery_id is None
    assert all(r.billing_period == "2018-08" for r in roles.values())


def test_cur_source_falls_back_to_the_bucket_without_an_account() -> None:
    doc = cur_doc()
    del doc["account"]
    d = parse_cur_manifest(json.dumps(doc).encode(), PERIOD_MANIFEST, bucket="billing-bucket")
    assert d.source == "aws-cur|s3://billing-bucket|my-prefix|my-report"
    # koku's manifest has "bucket": "" and no bucket was given: nothing names the source.
    with pytest.raises(InputError) as info:
        parse_cur_manifest(json.dumps(doc).encode(), PERIOD_MANIFEST)
    assert info.value.field == "account"
    assert info.value.file == PERIOD_MANIFEST


OVERWRITE_KEY = "cur/daily/20240901-20241001/daily-Manifest.json"


def overwrite_manifest() -> bytes:
    doc = cur_doc()
    del doc["assemblyId"]
    doc["reportName"] = "daily"
    doc["billingPeriod"] = {"start": "20240901T000000.000Z", "end": "20241001T000000.000Z"}
    doc["reportKeys"] = ["cur/daily/20240901-20241001/daily-1.csv.gz", "cur/daily/20240901-20241001/daily-2.csv.gz"]
    return json.dumps(doc).encode()


def test_overwrite_mode_versions_by_etag_then_last_modified() -> None:
    quoted = parse_cur_manifest(overwrite_manifest(), OVERWRITE_KEY, metadata={"ETag": '"9b2cf535f27731c9"'})
    bare = parse_cur_manifest(overwrite_manifest(), OVERWRITE_KEY, metadata={"eTag": "9b2cf535f27731c9"})
    assert quoted.version == "etag:9b2cf535f27731c9"
    assert quoted.delivery_id == bare.delivery_id
    assert [f.key for f in quoted.files] == ["cur/daily/20240901-20241001/daily-1.csv.gz",
                                             "cur/daily/20240901-20241001/daily-2.csv.gz"]
    modified = parse_cur_manifest(overwrite_manifest(), OVERWRITE_KEY,
                                  metadata={"LastModified": datetime(2024, 9, 5, 6, 0, tzinfo=UTC)})
    assert modified.version == "modified:2024-09-05T06:00:00+00:00"
    assert modified.produced_at == datetime(2024, 9, 5, 6, 0, tzinfo=UTC)
    assert modified.delivery_id != quoted.delivery_id
    with pytest.raises(InputError) as info:
        parse_cur_manifest(overwrite_manifest(), OVERWRITE_KEY)
    assert (info.value.file, info.value.field) == (OVERWRITE_KEY, "assemblyId")


def test_overwrite_mode_prefers_the_manifest_assembly_id() -> None:
    doc = json.loads(overwrite_manifest())
    doc["assemblyId"] = "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE"
    d = parse_cur_manifest(json.dumps(doc).encode(), OVERWRITE_KEY, metadata={"etag": "x"})
    assert d.version == "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def test_cur_manifest_disagreeing_with_its_key_is_rejected() -> None:
    other_assembly = f"my-prefix/my-report/20180801-20180901/{'0' * 8}-0000-0000-0000-{'0' * 12}/my-report-Manifest.json"
    with pytest.raises(InputError) as info:
        parse_cur_manifest(cur_bytes(), other_assembly)
    assert info.value.field == "assemblyId"
    with pytest.raises(InputError) as info:
        parse_cur_manifest(cur_bytes(), "my-prefix/my-report/20180901-20181001/my-report-Manifest.json")
    assert info.value.field == "billingPeriod"
    with pytest.raises(InputError) as info:
        parse_cur_manifest(cur_bytes(), "my-prefix/other/20180801-20180901/other-Manifest.json")
    assert info.value.field == "reportName"


@pytest.mark.parametrize(("data", "field", "words"), [
    (b"{not json", None, "not valid JSON"),
    (b"\xff\xfe\x00", None, "not valid JSON"),
    (b"[1, 2]", None, "not an object"),
    (json.dumps({k: v for k, v in json.loads(
        (FIXTURES / "koku/aws-cur-s3-layout" / PERIOD_MANIFEST).read_bytes()).items() if k != "reportKeys"}).encode(),
     "reportKeys", "reportKeys is missing"),
    (json.dumps({"reportKeys": ["a.csv.gz", 7]}).encode(), "reportKeys[1]", "reportKeys[1] is invalid"),
    (json.dumps({"reportKeys": ["a.csv.gz", "a.csv.gz"], "account": "1", "assemblyId": "a1"}).encode(), "reportKeys[1]",
     "twice"),
    (json.dumps({"reportKeys": [], "account": "1", "billingPeriod": {"start": "20180815T000000.000Z"}}).encode(),
     "billingPeriod.start", "not the start of a month"),
    (json.dumps({"reportKeys": [], "account": "1", "billingPeriod": {"start": "2018-08-01T00:00:00Z",
                                                                      "end": "20180831T000000.000Z"}}).encode(),
     "billingPeriod.end", "does not end the month"),
    (json.dumps({"reportKeys": [], "account": "1", "billingPeriod": {"start": "yesterday"}}).encode(),
     "billingPeriod.start", "yesterday"),
])
def test_bad_cur_manifests_name_the_key_and_field(data: bytes, field: str | None, words: str) -> None:
    with pytest.raises(InputError) as info:
        parse_cur_manifest(data, PERIOD_MANIFEST, bucket="b")
    assert info.value.file == PERIOD_MANIFEST
    assert info.value.field == field
    assert words in str(info.value)
    assert PERIOD_MANIFEST in str(info.value)


@pytest.mark.parametrize("folder", ["20181301-20181401", "20180815-20180915", "20180801-20180831",
                                    "20180801-20181001", "20180230-20180330"])
def test_bad_cur_period_folders_name_the_key(folder: str) -> None:
    key = f"my-prefix/my-report/{folder}/my-report-Manifest.json"
    for call in (lambda: classify_object("aws", "b", key), lambda: parse_cur_manifest(cur_bytes(), key),
                 lambda: parse_s3_key(key)):
        with pytest.raises(InputError) as info:
            call()
        assert info.value.file == key
        assert folder in str(info.value)


def test_a_manifest_outside_every_aws_layout_is_an_error_not_silence() -> None:
    key = "my-prefix/my-report/2018080-20180901/my-report-Manifest.json"
    with pytest.raises(InputError) as info:
        classify_object("aws", "b", key)
    assert info.value.file == key
    with pytest.raises(InputError):
        parse_cur_manifest(cur_bytes(), key)


@pytest.mark.parametrize(("key", "metadata", "reason"), [
    ("my-prefix/my-report/20180801-20180901/my-report-RedshiftCommands.sql", None, "not a billing"),
    ("my-prefix/my-report/20180801-20180901/my-report-RedshiftManifest.json", None, "not a billing"),
    ("aws-programmatic-access-test-object", None, "marker"),
    ("my-prefix/my-report/", None, "folder"),
    (DATA_FILE, {"size": 0}, "size 0"),
    ("Happy Face.jpg", {"size": 1024}, "not a billing"),
    ("my-prefix/my-report/my-report/cost_and_usage_data_status/status.parquet", None, "not a billing"),
])
def test_irrelevant_aws_objects_are_ignored(key: str, metadata: dict[str, Any] | None, reason: str) -> None:
    role = classify_object("aws", "b", key, metadata)
    assert role.kind == "ignore"
    assert reason in role.reason


def test_athena_parquet_layout_is_data_of_its_month() -> None:
    role = classify_object("aws", "b", "cur/my-report/my-report/year=2024/month=9/my-report-00001.snappy.parquet")
    assert (role.kind, role.layout, role.billing_period) == ("data", "cur_athena", "2024-09")
    with pytest.raises(InputError):
        classify_object("aws", "b", "cur/my-report/my-report/year=2024/month=13/my-report-00001.snappy.parquet")


# --------------------------------------------------------------------------------------------
# URL-encoded S3 event keys


def s3_record() -> dict[str, Any]:
    record: dict[str, Any] = json.loads(fixture("aws-lambda-go-events/s3-event.json").read_text())["Records"][0]
    return record


def test_event_key_from_the_fixture_is_decoded() -> None:
    record = s3_record()
    parsed = parse_s3_key(record["s3"]["object"]["key"])
    assert parsed.raw == "Happy%20Face.jpg"
    assert parsed.key == "Happy Face.jpg"
    assert parsed.layout is None
    role = classify_object("aws", record["s3"]["bucket"]["name"], parsed.key, record["s3"]["object"])
    assert role.kind == "ignore"


def test_encoded_data_exports_manifest_key_from_an_event() -> None:
    # The go-events fixture with its key replaced by a Data Exports manifest key, encoded as S3 does.
    record = s3_record()
    record["s3"]["object"]["key"] = "cur+exports/team%3Dml/gpu-cur/metadata/BILLING_PERIOD%3D2024-09/gpu-cur-Manifest.json"
    parsed = parse_s3_key(record["s3"]["object"]["key"])
    assert parsed.key == "cur exports/team=ml/gpu-cur/metadata/BILLING_PERIOD=2024-09/gpu-cur-Manifest.json"
    assert (parsed.layout, parsed.role, parsed.prefix, parsed.export_name, parsed.billing_period) == (
        "data_exports", "manifest", "cur exports/team=ml", "gpu-cur", "2024-09")
    role = classify_object("aws", record["s3"]["bucket"]["name"], parsed.key, record["s3"]["object"])
    assert (role.kind, role.manifest_format) == ("manifest", "data_exports")


def test_encoded_plus_and_percent_survive_decoding() -> None:
    parsed = parse_s3_key("a%2Bb/my+report/20180801-20180901/my+report-1.csv.gz")
    assert parsed.key == "a+b/my report/20180801-20180901/my report-1.csv.gz"
    assert (parsed.prefix, parsed.export_name, parsed.role) == ("a+b", "my report", "data")


def test_an_undecoded_key_is_caught() -> None:
    key = "cur/gpu-cur/metadata/BILLING_PERIOD%3D2024-09/gpu-cur-Manifest.json"
    with pytest.raises(InputError) as info:
        classify_object("aws", "b", key)
    assert "parse_s3_key" in str(info.value)
    with pytest.raises(InputError):
        parse_s3_key("bad%C3")  # not UTF-8 once decoded
    with pytest.raises(InputError):
        parse_s3_key("")


# --------------------------------------------------------------------------------------------
# AWS Data Exports (CUR 2.0)

EXEC = "5f1c1a9e-1f0b-4a55-9d57-1b2c3d4e5f60"
DE_MANIFEST = "cur2/gpu-cur/metadata/BILLING_PERIOD=2024-09/gpu-cur-Manifest.json"
DE_MANIFEST_EXEC = f"cur2/gpu-cur/metadata/BILLING_PERIOD=2024-09/{EXEC}/gpu-cur-Manifest.json"


def de_manifest(execution_folder: bool = False, **changes: Any) -> bytes:
    # CONSTRUCTED from the AWS Data Exports manifest reference (executionId, exportArn, columns,
    # dataFiles as full s3:// URIs, additionalOutputFiles) and formats.md §2; billingPeriod's
    # presence and shape are a belief. No real CUR 2.0 manifest is among the public fixtures.
    data = f"cur2/gpu-cur/data/BILLING_PERIOD=2024-09/{EXEC + '/' if execution_folder else ''}"
    doc: dict[str, Any] = {
        "executionId": EXEC,
        "exportArn": "arn:aws:bcm-data-exports:us-east-1:111122223333:export/gpu-cur-0a1b2c3d",
        "columns": [{"name": "line_item_unblended_cost", "type": "double"}],
        "dataFiles": [f"s3://billing-bucket/{data}gpu-cur-00001.csv.gz", f"s3://billing-bucket/{data}gpu-cur-00002.csv.gz"],
        "additionalOutputFiles": [],
        "billingPeriod": {"start": "2024-09-01T00:00:00.000Z", "end": "2024-10-01T00:00:00.000Z"},
    }
    doc.update(changes)
    return json.dumps(doc).encode()


def test_data_exports_manifest_without_execution_folder() -> None:
    d = parse_data_exports_manifest(de_manifest(), DE_MANIFEST, bucket="billing-bucket")
    assert (d.provider, d.layout, d.billing_period, d.version) == ("aws", "data_exports", "2024-09", EXEC)
    assert d.source == "aws-data-exports|111122223333|cur2|gpu-cur"
    assert [f.key for f in d.files] == ["cur2/gpu-cur/data/BILLING_PERIOD=2024-09/gpu-cur-00001.csv.gz",
                                        "cur2/gpu-cur/data/BILLING_PERIOD=2024-09/gpu-cur-00002.csv.gz"]
    assert d.complete and d.bucket == "billing-bucket" and d.expected_rows is None


def test_data_exports_manifest_in_an_execution_folder() -> None:
    flat = parse_data_exports_manifest(de_manifest(True), DE_MANIFEST)
    nested = parse_data_exports_manifest(de_manifest(True), DE_MANIFEST_EXEC)
    assert flat.delivery_id == nested.delivery_id
    assert nested.files[0].key == f"cur2/gpu-cur/data/BILLING_PERIOD=2024-09/{EXEC}/gpu-cur-00001.csv.gz"
    assert nested.bucket == "billing-bucket"  # learnt from the dataFiles URIs
    # Without executionId the execution folder is the version; a mismatch is an error.
    folder_only = parse_data_exports_manifest(de_manifest(True, executionId=None), DE_MANIFEST_EXEC)
    assert folder_only.version == EXEC
    with pytest.raises(InputError) as info:
        parse_data_exports_manifest(de_manifest(True, executionId="other"), DE_MANIFEST_EXEC)
    assert info.value.field == "executionId"


def test_data_exports_roles_with_and_without_execution_folder() -> None:
    for key, version in [("cur2/gpu-cur/data/BILLING_PERIOD=2024-09/gpu-cur-00001.csv.gz", None),
                         (f"cur2/gpu-cur/data/BILLING_PERIOD=2024-09/{EXEC}/gpu-cur-00001.snappy.parquet", EXEC)]:
        role = classify_object("aws", "b", key)
        assert (role.kind, role.layout, role.billing_period, role.version) == ("data", "data_exports", "2024-09", version)
    for key, version in [(DE_MANIFEST, None), (DE_MANIFEST_EXEC, EXEC)]:
        role = classify_object("aws", "b", key)
        assert (role.kind, role.manifest_format, role.version) == ("manifest", "data_exports", version)


def test_two_executions_are_two_deliveries_of_one_slice() -> None:
    a = parse_data_exports_manifest(de_manifest(), DE_MANIFEST)
    b = parse_data_exports_manifest(de_manifest(executionId="6a2d2baf-2c1c-4b66-8e68-2c3d4e5f6071"), DE_MANIFEST)
    assert (a.provider, a.source, a.billing_period) == (b.provider, b.source, b.billing_period)
    assert a.delivery_id != b.delivery_id


def test_data_exports_source_without_arn_uses_the_bucket() -> None:
    d = parse_data_exports_manifest(de_manifest(exportArn=None), DE_MANIFEST, bucket="billing-bucket")
    assert d.source == "aws-data-exports|s3://billing-bucket|cur2|gpu-cur"


@pytest.mark.parametrize(("changes", "field"), [
    ({"dataFiles": None}, "dataFiles"),
    ({"dataFiles": "s3://billing-bucket/x.csv.gz"}, "dataFiles"),
    ({"dataFiles": ["s3://other-bucket/cur2/x.csv.gz"]}, "dataFiles[0]"),
    ({"dataFiles": ["s3://billing-bucket"]}, "dataFiles[0]"),
    ({"billingPeriod": {"start": "2024-10-01T00:00:00.000Z"}}, "billingPeriod"),
    ({"billingPeriod": "2024-13"}, "billingPeriod"),
])
def test_bad_data_exports_manifests(changes: dict[str, Any], field: str) -> None:
    doc = json.loads(de_manifest(**changes))
    doc = {k: v for k, v in doc.items() if v is not None}
    with pytest.raises(InputError) as info:
        parse_data_exports_manifest(json.dumps(doc).encode(), DE_MANIFEST, bucket="billing-bucket")
    assert (info.value.file, info.value.field) == (DE_MANIFEST, field)


@pytest.mark.parametrize("partition", ["BILLING_PERIOD=2024-13", "BILLING_PERIOD=2024-9", "BILLING_PERIOD=24-09",
                                       "BILLING_PERIOD=2024-00"])
def test_bad_billing_period_partitions_name_the_key(partition: str) -> None:
    key = f"cur2/gpu-cur/metadata/{partition}/gpu-cur-Manifest.json"
    with pytest.raises(InputError) as info:
        classify_object("aws", "b", key)
    assert info.value.file == key
    with pytest.raises(InputError):
        parse_data_exports_manifest(de_manifest(), key)


def test_cur_manifest_parser_refuses_a_data_exports_key_and_back() -> None:
    with pytest.raises(InputError):
        parse_cur_manifest(cur_bytes(), DE_MANIFEST)
    with pytest.raises(InputError):
        parse_data_exports_manifest(de_manifest(), PERIOD_MANIFEST)


# --------------------------------------------------------------------------------------------
# Azure


RUN_ID = "bbac73f1-9a05-4de6-84ab-c72b568a03b4"
AZ_KEY = f"folder/sample/20250301-20250331/{RUN_ID}/manifest.json"


def az_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(fixture("azure-docs/cost-export-manifest.example.json").read_text())
    return doc


def az_bytes(**config: Any) -> bytes:
    doc = az_doc()
    doc["exportConfig"].update(config)
    return json.dumps(doc).encode()


def test_azure_manifest_fixture() -> None:
    d = parse_azure_manifest(fixture("azure-docs/cost-export-manifest.example.json").read_bytes(), AZ_KEY,
                             bucket="samplestorage/exports")
    assert (d.provider, d.layout, d.billing_period, d.version) == ("azure", "azure", "2025-03", RUN_ID)
    assert d.source == "azure|/providers/microsoft.billing/billingaccounts/1234567|sample"
    # The documented example has stray spaces in the blob name: gone.
    assert d.files == (DeliveryFile(key="folder/sample/00000000-0000-0000-0000-000000000000/part0.csv",
                                    row_count=36, byte_count=8032),)
    assert d.expected_rows == 36
    assert d.complete
    assert d.produced_at == datetime(2025, 3, 21, 21, 4, 6, 523444, tzinfo=UTC)
    # The documented example is a reservation-recommendations export: not cost data.
    assert d.export_type == "ReservationRecommendations"
    assert d.cost_basis is None
    assert not d.is_cost_data


@pytest.mark.parametrize(("kind", "basis"), [("ActualCost", "actual"), ("AmortizedCost", "amortized"),
                                             ("FocusCost", "focus"), ("Usage", "actual")])
def test_azure_cost_basis(kind: str, basis: str) -> None:
    d = parse_azure_manifest(az_bytes(type=kind), AZ_KEY)
    assert d.cost_basis == basis
    assert d.is_cost_data


def test_azure_period_from_run_info_without_a_date_folder() -> None:
    d = parse_azure_manifest(az_bytes(), f"folder/sample/{RUN_ID}/manifest.json")
    assert (d.billing_period, d.version) == ("2025-03", RUN_ID)
    classified = classify_object("azure", "exports", f"folder/sample/{RUN_ID}/manifest.json")
    assert (classified.kind, classified.manifest_format) == ("manifest", "azure")


def test_azure_run_id_and_export_name_make_the_identity() -> None:
    base = parse_azure_manifest(az_bytes(type="ActualCost"), AZ_KEY)
    doc = az_doc()
    doc["exportConfig"]["type"] = "ActualCost"
    doc["runInfo"]["runId"] = "0c4e2bd1-8a6f-4c0d-b3a2-7d9e1f2a3b4c"
    rerun = parse_azure_manifest(json.dumps(doc).encode(), AZ_KEY)
    assert rerun.source == base.source and rerun.delivery_id != base.delivery_id
    amortized = parse_azure_manifest(az_bytes(type="AmortizedCost", exportName="sample-amortized", resourceId=(
        "/providers/Microsoft.Billing/billingAccounts/1234567/providers/Microsoft.CostManagement/exports/"
        "sample-amortized")), AZ_KEY)
    assert amortized.source != base.source
    # Resource ids are case-insensitive in Azure: the source is not.
    upper = parse_azure_manifest(az_bytes(type="ActualCost", resourceId=az_doc()["exportConfig"]["resourceId"].upper(),
                                          exportName="sample"), AZ_KEY)
    assert upper.source == base.source


def test_azure_version_from_the_run_folder_without_run_id() -> None:
    doc = az_doc()
    del doc["runInfo"]["runId"]
    d = parse_azure_manifest(json.dumps(doc).encode(), "folder/sample/20250301-20250331/202503210604/manifest.json")
    assert d.version == "202503210604"


def test_azure_source_without_resource_id_is_the_storage_path() -> None:
    doc = az_doc()
    del doc["exportConfig"]["resourceId"]
    d = parse_azure_manifest(json.dumps(doc).encode(), AZ_KEY, bucket="samplestorage/exports")
    assert d.source == "azure|samplestorage/exports/folder|sample"
    with pytest.raises(InputError) as info:
        parse_azure_manifest(json.dumps(doc).encode(), AZ_KEY)
    assert info.value.field == "exportConfig.resourceId"


def test_empty_azure_export_is_a_complete_empty_delivery() -> None:
    doc = az_doc()
    doc.update(blobCount=0, dataRowCount=0, byteCount=0, blobs=[])
    d = parse_azure_manifest(json.dumps(doc).encode(), AZ_KEY)
    assert d.complete and d.is_empty and d.expected_rows == 0 and d.files == ()


def _mutate(path: str, value: Any) -> bytes:
    doc = az_doc()
    target: Any = doc
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is ...:
        del target[parts[-1]]
    else:
        target[parts[-1]] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize(("path", "value", "field"), [
    ("blobCount", 2, "blobCount"),
    ("dataRowCount", 35, "dataRowCount"),
    ("blobs", ..., "blobs"),
    ("exportConfig", ..., "exportConfig"),
    ("blobs.0.dataRowCount", True, "blobs[0].dataRowCount"),
    ("blobs.0.dataRowCount", -1, "blobs[0].dataRowCount"),
    ("blobs.0.blobName", "", "blobs[0].blobName"),
    ("runInfo.startDate", "2025-03-05T00:00:00", "runInfo.startDate"),
    ("runInfo.endDate", "2025-04-21T00:00:00Z", "runInfo.endDate"),
    ("exportConfig.resourceId", "/subscriptions/x/resourceGroups/y", "exportConfig.resourceId"),
    ("exportConfig.exportName", "other", "exportConfig.exportName"),
])
def test_bad_azure_manifests_name_the_field(path: str, value: Any, field: str) -> None:
    with pytest.raises(InputError) as info:
        parse_azure_manifest(_mutate(path, value), AZ_KEY)
    assert (info.value.file, info.value.field) == (AZ_KEY, field)


def test_azure_manifest_disagreeing_with_its_date_folder() -> None:
    key = f"folder/sample/20250401-20250430/{RUN_ID}/manifest.json"
    with pytest.raises(InputError) as info:
        parse_azure_manifest(az_bytes(), key)
    assert info.value.field == "runInfo.startDate"
    bad = f"folder/sample/20250301-20250332/{RUN_ID}/manifest.json"
    with pytest.raises(InputError) as info:
        parse_azure_manifest(az_bytes(), bad)
    assert info.value.file == bad


def test_azure_data_file_of_a_partitioned_export() -> None:
    role = classify_object("azure", "exports", f"folder/sample/20250301-20250331/{RUN_ID}/part_0_0001.csv.gz")
    assert (role.kind, role.billing_period, role.version, role.export_name) == ("data", "2025-03", RUN_ID, "sample")
    assert role.delivery_id is None


# Event Grid

def eventgrid(name: str) -> dict[str, Any]:
    events: list[dict[str, Any]] = json.loads(fixture(f"azure-docs/{name}").read_text())
    return events[0]


@pytest.mark.parametrize(("name", "container"), [
    ("eventgrid-blobcreated.eventgrid-schema.json", "test-container"),
    ("eventgrid-blobcreated.cloudevents-schema.json", "test-container"),
    ("eventgrid-blobcreated.adls-gen2.cloudevents-schema.json", "my-file-system"),
])
def test_event_grid_subjects(name: str, container: str) -> None:
    event = eventgrid(name)
    got_container, path = blob_path_from_subject(event["subject"])
    assert (got_container, path) == (container, "new-file.txt")
    assert classify_object("azure", got_container, path, event["data"]).kind == "ignore"


def test_adls_create_file_event_is_ignored_and_flush_is_not() -> None:
    event = eventgrid("eventgrid-blobcreated.adls-gen2.cloudevents-schema.json")
    assert event["data"]["api"] == "CreateFile"
    role = classify_object("azure", "my-file-system", AZ_KEY, event["data"])
    assert role.kind == "ignore" and "CreateFile" in role.reason
    flushed = dict(event["data"], api="FlushWithClose", contentLength=1234)
    assert classify_object("azure", "my-file-system", AZ_KEY, flushed).kind == "manifest"
    put = eventgrid("eventgrid-blobcreated.eventgrid-schema.json")["data"]
    assert classify_object("azure", "test-container", AZ_KEY, put).kind == "manifest"


def test_subject_with_a_nested_path_and_bad_subjects() -> None:
    subject = f"/blobServices/default/containers/exports/blobs/{AZ_KEY}"
    assert blob_path_from_subject(subject) == ("exports", AZ_KEY)
    for bad in ["/blobServices/default/containers/exports", "objects/folder/Test.cs", "",
                "/blobServices/default/containers//blobs/x"]:
        with pytest.raises(InputError) as info:
            blob_path_from_subject(bad)
        assert info.value.field == "subject"


# Azure legacy single-file exports

LEGACY = "exports/costs/DailyActual/20250301-20250331/DailyActual_0f8fad5b-d9cb-469f-a165-70867728950e.csv"


def test_legacy_single_file_export() -> None:
    put = eventgrid("eventgrid-blobcreated.eventgrid-schema.json")["data"]
    assert put["eTag"].startswith('"')
    role = classify_object("azure", "billing", LEGACY, put)
    assert (role.kind, role.layout, role.billing_period, role.export_name, role.prefix) == (
        "single", "azure_legacy", "2025-03", "DailyActual", "exports/costs")
    d = delivery_for_single_file("azure", "billing", LEGACY, put["eTag"])
    assert role.delivery_id == d.delivery_id
    assert d.delivery_id == delivery_for_single_file("azure", "billing", LEGACY, put["eTag"].strip('"')).delivery_id
    assert (d.layout, d.complete, d.expected_rows, d.files) == ("azure_legacy", True, None, (DeliveryFile(key=LEGACY),))
    assert d.source == "azure|billing/exports/costs|DailyActual"
    assert d.is_cost_data
    newer = delivery_for_single_file("azure", "billing", LEGACY.replace("0f8fad5b", "1a2b3c4d"), '"0x8D4BCC2E4835CD1"')
    assert newer.source == d.source and newer.delivery_id != d.delivery_id


@pytest.mark.parametrize("key", [
    f"folder/sample/20250301-20250331/{RUN_ID}/part_0_0001.csv",  # partitioned: read from its manifest
    "exports/costs/DailyActual/DailyActual_0f8fad5b-d9cb-469f-a165-70867728950e.csv",  # no date range
    "exports/costs/DailyActual/20250315-20250331/x.csv",  # not from the 1st
    "exports/costs/DailyActual/20250301-20250402/x.csv",  # past the month
    "exports/costs/DailyActual/20250229-20250331/x.csv",  # no such day
])
def test_single_file_refusals_name_the_key(key: str) -> None:
    with pytest.raises(InputError) as info:
        delivery_for_single_file("azure", "billing", key, '"0x1"')
    assert info.value.file == key


def test_azure_exclusive_end_folder_is_accepted() -> None:
    d = delivery_for_single_file("azure", "b", "r/e/20250301-20250401/e_0f8fad5b-d9cb-469f-a165-70867728950e.csv", "1")
    assert d.billing_period == "2025-03"
    with pytest.raises(InputError) as info:
        delivery_for_single_file("azure", "b", "r/e/20250301-20250401/x.csv", "")
    assert info.value.field == "etag"


# --------------------------------------------------------------------------------------------
# Google Cloud: burnguard's layout

ACCOUNT = "01D4EE-079462-DFD6EC"
RUN = "20261122T060000Z"
GCP_DIR = f"billing/exports/{ACCOUNT}/2026-11/{RUN}"
GCP_KEY = f"{GCP_DIR}/manifest.json"


def gcp_manifest(**changes: Any) -> bytes:
    doc: dict[str, Any] = {
        "billingAccountId": ACCOUNT, "billingPeriod": "2026-11", "runId": RUN,
        "files": [{"name": "part-000000000000.json.gz", "rows": 3},
                  {"name": f"{GCP_DIR}/part-000000000001.json.gz", "rows": "4"}],
        "totalRows": 7, "format": "json", "createdAt": "2026-11-22T06:04:10Z",
    }
    doc.update(changes)
    return json.dumps(doc).encode()


def test_gcp_manifest() -> None:
    d = parse_gcp_manifest(gcp_manifest(), GCP_KEY, bucket="acme-billing")
    assert (d.provider, d.layout, d.billing_period, d.version) == ("gcp", "gcp", "2026-11", RUN)
    assert d.source == f"gcp|{ACCOUNT}|billing/exports"
    assert d.files == (DeliveryFile(key=f"{GCP_DIR}/part-000000000000.json.gz", row_count=3),
                       DeliveryFile(key=f"{GCP_DIR}/part-000000000001.json.gz", row_count=4))
    assert (d.expected_rows, d.complete, d.bucket) == (7, True, "acme-billing")
    assert d.produced_at == datetime(2026, 11, 22, 6, 4, 10, tzinfo=UTC)


def test_gcp_keys_name_the_delivery_before_the_manifest_arrives() -> None:
    d = parse_gcp_manifest(gcp_manifest(), GCP_KEY)
    part = classify_object("gcp", "acme-billing", f"{GCP_DIR}/part-000000000000.json.gz", {"size": "352"})
    manifest = classify_object("gcp", "acme-billing", GCP_KEY)
    assert (part.kind, manifest.kind, manifest.manifest_format) == ("data", "manifest", "gcp")
    assert part.delivery_id == manifest.delivery_id == d.delivery_id
    # Lower-case account folders name the same source.
    lower = classify_object("gcp", "acme-billing", GCP_KEY.replace(ACCOUNT, ACCOUNT.lower()))
    assert lower.delivery_id == d.delivery_id


@pytest.mark.parametrize(("changes", "field"), [
    ({"totalRows": 8}, "totalRows"),
    ({"billingAccountId": "000000-000000-000000"}, "billingAccountId"),
    ({"billingPeriod": "2026-10"}, "billingPeriod"),
    ({"billingPeriod": "2026-13"}, "billingPeriod"),
    ({"runId": "other"}, "runId"),
    ({"files": [{"name": "billing/exports/elsewhere/part-0.json", "rows": 7}]}, "files[0].name"),
    ({"files": [{"name": "part-0.csv", "rows": 7}]}, "files[0].name"),
    ({"files": [{"name": "part-0.json", "rows": 3}, {"name": "part-0.json", "rows": 4}]}, "files[1]"),
    ({"files": [{"name": "part-0.json", "rows": -7}]}, "files[0].rows"),
    ({"files": None}, "files"),
    ({"format": "xml"}, "format"),
])
def test_bad_gcp_manifests_name_the_field(changes: dict[str, Any], field: str) -> None:
    doc = {k: v for k, v in json.loads(gcp_manifest(**changes)).items() if v is not None}
    with pytest.raises(InputError) as info:
        parse_gcp_manifest(json.dumps(doc).encode(), GCP_KEY)
    assert (info.value.file, info.value.field) == (GCP_KEY, field)


def test_gcp_bad_period_folder_and_misplaced_manifest() -> None:
    bad = f"billing/exports/{ACCOUNT}/2026-13/{RUN}/manifest.json"
    for call in (lambda: classify_object("gcp", "b", bad), lambda: parse_gcp_manifest(gcp_manifest(), bad)):
        with pytest.raises(InputError) as info:
            call()
        assert info.value.file == bad and "2026-13" in str(info.value)
    with pytest.raises(InputError) as info:
        classify_object("gcp", "b", "billing/2026-11/manifest.json")
    assert info.value.file == "billing/2026-11/manifest.json"
    with pytest.raises(InputError) as info:
        parse_gcp_manifest(b"", GCP_KEY)
    assert info.value.file == GCP_KEY and "not valid JSON" in str(info.value)


@pytest.mark.parametrize(("name", "reason"), [
    (f"{GCP_DIR}/_SUCCESS", "marker"),
    (f"{GCP_DIR}/notes.txt", "not a billing"),
    ("billing/", "folder"),
])
def test_irrelevant_gcs_objects(name: str, reason: str) -> None:
    role = classify_object("gcp", "b", name)
    assert role.kind == "ignore" and reason in role.reason


# Single-object fallback, with the generation as the events carry it

def storage_object(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(fixture(name).read_text())
    inner: dict[str, Any] = data.get("data", data)
    return inner


@pytest.mark.parametrize(("name", "generation"), [
    ("google-cloudevents/StorageObjectData-simple.json", "1587627537231057"),  # a JSON string
    ("google-cloudevents/StorageObjectData-complex.json", "96883251"),  # a JSON number
    ("gcp-functions-conformance/storage-cloudevent-input.json", "1587627537231057"),
    ("gcp-functions-conformance/storage-legacy-input.json", "1587627537231057"),
])
def test_single_object_keyed_by_bucket_name_generation(name: str, generation: str) -> None:
    obj = storage_object(name)
    d = delivery_for_single_file("gcp", obj["bucket"], obj["name"], obj["generation"])
    assert d.version == generation
    assert d.source == f"gcp-object|gs://{obj['bucket']}/{obj['name']}"
    assert (d.layout, d.billing_period, d.complete, d.files) == ("gcp_object", None, True,
                                                                 (DeliveryFile(key=obj["name"]),))
    # The same generation as a number or as a string is the same delivery.
    as_int = delivery_for_single_file("gcp", obj["bucket"], obj["name"], int(obj["generation"]))
    as_str = delivery_for_single_file("gcp", obj["bucket"], obj["name"], str(obj["generation"]))
    assert as_int == as_str == d
    # A new generation of the object is a new delivery of the same source.
    newer = delivery_for_single_file("gcp", obj["bucket"], obj["name"], int(obj["generation"]) + 1)
    assert newer.source == d.source and newer.delivery_id != d.delivery_id


def test_fixture_objects_are_not_billing_exports() -> None:
    simple = storage_object("google-cloudevents/StorageObjectData-simple.json")
    assert classify_object("gcp", simple["bucket"], simple["name"], simple).kind == "ignore"  # .cs
    complex_ = storage_object("google-cloudevents/StorageObjectData-complex.json")
    role = classify_object("gcp", complex_["bucket"], complex_["name"], complex_)
    assert role.kind == "ignore" and "size 0" in role.reason


def test_single_billing_object_classified_with_its_generation() -> None:
    meta = dict(storage_object("google-cloudevents/StorageObjectData-simple.json"), name="billing/2026-11/export.json")
    role = classify_object("gcp", meta["bucket"], meta["name"], meta)
    d = delivery_for_single_file("gcp", meta["bucket"], meta["name"], meta["generation"])
    assert (role.kind, role.layout, role.billing_period) == ("single", "gcp_object", "2026-11")
    assert role.delivery_id == d.delivery_id
    assert d.billing_period == "2026-11" and d.complete


@pytest.mark.parametrize("name", ["billing/2026-11/part-000000000000.json", "billing/2026-11/export-000000000003.json.gz"])
def test_a_lone_shard_is_never_complete(name: str) -> None:
    role = classify_object("gcp", "b", name, {"generation": 5})
    assert role.kind == "single" and "never complete" in role.reason
    assert delivery_for_single_file("gcp", "b", name, 5).complete is False


@pytest.mark.parametrize("generation", [True, "abc", 0, -1, "", None, 1.5])
def test_bad_generation(generation: object) -> None:
    with pytest.raises(InputError) as info:
        delivery_for_single_file("gcp", "b", "billing/export.json", generation)
    assert (info.value.file, info.value.field) == ("billing/export.json", "generation")


def test_single_file_refusals() -> None:
    with pytest.raises(InputError) as info:
        delivery_for_single_file("gcp", "b", f"{GCP_DIR}/part-000000000000.json.gz", 1)
    assert "manifest.json" in str(info.value)
    with pytest.raises(InputError) as info:
        delivery_for_single_file("aws", "b", DATA_FILE, "etag")
    assert info.value.field == "provider"
    with pytest.raises(InputError) as info:
        delivery_for_single_file("gcp", "b", "billing/2026-13/export.json", 1)
    assert "2026-13" in str(info.value)
    with pytest.raises(InputError) as info:
        classify_object("oracle", "b", "x.csv")
    assert info.value.field == "provider"


# --------------------------------------------------------------------------------------------
# The value objects


def test_delivery_id_ignores_everything_but_the_identity() -> None:
    a = Delivery(provider="gcp", source="s", billing_period="2026-11", version="v", complete=True, layout="gcp")
    b = Delivery(provider="gcp", source="s", billing_period="2026-11", version="v", complete=False, layout="gcp",
                 files=(DeliveryFile(key="k", row_count=2),), expected_rows=2,
                 produced_at=datetime(2026, 11, 22, tzinfo=UTC))
    assert a != b and a.delivery_id == b.delivery_id == delivery_id("gcp", "s", "2026-11", "v")
    for other in (a.model_copy(update={"version": "w"}), a.model_copy(update={"source": "t"}),
                  a.model_copy(update={"billing_period": "2026-10"}), a.model_copy(update={"provider": "aws"})):
        assert other.delivery_id != a.delivery_id


def test_delivery_round_trips_through_json_and_checks_its_id() -> None:
    d = parse_azure_manifest(az_bytes(type="ActualCost"), AZ_KEY)
    dumped = d.model_dump(mode="json")
    assert dumped["delivery_id"] == d.delivery_id
    assert Delivery.model_validate(dumped) == d
    assert Delivery.model_validate_json(d.model_dump_json()) == d
    with pytest.raises(ValidationError):
        Delivery.model_validate(dict(dumped, delivery_id="azure-2025-03-0000"))
    role = classify_object("gcp", "b", GCP_KEY)
    assert ObjectRole.model_validate(role.model_dump()) == role


def test_delivery_invariants() -> None:
    with pytest.raises(ValidationError):
        Delivery(provider="gcp", source="s", version="v", complete=True, layout="gcp",
                 produced_at=datetime(2026, 11, 22))  # naive
    with pytest.raises(ValidationError):
        Delivery(provider="gcp", source="s", version="v", complete=True, layout="gcp", expected_rows=3,
                 files=(DeliveryFile(key="a", row_count=1), DeliveryFile(key="b", row_count=1)))
    with pytest.raises(ValidationError):
        Delivery(provider="gcp", source="s", version="v", complete=True, layout="gcp",
                 files=(DeliveryFile(key="a"), DeliveryFile(key="a")))
    with pytest.raises(ValidationError):
        Delivery(provider="gcp", source="s", version="v", complete=True, layout="gcp", billing_period="2026-13")
    with pytest.raises(ValidationError):
        DeliveryFile(key="a", row_count=True)
    d = Delivery(provider="gcp", source="s", version="v", complete=True, layout="gcp")
    with pytest.raises(ValidationError):
        d.version = "w"
    assert hash(d) == hash(d.model_copy())
