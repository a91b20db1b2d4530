"""Delivery identity: which billing-export delivery a storage object belongs to, and when it is whole.

Every billing export is a month-to-date **snapshot** (ARCHITECTURE.md rule 1): the ledger keeps,
per ``(provider, source, billing_period)``, the latest complete delivery and replaces the one
before it. Object events repeat and reorder (rule 2), so a delivery gets a deterministic
:attr:`Delivery.delivery_id` that depends only on ``(provider, source, billing_period, version)``,
never on which of several duplicate events or manifests arrived.

This module is pure: it works on object keys, manifest bytes and metadata dicts that adapters
pass in, and imports no cloud SDK. Keys are the objects' real names; only :func:`parse_s3_key`
takes a key as an S3 event notification writes it (URL-encoded) and decodes it.

Identity per provider
---------------------
``source`` strings are ``|``-separated; ``version`` names one run of the export.

* **AWS legacy CUR** -- ``<prefix>/<report>/<yyyymmdd-yyyymmdd>/[<assemblyId>/]<report>-<n>.csv.gz``,
  with ``<report>-Manifest.json`` in the period folder (pointing at the latest assembly) *and* in
  the assembly folder; the two are identical and give the same delivery.
  source ``aws-cur|<manifest account, else s3://<bucket>>|<prefix>|<report>``; period from the
  folder (end exclusive) and the manifest's ``billingPeriod`` (basic ISO ``20180801T000000.000Z``),
  which must agree; version the manifest ``assemblyId`` (else the assembly folder, else, in
  overwrite mode, the manifest object's etag, else its last-modified time).
* **AWS Data Exports** (CUR 2.0, FOCUS) -- ``<prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/[<execution>/]…``
  and ``<prefix>/<export>/metadata/BILLING_PERIOD=YYYY-MM/[<execution>/]<export>-Manifest.json``.
  source ``aws-data-exports|<account of exportArn, else s3://<bucket>>|<prefix>|<export>``;
  version the manifest ``executionId`` (else the execution folder, else etag/last-modified).
  Files are the manifest's ``dataFiles`` (``s3://`` URIs). AWS documents that the manifest is
  written after all data files. Whether "create new" mode adds an execution folder under
  ``metadata/`` too is a belief; both shapes are accepted.
* **Azure** cost exports -- ``<root>/<export>/<yyyyMMdd-yyyyMMdd>/<run>/[<guid>/]<file>`` plus a
  ``manifest.json`` per run. source ``azure|<scope>|<export>``: the scope is
  ``exportConfig.resourceId`` up to ``/providers/Microsoft.CostManagement/exports/`` (lower
  case, stray spaces removed), else the storage path ``<bucket>/<root>``; version
  ``runInfo.runId`` (else the run folder). Files are ``blobs[]`` with their row and byte counts.
  ``exportConfig.type`` gives :attr:`Delivery.cost_basis` (ActualCost/Usage → actual,
  AmortizedCost → amortized, FocusCost → focus); other types (price sheets, reservation
  reports) are not cost data (:attr:`Delivery.is_cost_data` is false).
  **Legacy single-file** exports, ``<root>/<export>/<yyyyMMdd-yyyyMMdd>/<export>_<guid>.csv``,
  have no manifest: :func:`delivery_for_single_file` with the blob's etag.
* **Google Cloud** has no native layout (billing goes to BigQuery; the team exports it to GCS
  itself), so burnguard defines one, below.

Date-range folders are strict: a real date, starting on the first of a month, ending on the
first of the next month (exclusive; AWS) or within the month (inclusive; Azure). Anything else
is an :class:`~burnguard.core.errors.InputError` naming the key, as is a period that is not ``YYYY-MM``.

burnguard's GCS layout
----------------------
The export job (a scheduled BigQuery ``EXPORT DATA`` plus a small step that writes the
manifest) writes one run of one billing account and one invoice month as::

    gs://<bucket>/<prefix>/<billing_account_id>/<YYYY-MM>/<run_id>/part-*.{json,json.gz,csv,csv.gz,parquet}
    gs://<bucket>/<prefix>/<billing_account_id>/<YYYY-MM>/<run_id>/manifest.json   <- written last

* ``<prefix>`` is any folder path (may be empty); ``<billing_account_id>`` is Google's
  ``XXXXXX-XXXXXX-XXXXXX`` (hex); ``<YYYY-MM>`` is the ``invoice.month`` of every row in the run;
  ``<run_id>`` is unique per run (``[A-Za-z0-9._-]+``, e.g. ``20261122T060000Z``).
* ``manifest.json``::

      {"billingAccountId": "01D4EE-079462-DFD6EC", "billingPeriod": "2026-11",
       "runId": "20261122T060000Z",
       "files": [{"name": "part-000000000000.json.gz", "rows": 1200}, ...],
       "totalRows": 1200, "format": "json",            # json | csv | parquet
       "createdAt": "2026-11-22T06:04:10Z"}             # optional

  ``files[].name`` is the object name in the bucket, or a bare file name in the run folder;
  every file lies in the run folder; ``rows`` sum to ``totalRows``; the three identity fields
  repeat the folders. source ``gcp|<billing_account_id>|<prefix>``; version the run id.
* Single-object fallback: an object outside this layout is its own delivery, keyed by
  ``(bucket, name, generation)``: source ``gcp-object|gs://<bucket>/<name>``, version the
  generation; its period is a ``YYYY-MM`` folder in its name, else unknown (``None``: the
  rows' ``invoice.month`` must tell). A name that looks like one shard of a wildcard export
  (``part-…``, BigQuery's 12-digit shard number) gives an *incomplete* delivery: the other
  shards cannot be known without a manifest, so it is never counted.

Using it
--------
An ingest function calls :func:`classify_object` on each created object. ``manifest`` → read
the object and call the ``parse_*_manifest`` of ``manifest_format``; ``single`` →
:func:`delivery_for_single_file`; ``data`` and ``ignore`` → nothing (log ``reason``). Both CUR
manifests of one assembly are triggers and give the same ``delivery_id``: the ledger's
idempotency on that id makes the second a no-op. Two deliveries of one slice are ordered by
``produced_at`` (Azure ``runInfo.submittedTime``, the GCS manifest's ``createdAt``, else the
manifest object's last-modified time in ``metadata``), never by ``version``, which is opaque.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import unquote_plus

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)

from burnguard.core.clouds import AZURE, CLOUDS, Cloud
from burnguard.core.errors import InputError
from burnguard.core.timeparse import TimestampError, parse_timestamp

Provider = Cloud
CostBasis = Literal["actual", "amortized", "focus"]
RoleKind = Literal["manifest", "data", "single", "ignore"]
ManifestFormat = Literal["cur", "data_exports", "azure", "gcp"]
Layout = Literal["cur", "cur_athena", "data_exports", "azure", "azure_legacy", "gcp", "gcp_object"]

PROVIDERS: tuple[Provider, ...] = CLOUDS
#: Part of every delivery id; change it only together with a ledger migration.
ID_SCHEME = "burnguard.delivery/1"

AZURE_COST_BASIS: dict[str, CostBasis] = {
    "actualcost": "actual",
    "usage": "actual",  # the older API's name for actual-cost usage details [belief]
    "amortizedcost": "amortized",
    "focuscost": "focus",
}

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")
_RANGE = re.compile(r"^\d{8}-\d{8}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_GCP_BILLING_ACCOUNT = re.compile(r"^[0-9A-Fa-f]{6}-[0-9A-Fa-f]{6}-[0-9A-Fa-f]{6}$")
_GCP_RUN_ID = re.compile(r"^[A-Za-z0-9._-]+$")
_GCP_SHARD = re.compile(r"(^part[-_])|((?<!\d)\d{12}(?!\d))")
_ARN_ACCOUNT = re.compile(r"^arn:aws[a-z-]*:[^:]*:[^:]*:(\d{12}):")
_AZURE_EXPORTS = "/providers/microsoft.costmanagement/exports/"
_SUBJECT = re.compile(r"^/blobServices/default/containers/([^/]+)/blobs/(.+)$")

_AWS_DATA_EXT = (".csv.gz", ".csv.zip", ".zip", ".gz", ".csv", ".parquet")
_AZURE_DATA_EXT = (".csv.gz", ".csv", ".gz", ".parquet")
_GCP_DATA_EXT = (".json.gz", ".json", ".jsonl.gz", ".jsonl", ".ndjson", ".csv.gz", ".csv", ".parquet")
_GCP_FORMAT_EXT: dict[str, tuple[str, ...]] = {
    "json": (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson"),
    "csv": (".csv", ".csv.gz"),
    "parquet": (".parquet",),
}
#: Completion markers and probes that are never billing data.
_MARKERS = frozenset({"_SUCCESS", "_started", "aws-programmatic-access-test-object"})


# --------------------------------------------------------------------------------------------
# Value objects


def delivery_id(provider: str, source: str, billing_period: str | None, version: str) -> str:
    """The deterministic id of the delivery ``(provider, source, billing_period, version)``.

    ``<provider>-<period or "none">-<32 hex digits of SHA-256>`` over a JSON array of the four
    parts (so no two distinct tuples share an encoding). Stable across processes and releases
    as long as :data:`ID_SCHEME` is.
    """
    payload = json.dumps([ID_SCHEME, provider, source, billing_period, version], ensure_ascii=False,
                         separators=(",", ":"))
    digest = hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{provider}-{billing_period or 'none'}-{digest}"


def _check_claimed_id(data: Any) -> Any:
    """Accept a serialized ``delivery_id`` on input only if it is the one the fields give."""
    if not isinstance(data, dict) or "delivery_id" not in data:
        return data
    data = dict(data)
    claimed = data.pop("delivery_id")
    if claimed is None and (data.get("source") is None or data.get("version") is None):
        return data
    expected = delivery_id(str(data.get("provider")), str(data.get("source")), data.get("billing_period"),
                           str(data.get("version")))
    if claimed != expected:
        raise ValueError(f"delivery_id {claimed!r} is not the id of these fields ({expected!r})")
    return data


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DeliveryFile(_Frozen):
    """One data file of a delivery: its key (S3 key, blob name or GCS object name, in the
    delivery's bucket) and the counts its manifest gives, when it gives them."""

    key: str = Field(min_length=1)
    row_count: StrictInt | None = Field(default=None, ge=0)
    byte_count: StrictInt | None = Field(default=None, ge=0)


class Delivery(_Frozen):
    """One run of one export for one billing period: a month-to-date snapshot.

    ``complete`` says the file list is known to be the whole delivery (from its manifest, or
    a single file that is a whole export by itself); the ledger never counts an incomplete
    delivery. ``expected_rows`` is the total the manifest promises (Azure, GCP), ``None`` when
    the manifest gives none (AWS). ``produced_at`` (aware UTC, when known) orders two
    deliveries of one slice; it is not part of the identity.
    """

    provider: Provider
    source: str = Field(min_length=1)
    billing_period: str | None = Field(default=None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    version: str = Field(min_length=1)
    files: tuple[DeliveryFile, ...] = ()
    complete: bool
    expected_rows: StrictInt | None = Field(default=None, ge=0)
    cost_basis: CostBasis | None = None
    layout: Layout
    bucket: str | None = None
    export_type: str | None = None
    produced_at: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _claimed_id(cls, data: Any) -> Any:
        return _check_claimed_id(data)

    @field_validator("produced_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise ValueError("produced_at must be timezone-aware")
        return None if value is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _consistent(self) -> Delivery:
        keys = [f.key for f in self.files]
        if len(set(keys)) != len(keys):
            raise ValueError("a delivery lists the same file twice")
        known = [f.row_count for f in self.files if f.row_count is not None]
        if self.expected_rows is not None and self.files and len(known) == len(self.files) \
                and sum(known) != self.expected_rows:
            raise ValueError("the files' row counts do not add up to expected_rows")
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def delivery_id(self) -> str:
        return delivery_id(self.provider, self.source, self.billing_period, self.version)

    @property
    def is_cost_data(self) -> bool:
        """False for Azure exports that are not cost details (price sheet, reservations)."""
        return self.export_type is None or self.export_type.strip().lower() in AZURE_COST_BASIS

    @property
    def is_empty(self) -> bool:
        """A delivery with no data (no files, or a manifest that promises zero rows)."""
        return not self.files or self.expected_rows == 0


class ObjectRole(_Frozen):
    """What one storage object is, as far as its key (and metadata) tell.

    * ``manifest``: a completion marker: read it with the ``parse_*_manifest`` function of
      ``manifest_format`` and ingest the delivery it describes.
    * ``data``: a data file of a delivery whose manifest will say when it is whole: not a trigger.
    * ``single``: an export without a manifest; the object is its delivery
      (:func:`delivery_for_single_file`).
    * ``ignore``: not billing data, or an event to skip (``reason`` says which).

    ``billing_period``/``version``/``source`` are set when the key tells them; ``delivery_id`` is
    set only when the key fully determines the delivery (AWS and Azure sources need the manifest).
    """

    kind: RoleKind
    provider: Provider
    bucket: str
    key: str
    reason: str
    layout: Layout | None = None
    manifest_format: ManifestFormat | None = None
    prefix: str | None = None
    export_name: str | None = None
    billing_period: str | None = None
    version: str | None = None
    source: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _claimed_id(cls, data: Any) -> Any:
        return _check_claimed_id(data)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def delivery_id(self) -> str | None:
        if self.source is None or self.version is None:
            return None
        return delivery_id(self.provider, self.source, self.billing_period, self.version)

    @property
    def is_trigger(self) -> bool:
        return self.kind in ("manifest", "single")


class S3Key(_Frozen):
    """An S3 key from an event notification, decoded, and its billing-export layout if any."""

    raw: str
    key: str
    file_name: str
    layout: Literal["cur", "cur_athena", "data_exports"] | None = None
    role: Literal["manifest", "data", "other"] | None = None
    prefix: str | None = None
    export_name: str | None = None
    billing_period: str | None = None
    version: str | None = None


# --------------------------------------------------------------------------------------------
# Small strict parsers


def _month(text: str, *, file: str, what: str, field: str | None = None) -> str:
    m = _PERIOD.match(text)
    if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1:
        raise InputError(f"{what} {text!r} is not a billing period YYYY-MM", file=file, field=field)
    return text


def _first_of_next(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def _range_period(folder: str, *, file: str, inclusive_end: bool) -> str:
    """``yyyymmdd-yyyymmdd`` folder → ``YYYY-MM``: one calendar month from its first day."""
    days: list[date] = []
    for text in folder.split("-"):
        try:
            days.append(date(int(text[:4]), int(text[4:6]), int(text[6:8])))
        except ValueError:
            raise InputError(f"billing-period folder {folder!r}: {text!r} is not a yyyymmdd date", file=file) from None
    start, end = days
    following = _first_of_next(start)
    if start.day != 1:
        raise InputError(f"billing-period folder {folder!r} does not start on the first day of a month", file=file)
    if not (end == following or (inclusive_end and start <= end < following)):
        shape = "the month's last day or the next month's first day" if inclusive_end else "the next month's first day"
        raise InputError(f"billing-period folder {folder!r} must end on {shape}", file=file)
    return f"{start.year:04d}-{start.month:02d}"


def _timestamp(text: object, *, file: str, field: str) -> datetime:
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{field} must be a timestamp, not {text!r}", file=file, field=field)
    try:
        value = parse_timestamp(text)
    except TimestampError as exc:
        raise InputError(str(exc), file=file, field=field) from None
    if value is None:
        raise InputError(f"{field} must be a timestamp, not {text!r}", file=file, field=field)
    return value


def _bounds_period(start: object, end: object, *, file: str, start_field: str, end_field: str,
                   inclusive_end: bool) -> str:
    """Start (and end) timestamps of a billing period → ``YYYY-MM``, strictly one month."""
    first = _timestamp(start, file=file, field=start_field)
    if first.day != 1 or first.time() != datetime.min.time():
        raise InputError(f"{start!r} is not the start of a month (00:00 UTC on the 1st)", file=file, field=start_field)
    following = datetime.combine(_first_of_next(first.date()), datetime.min.time(), tzinfo=UTC)
    if end is not None and end != "":
        last = _timestamp(end, file=file, field=end_field)
        if not (last == following or (inclusive_end and first <= last < following)):
            raise InputError(f"{end!r} does not end the month that starts {start!r}", file=file, field=end_field)
    return f"{first.year:04d}-{first.month:02d}"


def _version(text: str) -> str:
    text = text.strip()
    return text.lower() if _UUID.match(text) else text


def _etag(value: object, *, file: str) -> str:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("W/"):
            text = text[2:]
        text = text.strip('"').strip()
        if text:
            return text
    raise InputError(f"etag {value!r} is not an etag", file=file, field="etag")


def _generation(value: object, *, file: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value) and int(value) > 0:
        return str(int(value))
    raise InputError(f"generation {value!r} is not a positive integer", file=file, field="generation")


def _meta_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _meta(metadata: Mapping[str, Any] | None, *names: str) -> Any:
    """A metadata value by any spelling (``eTag``, ``ETag``, ``content_length``…)."""
    if not metadata:
        return None
    for key, value in metadata.items():
        if _meta_key(str(key)) in names and value not in (None, ""):
            return value
    return None


def _size(metadata: Mapping[str, Any] | None, *, file: str) -> int | None:
    value = _meta(metadata, "size", "contentlength")
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
        return int(value)
    raise InputError(f"object size {value!r} is not a byte count", file=file, field="size")


def _modified(metadata: Mapping[str, Any] | None, *, file: str) -> datetime | None:
    value = _meta(metadata, "lastmodified", "updated", "timecreated")
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InputError(f"last-modified {value!r} has no time zone", file=file, field="last_modified")
        return value.astimezone(UTC)
    return _timestamp(value, file=file, field="last_modified")


def _fallback_version(metadata: Mapping[str, Any] | None, *, file: str, field: str) -> str:
    """Overwrite-mode version: the manifest object's etag, else its last-modified time."""
    tag = _meta(metadata, "etag")
    if tag is not None:
        return f"etag:{_etag(tag, file=file)}"
    modified = _modified(metadata, file=file)
    if modified is not None:
        return f"modified:{modified.isoformat()}"
    raise InputError(f"no {field} in the manifest nor in its key, and no etag or last-modified time to tell "
                     "this run from the previous one", file=file, field=field)


def _has_ext(name: str, extensions: tuple[str, ...]) -> bool:
    lower = name.lower()
    return any(lower.endswith(ext) for ext in extensions)


def _provider(provider: str) -> Provider:
    for known in PROVIDERS:
        if provider == known:
            return known
    raise InputError(f"provider {provider!r} is not one of {', '.join(PROVIDERS)}", field="provider")


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise InputError(f"object key {key!r} is empty", field="key")
    return key


# --------------------------------------------------------------------------------------------
# Key layouts


@dataclass(frozen=True)
class _Parsed:
    layout: Layout
    role: Literal["manifest", "data", "other"]
    prefix: str
    export_name: str
    billing_period: str | None = None
    version: str | None = None


def _aws_layout(key: str) -> _Parsed | None:
    segs = key.split("/")
    return _aws_data_exports(key, segs) or _aws_legacy_cur(key, segs) or _aws_cur_athena(key, segs)


def _aws_data_exports(key: str, segs: list[str]) -> _Parsed | None:
    """Data Exports: <prefix>/<export>/{data,metadata}/BILLING_PERIOD=YYYY-MM/[<execution>/]<file>"""
    name = segs[-1]
    for i in range(len(segs) - 2, 1, -1):
        if not (segs[i].startswith("BILLING_PERIOD=") and segs[i - 1] in ("data", "metadata") and segs[i - 2]):
            continue
        export, area, folders = segs[i - 2], segs[i - 1], segs[i + 1:-1]
        prefix = "/".join(segs[: i - 2])
        if area == "metadata" and name == f"{export}-Manifest.json":
            role: Literal["manifest", "data", "other"] = "manifest"
        elif area == "data" and _has_ext(name, _AWS_DATA_EXT):
            role = "data"
        else:
            return _Parsed("data_exports", "other", prefix, export)
        if len(folders) > 1:
            raise InputError(f"Data Exports key has folders {'/'.join(folders)!r} after {segs[i]!r}; "
                             "expected at most one execution folder", file=key)
        period = _month(segs[i].removeprefix("BILLING_PERIOD="), file=key, what="BILLING_PERIOD partition")
        return _Parsed("data_exports", role, prefix, export, period, _version(folders[0]) if folders else None)
    return None


def _aws_legacy_cur(key: str, segs: list[str]) -> _Parsed | None:
    """Legacy CUR: <prefix>/<report>/<yyyymmdd-yyyymmdd>/[<assemblyId>/]<file>"""
    name = segs[-1]
    for i in range(len(segs) - 2, 0, -1):
        if not (_RANGE.match(segs[i]) and segs[i - 1]) or len(segs) - i - 2 > 1:
            continue
        report, folders = segs[i - 1], segs[i + 1:-1]
        prefix = "/".join(segs[: i - 1])
        if name == f"{report}-Manifest.json":
            role: Literal["manifest", "data", "other"] = "manifest"
        elif re.fullmatch(re.escape(report) + r"-\d+\..+", name) and _has_ext(name, _AWS_DATA_EXT):
            role = "data"
        else:
            return _Parsed("cur", "other", prefix, report)
        period = _range_period(segs[i], file=key, inclusive_end=False)
        return _Parsed("cur", role, prefix, report, period, _version(folders[0]) if folders else None)
    return None


def _aws_cur_athena(key: str, segs: list[str]) -> _Parsed | None:
    """Legacy CUR with Athena integration: <prefix>/<report>/<report>/year=YYYY/month=M/<file>.parquet"""
    name = segs[-1]
    if len(segs) >= 5 and segs[-5] and segs[-5] == segs[-4]:
        year = re.fullmatch(r"year=(\d{4})", segs[-3])
        month = re.fullmatch(r"month=(\d{1,2})", segs[-2])
        if year and month and _has_ext(name, (".parquet",)):
            period = _month(f"{year.group(1)}-{int(month.group(1)):02d}", file=key, what="year=/month= partition")
            return _Parsed("cur_athena", "data", "/".join(segs[:-5]), segs[-4], period)
    return None


def _azure_range_index(segs: list[str]) -> int | None:
    for i in range(len(segs) - 2, 0, -1):
        if _RANGE.match(segs[i]) and segs[i - 1]:
            return i
    return None


def _gcp_layout(key: str) -> _Parsed | None:
    """``<prefix>/<billing_account_id>/<YYYY-MM>/<run_id>/(part-*|manifest.json)`` or ``None``."""
    segs = key.split("/")
    name = segs[-1]
    if len(segs) < 4 or not _GCP_BILLING_ACCOUNT.match(segs[-4]):
        return None
    if name == "manifest.json":
        role: Literal["manifest", "data", "other"] = "manifest"
    elif name.startswith("part-") and _has_ext(name, _GCP_DATA_EXT):
        role = "data"
    else:
        return None
    period = _month(segs[-3], file=key, what="billing-period folder")
    if not _GCP_RUN_ID.match(segs[-2]):
        raise InputError(f"run folder {segs[-2]!r} is not a run id ([A-Za-z0-9._-]+)", file=key)
    return _Parsed("gcp", role, "/".join(segs[:-4]), segs[-4].upper(), period, segs[-2])


def _gcp_source(billing_account: str, prefix: str) -> str:
    return f"gcp|{billing_account.upper()}|{prefix}"


def _gcp_object_source(bucket: str, name: str) -> str:
    return f"gcp-object|gs://{bucket}/{name}"


def _gcp_name_period(name: str) -> str | None:
    periods = [s for s in name.split("/")[:-1] if re.fullmatch(r"\d{4}-\d{1,2}", s)]
    return _month(periods[-1], file=name, what="billing-period folder") if periods else None


def _azure_legacy_source(bucket: str, root: str, export: str) -> str:
    return f"azure|{bucket}/{root}|{export}"


def parse_s3_key(key: str) -> S3Key:
    """Decode a key as an S3 event notification writes it and recognise its layout.

    Event keys are URL-encoded with ``+`` for space (``BILLING_PERIOD%3D2024-09``,
    ``my+prefix``): ``unquote_plus`` undoes both. Pass the *decoded* ``S3Key.key`` to every
    other function here. A period folder that is not a real month raises an error naming the key.
    """
    if not isinstance(key, str) or not key:
        raise InputError(f"S3 object key {key!r} is empty", field="key")
    try:
        decoded = unquote_plus(key, errors="strict")
    except UnicodeDecodeError:
        raise InputError("S3 object key has percent-escapes that are not UTF-8", file=key, field="key") from None
    parsed = _aws_layout(decoded)
    name = decoded.rsplit("/", 1)[-1]
    if parsed is None or parsed.layout not in ("cur", "cur_athena", "data_exports"):
        return S3Key(raw=key, key=decoded, file_name=name)
    layout: Literal["cur", "cur_athena", "data_exports"] = (
        "cur" if parsed.layout == "cur" else "cur_athena" if parsed.layout == "cur_athena" else "data_exports")
    return S3Key(raw=key, key=decoded, file_name=name, layout=layout, role=parsed.role, prefix=parsed.prefix,
                 export_name=parsed.export_name, billing_period=parsed.billing_period, version=parsed.version)


def blob_path_from_subject(subject: str) -> tuple[str, str]:
    """``/blobServices/default/containers/<c>/blobs/<path>`` (Event Grid) → ``(c, path)``."""
    m = _SUBJECT.match(subject) if isinstance(subject, str) else None
    if not m:
        raise InputError(f"Event Grid subject {subject!r} is not /blobServices/default/containers/<container>"
                         "/blobs/<path>", field="subject")
    return m.group(1), m.group(2)


# --------------------------------------------------------------------------------------------
# Classification

_RoleFactory = Callable[..., ObjectRole]


def classify_object(provider: str, bucket: str, key: str, metadata: Mapping[str, Any] | None = None) -> ObjectRole:
    """Tell what one created object is: a manifest to trigger on, a data file, a single-file
    export, or something to ignore (folder placeholders, empty objects such as ADLS
    ``CreateFile`` events, ``_SUCCESS`` markers, non-billing objects).

    ``key`` is the object's real (decoded) name; ``metadata`` may carry ``size`` /
    ``contentLength``, ``api`` (Event Grid), ``etag`` and ``generation`` in any spelling.
    Raises :class:`InputError` naming the key for a manifest outside every known layout and
    for a malformed period folder.
    """
    cloud = _provider(provider)
    key = _check_key(key)
    name = key.rsplit("/", 1)[-1]

    def role(kind: RoleKind, reason: str, **fields: Any) -> ObjectRole:
        return ObjectRole(kind=kind, provider=cloud, bucket=bucket, key=key, reason=reason, **fields)

    if key.endswith("/"):
        return role("ignore", "folder placeholder")
    api = _meta(metadata, "api")
    if cloud == AZURE and isinstance(api, str) and api.lower() == "createfile":
        return role("ignore", "ADLS Gen2 CreateFile event: the blob is still empty (FlushWithClose follows)")
    if _size(metadata, file=key) == 0:
        return role("ignore", "empty object (size 0)")
    if name in _MARKERS or name.startswith("_committed_"):
        return role("ignore", f"marker object {name!r}")
    if cloud == "aws":
        return _classify_aws(key, name, role)
    if cloud == AZURE:
        return _classify_azure(bucket, key, name, metadata, role)
    return _classify_gcp(bucket, key, name, metadata, role)


def _classify_aws(key: str, name: str, role: _RoleFactory) -> ObjectRole:
    if "BILLING_PERIOD%3D" in key.upper():
        raise InputError("key is still URL-encoded (BILLING_PERIOD%3D); decode event keys with parse_s3_key",
                         file=key, field="key")
    parsed = _aws_layout(key)
    if parsed is None or parsed.role == "other":
        if name.endswith("-Manifest.json"):
            raise InputError("manifest key fits neither the CUR layout <prefix>/<report>/<yyyymmdd-yyyymmdd>/"
                             "[<assemblyId>/]<report>-Manifest.json nor the Data Exports layout <prefix>/<export>/"
                             "metadata/BILLING_PERIOD=YYYY-MM/[<execution>/]<export>-Manifest.json", file=key)
        return role("ignore", "not a billing export data file or manifest")
    fields = {"layout": parsed.layout, "prefix": parsed.prefix, "export_name": parsed.export_name,
              "billing_period": parsed.billing_period, "version": parsed.version}
    if parsed.role == "manifest":
        fmt: ManifestFormat = "cur" if parsed.layout == "cur" else "data_exports"
        where = "assembly folder" if parsed.version else "period folder"
        what = "CUR" if fmt == "cur" else "Data Exports"
        return role("manifest", f"{what} manifest ({where})", manifest_format=fmt, **fields)
    return role("data", "data file of a manifest delivery", **fields)


def _classify_azure(bucket: str, key: str, name: str, metadata: Mapping[str, Any] | None,
                    role: _RoleFactory) -> ObjectRole:
    segs = key.split("/")
    i = _azure_range_index(segs)
    is_manifest = name.lower() == "manifest.json"
    is_data = _has_ext(name, _AZURE_DATA_EXT)
    if not (is_manifest or is_data):
        return role("ignore", "not a cost export data file or manifest")
    if i is None:
        if is_manifest:
            return role("manifest", "Azure export manifest", manifest_format="azure", layout="azure")
        return role("ignore", "no yyyyMMdd-yyyyMMdd folder: not a cost export file")
    export, root, folders = segs[i - 1], "/".join(segs[: i - 1]), segs[i + 1:-1]
    period = _range_period(segs[i], file=key, inclusive_end=True)
    if is_manifest:
        return role("manifest", "Azure export manifest", manifest_format="azure", layout="azure",
                    billing_period=period, version=_version(folders[0]) if folders else None)
    legacy = re.fullmatch(re.escape(export) + r"_[0-9A-Fa-f-]{36}\.csv(\.gz)?", name, flags=re.IGNORECASE)
    if not folders and legacy:
        tag = _meta(metadata, "etag")
        return role("single", "legacy single-file Azure export", layout="azure_legacy", prefix=root,
                    export_name=export, billing_period=period, source=_azure_legacy_source(bucket, root, export),
                    version=None if tag is None else f"{name}@{_etag(tag, file=key)}")
    return role("data", "data file of a partitioned Azure export (its manifest.json is the trigger)", layout="azure",
                prefix=root, export_name=export, billing_period=period,
                version=_version(folders[0]) if folders else None)


def _classify_gcp(bucket: str, key: str, name: str, metadata: Mapping[str, Any] | None,
                  role: _RoleFactory) -> ObjectRole:
    parsed = _gcp_layout(key)
    if parsed is not None:
        fields = {"layout": "gcp", "prefix": parsed.prefix, "export_name": parsed.export_name,
                  "billing_period": parsed.billing_period, "version": parsed.version,
                  "source": _gcp_source(parsed.export_name, parsed.prefix)}
        if parsed.role == "manifest":
            return role("manifest", "burnguard GCS export manifest", manifest_format="gcp", **fields)
        return role("data", "data file of a burnguard GCS export run (its manifest.json is the trigger)", **fields)
    if name == "manifest.json":
        raise InputError("manifest.json is not at <prefix>/<billing_account_id>/<YYYY-MM>/<run_id>/manifest.json",
                         file=key)
    if not _has_ext(name, _GCP_DATA_EXT):
        return role("ignore", "not a billing export data file or manifest")
    generation = _meta(metadata, "generation")
    reason = "single GCS object without a manifest"
    if _GCP_SHARD.search(name):
        reason += " that looks like one shard of a multi-file export: never complete"
    return role("single", reason, layout="gcp_object", billing_period=_gcp_name_period(key),
                source=_gcp_object_source(bucket, key),
                version=None if generation is None else _generation(generation, file=key))


# --------------------------------------------------------------------------------------------
# Manifests


def _count(value: object) -> object:
    """Counts may be JSON numbers or digit strings (BigQuery writes INT64 as strings); never bools."""
    if isinstance(value, bool):
        raise ValueError("a count must be a whole number, not a boolean")
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
        return int(value)
    return value


Count = Annotated[StrictInt, Field(ge=0), BeforeValidator(_count)]
Text = Annotated[str, Field(min_length=1)]


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", strict=False)


class PeriodBounds(_Doc):
    start: str
    end: str | None = None


class CurManifest(_Doc):
    """The legacy CUR ``<report>-Manifest.json`` (fields burnguard reads)."""

    assemblyId: str | None = None
    account: str | None = None
    reportName: str | None = None
    bucket: str | None = None
    billingPeriod: PeriodBounds | None = None
    reportKeys: list[Text]


class DataExportsManifest(_Doc):
    """The AWS Data Exports ``<export>-Manifest.json`` (fields burnguard reads)."""

    executionId: str | None = None
    exportArn: str | None = None
    billingPeriod: PeriodBounds | str | None = None
    dataFiles: list[Text]


class _AzureExportConfig(_Doc):
    exportName: str | None = None
    resourceId: str | None = None
    type: str | None = None


class _AzureRunInfo(_Doc):
    runId: str | None = None
    startDate: str | None = None
    endDate: str | None = None
    submittedTime: str | None = None


class _AzureBlob(_Doc):
    blobName: Text
    byteCount: Count | None = None
    dataRowCount: Count | None = None


class AzureManifest(_Doc):
    """An Azure Cost Management export ``manifest.json`` (fields burnguard reads)."""

    blobCount: Count | None = None
    dataRowCount: Count | None = None
    exportConfig: _AzureExportConfig
    runInfo: _AzureRunInfo | None = None
    blobs: list[_AzureBlob]


class _GcpFile(_Doc):
    name: Text
    rows: Count


class GcpManifest(_Doc):
    """burnguard's own GCS ``manifest.json`` (module docstring)."""

    billingAccountId: Text
    billingPeriod: Text
    runId: Text
    files: list[_GcpFile]
    totalRows: Count
    format: Literal["json", "csv", "parquet"]
    createdAt: str | None = None


def _loc(loc: tuple[int | str, ...]) -> str:
    """``('blobs', 0, 'dataRowCount')`` → ``blobs[0].dataRowCount``; union member tags dropped."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part[:1].islower() and part not in _TYPE_TAGS and "[" not in part and "-" not in part:
            out += f".{part}" if out else part
    return out


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none"})


def _load(model: type[Any], data: bytes | str, key: str, what: str) -> Any:
    try:
        text = data.decode("utf-8-sig") if isinstance(data, (bytes, bytearray)) else data
        doc = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{what} is not valid JSON ({exc})", file=key) from None
    if not isinstance(doc, dict):
        raise InputError(f"{what} is JSON but not an object", file=key)
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _loc(tuple(first["loc"]))
        message = "is missing" if first["type"] == "missing" else f"is invalid: {first['msg']}"
        raise InputError(f"{what} field {field} {message}", file=key, field=field) from None


def parse_cur_manifest(data: bytes | str, key: str, *, bucket: str | None = None,
                       metadata: Mapping[str, Any] | None = None) -> Delivery:
    """The delivery a legacy CUR manifest describes (period-folder and assembly-folder copies
    give equal deliveries). ``metadata`` (etag, last-modified) matters only in overwrite mode
    when the manifest has no ``assemblyId``."""
    key = _check_key(key)
    parsed = _aws_layout(key)
    if parsed is None or parsed.layout != "cur" or parsed.role != "manifest":
        raise InputError("not a CUR manifest key (<prefix>/<report>/<yyyymmdd-yyyymmdd>/[<assemblyId>/]"
                         "<report>-Manifest.json)", file=key)
    m: CurManifest = _load(CurManifest, data, key, "CUR manifest")
    report = parsed.export_name
    if m.reportName is not None and m.reportName != report:
        raise InputError(f"reportName {m.reportName!r} is not the report {report!r} of the key", file=key,
                         field="reportName")
    period = parsed.billing_period
    if m.billingPeriod is not None:
        stated = _bounds_period(m.billingPeriod.start, m.billingPeriod.end, file=key, start_field="billingPeriod.start",
                                end_field="billingPeriod.end", inclusive_end=False)
        if stated != period:
            raise InputError(f"billingPeriod {stated} is not the key's period {period}", file=key,
                             field="billingPeriod")
    assembly = _version(m.assemblyId) if m.assemblyId and m.assemblyId.strip() else None
    if assembly and parsed.version and assembly != parsed.version:
        raise InputError(f"assemblyId {assembly!r} is not the key's assembly folder {parsed.version!r}", file=key,
                         field="assemblyId")
    version = assembly or parsed.version or _fallback_version(metadata, file=key, field="assemblyId")
    where = bucket or (m.bucket.strip() if m.bucket else None) or None
    account = m.account.strip() if m.account and m.account.strip() else None
    if account is None and where is None:
        raise InputError("no account in the manifest and no bucket to name the source", file=key, field="account")
    owner = account or f"s3://{where}"
    return Delivery(provider="aws", source=f"aws-cur|{owner}|{parsed.prefix}|{report}", billing_period=period,
                    version=version, files=tuple(DeliveryFile(key=k) for k in _unique(m.reportKeys, key, "reportKeys")),
                    complete=True, layout="cur", bucket=where, produced_at=_modified(metadata, file=key))


def _unique(keys: list[str], file: str, field: str) -> list[str]:
    seen: set[str] = set()
    for i, k in enumerate(keys):
        if k in seen:
            raise InputError(f"{k!r} is listed twice", file=file, field=f"{field}[{i}]")
        seen.add(k)
    return keys


def _s3_uri_key(uri: str, bucket: str | None, *, file: str, field: str) -> tuple[str, str | None]:
    if not uri.startswith("s3://"):
        return uri.lstrip("/"), None
    rest = uri[len("s3://"):]
    uri_bucket, _, obj = rest.partition("/")
    if not uri_bucket or not obj:
        raise InputError(f"{uri!r} is not s3://<bucket>/<key>", file=file, field=field)
    if bucket is not None and uri_bucket != bucket:
        raise InputError(f"{uri!r} is not in bucket {bucket!r}", file=file, field=field)
    return obj, uri_bucket


def parse_data_exports_manifest(data: bytes | str, key: str, *, bucket: str | None = None,
                                metadata: Mapping[str, Any] | None = None) -> Delivery:
    """The delivery an AWS Data Exports (CUR 2.0 / FOCUS) manifest describes."""
    key = _check_key(key)
    parsed = _aws_layout(key)
    if parsed is None or parsed.layout != "data_exports" or parsed.role != "manifest":
        raise InputError("not a Data Exports manifest key (<prefix>/<export>/metadata/BILLING_PERIOD=YYYY-MM/"
                         "[<execution>/]<export>-Manifest.json)", file=key)
    m: DataExportsManifest = _load(DataExportsManifest, data, key, "Data Exports manifest")
    period = parsed.billing_period
    if isinstance(m.billingPeriod, str):
        stated: str | None = _month(m.billingPeriod, file=key, what="billingPeriod", field="billingPeriod")
    elif m.billingPeriod is not None:
        stated = _bounds_period(m.billingPeriod.start, m.billingPeriod.end, file=key, start_field="billingPeriod.start",
                                end_field="billingPeriod.end", inclusive_end=False)
    else:
        stated = None
    if stated is not None and stated != period:
        raise InputError(f"billingPeriod {stated} is not the key's period {period}", file=key, field="billingPeriod")
    execution = _version(m.executionId) if m.executionId and m.executionId.strip() else None
    if execution and parsed.version and execution != parsed.version:
        raise InputError(f"executionId {execution!r} is not the key's execution folder {parsed.version!r}", file=key,
                         field="executionId")
    version = execution or parsed.version or _fallback_version(metadata, file=key, field="executionId")
    files: list[DeliveryFile] = []
    where = bucket
    for i, uri in enumerate(_unique(m.dataFiles, key, "dataFiles")):
        obj, uri_bucket = _s3_uri_key(uri, where, file=key, field=f"dataFiles[{i}]")
        where = where or uri_bucket
        files.append(DeliveryFile(key=obj))
    arn = _ARN_ACCOUNT.match(m.exportArn.strip()) if m.exportArn else None
    if arn is None and where is None:
        raise InputError("no account in exportArn and no bucket to name the source", file=key, field="exportArn")
    owner = arn.group(1) if arn else f"s3://{where}"
    return Delivery(provider="aws", source=f"aws-data-exports|{owner}|{parsed.prefix}|{parsed.export_name}",
                    billing_period=period, version=version, files=tuple(files), complete=True, layout="data_exports",
                    bucket=where, produced_at=_modified(metadata, file=key))


def _clean_path(text: str) -> str:
    """Stray spaces around path segments (Microsoft's documented example has them) removed."""
    return "/".join(part.strip() for part in text.strip().split("/"))


def parse_azure_manifest(data: bytes | str, key: str, *, bucket: str | None = None,
                         metadata: Mapping[str, Any] | None = None) -> Delivery:
    """The delivery an Azure Cost Management export ``manifest.json`` describes.

    ``bucket`` is the container (or ``<account>/<container>``) the event named; it names the
    source only when the manifest has no ``exportConfig.resourceId``.
    """
    key = _check_key(key)
    if key.rsplit("/", 1)[-1].lower() != "manifest.json":
        raise InputError("not an Azure export manifest key (…/manifest.json)", file=key)
    m: AzureManifest = _load(AzureManifest, data, key, "Azure export manifest")
    segs = key.split("/")
    i = _azure_range_index(segs)
    run = m.runInfo
    period = _azure_period(run, key, segs, i)
    source = _azure_source(m.exportConfig, key, segs, i, bucket)

    if run is not None and run.runId and run.runId.strip():
        version = _version(run.runId)
    elif i is not None and len(segs) - i - 2 >= 1:
        version = _version(segs[i + 1])
    else:
        version = _fallback_version(metadata, file=key, field="runInfo.runId")

    files, expected = _azure_files(m, key)
    config = m.exportConfig
    kind = config.type.strip() if config.type and config.type.strip() else None
    produced = (_timestamp(run.submittedTime, file=key, field="runInfo.submittedTime")
                if run is not None and run.submittedTime else _modified(metadata, file=key))
    return Delivery(provider=AZURE, source=source, billing_period=period, version=version, files=files,
                    complete=True, expected_rows=expected,
                    cost_basis=AZURE_COST_BASIS.get(kind.lower()) if kind else None, layout="azure", bucket=bucket,
                    export_type=kind, produced_at=produced)


def _azure_period(run: _AzureRunInfo | None, key: str, segs: list[str], i: int | None) -> str:
    """The billing period from ``runInfo.startDate``, checked against the key's date range."""
    key_period = _range_period(segs[i], file=key, inclusive_end=True) if i is not None else None
    if run is not None and run.startDate:
        period = _bounds_period(run.startDate, run.endDate, file=key, start_field="runInfo.startDate",
                                end_field="runInfo.endDate", inclusive_end=True)
        if key_period is not None and key_period != period:
            raise InputError(f"runInfo.startDate is in {period}, the key's date range in {key_period}", file=key,
                             field="runInfo.startDate")
    elif key_period is not None:
        period = key_period
    else:
        raise InputError("no runInfo.startDate and no yyyyMMdd-yyyyMMdd folder in the key", file=key,
                         field="runInfo.startDate")
    return period


def _azure_source(config: _AzureExportConfig, key: str, segs: list[str], i: int | None, bucket: str | None) -> str:
    """The source: the export's resource id, else the container and folder."""
    name = config.exportName.strip() if config.exportName and config.exportName.strip() else None
    if config.resourceId and config.resourceId.strip():
        resource = _clean_path(config.resourceId).lower()
        scope, found, tail = resource.partition(_AZURE_EXPORTS)
        if not found or not scope or not tail or "/" in tail:
            raise InputError(f"resourceId {config.resourceId!r} is not <scope>{_AZURE_EXPORTS}<export>", file=key,
                             field="exportConfig.resourceId")
        if name is not None and name.lower() != tail:
            raise InputError(f"exportName {name!r} is not the export {tail!r} of resourceId", file=key,
                             field="exportConfig.exportName")
        source = f"azure|{scope}|{name or tail}"
    elif i is not None and bucket:
        source = _azure_legacy_source(bucket, "/".join(segs[: i - 1]), name or segs[i - 1])
    else:
        raise InputError("no exportConfig.resourceId, and no bucket and date-range folder to name the source",
                         file=key, field="exportConfig.resourceId")
    return source


def _azure_files(m: AzureManifest, key: str) -> tuple[tuple[DeliveryFile, ...], int | None]:
    """The blobs listed, checked against ``blobCount`` and ``dataRowCount``; the rows expected."""
    files = tuple(DeliveryFile(key=_clean_path(b.blobName), row_count=b.dataRowCount, byte_count=b.byteCount)
                  for b in m.blobs)
    _unique([f.key for f in files], key, "blobs")
    if m.blobCount is not None and m.blobCount != len(files):
        raise InputError(f"blobCount {m.blobCount} but {len(files)} blobs listed", file=key, field="blobCount")
    rows = [f.row_count for f in files]
    listed = sum(r for r in rows if r is not None) if None not in rows else None
    if m.dataRowCount is not None and listed is not None and listed != m.dataRowCount:
        raise InputError(f"dataRowCount {m.dataRowCount} but the blobs add up to {listed}", file=key,
                         field="dataRowCount")
    expected = m.dataRowCount if m.dataRowCount is not None else listed
    return files, expected


def parse_gcp_manifest(data: bytes | str, key: str, *, bucket: str | None = None,
                       metadata: Mapping[str, Any] | None = None) -> Delivery:
    """The delivery a burnguard GCS ``manifest.json`` describes (layout in the module docstring)."""
    key = _check_key(key)
    parsed = _gcp_layout(key)
    if parsed is None or parsed.role != "manifest":
        raise InputError("not at <prefix>/<billing_account_id>/<YYYY-MM>/<run_id>/manifest.json", file=key)
    m: GcpManifest = _load(GcpManifest, data, key, "GCS export manifest")
    if m.billingAccountId.strip().upper() != parsed.export_name:
        raise InputError(f"billingAccountId {m.billingAccountId!r} is not the key's {parsed.export_name!r}", file=key,
                         field="billingAccountId")
    period = _month(m.billingPeriod, file=key, what="billingPeriod", field="billingPeriod")
    if period != parsed.billing_period:
        raise InputError(f"billingPeriod {period} is not the key's {parsed.billing_period}", file=key,
                         field="billingPeriod")
    if m.runId != parsed.version:
        raise InputError(f"runId {m.runId!r} is not the key's run folder {parsed.version!r}", file=key, field="runId")
    run_folder = key.rsplit("/", 1)[0] + "/"
    files: list[DeliveryFile] = []
    for i, f in enumerate(m.files):
        obj = f.name if "/" in f.name else run_folder + f.name
        if not obj.startswith(run_folder) or "/" in obj[len(run_folder):]:
            raise InputError(f"{f.name!r} is not in the run folder {run_folder!r}", file=key, field=f"files[{i}].name")
        if not _has_ext(obj, _GCP_FORMAT_EXT[m.format]):
            raise InputError(f"{f.name!r} is not a {m.format} file", file=key, field=f"files[{i}].name")
        files.append(DeliveryFile(key=obj, row_count=f.rows))
    _unique([f.key for f in files], key, "files")
    listed = sum(f.row_count or 0 for f in files)
    if listed != m.totalRows:
        raise InputError(f"totalRows {m.totalRows} but the files add up to {listed}", file=key, field="totalRows")
    produced = (_timestamp(m.createdAt, file=key, field="createdAt") if m.createdAt
                else _modified(metadata, file=key))
    return Delivery(provider="gcp", source=_gcp_source(parsed.export_name, parsed.prefix), billing_period=period,
                    version=m.runId, files=tuple(files), complete=True, expected_rows=m.totalRows, layout="gcp",
                    bucket=bucket, produced_at=produced)


# --------------------------------------------------------------------------------------------
# Exports without a manifest


def delivery_for_single_file(provider: str, bucket: str, key: str, generation_or_etag: object) -> Delivery:
    """The delivery of an export that is one object and has no manifest.

    * ``azure``: a legacy single-file export ``<root>/<export>/<yyyyMMdd-yyyyMMdd>/<file>``;
      ``generation_or_etag`` is the blob's ETag (quoted or not).
    * ``gcp``: a GCS object outside burnguard's layout, keyed by ``(bucket, name, generation)``;
      ``generation_or_etag`` is the generation (a JSON number or string).

    AWS exports always have a manifest, and objects that belong to a manifest delivery are
    refused: both raise :class:`InputError` naming the key.
    """
    cloud = _provider(provider)
    key = _check_key(key)
    if not bucket:
        raise InputError("no bucket", file=key, field="bucket")
    name = key.rsplit("/", 1)[-1]
    if cloud == "aws":
        raise InputError("AWS billing exports always carry a manifest: trigger on the *-Manifest.json", file=key,
                         field="provider")
    if cloud == AZURE:
        segs = key.split("/")
        i = _azure_range_index(segs)
        if i is None or i != len(segs) - 2 or name.lower() == "manifest.json":
            raise InputError("not a legacy single-file export (<root>/<export>/<yyyyMMdd-yyyyMMdd>/<file>); "
                             "partitioned exports are read from their manifest.json", file=key)
        period = _range_period(segs[i], file=key, inclusive_end=True)
        root, export = "/".join(segs[: i - 1]), segs[i - 1]
        return Delivery(provider=AZURE, source=_azure_legacy_source(bucket, root, export), billing_period=period,
                        version=f"{name}@{_etag(generation_or_etag, file=key)}", files=(DeliveryFile(key=key),),
                        complete=True, layout="azure_legacy", bucket=bucket)
    if _gcp_layout(key) is not None:
        raise InputError("object belongs to a burnguard GCS export run: read it from the run's manifest.json",
                         file=key)
    return Delivery(provider="gcp", source=_gcp_object_source(bucket, key), billing_period=_gcp_name_period(key),
                    version=_generation(generation_or_etag, file=key), files=(DeliveryFile(key=key),),
                    complete=_GCP_SHARD.search(name) is None, layout="gcp_object", bucket=bucket)


__all__ = [
    "AZURE_COST_BASIS",
    "ID_SCHEME",
    "AzureManifest",
    "CostBasis",
    "CurManifest",
    "DataExportsManifest",
    "Delivery",
    "DeliveryFile",
    "GcpManifest",
    "Layout",
    "ManifestFormat",
    "ObjectRole",
    "Provider",
    "RoleKind",
    "S3Key",
    "blob_path_from_subject",
    "classify_object",
    "delivery_for_single_file",
    "delivery_id",
    "parse_azure_manifest",
    "parse_cur_manifest",
    "parse_data_exports_manifest",
    "parse_gcp_manifest",
    "parse_s3_key",
]
