"""The ledger on Firestore (Native mode): the control plane's memory.

Same semantics as the SQLite ledger (:mod:`burnguard.core.ledger`), same contract suite; the data
model is in ARCHITECTURE.md ("Firestore data model"). In short:

* ``{p}chunks/{chunk_id}``: one document per chunk, created once (idempotency by id), with the
  totals it declares; its aggregates are staged as Arrow IPC bytes (LZ4) in
  ``{p}deliveries/{id}/staged/{chunk~kind~part}``, split into parts under Firestore's 1 MiB.
* ``{p}deliveries/{id}``: status, reason, the closing summary.
* At completion the delivery's staged facts are summed (in Arrow, a few chunks at a time) and
  written as **pages**: ``{p}deliveries/{id}/{kind}/{partition~part}``, one partition per day
  (``P<period>`` for period-level charges), so that a query reads only the days it asks for.
  Pages are written *before* the switch, under the new delivery's id where no query looks.
* The switch is one Firestore transaction: ``{p}current/{slice}`` (one per provider, source and
  billing period) moves to the new delivery, the old one is marked superseded. Queries read
  the pages of the deliveries ``current`` names, so the switch is atomic whatever the number
  of pages. The replaced delivery's pages are deleted afterwards (leftovers are invisible).

The effect log (what the guardrail did about each crossing): ``{p}claims/{hash(key)}`` (state,
details) with its effects in ``{p}claims/{hash(key)}/effects/{hash(effect)}``; every method is
one transaction on that crossing's documents (or one ``create()``), never held while acting.

Money is exact: pages hold ``decimal256(76, 9)`` sums (each aggregate row rounded half-even at
1e-9 once, as in SQLite), summed in Arrow decimal256; never floats. Writes go in batches of at
most 500 writes and about 9 MB; no document is rewritten per chunk (a chunk creates its own
documents only), so no document sees more than a few writes per delivery.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from burnguard.adapters.gcp.estimates import FirestoreEstimates
from burnguard.core.facts import Facts, combine, from_ipc, to_ipc
from burnguard.core.ledger import (
    AuditEvent,
    Completion,
    CostBasis,
    DeliveryStatus,
    ResourceRow,
    Scope,
    ServiceRow,
    SpendRow,
    StopRecord,
    Window,
    check_delivery,
)
from burnguard.core.messages import DeliveryRef, DeliverySummary, Totals
from burnguard.ports.ledger import ClaimState

#: Firestore actions the ledger needs (``roles/datastore.user`` on the database).
PERMISSIONS = (
    "datastore.entities.create",
    "datastore.entities.delete",
    "datastore.entities.get",
    "datastore.entities.list",
    "datastore.entities.update",
)

SPEND_KEYS = ["period", "day", "cloud", "service", "category", "currency", "gpu", "tagset", "resource_id",
              "instance_type", "account", "region"]
SCOPE_KEYS = ["period", "day", "cloud", "currency", "gpu", "tagset"]
HOURLY_KEYS = ["hour", "cloud", "resource_id", "currency", "tagset"]
#: staged fact kinds per chunk (the two fact tables of :class:`Facts`, plus its tag sets)
STAGED = {"spend": SPEND_KEYS, "gpu_hourly": HOURLY_KEYS}
#: page kinds a counted delivery has (subcollections of its delivery document)
PAGE_KINDS = ("spend", "scope", "hourly", "tags")
#: bytes of Arrow IPC per document (Firestore: 1 MiB per document, names and fields included)
PART_BYTES = 900_000
#: Firestore: at most 500 writes per batch; keep each request under 10 MiB
BATCH_WRITES = 500
BATCH_BYTES = 9_000_000
#: chunk blobs summed per step at completion (memory: the delivery's groups plus this many chunks)
FOLD = 16
SUM = pa.decimal256(76, 9)
WIDE = pa.decimal256(76, 18)
NO_DAY = "P"
WAITING_SUMMARY = "its closing summary has not arrived"
#: announcements written per commit when a claim settles with many other crossings (under 500)
SETTLE_WRITES = 400
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def _ts(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) if value else None


def _key(*parts: str) -> str:
    """A document id for any text key (ids may not hold ``/`` and are at most 1500 bytes)."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _wide(table: pa.Table) -> pa.Table:
    """Money columns as decimal256(76, 18): chunk sums never overflow (decimal128 holds 20
    integer digits at 18 decimals; a large organisation's year does not fit)."""
    for name in ("billed", "effective"):
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, pc.cast(table.column(name), WIDE))
    return table


def _money(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """An aggregate money column rounded half-even at 1e-9 (once per row), as decimal256 for sums."""
    wide = pc.round(pc.cast(column, WIDE), ndigits=9, round_mode="half_to_even")
    return pc.cast(wide, SUM)


def _tags_table(tagsets: Mapping[str, Mapping[str, str]]) -> pa.Table:
    """One row per tag set and case-folded key; the first key in sorted order wins (as SQLite)."""
    ids: list[str] = []
    keys: list[str] = []
    values: list[str] = []
    for tid, tags in tagsets.items():
        seen: set[str] = set()
        for k, v in sorted(tags.items()):
            folded = k.casefold()
            if folded in seen:
                continue
            seen.add(folded)
            ids.append(tid)
            keys.append(folded)
            values.append(v)
    return pa.table({"tagset": pa.array(ids, pa.string()), "key_folded": pa.array(keys, pa.string()),
                     "value": pa.array(values, pa.string())})


def _f(field: str, op: str, value: Any) -> Any:
    from google.cloud.firestore_v1.base_query import FieldFilter

    return FieldFilter(field, op, value)


def _split(blob: bytes) -> list[bytes]:
    return [blob[i:i + PART_BYTES] for i in range(0, len(blob), PART_BYTES)] or [b""]


class _Writer:
    """Batched writes within Firestore's limits (500 writes, ~9 MB per commit)."""

    def __init__(self, client: Any):
        self.client = client
        self.batch = client.batch()
        self.count = 0
        self.size = 0
        self.commits = 0

    def set(self, ref: Any, data: Mapping[str, Any], size: int = 1024) -> None:
        self._room(size)
        self.batch.set(ref, dict(data))
        self.count += 1
        self.size += size

    def delete(self, ref: Any) -> None:
        self._room(64)
        self.batch.delete(ref)
        self.count += 1

    def _room(self, size: int) -> None:
        if self.count and (self.count >= BATCH_WRITES or self.size + size > BATCH_BYTES):
            self.flush()

    def flush(self) -> None:
        if self.count:
            self.batch.commit()
            self.commits += 1
        self.batch = self.client.batch()
        self.count = 0
        self.size = 0


class FirestoreLedger(FirestoreEstimates):
    """:class:`burnguard.ports.ledger.Ledger` and :class:`~burnguard.ports.ledger.EstimateLog`
    (the live estimate, :mod:`burnguard.adapters.gcp.estimates`) on Firestore.

    ``client`` is a ``google.cloud.firestore.Client`` (its project and database are the
    ledger's); ``prefix`` prefixes every top-level collection (several ledgers in one database).
    """

    def __init__(self, client: Any, prefix: str = "burnguard_", *, cache_bytes: int = 256 * 1024 * 1024):
        self.client = client
        self.prefix = prefix
        #: decoded pages of counted deliveries, by (delivery, kind, range): a counted delivery's
        #: pages never change (written before its switch, deleted only once it is replaced and
        #: no longer named by ``current``), so a warm instance reads each page once
        self._cache: OrderedDict[tuple[Any, ...], list[pa.Table]] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._cached = 0
        self._cache_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="firestore-ledger")
        self._seq = 0
        self._seq_lock = threading.Lock()
        #: the meter tick's snapshot (:meth:`tick_snapshot`), per thread, and the count of writes
        #: to ``meter`` and ``current`` through this ledger (a snapshot older than one is re-read)
        self._tick = threading.local()
        self._writes = itertools.count(1)
        self._generation = 0

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    def _col(self, name: str) -> Any:
        return self.client.collection(self.prefix + name)

    def _delivery(self, delivery_id: str) -> Any:
        return self._col("deliveries").document(delivery_id)

    # -- ingestion ------------------------------------------------------------------------
    def _ensure_delivery(self, d: DeliveryRef, received_at: datetime) -> dict[str, Any]:
        from google.api_core.exceptions import AlreadyExists, Conflict

        ref = self._delivery(d.delivery_id)
        snap = ref.get()
        if snap.exists:
            data: dict[str, Any] = snap.to_dict()
            if data.get("produced_at") is None and d.produced_at is not None:
                ref.update({"produced_at": _ts(d.produced_at)})
                data["produced_at"] = _ts(d.produced_at)
            return data
        data = {"delivery_id": d.delivery_id, "provider": d.provider, "source": d.source,
                "period": d.billing_period, "version": d.version, "produced_at": _ts(d.produced_at),
                "summary": None, "status": "waiting", "reason": "", "rows": 0,
                "received_at": _ts(received_at), "completed_at": None, "data_end": None}
        try:
            ref.create(data)
        except (AlreadyExists, Conflict):  # another instance created it meanwhile
            got = ref.get().to_dict()
            return dict(got) if got else data
        return data

    def add_chunk(self, chunk_id: str, delivery: DeliveryRef, declared: Totals, facts: Facts,
                  received_at: datetime) -> bool:
        from google.api_core.exceptions import AlreadyExists, Conflict

        chunk_ref = self._col("chunks").document(chunk_id)
        if chunk_ref.get().exists:
            return False
        state = self._ensure_delivery(delivery, received_at)
        writer = _Writer(self.client)
        if state.get("status") == "waiting":
            # Staged parts first: the chunk document, created last, says they are all there.
            staged = self._delivery(delivery.delivery_id).collection("staged")
            blobs = {kind: to_ipc(getattr(facts, kind)) for kind in STAGED}
            blobs["tags"] = to_ipc(_tags_table(facts.tagsets))
            for kind, blob in blobs.items():
                parts = _split(blob)
                for i, part in enumerate(parts):
                    writer.set(staged.document(f"{chunk_id}~{kind}~{i:04d}"),
                               {"chunk_id": chunk_id, "kind": kind, "part": i, "parts": len(parts), "blob": part},
                               size=len(part) + 256)
            writer.flush()
        # else: a straggler of a delivery already decided: nothing of it may count again.
        try:
            chunk_ref.create({"chunk_id": chunk_id, "delivery_id": delivery.delivery_id,
                              "totals": declared.model_dump_json(), "received_at": _ts(received_at),
                              "data_end": _ts(facts.latest_end), "accounts": list(facts.accounts)})
        except (AlreadyExists, Conflict):
            return False
        return True

    def add_summary(self, summary: DeliverySummary, received_at: datetime) -> bool:
        from google.cloud import firestore

        self._ensure_delivery(summary.delivery, received_at)
        ref = self._delivery(summary.delivery.delivery_id)

        @firestore.transactional
        def store(tx: Any) -> bool:
            snap = ref.get(transaction=tx)
            if snap.get("summary") is not None:
                return False
            tx.update(ref, {"summary": summary.model_dump_json()})
            return True

        return bool(store(self.client.transaction()))

    def complete(self, delivery_id: str, now: datetime) -> Completion:
        ref = self._delivery(delivery_id)
        snap = ref.get()
        if not snap.exists:
            return Completion(delivery_id, "unknown", "no chunk or summary of this delivery was received")
        d = snap.to_dict()
        if d["status"] != "waiting":
            if d["status"] == "complete" and d.get("estimates_settled") is False:
                self._settle_estimates(d["provider"], delivery_id, now)  # resumed (at-least-once)
            return Completion(delivery_id, d["status"], d["reason"])
        if d.get("summary") is None:
            # No write: a waiting delivery's reason is derived when read (deliveries()), so
            # the chunks of a burst never contend on their delivery's document.
            return Completion(delivery_id, "waiting", WAITING_SUMMARY)
        summary = DeliverySummary.model_validate_json(d["summary"])
        by_delivery = self._col("chunks").where(filter=_f("delivery_id", "==", delivery_id))
        chunk_docs = [c.to_dict() for c in by_delivery.stream()]
        chunks = {c["chunk_id"]: Totals.model_validate_json(c["totals"]) for c in chunk_docs}
        verdict, why = check_delivery(summary, chunks)
        if verdict == "waiting":
            return Completion(delivery_id, "waiting", why)
        if verdict == "rejected":
            return self._close(delivery_id, "rejected", why, now)
        slice_ref = self._col("current").document(_key(d["provider"], d["source"], d["period"]))
        current = slice_ref.get().to_dict()
        if self._newer(current, d):
            assert current is not None
            return self._close(delivery_id, "superseded",
                               f"a later delivery ({current['delivery_id']}) of the same period is already counted",
                               now)
        extent = self._write_pages(delivery_id)
        data_end = max((c["data_end"] for c in chunk_docs if c.get("data_end")), default=None)
        # the accounts it covers (None: its rows name none, so it covers every account of its cloud)
        accounts = sorted({a for c in chunk_docs for a in c.get("accounts") or ()}) or None
        outcome = self._switch(delivery_id, slice_ref, summary.totals.rows, data_end,
                               extent={**extent, "accounts": accounts}, now=now)
        if outcome.status == "superseded" or not outcome.switched:
            if outcome.status != "complete":
                self._delete_pages(delivery_id)
            return outcome
        self._settle_estimates(d["provider"], delivery_id, now)
        self._delete_staged(delivery_id)
        if outcome.replaced:
            self._delete_pages(outcome.replaced)
        return outcome

    def _settle_estimates(self, cloud: str, delivery_id: str, now: datetime) -> None:
        """After the switch (which moved the coverage, so the estimates of the hours it covers
        stopped counting in its transaction): their error recorded, and they are deleted."""
        from google.cloud import firestore

        self._drop_covered_estimates(cloud, delivery_id, now)
        ref = self._delivery(delivery_id)

        @firestore.transactional
        def settled(tx: Any) -> None:
            # a transaction, not a plain update: another instance completing the same delivery may
            # hold the document in its switch transaction (a plain write would abort, not retry)
            if ref.get(transaction=tx).get("estimates_settled") is False:
                tx.update(ref, {"estimates_settled": True})

        settled(self.client.transaction())

    @staticmethod
    def _newer(current: Mapping[str, Any] | None, d: Mapping[str, Any]) -> bool:
        return bool(current is not None and current["delivery_id"] != d["delivery_id"] and d.get("produced_at")
                    and current.get("produced_at") and current["produced_at"] > d["produced_at"])

    def _switch(self, delivery_id: str, slice_ref: Any, rows: int, data_end: str | None, *,
                extent: Mapping[str, Any], now: datetime) -> Completion:
        """The atomic switch: one transaction moves the slice's pointer and both statuses."""
        from google.cloud import firestore

        ref = self._delivery(delivery_id)

        @firestore.transactional
        def switch(tx: Any) -> Completion:
            d = ref.get(transaction=tx).to_dict()
            current = slice_ref.get(transaction=tx).to_dict()
            if d["status"] != "waiting":
                return Completion(delivery_id, d["status"], d["reason"])
            if self._newer(current, d):
                assert current is not None
                why = f"a later delivery ({current['delivery_id']}) of the same period is already counted"
                tx.update(ref, {"status": "superseded", "reason": why, "completed_at": _ts(now)})
                return Completion(delivery_id, "superseded", why)
            replaced = current["delivery_id"] if current and current["delivery_id"] != delivery_id else None
            tx.update(ref, {"status": "complete", "reason": "", "rows": rows, "completed_at": _ts(now),
                            "data_end": data_end, "estimates_settled": False})
            if replaced:
                tx.update(self._delivery(replaced), {"status": "superseded", "reason": f"replaced by {delivery_id}"})
            tx.set(slice_ref, {"delivery_id": delivery_id, "provider": d["provider"], "source": d["source"],
                               "period": d["period"], "produced_at": d.get("produced_at"),
                               "switched_at": _ts(now), "data_end": data_end, **extent})
            return Completion(delivery_id, "complete", "", replaced=replaced, switched=True)

        try:
            result: Completion = switch(self.client.transaction())
        finally:
            self._changed()  # the coverage moved (or may have): a tick's snapshot reads it again
        return result

    def _close(self, delivery_id: str, status: str, reason: str, now: datetime) -> Completion:
        from google.cloud import firestore

        ref = self._delivery(delivery_id)

        @firestore.transactional
        def close(tx: Any) -> Completion:
            d = ref.get(transaction=tx).to_dict()
            if d["status"] != "waiting":
                return Completion(delivery_id, d["status"], d["reason"])
            tx.update(ref, {"status": status, "reason": reason, "completed_at": _ts(now)})
            return Completion(delivery_id, status, reason)  # type: ignore[arg-type]

        result: Completion = close(self.client.transaction())
        self._delete_staged(delivery_id)
        return result

    # -- staging and pages ----------------------------------------------------------------
    def _read_blobs(self, collection: Any, docs: Iterable[Any], group: str) -> Iterator[tuple[str, bytes]]:
        """Reassemble split blobs: yields (group value, bytes) in group order."""
        parts: dict[str, list[tuple[int, bytes]]] = defaultdict(list)
        for doc in docs:
            data = doc.to_dict()
            parts[data[group]].append((data["part"], data["blob"]))
        for name in sorted(parts):
            yield name, b"".join(blob for _i, blob in sorted(parts[name]))

    def _staged(self, delivery_id: str, kind: str) -> Iterator[pa.Table]:
        staged = self._delivery(delivery_id).collection("staged")
        docs = staged.where(filter=_f("kind", "==", kind)).stream()
        for _chunk, blob in self._read_blobs(staged, docs, "chunk_id"):
            yield from_ipc(blob)

    def _sum_staged(self, delivery_id: str, kind: str, keys: list[str]) -> pa.Table | None:
        total: pa.Table | None = None
        batch: list[pa.Table] = []
        for table in self._staged(delivery_id, kind):
            batch.append(_wide(table))
            if len(batch) >= FOLD:
                total = combine([total, *batch] if total is not None else batch, keys)
                batch = []
        if batch:
            total = combine([total, *batch] if total is not None else batch, keys)
        return total

    def _write_pages(self, delivery_id: str) -> dict[str, Any]:
        """Sum the staged chunks into the delivery's pages; returns the extent of its data
        (first and last day, periods with period-level charges) for the ``current`` document."""
        spend = self._sum_staged(delivery_id, "spend", SPEND_KEYS)
        hourly = self._sum_staged(delivery_id, "gpu_hourly", HOURLY_KEYS)
        tag_tables = [t for t in self._staged(delivery_id, "tags") if t.num_rows]
        tags = (pa.concat_tables(tag_tables).group_by(["tagset", "key_folded", "value"]).aggregate([])
                if tag_tables else _tags_table({}))
        writer = _Writer(self.client)
        delivery = self._delivery(delivery_id)
        extent: dict[str, Any] = {"first_day": None, "last_day": None, "periods": []}
        if spend is not None and spend.num_rows:
            spend = spend.set_column(spend.schema.get_field_index("billed"), "billed", _money(spend["billed"]))
            spend = spend.set_column(spend.schema.get_field_index("effective"), "effective",
                                     _money(spend["effective"]))
            partition = pc.if_else(pc.is_null(spend["day"]),
                                   pc.binary_join_element_wise(pa.scalar(NO_DAY), spend["period"], ""),
                                   pc.cast(spend["day"], pa.string()))
            spend = spend.append_column("partition", partition)
            scope = spend.group_by([*SCOPE_KEYS, "partition"]).aggregate(
                [("billed", "sum"), ("effective", "sum"), ("rows", "sum")])
            scope = scope.rename_columns([c.removesuffix("_sum") for c in scope.column_names])
            self._page(writer, delivery.collection("spend"), spend)
            self._page(writer, delivery.collection("scope"), scope)
            days = pc.drop_null(spend["day"])
            if len(days):
                extent["first_day"] = pc.min(days).as_py().isoformat()
                extent["last_day"] = pc.max(days).as_py().isoformat()
            extent["periods"] = sorted(set(pc.unique(spend.filter(pc.is_null(spend["day"]))["period"]).to_pylist()))
        if hourly is not None and hourly.num_rows:
            hourly = hourly.set_column(hourly.schema.get_field_index("billed"), "billed", _money(hourly["billed"]))
            hourly = hourly.set_column(hourly.schema.get_field_index("effective"), "effective",
                                       _money(hourly["effective"]))
            partition = pc.strftime(hourly["hour"], format="%Y-%m-%d")
            self._page(writer, delivery.collection("hourly"), hourly.append_column("partition", partition))
        if tags.num_rows:  # one tag page per (folded) key: a scope query reads its key's page only
            self._page(writer, delivery.collection("tags"), tags.append_column("partition", tags["key_folded"]))
        writer.flush()
        return extent

    @staticmethod
    def _page(writer: _Writer, collection: Any, table: pa.Table) -> None:
        """One page per partition (split in parts under 1 MiB)."""
        partitions = table["partition"]
        for name in sorted(pc.unique(partitions).to_pylist()):
            rows = table.filter(pc.equal(partitions, name)).drop_columns(["partition"])
            parts = _split(to_ipc(rows))
            for i, part in enumerate(parts):
                safe = name if _SAFE_ID.match(name) else _key(name)
                writer.set(collection.document(f"{safe}~{i:04d}"),
                           {"partition": name, "part": i, "parts": len(parts), "blob": part}, size=len(part) + 256)

    def _delete_staged(self, delivery_id: str) -> None:
        self._delete_all(self._delivery(delivery_id).collection("staged"))

    def _delete_pages(self, delivery_id: str) -> None:
        """The four page kinds at once (independent collections: four round trips overlap)."""
        collections = [self._delivery(delivery_id).collection(kind) for kind in PAGE_KINDS]
        for _done in self._pool.map(self._delete_all, collections):
            pass

    def _delete_all(self, collection: Any) -> None:
        writer = _Writer(self.client)
        for doc in collection.select([]).stream():
            writer.delete(doc.reference)
        writer.flush()

    def deliveries(self, *, include_superseded: bool = False) -> list[DeliveryStatus]:
        counted = {c.get("delivery_id") for c in self._col("current").stream()}
        out = []
        docs = [d.to_dict() for d in self._col("deliveries").stream()]
        for d in sorted(docs, key=lambda d: (d.get("received_at") or "", d["delivery_id"])):
            if d["status"] == "superseded" and not include_superseded:
                continue
            ref = DeliveryRef(delivery_id=d["delivery_id"], provider=d["provider"], source=d["source"],
                              billing_period=d["period"], version=d["version"], produced_at=_dt(d.get("produced_at")))
            reason = self._waiting_reason(d) if d["status"] == "waiting" else d["reason"]
            out.append(DeliveryStatus(ref, d["status"], reason, d["delivery_id"] in counted, d.get("rows") or 0,
                                      _dt(d.get("received_at")), _dt(d.get("completed_at"))))
        return out

    def _waiting_reason(self, d: Mapping[str, Any]) -> str:
        if d.get("summary") is None:
            return WAITING_SUMMARY
        summary = DeliverySummary.model_validate_json(d["summary"])
        by_delivery = self._col("chunks").where(filter=_f("delivery_id", "==", d["delivery_id"]))
        chunks = {c["chunk_id"]: Totals.model_validate_json(c["totals"])
                  for c in (doc.to_dict() for doc in by_delivery.stream())}
        return check_delivery(summary, chunks)[1]

    # -- questions -----------------------------------------------------------------------
    def _read_counted(self) -> list[dict[str, Any]]:
        """The ``current`` documents, read now (questions ask :meth:`_counted`: the tick's
        snapshot's, within :meth:`tick_snapshot`)."""
        return [c.to_dict() for c in self._col("current").stream()]

    def _queries(self, kind: str, first: str | None, end: str | None,
                 periods: Sequence[str] = ()) -> list[tuple[str, tuple[Any, ...], Any]]:
        """(delivery id, query) of the pages of one kind of every counted delivery that has
        data in days ``[first, end)`` (``end`` None: no upper bound), plus the period-level
        pages of ``periods``. Deliveries whose extent misses the window are not read."""
        queries: list[tuple[str, tuple[Any, ...], Any]] = []
        for c in self._counted():
            did = c["delivery_id"]
            pages = self._delivery(did).collection(kind)
            if first is not None and c.get("last_day") and c["last_day"] >= first and (
                    end is None or (c.get("first_day") or "") < end):
                q = pages.where(filter=_f("partition", ">=", first))
                upper = end if end is not None else NO_DAY
                queries.append((did, (did, kind, first, upper), q.where(filter=_f("partition", "<", upper))))
            wanted = [NO_DAY + p for p in periods if p in (c.get("periods") or [])]
            if wanted:
                queries.append((did, (did, kind, *wanted), pages.where(filter=_f("partition", "in", wanted))))
        return queries

    def _read(self, queries: Sequence[tuple[tuple[Any, ...], Any]]) -> list[pa.Table]:
        """Run page queries in parallel (those not cached); each page's parts reassembled and
        decoded."""
        with self._cache_lock:
            cached = {key: self._cache[key] for key, _q in queries if key in self._cache}
            for key in cached:
                self._cache.move_to_end(key)
        missing = [(key, q) for key, q in queries if key not in cached]

        def run(item: tuple[tuple[Any, ...], Any]) -> list[pa.Table]:
            return [t for _p, blob in self._read_blobs(None, item[1].stream(), "partition")
                    if (t := from_ipc(blob)).num_rows]

        fetched = dict(zip([key for key, _q in missing], self._pool.map(run, missing), strict=True))
        self._remember(fetched)
        return [t for key, _q in queries for t in (cached.get(key) or fetched.get(key) or [])]

    def _remember(self, fetched: Mapping[tuple[Any, ...], list[pa.Table]]) -> None:
        if self._cache_bytes <= 0:
            return
        with self._cache_lock:
            for key, tables in fetched.items():
                size = sum(t.nbytes for t in tables)
                if key in self._cache or size > self._cache_bytes // 4:
                    continue
                self._cache[key] = tables
                self._cached += size
            while self._cached > self._cache_bytes and self._cache:
                _key, tables = self._cache.popitem(last=False)
                self._cached -= sum(t.nbytes for t in tables)

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()
            self._cached = 0

    def _scoped(self, kind: str, scope: Scope, first: str | None, end: str | None, periods: Sequence[str] = (), *,
                clouds: Sequence[str] | None = None) -> pa.Table | None:
        """The pages of the window joined with the scope's tag values (column ``value``):
        the facts pages and, of the same deliveries, the tag page of the scope's key only."""
        queries = self._queries(kind, first, end, periods)
        key = scope.key.casefold()
        delivery_ids = sorted({did for did, _k, _q in queries})
        tag_queries = [((did, "tags", key), self._delivery(did).collection("tags").where(
            filter=_f("partition", "==", key))) for did in delivery_ids]
        tables = self._read([(k, q) for _d, k, q in queries] + tag_queries)
        facts_tables = [t for t in tables if "tagset" in t.column_names and "key_folded" not in t.column_names]
        tag_tables = [t for t in tables if "key_folded" in t.column_names]
        if not facts_tables or not tag_tables:
            return None
        # pages counted before the spend facts kept account and region lack them (null)
        facts = pa.concat_tables(facts_tables, promote_options="default")
        tags = pa.concat_tables(tag_tables)
        if scope.value is not None:
            tags = tags.filter(pc.equal(tags["value"], scope.value))
        tags = tags.group_by(["tagset", "value"]).aggregate([])
        if clouds:
            facts = facts.filter(pc.is_in(facts["cloud"], value_set=pa.array(list(clouds), pa.string())))
        index = pc.index_in(facts["tagset"], value_set=tags["tagset"])
        facts = facts.filter(pc.is_valid(index))
        return facts.append_column("value", tags["value"].take(pc.drop_null(index)))

    @staticmethod
    def _window(window: Window) -> tuple[str, str, tuple[str, ...]]:
        return window.start.isoformat(), window.end.isoformat(), window.periods

    @staticmethod
    def _basis(basis: CostBasis) -> str:
        if basis not in ("effective", "billed"):
            raise ValueError(f"unknown cost basis {basis!r}")
        return basis

    @staticmethod
    def _gpu_part(table: pa.Table, col: str) -> pa.Table:
        zero = pa.scalar(Decimal(0), table[col].type)
        return table.append_column("gpu_amount", pc.if_else(table["gpu"], table[col], zero))

    def spend(self, scope: Scope, window: Window, *, basis: CostBasis = "effective",
              clouds: Sequence[str] | None = None) -> list[SpendRow]:
        col = self._basis(basis)
        facts = self._scoped("scope", scope, *self._window(window), clouds=clouds)
        if facts is None or not facts.num_rows:
            return []
        sums = self._gpu_part(facts, col).group_by(["value", "currency"]).aggregate(
            [(col, "sum"), ("gpu_amount", "sum")]).to_pylist()
        rows = [SpendRow(r["value"], r["currency"], r[f"{col}_sum"], r["gpu_amount_sum"]) for r in sums]
        return sorted(rows, key=lambda r: (r.scope_value or "", r.currency))

    def daily(self, scope: Scope, window: Window, *, basis: CostBasis = "effective",
              clouds: Sequence[str] | None = None) -> dict[str | None, dict[date, dict[str, Decimal]]]:
        col = self._basis(basis)
        facts = self._scoped("scope", scope, window.start.isoformat(), window.end.isoformat(), clouds=clouds)
        out: dict[str | None, dict[date, dict[str, Decimal]]] = defaultdict(lambda: defaultdict(dict))
        if facts is not None and facts.num_rows:
            for r in facts.group_by(["value", "day", "currency"]).aggregate([(col, "sum")]).to_pylist():
                out[r["value"]][r["day"]][r["currency"]] = r[f"{col}_sum"]
        return {k: dict(v) for k, v in out.items()}

    def gpu_hourly(self, scope: Scope, since: datetime, *, basis: CostBasis = "effective",
                   clouds: Sequence[str] | None = None) -> dict[str | None, dict[datetime, dict[str, Decimal]]]:
        col = self._basis(basis)
        since = since.astimezone(UTC)
        facts = self._scoped("hourly", scope, since.date().isoformat(), None, clouds=clouds)
        out: dict[str | None, dict[datetime, dict[str, Decimal]]] = defaultdict(lambda: defaultdict(dict))
        if facts is not None and facts.num_rows:
            facts = facts.filter(pc.greater_equal(facts["hour"], pa.scalar(since, facts["hour"].type)))
            for r in facts.group_by(["value", "hour", "currency"]).aggregate([(col, "sum")]).to_pylist():
                out[r["value"]][r["hour"].astimezone(UTC)][r["currency"]] = r[f"{col}_sum"]
        return {k: dict(v) for k, v in out.items()}

    def gpu_by_resource(self, scope: Scope, start: datetime, end: datetime, *, basis: CostBasis = "effective",
                        clouds: Sequence[str] | None = None) -> list[ResourceRow]:
        col = self._basis(basis)
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        facts = self._scoped("hourly", scope, start.date().isoformat(), None, clouds=clouds)
        if facts is None or not facts.num_rows:
            return []
        hour = facts["hour"]
        facts = facts.filter(pc.and_(pc.and_(pc.greater_equal(hour, pa.scalar(start, hour.type)),
                                             pc.less(hour, pa.scalar(end, hour.type))),
                                     pc.not_equal(facts["resource_id"], "")))
        sums = facts.group_by(["resource_id", "cloud", "currency"]).aggregate([(col, "sum")]).to_pylist()
        sums.sort(key=lambda r: (-r[f"{col}_sum"], r["resource_id"], r["cloud"], r["currency"]))
        return [ResourceRow(r["resource_id"], r["cloud"], "", True, r["currency"], r[f"{col}_sum"]) for r in sums]

    def top_resources(self, scope: Scope, window: Window, *, limit: int = 10, basis: CostBasis = "effective",
                      gpu_only: bool = False) -> list[ResourceRow]:
        col = self._basis(basis)
        facts = self._scoped("spend", scope, *self._window(window))
        if facts is None or not facts.num_rows:
            return []
        facts = facts.filter(pc.not_equal(facts["resource_id"], ""))
        if gpu_only:
            facts = facts.filter(facts["gpu"])
        sums = facts.group_by(["resource_id", "cloud", "instance_type", "currency"]).aggregate(
            [(col, "sum"), ("gpu", "max")]).to_pylist()
        sums.sort(key=lambda r: (-r[f"{col}_sum"], r["resource_id"], r["cloud"], r["instance_type"], r["currency"]))
        return [ResourceRow(r["resource_id"], r["cloud"], r["instance_type"], bool(r["gpu_max"]), r["currency"],
                            r[f"{col}_sum"]) for r in sums[:limit]]

    def by_service(self, scope: Scope, window: Window, *, basis: CostBasis = "effective") -> list[ServiceRow]:
        col = self._basis(basis)
        facts = self._scoped("spend", scope, *self._window(window))
        if facts is None or not facts.num_rows:
            return []
        sums = facts.group_by(["cloud", "service", "currency"]).aggregate([(col, "sum")]).to_pylist()
        sums.sort(key=lambda r: (-r[f"{col}_sum"], r["cloud"], r["service"], r["currency"]))
        return [ServiceRow(r["cloud"], r["service"], r["currency"], r[f"{col}_sum"]) for r in sums]

    def top_tag_values(self, key: str, window: Window, *, limit: int = 10,
                       basis: CostBasis = "effective") -> list[SpendRow]:
        col = self._basis(basis)
        facts = self._scoped("scope", Scope(key), *self._window(window))
        if facts is None or not facts.num_rows:
            return []
        sums = self._gpu_part(facts, col).group_by(["value", "currency"]).aggregate(
            [(col, "sum"), ("gpu_amount", "sum")]).to_pylist()
        sums.sort(key=lambda r: (-r[f"{col}_sum"], r["value"], r["currency"]))
        return [SpendRow(r["value"], r["currency"], r[f"{col}_sum"], r["gpu_amount_sum"]) for r in sums[:limit]]

    def latest_data(self) -> datetime | None:
        ends = [c["data_end"] for c in self._counted() if c.get("data_end")]
        return _dt(max(ends)) if ends else None

    # -- alert state, audit, stops, snoozes -------------------------------------------------
    def _announcement(self, key: str) -> Any:
        return self._col("announcements").document(_key(key))

    @staticmethod
    def _announcement_data(key: str, at: datetime, details: Mapping[str, Any] | str) -> dict[str, Any]:
        text = details if isinstance(details, str) else json.dumps(dict(details), sort_keys=True, default=str)
        return {"key": key, "at": _ts(at), "details": text}

    def announce(self, key: str, at: datetime, details: Mapping[str, Any]) -> bool:
        """Claim-once by ``create()`` (atomic, and no transaction to lock the document):
        ``False`` if the key was announced before."""
        from google.api_core.exceptions import AlreadyExists, Conflict

        try:
            self._announcement(key).create(self._announcement_data(key, at, details))
        except (AlreadyExists, Conflict):
            return False
        return True

    # -- effect log: claims/{hash(key)} and claims/{hash(key)}/effects/{hash(effect)} --------
    def _claim(self, key: str) -> Any:
        return self._col("claims").document(_key(key))

    def _effect(self, key: str, effect: str) -> Any:
        return self._claim(key).collection("effects").document(_key(effect))

    def claim(self, key: str, at: datetime, details: Mapping[str, Any]) -> ClaimState:
        from google.cloud import firestore

        ref, announced = self._claim(key), self._announcement(key)

        @firestore.transactional
        def open_claim(tx: Any) -> ClaimState:
            snaps = {s.reference.path: s for s in tx.get_all([ref, announced])}
            if snaps[announced.path].exists:
                return "settled"
            claim = snaps[ref.path]
            if claim.exists:
                return "settled" if claim.get("settled") else "pending"
            tx.create(ref, {"key": key, "at": _ts(at), "settled": False, "settled_at": None,
                            "details": json.dumps(dict(details), sort_keys=True, default=str)})
            return "new"

        state: ClaimState = open_claim(self.client.transaction())
        return state

    def effects(self, key: str) -> dict[str, dict[str, Any]]:
        return {d["effect"]: {"state": d["state"], "outcome": d["outcome"], "details": json.loads(d["details"])}
                for d in (doc.to_dict() for doc in self._claim(key).collection("effects").stream())}

    def begin_effect(self, key: str, effect: str, at: datetime, details: Mapping[str, Any]) -> bool:
        """``create()``: atomic, ``False`` if the effect is recorded (pending or done)."""
        from google.api_core.exceptions import AlreadyExists, Conflict

        try:
            self._effect(key, effect).create({
                "effect": effect, "state": "pending", "outcome": "", "at": _ts(at),
                "details": json.dumps(dict(details), sort_keys=True, default=str)})
        except (AlreadyExists, Conflict):
            return False
        return True

    def complete_effect(self, key: str, effect: str, outcome: str, at: datetime, *, details: Mapping[str, Any],
                        audit: AuditEvent, stop: StopRecord | None = None) -> bool:
        """One transaction: the effect marked done, the audit event and the stop written (at
        most three writes)."""
        from google.cloud import firestore

        ref = self._effect(key, effect)
        data = {"effect": effect, "state": "done", "outcome": outcome, "at": _ts(at),
                "details": json.dumps(dict(details), sort_keys=True, default=str)}

        @firestore.transactional
        def complete(tx: Any) -> bool:
            snap = ref.get(transaction=tx)
            if snap.exists and snap.get("state") == "done":
                return False
            tx.set(ref, data)
            tx.create(*self._audit_doc(audit))
            if stop is not None:
                tx.set(*self._stop_doc(stop))
            return True

        return bool(complete(self.client.transaction()))

    def drop_effect(self, key: str, effect: str) -> None:
        from google.cloud import firestore

        ref = self._effect(key, effect)

        @firestore.transactional
        def drop(tx: Any) -> None:
            snap = ref.get(transaction=tx)
            if snap.exists and snap.get("state") == "pending":
                tx.delete(ref)

        drop(self.client.transaction())

    def settle(self, key: str, at: datetime, also: Sequence[str] = ()) -> None:
        """One transaction: the claim settled and its keys announced (those not yet announced).
        Should a decision report more crossings than one commit takes, the surplus is announced
        first, in batches: until the last transaction the claim is pending and its own key
        unannounced, so a retry resumes it."""
        from google.cloud import firestore

        keys = list(dict.fromkeys([key, *also]))
        ref = self._claim(key)
        details = ref.get().to_dict() or {}
        text = details.get("details", "{}")
        for i in range(SETTLE_WRITES, len(keys), SETTLE_WRITES):
            self._announce_missing(keys[i:i + SETTLE_WRITES], at, text)
        head = keys[:SETTLE_WRITES]

        @firestore.transactional
        def settle(tx: Any) -> None:
            refs = [ref, *(self._announcement(k) for k in head)]
            snaps = {s.reference.path: s for s in tx.get_all(refs)}
            claim = snaps[ref.path]
            if claim.exists and not claim.get("settled"):
                tx.update(ref, {"settled": True, "settled_at": _ts(at)})
            for k in head:
                if not snaps[self._announcement(k).path].exists:
                    tx.create(self._announcement(k), self._announcement_data(k, at, text))

        settle(self.client.transaction())

    def _announce_missing(self, keys: Sequence[str], at: datetime, details: str) -> None:
        from google.cloud import firestore

        @firestore.transactional
        def announce(tx: Any) -> None:
            refs = [self._announcement(k) for k in keys]
            snaps = {s.reference.path: s for s in tx.get_all(refs)}
            for k, r in zip(keys, refs, strict=True):
                if not snaps[r.path].exists:
                    tx.create(r, self._announcement_data(k, at, details))

        announce(self.client.transaction())

    def pending_claims(self) -> dict[str, dict[str, Any]]:
        docs = [d.to_dict() for d in self._col("claims").where(filter=_f("settled", "==", False)).stream()]
        docs.sort(key=lambda d: (d["at"], d["key"]))
        return {d["key"]: {"at": _dt(d["at"]), "details": json.loads(d["details"]), "effects": self.effects(d["key"])}
                for d in docs}

    def announced(self, prefix: str) -> dict[str, datetime]:
        q = self._col("announcements").where(filter=_f("key", ">=", prefix)).where(
            filter=_f("key", "<", prefix + "\uffff"))
        return {d["key"]: v for doc in q.stream() if (v := _dt((d := doc.to_dict())["at"])) is not None}

    def audit(self, event: AuditEvent) -> None:
        ref, data = self._audit_doc(event)
        ref.create(data)

    def _audit_doc(self, event: AuditEvent) -> tuple[Any, dict[str, Any]]:
        """A new audit document: its id sorts by arrival (a nanosecond clock, strictly
        increasing within this process), then a random tail. One document per event, never
        an update."""
        with self._seq_lock:
            self._seq = max(self._seq + 1, time.time_ns())
            seq = self._seq
        doc_id = f"{seq:020d}-{uuid.uuid4().hex[:8]}"
        return self._col("audit").document(doc_id), self._audit_doc_data(event, doc_id)

    @staticmethod
    def _audit_doc_data(event: AuditEvent, doc_id: str) -> dict[str, Any]:
        return {"at": _ts(event.at), "kind": event.kind, "actor": event.actor, "outcome": event.outcome,
                "guardrail": event.guardrail, "scope": event.scope, "seq": doc_id,
                "details": json.dumps(event.details, sort_keys=True, default=str)}

    def audit_log(self, *, limit: int = 100, guardrail: str | None = None) -> list[AuditEvent]:
        from google.cloud import firestore

        q = self._col("audit")
        if guardrail:
            # Composite index (guardrail ASC, seq DESC) on the audit collection: see
            # ARCHITECTURE.md ("Indexes"); the emulator does not require it.
            q = q.where(filter=_f("guardrail", "==", guardrail))
        docs = [d.to_dict() for d in q.order_by("seq", direction=firestore.Query.DESCENDING).limit(limit).stream()]
        out = []
        for d in docs:
            when = _dt(d["at"])
            assert when is not None
            out.append(AuditEvent(when, d["kind"], d["actor"], d["outcome"], d.get("guardrail"), d.get("scope"),
                                  json.loads(d["details"])))
        return out

    def record_stop(self, record: StopRecord) -> None:
        ref, data = self._stop_doc(record)
        ref.set(data)

    def _stop_doc(self, record: StopRecord) -> tuple[Any, dict[str, Any]]:
        doc_id = _key(record.guardrail, record.cloud, record.instance_id, _ts(record.stopped_at) or "")
        return self._col("stops").document(doc_id), {
            "guardrail": record.guardrail, "scope": record.scope, "cloud": record.cloud,
            "instance_id": record.instance_id, "name": record.name, "location": record.location,
            "instance_type": record.instance_type, "stopped_at": _ts(record.stopped_at),
            "dry_run": record.dry_run,
            "hourly_cost": str(record.hourly_cost) if record.hourly_cost is not None else None,
            "currency": record.currency, "resumed_at": _ts(record.resumed_at)}

    def stops(self, guardrail: str | None = None, *, active_only: bool = True) -> list[StopRecord]:
        q = self._col("stops")
        if guardrail:
            q = q.where(filter=_f("guardrail", "==", guardrail))
        out = []
        for doc in q.stream():
            d = doc.to_dict()
            if active_only and (d.get("resumed_at") or d["dry_run"]):
                continue
            stopped = _dt(d["stopped_at"])
            assert stopped is not None
            out.append(StopRecord(d["guardrail"], d["scope"], d["cloud"], d["instance_id"], d.get("name") or "",
                                  d.get("location") or "", d.get("instance_type") or "", stopped, bool(d["dry_run"]),
                                  Decimal(d["hourly_cost"]) if d.get("hourly_cost") is not None else None,
                                  d.get("currency"), _dt(d.get("resumed_at"))))
        return sorted(out, key=lambda s: (s.stopped_at, s.cloud, s.instance_id))

    def mark_resumed(self, guardrail: str, cloud: str, instance_id: str, at: datetime) -> None:
        q = self._col("stops").where(filter=_f("guardrail", "==", guardrail)).where(
            filter=_f("instance_id", "==", instance_id))
        writer = _Writer(self.client)
        for doc in q.stream():
            d = doc.to_dict()
            if d["cloud"] == cloud and d.get("resumed_at") is None:
                writer.batch.update(doc.reference, {"resumed_at": _ts(at)})
                writer.count += 1
        writer.flush()

    def snooze(self, guardrail: str, until: datetime, by: str, at: datetime) -> None:
        self._col("snoozes").document(_key(guardrail)).set(
            {"guardrail": guardrail, "until": _ts(until), "by": by, "at": _ts(at)})

    def snoozed_until(self, guardrail: str) -> datetime | None:
        snap = self._col("snoozes").document(_key(guardrail)).get()
        return _dt(snap.get("until")) if snap.exists else None
