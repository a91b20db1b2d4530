"""The live estimate in the Firestore ledger (:class:`burnguard.ports.ledger.EstimateLog`).

Same semantics as the SQLite side (:mod:`burnguard.adapters.local.estimates`), same contract
suite (``tests/contract/test_estimates_contract.py``). Documents:

* ``{p}meter/{hash(cloud, instance)}``: one per instance. Where its accrual stands
  (``accrued_until``), its latest state (``seen_at``, ``running``, ``rate`` as a decimal string,
  ``currency``, ``source``, ``tags``) and its estimates still held, in the map ``hours``: per
  ``"<hour>|<currency>|<source>"`` the seconds accrued (``s``), ``rs`` (the sum of rate in
  nano-units × seconds, an exact integer as decimal text: the amount is ``rs / 3600``
  nano-units, divided once when read), the instance type, tags and billing key of the hour's
  first accrual. One document per instance, not per (instance, hour): a tick writes each
  instance once, and a question reads each instance once (hours no delivery covers are a few
  dozen at most: they drop out when a delivery covers them).
* ``{p}estimate_errors/{hash(delivery, cloud, instance, type, source, currency)}``: what was
  estimated for the hours a delivery covered, and what the bill says (nano-units, decimal text).

**Never double counted.** An instance's accrual reads and writes its own document in a
transaction that also reads the coverage (the ``current`` documents), so a reading and a switch
are serialized, and two meters racing on one instance are too (Firestore retries the loser,
which then finds ``accrued_until`` moved). A tick's readings are applied in transactions of at
most :data:`READINGS_PER_TX` instances (Firestore: 500 writes per commit): atomicity per
instance is what the arithmetic needs (each instance's accrual depends on its own document and
the coverage only), so a tick cut short is a tick that read fewer instances, caught up by the
next one.

**Dropped with the switch.** Estimates count only for hours at or after their cloud's coverage
(every question filters by it, as SQLite's do), and the coverage moves in the switch
transaction of :meth:`FirestoreLedger.complete`: the moment a delivery is counted, the
estimates of the hours it covers stop counting, atomically, whatever their number. Then, in the
same ``complete`` call, their error against the bill is recorded and they are deleted, one
transaction per :data:`INSTANCES_PER_TX` instances (a switch may cover hours of thousands of
instances: more than one commit takes). The delivery's ``estimates_settled`` flag is false until
that is done, so a redelivered message (at-least-once) resumes it; an instance's covered hours
are removed in the transaction that records their error, so nothing is recorded twice.

**One read per tick.** Every question (estimated spend, running rate, coverage) reads every
``meter`` document, and a tick asks several per guardrail (its evaluation, its projection):
at least ``1 + 3 × guardrails`` reads of each document per tick, billed. Within
:meth:`FirestoreEstimates.tick_snapshot` (the meter's evaluation and projections) they are
answered from one read of ``meter`` and ``current`` made for the tick: each document is read
twice a tick (by ``record_readings``, then once for the questions), whatever the number of
guardrails. A write through the ledger to either collection makes the snapshot stale; it is
read again at the next question.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from burnguard.core.estimates import (
    Accrual,
    Coverage,
    EstimateError,
    EstimateRow,
    Reading,
    accrue,
    fold_tags,
    from_rate_seconds,
    mean_rates,
    new_accrued_until,
    resource_key,
    to_nanos,
)
from burnguard.core.ledger import Scope, SpendRow, Window, from_nanos

#: instances per transaction of a tick (one write each; Firestore: 500 writes per commit)
READINGS_PER_TX = 400
#: instances per transaction when covered estimates drop (one write each, plus their errors)
INSTANCES_PER_TX = 100


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dt(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _key(*parts: str) -> str:
    """A document id for any text key (as :mod:`burnguard.adapters.gcp.firestore` makes them)."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _entry_key(hour: str, currency: str, source: str) -> str:
    return f"{hour}|{currency}|{source}"


def _entry_hour(key: str) -> str:
    return key.split("|", 1)[0]


def _nanos(value: Any) -> int:
    """A decimal of the pages (decimal256(76, 9)) in nano-units, exactly."""
    return int(Decimal(value).scaleb(9))


def coverage_of(counted: Iterable[Mapping[str, Any]]) -> Coverage:
    """Per cloud and account, the end of the hours the counted deliveries (``current``
    documents: their ``data_end`` and ``accounts``) cover."""
    return Coverage.of((c["provider"], _dt(c["data_end"]) if c.get("data_end") else None, c.get("accounts"))
                       for c in counted)


class _TickSnapshot:
    """What a meter tick's questions share: the ``current`` documents and every ``meter``
    document, each read once (when first asked), as of the ledger's write ``generation``."""

    def __init__(self, generation: int):
        self.generation = generation
        self.counted: list[dict[str, Any]] | None = None
        self.instances: list[dict[str, Any]] | None = None


class FirestoreEstimates:
    """The :class:`~burnguard.ports.ledger.EstimateLog` part of :class:`FirestoreLedger`."""

    client: Any
    _col: Callable[[str], Any]
    _read_counted: Callable[[], list[dict[str, Any]]]
    _queries: Callable[..., list[tuple[str, tuple[Any, ...], Any]]]
    _read: Callable[[Sequence[tuple[tuple[Any, ...], Any]]], list[pa.Table]]
    _tick: threading.local
    _writes: Iterator[int]
    _generation: int

    def _meter(self, cloud: str, instance_id: str) -> Any:
        return self._col("meter").document(_key(cloud, instance_id))

    # -- the tick's snapshot ------------------------------------------------------------------
    @contextmanager
    def tick_snapshot(self) -> Iterator[None]:
        """Within it (in this thread), the questions of a meter tick (the guardrail's evaluation,
        the projections of every guardrail) are answered from one read of the ``meter`` and
        ``current`` documents, instead of one read of every instance per question: each read
        of a document is a billed read. Every write through this ledger to either collection
        (:meth:`record_readings`, a delivery's switch, the drop after it) counts in
        ``_generation`` once done; a snapshot older than the latest is read again at the next
        question, in any thread, so no answer is older than this ledger's own writes. Writes
        by other processes meanwhile are seen at the next re-read, as a question asked at the
        snapshot's read would have seen them. Reentrant: an inner one shares the outer's."""
        if getattr(self._tick, "snapshot", None) is not None:
            yield
            return
        self._tick.snapshot = _TickSnapshot(self._generation)
        try:
            yield
        finally:
            self._tick.snapshot = None

    def _changed(self) -> None:
        """A write to ``meter`` or ``current`` is done (or failed half way): every snapshot
        taken before it is stale."""
        self._generation = next(self._writes)

    def _snapshot(self) -> _TickSnapshot | None:
        snap: _TickSnapshot | None = getattr(self._tick, "snapshot", None)
        if snap is not None and snap.generation != self._generation:
            # written since it was read: the generation is taken before the documents are read
            # again, so a write that lands meanwhile makes the next question read once more
            snap.generation, snap.counted, snap.instances = self._generation, None, None
        return snap

    def _counted(self) -> list[dict[str, Any]]:
        """The ``current`` documents (the coverage, the counted deliveries): the tick's
        snapshot's within :meth:`tick_snapshot`, else read now."""
        snap = self._snapshot()
        if snap is None:
            return self._read_counted()
        if snap.counted is None:
            snap.counted = self._read_counted()
        return snap.counted

    # -- writing ------------------------------------------------------------------------------
    def record_readings(self, readings: Sequence[Reading]) -> list[Accrual]:
        by_instance: dict[tuple[str, str], list[Reading]] = {}
        for r in readings:
            by_instance.setdefault((r.cloud, r.instance_id), []).append(r)
        keys = list(by_instance)
        out: list[Accrual] = []
        for i in range(0, len(keys), READINGS_PER_TX):
            out += self._record_group({k: by_instance[k] for k in keys[i:i + READINGS_PER_TX]})
        return out

    def _record_group(self, group: Mapping[tuple[str, str], list[Reading]]) -> list[Accrual]:
        from google.cloud import firestore

        refs = {k: self._meter(*k) for k in group}
        current = self._col("current")

        @firestore.transactional
        def apply(tx: Any) -> list[Accrual]:
            # the coverage read in the transaction: a switch that moves it meanwhile retries us
            cov = coverage_of(d.to_dict() for d in current.stream(transaction=tx))
            snaps = {s.reference.path: s for s in tx.get_all(list(refs.values()))}
            accrued: list[Accrual] = []
            for k, ref in refs.items():
                snap = snaps.get(ref.path)
                doc = snap.to_dict() if snap is not None and snap.exists else None
                data, added = _apply(doc, group[k], cov)
                tx.set(ref, data)
                accrued += added
            return accrued

        try:
            result: list[Accrual] = apply(self.client.transaction())
        finally:
            self._changed()
        return result

    # -- the drop, after the switch that counted ``delivery_id`` -------------------------------
    def _drop_covered_estimates(self, cloud: str, delivery_id: str, now: datetime) -> int:
        """Record the error of the estimates of ``cloud`` for the hours now covered (per
        instance, against the bill's effective GPU cost of the same resource in the same
        hours) and delete them. Returns the (instance, hour) rows dropped. Idempotent."""
        from google.cloud import firestore

        cov = coverage_of(self._read_counted())  # a write: never a snapshot's
        if cov.clouds.get(cloud) is None:
            return 0

        def floor(doc: Mapping[str, Any]) -> str:
            end = cov.end(cloud, doc.get("account"))
            return _ts(end) if end is not None else ""

        docs = [d for d in self._col("meter").where(filter=_eq("cloud", cloud)).stream()
                if any(_entry_hour(h) < floor(d.to_dict()) for h in (d.to_dict().get("hours") or {}))]
        if not docs:
            return 0
        first = min(_entry_hour(h) for d in docs for h in d.to_dict()["hours"])
        billed = self._billed_hours(cloud, _dt(first), cov.clouds[cloud])
        used: set[tuple[str, str, str]] = set()

        @firestore.transactional
        def drop(tx: Any, refs: list[Any]) -> tuple[int, set[tuple[str, str, str]]]:
            taken: set[tuple[str, str, str]] = set()
            rows = 0
            for snap in tx.get_all(refs):
                if not snap.exists:
                    continue
                doc = snap.to_dict()
                hours = dict(doc.get("hours") or {})
                end = floor(doc)
                covered = {h: e for h, e in hours.items() if _entry_hour(h) < end}
                if not covered:
                    continue
                per: dict[tuple[str, str, str], list[int]] = {}
                for h, e in sorted(covered.items()):
                    hour, cur, source = h.split("|", 2)
                    acc = per.setdefault((e["ty"], source, cur), [0, 0, 0])
                    acc[0] += int(e["s"])
                    acc[1] += int(e["rs"])
                    bkey = (e["bk"], hour, cur)
                    if bkey not in used and bkey not in taken:  # each billed hour counted once
                        taken.add(bkey)
                        acc[2] += billed.get(bkey, 0)
                    del hours[h]
                for (itype, source, cur), (s, rs, b) in per.items():
                    tx.set(self._col("estimate_errors").document(
                        _key(delivery_id, doc["cloud"], doc["instance_id"], itype, source, cur)),
                        {"delivery_id": delivery_id, "cloud": doc["cloud"], "instance_id": doc["instance_id"],
                         "instance_type": itype, "source": source, "currency": cur, "seconds": s,
                         "rate_seconds": str(rs), "billed": str(b), "at": _ts(now)})
                tx.update(snap.reference, {"hours": hours})
                rows += len(covered)
            return rows, taken

        dropped = 0
        try:
            for i in range(0, len(docs), INSTANCES_PER_TX):
                n, taken = drop(self.client.transaction(), [d.reference for d in docs[i:i + INSTANCES_PER_TX]])
                dropped += n
                used |= taken
        finally:
            self._changed()
        return dropped

    def _billed_hours(self, cloud: str, start: datetime, end: datetime) -> dict[tuple[str, str, str], int]:
        """Effective GPU cost (nano-units) per (resource key, hour, currency) of ``cloud`` in
        ``[start, end)``, from the hourly pages of the counted deliveries."""
        out: dict[tuple[str, str, str], int] = defaultdict(int)
        for row in self._hourly_rows(cloud, start, end):
            out[(resource_key(row["resource_id"] or ""), _ts(row["hour"]), row["currency"])] += _nanos(
                row["effective"])
        return out

    def _pages(self, kind: str, start: datetime, end: datetime) -> pa.Table | None:
        first = start.date().isoformat()
        last = (end.date() + timedelta(days=1)).isoformat()
        tables = [t for t in self._read([(k, q) for _d, k, q in self._queries(kind, first, last)]) if t.num_rows]
        return pa.concat_tables(tables, promote_options="default") if tables else None

    def _hourly_rows(self, cloud: str, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        table = self._pages("hourly", start, end)
        if table is None:
            return
        hour = table["hour"]
        table = table.filter(pc.and_(pc.and_(pc.equal(table["cloud"], cloud),
                                             pc.greater_equal(hour, pa.scalar(start, hour.type))),
                                     pc.less(hour, pa.scalar(end, hour.type))))
        for row in table.to_pylist():
            row["hour"] = row["hour"].astimezone(UTC)
            yield row

    # -- questions ------------------------------------------------------------------------------
    def _instances(self, clouds: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The ``meter`` documents (of ``clouds``): the tick's snapshot's within
        :meth:`tick_snapshot` (all of them, read once), else read now."""
        snap = self._snapshot()
        if snap is not None:
            if snap.instances is None:
                snap.instances = [d.to_dict() for d in self._col("meter").stream()]
            return [d for d in snap.instances if not clouds or d.get("cloud") in clouds]
        q = self._col("meter")
        if clouds:
            q = q.where(filter=_in("cloud", list(clouds)))
        return [d.to_dict() for d in q.stream()]

    def _counted_entries(self, clouds: Sequence[str] | None = None
                         ) -> Iterator[tuple[dict[str, Any], str, str, str, dict[str, Any]]]:
        """(instance document, hour, currency, source, entry) of the estimates still counted."""
        cov = coverage_of(self._counted())
        for doc in self._instances(clouds):
            end = cov.end(doc["cloud"], doc.get("account"))
            floor = _ts(end) if end is not None else ""
            for key, entry in (doc.get("hours") or {}).items():
                hour, cur, source = key.split("|", 2)
                if hour >= floor:
                    yield doc, hour, cur, source, entry

    def coverage(self) -> dict[str, datetime]:
        return dict(coverage_of(self._counted()).clouds)

    def estimated_spend(self, scope: Scope, window: Window, *,
                        clouds: Sequence[str] | None = None) -> list[SpendRow]:
        lo, hi = f"{window.start.isoformat()}T00:00:00Z", f"{window.end.isoformat()}T00:00:00Z"
        key = scope.key.casefold()
        totals: dict[tuple[str, str], int] = defaultdict(int)
        for _doc, hour, cur, _source, entry in self._counted_entries(clouds):
            if not lo <= hour < hi:
                continue
            value = fold_tags(json.loads(entry["tags"])).get(key)
            if value is None or (scope.value is not None and value != scope.value):
                continue
            totals[(value, cur)] += int(entry["rs"])
        return [SpendRow(v, c, from_rate_seconds(a), from_rate_seconds(a)) for (v, c), a in sorted(totals.items())]

    def running_rate(self, scope: Scope, *, clouds: Sequence[str] | None = None) -> list[SpendRow]:
        key = scope.key.casefold()
        totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for doc in self._instances(clouds):
            if not doc.get("running") or doc.get("rate") is None:
                continue
            value = fold_tags(json.loads(doc.get("tags") or "{}")).get(key)
            if value is None or (scope.value is not None and value != scope.value):
                continue
            totals[(value, doc["currency"])] += Decimal(doc["rate"])
        return [SpendRow(v, c, a, a) for (v, c), a in sorted(totals.items())]

    def estimates(self) -> list[EstimateRow]:
        groups: dict[tuple[str, str, str, str, str], list[Any]] = {}
        until: dict[tuple[str, str], str | None] = {}
        for doc, hour, cur, source, entry in self._counted_entries():
            k = (doc["cloud"], doc["instance_id"], entry["ty"], source, cur)
            g = groups.setdefault(k, [0, 0, hour, hour])
            g[0] += int(entry["rs"])
            g[1] += int(entry["s"])
            g[2], g[3] = min(g[2], hour), max(g[3], hour)
            until[(doc["cloud"], doc["instance_id"])] = doc.get("accrued_until")
        out = []
        for (c, i, t, s, cur), (rs, n, lo, hi) in sorted(groups.items()):
            u = until[(c, i)]
            out.append(EstimateRow(c, i, t, s, cur, from_rate_seconds(rs), n, _dt(lo), _dt(hi), _dt(u) if u else None))
        return out

    def estimate_errors(self) -> list[EstimateError]:
        groups: dict[tuple[str, str, str], list[Any]] = {}
        for d in (doc.to_dict() for doc in self._col("estimate_errors").stream()):
            g = groups.setdefault((d["instance_type"], d["source"], d["currency"]), [set(), 0, 0, 0])
            g[0].add(f"{d['cloud']}:{d['instance_id']}")
            g[1] += int(d["seconds"])
            g[2] += int(d["rate_seconds"])
            g[3] += int(d["billed"])
        return [EstimateError(t, s, len(ids), (Decimal(sec) / 3600).quantize(Decimal("0.01")), from_rate_seconds(e),
                              from_nanos(b), cur) for (t, s, cur), (ids, sec, e, b) in sorted(groups.items())]

    def latest_reading(self) -> datetime | None:
        from google.cloud import firestore

        docs = list(self._col("meter").order_by("seen_at", direction=firestore.Query.DESCENDING).limit(1).stream())
        return _dt(docs[0].get("seen_at")) if docs else None

    def estimate_rows(self) -> int:
        return sum(len(d.get("hours") or {}) for d in self._instances())

    def billed_rates(self, hours: int = 24) -> tuple[dict[tuple[str, str], tuple[Decimal, str, datetime]],
                                                      dict[tuple[str, ...], tuple[Decimal, str]]]:
        by_instance: dict[tuple[str, str], tuple[Decimal, str, datetime]] = {}
        places: dict[tuple[str, str], tuple[str, str, str]] = {}
        for cloud, cov in self.coverage().items():
            since = cov - timedelta(hours=hours)
            for row in self._hourly_rows(cloud, since, cov):
                if not row["resource_id"]:
                    continue
                amount = from_nanos(_nanos(row["effective"]))
                key = (cloud, resource_key(row["resource_id"]))
                # a full hour: the largest of the window (the latest may be partial)
                if amount > 0 and (key not in by_instance or amount > by_instance[key][0]):
                    by_instance[key] = (amount, row["currency"], row["hour"])
            # type, account and region of the resources billed in those days (SQLite: of all time)
            spend = self._pages("spend", since, cov)
            if spend is not None:
                spend = spend.filter(pc.and_(pc.and_(pc.equal(spend["cloud"], cloud), spend["gpu"]),
                                             pc.and_(pc.not_equal(spend["resource_id"], ""),
                                                     pc.not_equal(spend["instance_type"], ""))))
                for r in spend.to_pylist():
                    places[(cloud, resource_key(r["resource_id"]))] = (
                        r["instance_type"], r.get("account") or "", r.get("region") or "")
        by_type = mean_rates(by_instance, places)
        return by_instance, by_type


def _apply(doc: Mapping[str, Any] | None, readings: Sequence[Reading],
           cov: Coverage) -> tuple[dict[str, Any], list[Accrual]]:
    """An instance's document after its readings (in order), and the accruals they added: the
    SQLite ledger's rules (accrued_until only moves forward; the state is the latest reading's;
    an hour's type, tags and billing key are those of its first accrual)."""
    data = dict(doc) if doc is not None else {"hours": {}}
    hours = dict(data.get("hours") or {})
    out: list[Accrual] = []
    for r in readings:
        coverage_end = cov.end(r.cloud, r.account)
        prev = _dt(data["accrued_until"]) if data.get("accrued_until") else None
        accruals = accrue(r, prev, coverage_end)
        after = new_accrued_until(r, prev, coverage_end)
        tags = json.dumps(dict(r.tags), sort_keys=True)
        for a in accruals:
            assert r.rate is not None
            key = _entry_key(_ts(a.hour), a.currency, a.source)
            rs = to_nanos(r.rate.amount) * a.seconds
            entry = hours.get(key)
            if entry is None:
                hours[key] = {"s": a.seconds, "rs": str(rs), "ty": r.instance_type, "tags": tags,
                              "bk": r.billing_key}
            else:
                hours[key] = {**entry, "s": int(entry["s"]) + a.seconds, "rs": str(int(entry["rs"]) + rs)}
        out += accruals
        seen = data.get("seen_at")
        latest = seen is None or _ts(r.at) >= seen
        rate = r.rate
        data.update({"cloud": r.cloud, "instance_id": r.instance_id, "instance_type": r.instance_type, "tags": tags,
                     "account": r.account,
                     "accrued_until": _ts(after) if after else None,
                     "seen_at": max(seen, _ts(r.at)) if seen else _ts(r.at)})
        if latest:  # a late reading, older than the one recorded, leaves the state as it is
            data.update({"running": r.running, "rate": str(rate.amount) if rate else None,
                         "currency": rate.currency if rate else None, "source": rate.source if rate else None})
    data["hours"] = hours
    return data, out


def _eq(field: str, value: Any) -> Any:
    from google.cloud.firestore_v1.base_query import FieldFilter

    return FieldFilter(field, "==", value)


def _in(field: str, values: list[Any]) -> Any:
    from google.cloud.firestore_v1.base_query import FieldFilter

    return FieldFilter(field, "in", values)
