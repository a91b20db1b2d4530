"""The queue message contract, the same on every queue (Pub/Sub in the cloud, SQLite locally).

A message is what Pub/Sub carries: string ``attributes`` and ``data`` bytes.

* ``line-items``: a chunk of canonical line items as an Arrow IPC stream (zstd), at most
  :data:`MAX_CHUNK_ROWS` rows, so a message stays far below Pub/Sub's 10 MB limit;
* ``delivery-summary``: the closing message of a delivery (JSON): its identity, every file
  with its chunk count, row count and cost sums, the bad rows skipped. The guardrail counts a
  delivery only when every chunk it names has arrived and agrees with it;
* ``budget-alert``: a native budget notification turned into a :class:`BudgetAlert` (JSON);
* ``state-change``: an instance started or stopped (:class:`~burnguard.core.state_events.StateChange`,
  JSON), published by the AWS and Azure ``instance_event`` functions; the guardrail hands it to
  the meter, which starts or ends the instance's accrual at the event's time.

Every message carries ``schema`` (the contract version) and a deterministic ``message_id``:
the same chunk of the same delivery always has the same id, so redelivery is harmless.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import ipc
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from burnguard.core.columnar import currency_sums
from burnguard.core.errors import InputError
from burnguard.core.lineitem import SCHEMA
from burnguard.core.state_events import StateChange

SCHEMA_VERSION = "1"
LINE_ITEMS = "line-items"
DELIVERY_SUMMARY = "delivery-summary"
BUDGET_ALERT = "budget-alert"
STATE_CHANGE = "state-change"
KINDS = (LINE_ITEMS, DELIVERY_SUMMARY, BUDGET_ALERT, STATE_CHANGE)
MAX_CHUNK_ROWS = 50_000
TOTALS_KEY = "burnguard.totals"


def stable_id(*parts: str) -> str:
    """A short deterministic id from its parts (sha256, 32 hex characters)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Message:
    """One queue message: string attributes and bytes, as Pub/Sub has them."""

    attributes: dict[str, str]
    data: bytes

    @property
    def kind(self) -> str:
        return self.attributes.get("kind", "")

    @property
    def message_id(self) -> str:
        return self.attributes.get("message_id", "")


class DeliveryRef(BaseModel):
    """The identity of a delivery, as ingestion derived it (see :mod:`burnguard.core.delivery`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    delivery_id: str
    provider: str
    source: str
    billing_period: str  # YYYY-MM
    version: str
    #: when the provider produced this version (manifest time, object time): orders versions
    produced_at: datetime | None = None


class Totals(BaseModel):
    """Exact cost sums of some rows, per currency (decimal strings)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: int
    billed: dict[str, Decimal] = Field(default_factory=dict)
    effective: dict[str, Decimal] = Field(default_factory=dict)


class FileSummary(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    format: str | None = None
    chunks: int
    totals: Totals
    rows_read: int
    rows_skipped: int = 0
    errors: list[dict[str, Any]] = Field(default_factory=list)


class DeliverySummary(BaseModel):
    """The closing message of a delivery."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    delivery: DeliveryRef
    files: list[FileSummary]
    totals: Totals
    expected_rows: int | None = None  # from the manifest, when it says

    @property
    def chunk_ids(self) -> list[str]:
        return [chunk_id(self.delivery.delivery_id, f.key, i) for f in self.files for i in range(f.chunks)]


def chunk_id(delivery_id: str, file_key: str, index: int) -> str:
    return stable_id(delivery_id, file_key, str(index))


def totals_of(table: pa.Table) -> Totals:
    """Exact per-currency sums of a line item table."""
    sums = currency_sums(table)
    return Totals(rows=table.num_rows, billed={s.currency: s.billed for s in sums},
                  effective={s.currency: s.effective for s in sums})


def add_totals(a: Totals, b: Totals) -> Totals:
    billed = dict(a.billed)
    effective = dict(a.effective)
    for cur, v in b.billed.items():
        billed[cur] = billed.get(cur, Decimal(0)) + v
    for cur, v in b.effective.items():
        effective[cur] = effective.get(cur, Decimal(0)) + v
    return Totals(rows=a.rows + b.rows, billed=billed, effective=effective)


# -- encoding ------------------------------------------------------------------------------

def _produced(delivery: DeliveryRef) -> dict[str, str]:
    return {"produced_at": delivery.produced_at.isoformat()} if delivery.produced_at else {}


def _base(kind: str, message_id: str, **extra: str) -> dict[str, str]:
    return {"schema": SCHEMA_VERSION, "kind": kind, "message_id": message_id, **extra}


def encode_chunk(delivery: DeliveryRef, file_key: str, index: int, table: pa.Table, *,
                 totals: Totals | None = None, compression: str | None = "zstd") -> Message:
    """``totals`` when the caller has them already (:func:`totals_of` of ``table``).

    ``compression`` is the transport's choice, not the contract's: an Arrow IPC reader reads
    any codec. Pub/Sub wants zstd (a 25k-row chunk: 1.2 MB instead of 7 MB, under its 10 MB
    limit whatever the descriptions hold); the embedded SQLite queue has no limit and skips
    the codec's time.
    """
    if table.num_rows > MAX_CHUNK_ROWS:
        raise ValueError(f"a chunk holds at most {MAX_CHUNK_ROWS} rows, not {table.num_rows}")
    totals = totals or totals_of(table)
    # The chunk's own sums travel inside the payload (schema metadata), so attributes stay
    # small (Pub/Sub caps an attribute value at 1024 bytes) whatever the number of currencies.
    # String columns go dictionary-encoded (most repeat: services, types, periods): half the
    # bytes, and half the time to compress and decompress.
    wire = _dictionary_encoded(table.cast(SCHEMA)).replace_schema_metadata({TOTALS_KEY: totals.model_dump_json()})
    sink = io.BytesIO()
    with ipc.new_stream(sink, wire.schema, options=ipc.IpcWriteOptions(compression=compression)) as writer:
        writer.write_table(wire)
    cid = chunk_id(delivery.delivery_id, file_key, index)
    attributes = _base(
        LINE_ITEMS, cid, delivery_id=delivery.delivery_id, provider=delivery.provider, source=delivery.source,
        billing_period=delivery.billing_period, version=delivery.version, file=file_key, chunk=str(index),
        rows=str(table.num_rows), **_produced(delivery),
    )
    return Message(attributes, sink.getvalue())


def _dictionary_encoded(table: pa.Table) -> pa.Table:
    columns = [pc.dictionary_encode(col) if pa.types.is_string(col.type) else col for col in table.columns]
    return pa.table(columns, names=table.column_names)


def encode_summary(summary: DeliverySummary) -> Message:
    d = summary.delivery
    attributes = _base(DELIVERY_SUMMARY, stable_id(d.delivery_id, "summary"), delivery_id=d.delivery_id,
                       provider=d.provider, source=d.source, billing_period=d.billing_period, version=d.version,
                       **_produced(d))
    return Message(attributes, summary.model_dump_json().encode())


def encode_budget_alert(alert: BaseModel, alert_id: str) -> Message:
    return Message(_base(BUDGET_ALERT, alert_id), alert.model_dump_json().encode())


class StateChangePayload(BaseModel):
    """The JSON of a ``state-change`` message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cloud: Literal["aws", "gcp", "azure"]
    instance_id: str = Field(min_length=1, max_length=1024)
    state: Literal["running", "stopped"]
    at: AwareDatetime


def encode_state_change(change: StateChange) -> Message:
    """A ``state-change`` message; its id is the same for the same event (redelivery is harmless)."""
    if change.at.tzinfo is None:
        raise ValueError("a state change's time is tz-aware")
    at = change.at.astimezone(UTC)
    payload = StateChangePayload(cloud=change.cloud, instance_id=change.instance_id,  # type: ignore[arg-type]
                                 state=change.state, at=at)
    mid = stable_id(STATE_CHANGE, change.cloud, change.instance_id, change.state, at.isoformat())
    return Message(_base(STATE_CHANGE, mid, cloud=change.cloud, state=change.state), payload.model_dump_json().encode())


def decode_state_change(message: Message) -> StateChange:
    _check(message, STATE_CHANGE)
    try:
        p = StateChangePayload.model_validate_json(message.data)
    except ValueError as exc:
        first = exc.errors()[0] if hasattr(exc, "errors") and exc.errors() else None
        where = ".".join(str(x) for x in first["loc"]) if first and first.get("loc") else "data"
        raise InputError(f"state-change payload is invalid: {' '.join(str(exc).split())}", field=where) from None
    return StateChange(p.cloud, p.instance_id, p.state, p.at.astimezone(UTC))


@dataclass
class Chunk:
    """A decoded ``line-items`` message."""

    chunk_id: str
    delivery: DeliveryRef
    file_key: str
    index: int
    table: pa.Table
    declared: Totals = field(default_factory=lambda: Totals(rows=0))


def decode_chunk(message: Message) -> Chunk:
    a = message.attributes
    _check(message, LINE_ITEMS)
    try:
        table = ipc.open_stream(message.data).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"line-items payload is not an Arrow IPC stream ({exc})", field="data") from None
    if table.schema.names != SCHEMA.names:
        raise InputError("line-items payload does not have the line item schema of this version", field="data")
    metadata = table.schema.metadata or {}
    if TOTALS_KEY.encode() not in metadata:
        raise InputError("line-items payload carries no chunk totals", field="data")
    declared = Totals.model_validate_json(metadata[TOTALS_KEY.encode()])
    try:
        table = table.cast(SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"line-items payload does not fit the line item schema ({exc})", field="data") from None
    actual = totals_of(table)
    if (declared.rows, declared.billed, declared.effective) != (actual.rows, actual.billed, actual.effective):
        raise InputError(f"chunk declares {declared.rows} rows costing {declared.effective} but holds "
                         f"{actual.rows} rows costing {actual.effective}", field="data")
    delivery = DeliveryRef(delivery_id=a["delivery_id"], provider=a["provider"], source=a["source"],
                           billing_period=a["billing_period"], version=a["version"],
                           produced_at=datetime.fromisoformat(a["produced_at"]) if a.get("produced_at") else None)
    return Chunk(a["message_id"], delivery, a["file"], int(a["chunk"]), table, declared)


def decode_summary(message: Message) -> DeliverySummary:
    _check(message, DELIVERY_SUMMARY)
    try:
        return DeliverySummary.model_validate_json(message.data)
    except ValueError as exc:
        raise InputError(f"delivery-summary payload is invalid: {exc}", field="data") from None


def _check(message: Message, kind: str) -> None:
    a = message.attributes
    if a.get("schema") != SCHEMA_VERSION:
        raise InputError(f"message schema {a.get('schema')!r} is not {SCHEMA_VERSION!r}", field="schema")
    if a.get("kind") != kind:
        raise InputError(f"expected a {kind} message, got {a.get('kind')!r}", field="kind")
    missing = [k for k in ("message_id", "delivery_id") if k not in a] if kind in (LINE_ITEMS, DELIVERY_SUMMARY) \
        else [k for k in ("message_id",) if not a.get(k)]
    if missing:
        raise InputError(f"message lacks attribute(s) {', '.join(missing)}", field=missing[0])
