"""Line items → the aggregates the ledger keeps (columnar, one Arrow group-by per table).

The ledger does not keep line items: it keeps, per delivery, the sums that answer every
question burnguard asks, at the grain that answers them fast:

* ``spend``: per billing period, day, cloud, service, charge category, currency, GPU or not,
  tag set (the exact set of tags of the line items), resource and instance type. Tags belong
  to resources, so the resource adds few rows, and one table answers spend per scope, per
  service, and top resources;
* ``gpu_hourly``: GPU spend per hour, resource and tag set, for burn-rate guardrails, over the
  last :data:`HOURLY_DAYS` days of the data only (a burn-rate window is at most a week).

A charge that spans more than a day (AWS tax and fees, monthly credits) has no ``day``: it
counts in its billing period but never as "today's" spend, and never in a daily or hourly rate.
GPU charges of up to a day (hourly AWS/GCP rows, daily Azure rows) are spread evenly over the
hours they cover.

Tag sets are identified by a stable hash of their sorted ``key=value`` pairs; the ledger keeps
each set once, with its tags indexed for scope queries (``team=ml-research``, ``project=*``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from burnguard.core.columnar import distinct_apply, tag_counts, tag_entries, to_np
from burnguard.core.lineitem import MONEY, MONEY_SUM, TIMESTAMP, wide_money

GPU = "gpu"
DAY_SECONDS = 86_400
HOURLY_DAYS = 7
NO_TAGS = "-"


def tagset_id(tags: dict[str, str]) -> str:
    if not tags:
        return NO_TAGS
    canonical = json.dumps(sorted(tags.items()), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def tagsets_of(tags: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, dict[str, dict[str, str]]]:
    """A tag set id per row, and the tags of each id seen (computed once per distinct set)."""
    if isinstance(tags, pa.ChunkedArray):
        tags = tags.combine_chunks()
    n = len(tags)
    _parents, keys, values = tag_entries(tags)
    if len(keys) == 0:
        return pa.repeat(pa.scalar(NO_TAGS), n), {}
    pairs = pc.binary_join_element_wise(keys, values, "\x1f")
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(tag_counts(tags), out=offsets[1:])
    per_row = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), pairs), "\x1e")
    uniques = pc.unique(per_row)
    ids: list[str] = []
    sets: dict[str, dict[str, str]] = {}
    for text in uniques.to_pylist():
        entries = dict(item.split("\x1f", 1) for item in text.split("\x1e")) if text else {}
        tid = tagset_id(entries)
        ids.append(tid)
        if entries:
            sets[tid] = entries
    return pa.array(ids, pa.string()).take(pc.index_in(per_row, value_set=uniques)), sets


@dataclass
class Facts:
    """The aggregates of some line items (one chunk, or a whole delivery)."""

    spend: pa.Table
    gpu_hourly: pa.Table
    tagsets: dict[str, dict[str, str]] = field(default_factory=dict)
    rows: int = 0
    #: end of the latest usage charge (of up to a day) in these line items
    latest_end: datetime | None = None
    #: the accounts these line items charge (``SubAccountId``: AWS usage account, Google Cloud
    #: project, Azure subscription): the accounts a counted delivery covers (the live estimate's
    #: coverage per account)
    accounts: tuple[str, ...] = ()


SPEND_KEYS = ["period", "day", "cloud", "service", "category", "currency", "gpu", "tagset", "resource_id",
              "instance_type", "account", "region"]
#: keys added to the spend facts since the first layout (facts staged before lack them: "")
LATER_SPEND_KEYS = ("account", "region")
HOURLY_KEYS = ["hour", "cloud", "resource_id", "currency", "tagset"]
AGGREGATES = [("billed", "sum"), ("effective", "sum"), ([], "count_all")]


def _period(table: pa.Table) -> pa.Array:
    """``YYYY-MM`` of each row's billing period (formatted once per distinct period start)."""
    start = pc.coalesce(table.column("BillingPeriodStart"), table.column("ChargePeriodStart"))
    return distinct_apply(start, lambda values: pa.array(
        [v.strftime("%Y-%m") if v is not None else None for v in values], pa.string()))


def chunk_facts(table: pa.Table) -> Facts:
    """Aggregate canonical line items into :class:`Facts`."""
    n = table.num_rows
    if n == 0:
        return empty_facts()
    start = table.column("ChargePeriodStart")
    end = pc.coalesce(table.column("ChargePeriodEnd"), start)
    span = to_np(pc.cast(pc.subtract(pc.cast(end, pa.int64()), pc.cast(start, pa.int64())), pa.int64()))
    daily = (span <= DAY_SECONDS)
    day = pc.if_else(pa.array(daily), pc.cast(pc.cast(start, pa.timestamp("s")), pa.date32()),
                     pa.scalar(None, pa.date32()))
    gpu = pc.fill_null(pc.equal(table.column("x_AcceleratorClass"), GPU), False)
    tagset, sets = tagsets_of(table.column("Tags"))
    base = pa.table({
        "period": _period(table),
        "day": day,
        "cloud": pc.fill_null(table.column("x_Cloud"), "other"),
        "service": pc.fill_null(table.column("ServiceName"), ""),
        "category": pc.fill_null(table.column("ChargeCategory"), ""),
        "currency": table.column("BillingCurrency"),
        "gpu": gpu,
        "tagset": tagset,
        "resource_id": pc.fill_null(table.column("ResourceId"), ""),
        "instance_type": pc.fill_null(table.column("x_InstanceType"), ""),
        # where a resource runs (``SubAccountId``, ``RegionId``): the live estimate's rate of
        # "the same instance type in the same region and account"
        "account": pc.fill_null(table.column("SubAccountId"), ""),
        "region": pc.fill_null(table.column("RegionId"), ""),
        "billed": wide_money(pc.fill_null(table.column("BilledCost"), pa.scalar(0, MONEY))),
        "effective": wide_money(pc.fill_null(table.column("EffectiveCost"), pa.scalar(0, MONEY))),
    })
    spend = base.group_by(SPEND_KEYS).aggregate(AGGREGATES)
    usage = daily & (span > 0)
    ends = end.filter(pa.array(usage))
    latest = pc.max(ends).as_py() if len(ends) else None
    recent = usage.copy()
    if latest is not None:
        cutoff = int(latest.timestamp()) - HOURLY_DAYS * DAY_SECONDS
        recent &= to_np(pc.cast(end, pa.int64())) > cutoff
    hourly = _gpu_hourly(base, start, span, to_np(gpu) & recent)
    accounts = tuple(sorted(a for a in pc.unique(table.column("SubAccountId")).to_pylist() if a))
    return Facts(_rename(spend), hourly, sets, n, latest, accounts)


def _gpu_hourly(base: pa.Table, start: pa.ChunkedArray, span: np.ndarray, mask: np.ndarray) -> pa.Table:
    """GPU spend per hour: each charge of up to a day spread evenly over its hours."""
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return empty_facts().gpu_hourly
    hours = np.maximum(1, np.ceil(span[idx] / 3600).astype(np.int64))
    rows = np.repeat(idx, hours)
    offset = np.arange(len(rows)) - np.repeat(np.cumsum(hours) - hours, hours)
    first_hour = to_np(pc.cast(pc.cast(start, pa.int64()), pa.int64()))[idx] // 3600 * 3600
    hour_start = np.repeat(first_hour, hours) + offset * 3600
    share = np.repeat(hours, hours)
    picked = base.take(pa.array(rows))
    table = pa.table({
        "hour": pc.cast(pa.array(hour_start, pa.int64()), TIMESTAMP),
        "cloud": picked.column("cloud"),
        "resource_id": picked.column("resource_id"),
        "currency": picked.column("currency"),
        "tagset": picked.column("tagset"),
        "billed": _split(picked.column("billed"), share),
        "effective": _split(picked.column("effective"), share),
    })
    return _rename(table.group_by(HOURLY_KEYS).aggregate(AGGREGATES))


def _split(amounts: pa.ChunkedArray, share: np.ndarray) -> pa.Array:
    """``amounts / share`` in exact decimal (truncated at 1e-18), division only where needed."""
    amounts = amounts.combine_chunks()
    if (share == 1).all():
        return amounts
    # Precision of an Arrow decimal quotient grows with both operands: keep them narrow.
    wide = pc.cast(amounts, pa.decimal256(58, 18))
    divisor = pc.cast(pc.cast(pa.array(share, pa.int64()), pa.decimal256(19, 0)), pa.decimal256(3, 0))
    divided = pc.divide(wide, divisor)
    return pc.cast(divided, MONEY_SUM, safe=False)


def _rename(table: pa.Table) -> pa.Table:
    names = {"billed_sum": "billed", "effective_sum": "effective", "count_all": "rows"}
    return table.rename_columns([names.get(c, c) for c in table.column_names])


def empty_facts() -> Facts:
    money = [("billed", MONEY_SUM), ("effective", MONEY_SUM), ("rows", pa.int64())]
    spend = pa.schema([("period", pa.string()), ("day", pa.date32()), ("cloud", pa.string()), ("service", pa.string()),
                       ("category", pa.string()), ("currency", pa.string()), ("gpu", pa.bool_()),
                       ("tagset", pa.string()), ("resource_id", pa.string()), ("instance_type", pa.string()),
                       ("account", pa.string()), ("region", pa.string()), *money])
    hourly = pa.schema([("hour", TIMESTAMP), ("cloud", pa.string()), ("resource_id", pa.string()),
                        ("currency", pa.string()), ("tagset", pa.string()), *money])
    return Facts(spend.empty_table(), hourly.empty_table())


def combine(tables: list[pa.Table], keys: list[str]) -> pa.Table:
    """Sum fact tables of one kind over their keys (chunks of a delivery into the delivery)."""
    present = [t for t in tables if t.num_rows]
    if not present:
        return tables[0]
    # Blobs staged before sums were widened hold decimal128: widen them to one schema; those
    # staged before the spend facts kept account and region lack them: "" (unknown).
    present = [_widen(_with_keys(t, keys)) for t in present]
    merged = pa.concat_tables(present)
    summed = merged.group_by(keys).aggregate([("billed", "sum"), ("effective", "sum"), ("rows", "sum")])
    names = {"billed_sum": "billed", "effective_sum": "effective", "rows_sum": "rows"}
    return summed.rename_columns([names.get(c, c) for c in summed.column_names])


def _with_keys(table: pa.Table, keys: list[str]) -> pa.Table:
    for k in keys:
        if k in LATER_SPEND_KEYS and k not in table.column_names:
            i = table.schema.get_field_index("billed")
            table = table.add_column(i, k, pa.repeat(pa.scalar("", pa.string()), table.num_rows))
    return table


def _widen(table: pa.Table) -> pa.Table:
    for name in ("billed", "effective"):
        i = table.schema.get_field_index(name)
        if table.schema.field(i).type != MONEY_SUM:
            table = table.set_column(i, name, wide_money(table.column(name)))
    return table


def to_ipc(table: pa.Table) -> bytes:
    """A fact table as compact bytes (Arrow IPC, LZ4) for a store to keep per chunk."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="lz4")) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def from_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()
