"""The SQLite ledger: the embedded default, one file, WAL, every method one transaction.

Each chunk's aggregates are kept as they came, one Arrow IPC blob per chunk and fact kind
(``staging``): a chunk of a CUR touches thousands of (resource, day) groups that other chunks
touch too, so writing them as rows would write most groups many times. When a delivery
completes and is the latest of its slice, one transaction sums its blobs in Arrow (a few at
a time, so memory stays bounded by the delivery's groups), writes the sums to the query tables,
deletes the rows of the delivery it replaces, and moves the ``current`` pointer: the switch is
atomic, and only counted deliveries ever have rows in the query tables, so queries need no
join on delivery state.

Amounts are nano-units, exact at any size: an INTEGER column holds those that fit SQLite's
int64 (|amount| < 9.2e9 units: every real amount in USD, EUR, JPY...), and a TEXT column
(``billed_x``, ``effective_x``) holds the exact decimal of any larger one (a month of VND or
IDR) with 0 in the INTEGER column. Queries sum the INTEGER column in SQL (fast); when the
ledger holds any large amount, or a sum overflows int64, the query runs again with an exact
Python aggregate over both columns.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from burnguard.adapters.local.estimates import (
    ESTIMATE_EXTRAS,
    INT64_MAX,
    SqliteEstimates,
    drop_covered_estimates,
    xadd_big,
    xadd_small,
)
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
    from_nanos,
    nanos_array,
)
from burnguard.core.messages import DeliveryRef, DeliverySummary, Totals
from burnguard.ports.ledger import ClaimState

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id TEXT PRIMARY KEY, provider TEXT NOT NULL, source TEXT NOT NULL, period TEXT NOT NULL,
    version TEXT NOT NULL, produced_at TEXT, summary TEXT, status TEXT NOT NULL DEFAULT 'waiting',
    reason TEXT NOT NULL DEFAULT '', rows INTEGER NOT NULL DEFAULT 0, received_at TEXT, completed_at TEXT,
    data_end TEXT, accounts TEXT);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY, delivery_id TEXT NOT NULL, totals TEXT NOT NULL, received_at TEXT NOT NULL,
    data_end TEXT, accounts TEXT);
CREATE INDEX IF NOT EXISTS chunks_by_delivery ON chunks(delivery_id);
CREATE TABLE IF NOT EXISTS current (
    provider TEXT NOT NULL, source TEXT NOT NULL, period TEXT NOT NULL, delivery_id TEXT NOT NULL,
    produced_at TEXT, switched_at TEXT NOT NULL, PRIMARY KEY (provider, source, period));
CREATE TABLE IF NOT EXISTS staging (
    delivery_id TEXT NOT NULL, chunk_id TEXT NOT NULL, kind TEXT NOT NULL, facts BLOB NOT NULL,
    PRIMARY KEY (chunk_id, kind));
CREATE INDEX IF NOT EXISTS staging_by_delivery ON staging(delivery_id);
CREATE TABLE IF NOT EXISTS tagsets (tagset TEXT PRIMARY KEY, tags TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tagset_tags (
    tagset TEXT NOT NULL, key_folded TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (tagset, key_folded));
CREATE INDEX IF NOT EXISTS tags_by_pair ON tagset_tags(key_folded, value, tagset);
CREATE TABLE IF NOT EXISTS announcements (key TEXT PRIMARY KEY, at TEXT NOT NULL, details TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL,
    outcome TEXT NOT NULL, guardrail TEXT, scope TEXT, details TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stops (
    guardrail TEXT NOT NULL, scope TEXT NOT NULL, cloud TEXT NOT NULL, instance_id TEXT NOT NULL, name TEXT,
    location TEXT, instance_type TEXT, stopped_at TEXT NOT NULL, dry_run INTEGER NOT NULL, hourly_cost TEXT,
    currency TEXT, resumed_at TEXT, PRIMARY KEY (guardrail, cloud, instance_id, stopped_at));
CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, at TEXT NOT NULL, details TEXT NOT NULL,
    settled_at TEXT);
CREATE TABLE IF NOT EXISTS effects (
    claim TEXT NOT NULL, effect TEXT NOT NULL, state TEXT NOT NULL, outcome TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL, details TEXT NOT NULL, PRIMARY KEY (claim, effect));
CREATE TABLE IF NOT EXISTS meter (
    cloud TEXT NOT NULL, instance_id TEXT NOT NULL, accrued_until TEXT, seen_at TEXT NOT NULL,
    running INTEGER NOT NULL, instance_type TEXT NOT NULL, tagset TEXT NOT NULL, rate TEXT, currency TEXT,
    source TEXT, account TEXT NOT NULL DEFAULT '', PRIMARY KEY (cloud, instance_id));
CREATE TABLE IF NOT EXISTS estimates (
    cloud TEXT NOT NULL, instance_id TEXT NOT NULL, hour TEXT NOT NULL, instance_type TEXT NOT NULL,
    tagset TEXT NOT NULL, currency TEXT NOT NULL, source TEXT NOT NULL, seconds INTEGER NOT NULL,
    rate_seconds INTEGER NOT NULL, billing_key TEXT NOT NULL, rate_seconds_x TEXT,
    account TEXT NOT NULL DEFAULT '', PRIMARY KEY (cloud, instance_id, hour, currency, source));
CREATE INDEX IF NOT EXISTS estimates_by_tagset ON estimates(tagset, hour);
CREATE TABLE IF NOT EXISTS estimate_errors (
    delivery_id TEXT NOT NULL, cloud TEXT NOT NULL, instance_id TEXT NOT NULL, instance_type TEXT NOT NULL,
    source TEXT NOT NULL, currency TEXT NOT NULL, seconds INTEGER NOT NULL, rate_seconds INTEGER NOT NULL,
    billed INTEGER NOT NULL, at TEXT NOT NULL, rate_seconds_x TEXT, billed_x TEXT,
    PRIMARY KEY (delivery_id, cloud, instance_id, source, currency));
CREATE TABLE IF NOT EXISTS snoozes (guardrail TEXT PRIMARY KEY, until TEXT NOT NULL, by TEXT NOT NULL,
    at TEXT NOT NULL);
"""

FACT_TABLES = {
    "spend": ["period", "day", "cloud", "service", "category", "currency", "gpu", "tagset", "resource_id",
              "instance_type", "account", "region"],
    "gpu_hourly": ["hour", "cloud", "resource_id", "currency", "tagset"],
}
#: Chunk blobs summed per step at completion (memory: the delivery's groups plus this many chunks).
FOLD = 16
FACT_INDEXES = {
    "spend": ["tagset, day", "day"],
    "gpu_hourly": ["tagset, hour", "hour"],
}


def _ts(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) if value else None


class SqliteLedger(SqliteEstimates):
    """:class:`burnguard.ports.ledger.Ledger` and :class:`~burnguard.ports.ledger.EstimateLog`
    (the live estimate, :mod:`burnguard.adapters.local.estimates`) on one SQLite file
    (``":memory:"`` for tests)."""

    def __init__(self, path: str | Path):
        super().__init__(path, SCHEMA)
        self._db.create_aggregate("xsum", 2, _ExactSum)  # type: ignore[arg-type]
        for table, keys in FACT_TABLES.items():
            cols = ", ".join(f"{k} {'INTEGER' if k == 'gpu' else 'TEXT'}" for k in keys)
            money = ("billed INTEGER NOT NULL, effective INTEGER NOT NULL, rows INTEGER NOT NULL,"
                     " billed_x TEXT, effective_x TEXT")
            self._db.execute(f"CREATE TABLE IF NOT EXISTS {table} (delivery_id TEXT NOT NULL, {cols}, {money})")
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for extra in ("billed_x", "effective_x"):
                if extra not in have:  # a ledger written before amounts beyond int64 were kept
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {extra} TEXT")
            for key in keys:
                if key not in have:  # a ledger written before the spend facts kept account and region
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {key} TEXT NOT NULL DEFAULT ''")
            self._db.execute(f"CREATE INDEX IF NOT EXISTS {table}_big ON {table}(delivery_id)"
                             " WHERE billed_x IS NOT NULL OR effective_x IS NOT NULL")
            self._db.execute(f"CREATE INDEX IF NOT EXISTS {table}_by_delivery ON {table}(delivery_id)")
            for i, index in enumerate(FACT_INDEXES[table]):
                self._db.execute(f"CREATE INDEX IF NOT EXISTS {table}_i{i} ON {table}({index})")
        self._db.create_function("xadd_small", 4, xadd_small, deterministic=True)
        self._db.create_function("xadd_big", 4, xadd_big, deterministic=True)
        for table, extras in ESTIMATE_EXTRAS.items():
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for extra, kind in extras:
                if extra not in have:  # a ledger written before this column
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {extra} {kind}")

    # -- ingestion ------------------------------------------------------------------------
    def _ensure_delivery(self, db: sqlite3.Connection, d: DeliveryRef, received_at: datetime) -> None:
        db.execute(
            "INSERT INTO deliveries (delivery_id, provider, source, period, version, produced_at, received_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (delivery_id) DO UPDATE SET"
            " produced_at = COALESCE(deliveries.produced_at, excluded.produced_at)",
            (d.delivery_id, d.provider, d.source, d.billing_period, d.version, _ts(d.produced_at), _ts(received_at)),
        )

    def add_chunk(self, chunk_id: str, delivery: DeliveryRef, declared: Totals, facts: Facts,
                  received_at: datetime) -> bool:
        with self._tx() as db:
            if db.execute("SELECT 1 FROM chunks WHERE chunk_id = ?", (chunk_id,)).fetchone():
                return False
            self._ensure_delivery(db, delivery, received_at)
            status = db.execute("SELECT status FROM deliveries WHERE delivery_id = ?",
                                (delivery.delivery_id,)).fetchone()[0]
            db.execute("INSERT INTO chunks (chunk_id, delivery_id, totals, received_at, data_end, accounts)"
                       " VALUES (?, ?, ?, ?, ?, ?)",
                       (chunk_id, delivery.delivery_id, declared.model_dump_json(), _ts(received_at),
                        _ts(facts.latest_end), json.dumps(list(facts.accounts)) if facts.accounts else None))
            if status != "waiting":
                # A straggler of a delivery already decided: nothing of it may count again.
                return True
            self._insert_tagsets(db, facts.tagsets)
            db.executemany("INSERT INTO staging (delivery_id, chunk_id, kind, facts) VALUES (?, ?, ?, ?)",
                           [(delivery.delivery_id, chunk_id, table, to_ipc(getattr(facts, table)))
                            for table in FACT_TABLES])
        return True

    def _insert_tagsets(self, db: sqlite3.Connection, tagsets: Mapping[str, Mapping[str, str]]) -> None:
        for tid, tags in tagsets.items():
            cur = db.execute("INSERT OR IGNORE INTO tagsets (tagset, tags) VALUES (?, ?)",
                             (tid, json.dumps(dict(tags), sort_keys=True)))
            if cur.rowcount:
                # One row per case-folded key: a set holding "Team" and "team" counts once
                # (the first key in sorted order wins), so a scope never double counts.
                db.executemany("INSERT OR IGNORE INTO tagset_tags (tagset, key_folded, key, value) VALUES (?, ?, ?, ?)",
                               [(tid, k.casefold(), k, v) for k, v in sorted(tags.items())])

    def add_summary(self, summary: DeliverySummary, received_at: datetime) -> bool:
        with self._tx() as db:
            self._ensure_delivery(db, summary.delivery, received_at)
            cur = db.execute("UPDATE deliveries SET summary = ? WHERE delivery_id = ? AND summary IS NULL",
                             (summary.model_dump_json(), summary.delivery.delivery_id))
            return bool(cur.rowcount)

    def complete(self, delivery_id: str, now: datetime) -> Completion:
        with self._tx() as db:
            row = db.execute("SELECT provider, source, period, produced_at, summary, status, reason FROM deliveries"
                             " WHERE delivery_id = ?", (delivery_id,)).fetchone()
            if row is None:
                return Completion(delivery_id, "unknown", "no chunk or summary of this delivery was received")
            provider, source, period, produced_at, summary_json, status, reason = row
            if status != "waiting":
                return Completion(delivery_id, status, reason)
            if summary_json is None:
                why = "its closing summary has not arrived"
                db.execute("UPDATE deliveries SET reason = ? WHERE delivery_id = ?", (why, delivery_id))
                return Completion(delivery_id, "waiting", why)
            summary = DeliverySummary.model_validate_json(summary_json)
            chunks = {cid: Totals.model_validate_json(t) for cid, t in
                      db.execute("SELECT chunk_id, totals FROM chunks WHERE delivery_id = ?", (delivery_id,))}
            verdict, why = check_delivery(summary, chunks)
            if verdict == "waiting":
                db.execute("UPDATE deliveries SET reason = ? WHERE delivery_id = ?", (why, delivery_id))
                return Completion(delivery_id, "waiting", why)
            if verdict == "rejected":
                self._close(db, delivery_id, "rejected", why, now)
                return Completion(delivery_id, "rejected", why)
            current = db.execute("SELECT delivery_id, produced_at FROM current WHERE provider = ? AND source = ?"
                                 " AND period = ?", (provider, source, period)).fetchone()
            if current is not None and produced_at and current[1] and current[1] > produced_at:
                why = f"a later delivery ({current[0]}) of the same period is already counted"
                self._close(db, delivery_id, "superseded", why, now)
                return Completion(delivery_id, "superseded", why)
            for table, keys in FACT_TABLES.items():
                self._write_facts(db, delivery_id, table, keys, self._sum_staged(db, delivery_id, table, keys))
                if current is not None:
                    db.execute(f"DELETE FROM {table} WHERE delivery_id = ?", (current[0],))
            db.execute("DELETE FROM staging WHERE delivery_id = ?", (delivery_id,))
            data_end = db.execute("SELECT MAX(data_end) FROM chunks WHERE delivery_id = ?",
                                  (delivery_id,)).fetchone()[0]
            accounts = sorted({a for (held,) in db.execute("SELECT accounts FROM chunks WHERE delivery_id = ?"
                                                           " AND accounts IS NOT NULL", (delivery_id,))
                               for a in json.loads(held)})
            db.execute("UPDATE deliveries SET status = 'complete', reason = '', rows = ?, completed_at = ?,"
                       " data_end = ?, accounts = ? WHERE delivery_id = ?",
                       (summary.totals.rows, _ts(now), data_end, json.dumps(accounts) if accounts else None,
                        delivery_id))
            if current is not None:
                db.execute("UPDATE deliveries SET status = 'superseded', reason = ? WHERE delivery_id = ?",
                           (f"replaced by {delivery_id}", current[0]))
            db.execute("INSERT OR REPLACE INTO current (provider, source, period, delivery_id, produced_at,"
                       " switched_at) VALUES (?, ?, ?, ?, ?, ?)",
                       (provider, source, period, delivery_id, produced_at, _ts(now)))
            drop_covered_estimates(db, provider, delivery_id, now)
            return Completion(delivery_id, "complete", "", replaced=current[0] if current else None, switched=True)

    @staticmethod
    def _sum_staged(db: sqlite3.Connection, delivery_id: str, table: str, keys: list[str]) -> pa.Table | None:
        """The delivery's chunk facts of one kind, summed; folded a few blobs at a time."""
        total: pa.Table | None = None
        batch: list[pa.Table] = []
        for (blob,) in db.execute("SELECT facts FROM staging WHERE delivery_id = ? AND kind = ? ORDER BY chunk_id",
                                  (delivery_id, table)):
            batch.append(from_ipc(blob))
            if len(batch) >= FOLD:
                total = combine([total, *batch] if total is not None else batch, keys)
                batch = []
        if batch:
            total = combine([total, *batch] if total is not None else batch, keys)
        return total

    @staticmethod
    def _write_facts(db: sqlite3.Connection, delivery_id: str, table: str, keys: list[str],
                     data: pa.Table | None) -> None:
        if data is None or data.num_rows == 0:
            return
        columns = [pa.repeat(pa.scalar(delivery_id), data.num_rows)]
        for k in keys:
            col = data.column(k)
            if k == "day":
                col = pc.cast(col, pa.string())
            elif k == "hour":
                col = pc.strftime(col, format="%Y-%m-%dT%H:%M:%SZ")
            elif k == "gpu":
                col = pc.cast(col, pa.int8())
            columns.append(col)
        billed, billed_x = _split_nanos(nanos_array(data.column("billed")))
        effective, effective_x = _split_nanos(nanos_array(data.column("effective")))
        columns += [billed, effective, data.column("rows"), billed_x, effective_x]
        names = ", ".join(["delivery_id", *keys, "billed", "effective", "rows", "billed_x", "effective_x"])
        db.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})",
                       zip(*(c.to_pylist() for c in columns), strict=True))

    def _close(self, db: sqlite3.Connection, delivery_id: str, status: str, reason: str, now: datetime) -> None:
        db.execute("DELETE FROM staging WHERE delivery_id = ?", (delivery_id,))
        db.execute("UPDATE deliveries SET status = ?, reason = ?, completed_at = ? WHERE delivery_id = ?",
                   (status, reason, _ts(now), delivery_id))

    def deliveries(self, *, include_superseded: bool = False) -> list[DeliveryStatus]:
        with self._lock:
            rows = self._db.execute(
                "SELECT d.delivery_id, provider, source, period, version, d.produced_at, status, reason, rows,"
                " received_at, completed_at, (SELECT COUNT(*) FROM current c WHERE c.delivery_id = d.delivery_id)"
                " FROM deliveries d ORDER BY received_at, d.delivery_id").fetchall()
        out = []
        for did, provider, source, period, version, produced, status, reason, n, received, completed, counted in rows:
            if status == "superseded" and not include_superseded:
                continue
            ref = DeliveryRef(delivery_id=did, provider=provider, source=source, billing_period=period,
                              version=version, produced_at=_dt(produced))
            out.append(DeliveryStatus(ref, status, reason, bool(counted), n, _dt(received), _dt(completed)))
        return out

    # -- questions -----------------------------------------------------------------------
    @staticmethod
    def _where(scope: Scope, window: Window | None, clouds: Sequence[str] | None,
               alias: str = "s") -> tuple[str, list[Any]]:
        clauses = ["t.key_folded = ?"]
        params: list[Any] = [scope.key.casefold()]
        if scope.value is not None:
            clauses.append("t.value = ?")
            params.append(scope.value)
        if window is not None:
            day = f"({alias}.day >= ? AND {alias}.day < ?)"
            params += [window.start.isoformat(), window.end.isoformat()]
            if window.periods:
                day = f"({day} OR ({alias}.day IS NULL AND {alias}.period IN ({', '.join('?' * len(window.periods))})))"
                params += list(window.periods)
            clauses.append(day)
        if clouds:
            clauses.append(f"{alias}.cloud IN ({', '.join('?' * len(clouds))})")
            params += list(clouds)
        return " AND ".join(clauses), params

    def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _money_query(self, build: Callable[[Callable[..., str]], tuple[str, Sequence[Any]]]) -> list[tuple[Any, ...]]:
        """Run a query whose sums ``build`` writes with the summing function it is given
        (``total(alias, basis, gpu=False)``, and ``order(...)`` for sorting): fast int64 sums in
        SQL, or the exact aggregate when the ledger holds amounts beyond int64 or a sum overflows."""
        if not self._has_big():
            try:
                return self._query(*build(_fast_sum))
            except sqlite3.OperationalError as exc:
                if "integer overflow" not in str(exc):
                    raise
        return self._query(*build(_exact_sum))

    def _has_big(self) -> bool:
        row = self._query("SELECT EXISTS (SELECT 1 FROM spend WHERE billed_x IS NOT NULL OR effective_x IS NOT NULL)"
                          " OR EXISTS (SELECT 1 FROM gpu_hourly WHERE billed_x IS NOT NULL OR effective_x IS NOT NULL)",
                          [])
        return bool(row[0][0])

    def spend(self, scope: Scope, window: Window, *, basis: CostBasis = "effective",
              clouds: Sequence[str] | None = None) -> list[SpendRow]:
        where, params = self._where(scope, window, clouds)
        rows = self._money_query(lambda total: (
            f"SELECT t.value, s.currency, {total('s', basis)}, {total('s', basis, gpu=True)}"
            f" FROM spend s JOIN tagset_tags t ON t.tagset = s.tagset WHERE {where}"
            " GROUP BY t.value, s.currency ORDER BY t.value, s.currency", params))
        return [SpendRow(v, c, from_nanos(a), from_nanos(g)) for v, c, a, g in rows]

    def daily(self, scope: Scope, window: Window, *, basis: CostBasis = "effective",
              clouds: Sequence[str] | None = None) -> dict[str | None, dict[date, dict[str, Decimal]]]:
        where, params = self._where(scope, Window(window.start, window.end), clouds)
        out: dict[str | None, dict[date, dict[str, Decimal]]] = defaultdict(lambda: defaultdict(dict))
        for value, day, cur, amount in self._money_query(lambda total: (
                f"SELECT t.value, s.day, s.currency, {total('s', basis)} FROM spend s JOIN tagset_tags t"
                f" ON t.tagset = s.tagset WHERE {where} GROUP BY t.value, s.day, s.currency", params)):
            out[value][date.fromisoformat(day)][cur] = from_nanos(amount)
        return {k: dict(v) for k, v in out.items()}

    def gpu_hourly(self, scope: Scope, since: datetime, *, basis: CostBasis = "effective",
                   clouds: Sequence[str] | None = None) -> dict[str | None, dict[datetime, dict[str, Decimal]]]:
        where, params = self._where(scope, None, clouds, alias="h")
        out: dict[str | None, dict[datetime, dict[str, Decimal]]] = defaultdict(lambda: defaultdict(dict))
        for value, hour, cur, amount in self._money_query(lambda total: (
                f"SELECT t.value, h.hour, h.currency, {total('h', basis)} FROM gpu_hourly h JOIN tagset_tags t"
                f" ON t.tagset = h.tagset WHERE {where} AND h.hour >= ? GROUP BY t.value, h.hour, h.currency",
                [*params, _ts(since)])):
            hour_dt = _dt(hour)
            assert hour_dt is not None
            out[value][hour_dt][cur] = from_nanos(amount)
        return {k: dict(v) for k, v in out.items()}

    def top_resources(self, scope: Scope, window: Window, *, limit: int = 10, basis: CostBasis = "effective",
                      gpu_only: bool = False) -> list[ResourceRow]:
        where, params = self._where(scope, window, None, alias="r")
        if gpu_only:
            where += " AND r.gpu = 1"
        rows = self._money_query(lambda total: (
            f"SELECT r.resource_id, r.cloud, r.instance_type, MAX(r.gpu), r.currency, {total('r', basis)} AS amount"
            f" FROM spend r JOIN tagset_tags t ON t.tagset = r.tagset WHERE {where} AND r.resource_id != ''"
            f" GROUP BY r.resource_id, r.cloud, r.instance_type, r.currency"
            f" ORDER BY {total('r', basis, order=True)} DESC LIMIT ?", [*params, limit]))
        return [ResourceRow(rid, cloud, itype, bool(gpu), cur, from_nanos(a))
                for rid, cloud, itype, gpu, cur, a in rows]

    def gpu_by_resource(self, scope: Scope, start: datetime, end: datetime, *, basis: CostBasis = "effective",
                        clouds: Sequence[str] | None = None) -> list[ResourceRow]:
        where, params = self._where(scope, None, clouds, alias="h")
        rows = self._money_query(lambda total: (
            f"SELECT h.resource_id, h.cloud, h.currency, {total('h', basis)} FROM gpu_hourly h JOIN tagset_tags t"
            f" ON t.tagset = h.tagset WHERE {where} AND h.hour >= ? AND h.hour < ? AND h.resource_id != ''"
            f" GROUP BY h.resource_id, h.cloud, h.currency", [*params, _ts(start), _ts(end)]))
        out = [ResourceRow(rid, cloud, "", True, cur, from_nanos(a)) for rid, cloud, cur, a in rows]
        return sorted(out, key=lambda r: (-r.amount, r.resource_id, r.cloud, r.currency))

    def by_service(self, scope: Scope, window: Window, *, basis: CostBasis = "effective") -> list[ServiceRow]:
        where, params = self._where(scope, window, None)
        rows = self._money_query(lambda total: (
            f"SELECT s.cloud, s.service, s.currency, {total('s', basis)} AS amount FROM spend s JOIN tagset_tags t"
            f" ON t.tagset = s.tagset WHERE {where} GROUP BY s.cloud, s.service, s.currency"
            f" ORDER BY {total('s', basis, order=True)} DESC", params))
        return [ServiceRow(cloud, service, cur, from_nanos(a)) for cloud, service, cur, a in rows]

    def top_tag_values(self, key: str, window: Window, *, limit: int = 10,
                       basis: CostBasis = "effective") -> list[SpendRow]:
        where, params = self._where(Scope(key), window, None)
        rows = self._money_query(lambda total: (
            f"SELECT t.value, s.currency, {total('s', basis)} AS amount,"
            f" {total('s', basis, gpu=True)} FROM spend s JOIN tagset_tags t"
            f" ON t.tagset = s.tagset WHERE {where} GROUP BY t.value, s.currency"
            f" ORDER BY {total('s', basis, order=True)} DESC LIMIT ?", [*params, limit]))
        return [SpendRow(v, c, from_nanos(a), from_nanos(g)) for v, c, a, g in rows]

    def latest_data(self) -> datetime | None:
        row = self._query("SELECT MAX(d.data_end) FROM deliveries d JOIN current c ON c.delivery_id = d.delivery_id",
                          [])
        return _dt(row[0][0]) if row and row[0][0] else None

    # -- alert state, audit, stops, snoozes -------------------------------------------------
    def announce(self, key: str, at: datetime, details: Mapping[str, Any]) -> bool:
        with self._tx() as db:
            cur = db.execute("INSERT OR IGNORE INTO announcements (key, at, details) VALUES (?, ?, ?)",
                             (key, _ts(at), json.dumps(dict(details), sort_keys=True, default=str)))
            return bool(cur.rowcount)

    # -- effect log (claims of crossings and what was done about them) ----------------------
    def claim(self, key: str, at: datetime, details: Mapping[str, Any]) -> ClaimState:
        with self._tx() as db:
            if db.execute("SELECT 1 FROM announcements WHERE key = ?", (key,)).fetchone():
                return "settled"
            row = db.execute("SELECT settled_at FROM claims WHERE key = ?", (key,)).fetchone()
            if row is not None:
                return "settled" if row[0] else "pending"
            db.execute("INSERT INTO claims (key, at, details) VALUES (?, ?, ?)",
                       (key, _ts(at), json.dumps(dict(details), sort_keys=True, default=str)))
            return "new"

    def effects(self, key: str) -> dict[str, dict[str, Any]]:
        rows = self._query("SELECT effect, state, outcome, details FROM effects WHERE claim = ?", [key])
        return {e: {"state": st, "outcome": o, "details": json.loads(d)} for e, st, o, d in rows}

    def begin_effect(self, key: str, effect: str, at: datetime, details: Mapping[str, Any]) -> bool:
        with self._tx() as db:
            cur = db.execute("INSERT OR IGNORE INTO effects (claim, effect, state, at, details)"
                       " VALUES (?, ?, 'pending', ?, ?)",
                       (key, effect, _ts(at), json.dumps(dict(details), sort_keys=True, default=str)))
            return bool(cur.rowcount)

    def complete_effect(self, key: str, effect: str, outcome: str, at: datetime, *, details: Mapping[str, Any],
                        audit: AuditEvent, stop: StopRecord | None = None) -> bool:
        with self._tx() as db:
            row = db.execute("SELECT state FROM effects WHERE claim = ? AND effect = ?", (key, effect)).fetchone()
            if row is not None and row[0] == "done":
                return False
            db.execute("INSERT OR REPLACE INTO effects (claim, effect, state, outcome, at, details)"
                       " VALUES (?, ?, 'done', ?, ?, ?)",
                       (key, effect, outcome, _ts(at), json.dumps(dict(details), sort_keys=True, default=str)))
            self._audit(db, audit)
            if stop is not None:
                self._record_stop(db, stop)
            return True

    def drop_effect(self, key: str, effect: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM effects WHERE claim = ? AND effect = ? AND state = 'pending'", (key, effect))

    def settle(self, key: str, at: datetime, also: Sequence[str] = ()) -> None:
        with self._tx() as db:
            db.execute("UPDATE claims SET settled_at = ? WHERE key = ? AND settled_at IS NULL", (_ts(at), key))
            details = db.execute("SELECT details FROM claims WHERE key = ?", (key,)).fetchone()
            db.executemany("INSERT OR IGNORE INTO announcements (key, at, details) VALUES (?, ?, ?)",
                           [(k, _ts(at), details[0] if details else "{}") for k in dict.fromkeys([key, *also])])

    def pending_claims(self) -> dict[str, dict[str, Any]]:
        rows = self._query("SELECT key, at, details FROM claims WHERE settled_at IS NULL ORDER BY at, key", [])
        return {k: {"at": _dt(at), "details": json.loads(d), "effects": self.effects(k)} for k, at, d in rows}

    def announced(self, prefix: str) -> dict[str, datetime]:
        rows = self._query("SELECT key, at FROM announcements WHERE key >= ? AND key < ?", [prefix, prefix + "\uffff"])
        return {k: v for k, at in rows if (v := _dt(at)) is not None}

    def audit(self, event: AuditEvent) -> None:
        with self._tx() as db:
            self._audit(db, event)

    @staticmethod
    def _audit(db: sqlite3.Connection, event: AuditEvent) -> None:
        db.execute("INSERT INTO audit (at, kind, actor, outcome, guardrail, scope, details)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (_ts(event.at), event.kind, event.actor, event.outcome, event.guardrail, event.scope,
                    json.dumps(event.details, sort_keys=True, default=str)))

    def audit_log(self, *, limit: int = 100, guardrail: str | None = None) -> list[AuditEvent]:
        sql = "SELECT at, kind, actor, outcome, guardrail, scope, details FROM audit"
        params: list[Any] = []
        if guardrail:
            sql += " WHERE guardrail = ?"
            params.append(guardrail)
        rows = self._query(sql + " ORDER BY id DESC LIMIT ?", [*params, limit])
        out = []
        for at, kind, actor, outcome, g, scope, details in rows:
            when = _dt(at)
            assert when is not None
            out.append(AuditEvent(when, kind, actor, outcome, g, scope, json.loads(details)))
        return out

    def record_stop(self, record: StopRecord) -> None:
        with self._tx() as db:
            self._record_stop(db, record)

    @staticmethod
    def _record_stop(db: sqlite3.Connection, record: StopRecord) -> None:
        db.execute("INSERT OR REPLACE INTO stops VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (record.guardrail, record.scope, record.cloud, record.instance_id, record.name,
                    record.location, record.instance_type, _ts(record.stopped_at), int(record.dry_run),
                    str(record.hourly_cost) if record.hourly_cost is not None else None, record.currency,
                    _ts(record.resumed_at)))

    def stops(self, guardrail: str | None = None, *, active_only: bool = True) -> list[StopRecord]:
        sql = "SELECT * FROM stops WHERE 1 = 1"
        params: list[Any] = []
        if guardrail:
            sql += " AND guardrail = ?"
            params.append(guardrail)
        if active_only:
            sql += " AND resumed_at IS NULL AND dry_run = 0"
        out = []
        for g, scope, cloud, iid, name, loc, itype, at, dry, cost, cur, resumed in self._query(
                sql + " ORDER BY stopped_at, cloud, instance_id", params):
            stopped = _dt(at)
            assert stopped is not None
            out.append(StopRecord(g, scope, cloud, iid, name or "", loc or "", itype or "", stopped, bool(dry),
                                  Decimal(cost) if cost is not None else None, cur, _dt(resumed)))
        return out

    def mark_resumed(self, guardrail: str, cloud: str, instance_id: str, at: datetime) -> None:
        with self._tx() as db:
            db.execute("UPDATE stops SET resumed_at = ? WHERE guardrail = ? AND cloud = ? AND instance_id = ?"
                       " AND resumed_at IS NULL", (_ts(at), guardrail, cloud, instance_id))

    def snooze(self, guardrail: str, until: datetime, by: str, at: datetime) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO snoozes (guardrail, until, by, at) VALUES (?, ?, ?, ?)",
                       (guardrail, _ts(until), by, _ts(at)))

    def snoozed_until(self, guardrail: str) -> datetime | None:
        row = self._query("SELECT until FROM snoozes WHERE guardrail = ?", [guardrail])
        return _dt(row[0][0]) if row else None


class _ExactSum:
    """SQLite aggregate ``xsum(int_nanos, text_nanos)``: the exact sum, as decimal text."""

    def __init__(self) -> None:
        self.total = 0

    def step(self, small: int | None, big: str | None) -> None:
        if small:
            self.total += small
        if big is not None:
            self.total += int(big)

    def finalize(self) -> str:
        return str(self.total)


def _fast_sum(alias: str, basis: CostBasis, *, gpu: bool = False, order: bool = False) -> str:
    col = f"{alias}.{_col(basis)}"
    if order:
        return "amount"
    return f"SUM(CASE WHEN {alias}.gpu THEN {col} ELSE 0 END)" if gpu else f"SUM({col})"


def _exact_sum(alias: str, basis: CostBasis, *, gpu: bool = False, order: bool = False) -> str:
    col = f"{alias}.{_col(basis)}"
    if order:  # sorting only: a float is close enough, the amounts themselves stay exact
        return f"(TOTAL({col}) + TOTAL(CAST({col}_x AS REAL)))"
    if gpu:
        return f"xsum(CASE WHEN {alias}.gpu THEN {col} ELSE 0 END, CASE WHEN {alias}.gpu THEN {col}_x END)"
    return f"xsum({col}, {col}_x)"


def _split_nanos(nanos: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """Nano-units (``decimal256(76, 0)``) → (int64 where it fits else 0, decimal text where it does not)."""
    limit = pa.scalar(Decimal(INT64_MAX), pa.decimal256(76, 0))
    fits = pc.less_equal(pc.abs(nanos), limit)
    small = pc.cast(pc.if_else(fits, nanos, pa.scalar(Decimal(0), pa.decimal256(76, 0))), pa.int64())
    big = pc.if_else(fits, pa.scalar(None, pa.string()), pc.cast(nanos, pa.string()))
    return small, big


def _col(basis: CostBasis) -> str:
    if basis not in ("effective", "billed"):
        raise ValueError(f"unknown cost basis {basis!r}")
    return basis
