"""The live estimate in the SQLite ledger (:class:`burnguard.ports.ledger.EstimateLog`).

Tables (created by :mod:`burnguard.adapters.local.ledger`'s schema): ``meter`` (per instance,
where its accrual stands, its latest state and rate), ``estimates`` (per instance, clock hour,
currency and rate source: the seconds accrued and ``rate_seconds``, the sum of rate in
nano-units × seconds, an exact integer: the amount is ``rate_seconds / 3600`` nano-units,
divided once when read, so five-minute accruals never round; tags through the ledger's ``tagsets``, so a scope selects
estimates exactly as it selects billed spend) and ``estimate_errors`` (per delivery and
instance: what was estimated for the hours the delivery covered, and what the bill says).

Coverage is per cloud and account (:class:`burnguard.core.estimates.Coverage`, from
``deliveries.data_end`` and ``deliveries.accounts`` of the deliveries ``current`` points at;
each estimate row keeps its instance's ``account``). Estimates are counted only from there on;
the switch that counts a delivery drops those it covers, in its transaction
(:func:`drop_covered_estimates`). Amounts beyond int64 nano-units go to ``_x`` TEXT columns,
summed by the ledger's exact ``xsum``.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from burnguard.adapters.local.sqlite import SqliteStore
from burnguard.core.estimates import (
    Accrual,
    Coverage,
    EstimateError,
    EstimateRow,
    Reading,
    accrue,
    from_rate_seconds,
    mean_rates,
    new_accrued_until,
    resource_key,
    to_nanos,
)
from burnguard.core.facts import tagset_id
from burnguard.core.ledger import Scope, SpendRow, Window, from_nanos

COUNTED = ("SELECT d.provider, d.data_end, d.accounts FROM deliveries d"
           " JOIN current c ON c.delivery_id = d.delivery_id")


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dt(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


#: The largest magnitude kept in an INTEGER column (SQLite's int64); larger integers (a
#: VND or IDR rate in nano-units × seconds soon is) go to the ``_x`` TEXT column beside it, 0 in
#: the INTEGER one, as the ledger's amounts do; sums use the ledger's exact ``xsum``.
INT64_MAX = 2**63 - 1
#: columns added since the first schema (added to an older file when opened): table → (column, type)
ESTIMATE_EXTRAS = {"estimates": (("rate_seconds_x", "TEXT"), ("account", "TEXT NOT NULL DEFAULT ''")),
                   "estimate_errors": (("rate_seconds_x", "TEXT"), ("billed_x", "TEXT")),
                   "meter": (("account", "TEXT NOT NULL DEFAULT ''"),),
                   "chunks": (("accounts", "TEXT"),), "deliveries": (("accounts", "TEXT"),)}


def split_int(value: int) -> tuple[int, str | None]:
    """An exact integer as (the INTEGER column, the TEXT column)."""
    return (value, None) if abs(value) <= INT64_MAX else (0, str(value))


def _join(small: int | None, big: str | None) -> int:
    return int(big) if big is not None else int(small or 0)


def xadd_small(a: int | None, ax: str | None, b: int | None, bx: str | None) -> int:
    """SQL ``xadd_small``: the INTEGER part of the exact sum of two split integers."""
    return split_int(_join(a, ax) + _join(b, bx))[0]


def xadd_big(a: int | None, ax: str | None, b: int | None, bx: str | None) -> str | None:
    """SQL ``xadd_big``: the TEXT part of the exact sum of two split integers."""
    return split_int(_join(a, ax) + _join(b, bx))[1]


def _scope_filter(scope: Scope, clouds: Sequence[str] | None, table: str) -> tuple[list[str], list[Any]]:
    """The WHERE terms (and their parameters) selecting ``scope`` through the tagset join ``t``
    and ``clouds`` on ``table``'s cloud column."""
    where = ["t.key_folded = ?"]
    params: list[Any] = [scope.key.casefold()]
    if scope.value is not None:
        where.append("t.value = ?")
        params.append(scope.value)
    if clouds:
        where.append(f"{table}.cloud IN ({', '.join('?' * len(clouds))})")
        params += list(clouds)
    return where, params


def coverage(db: sqlite3.Connection) -> Coverage:
    """Per cloud and account, the end of the hours its counted deliveries cover."""
    return Coverage.of((cloud, _dt(end) if end else None, json.loads(accounts) if accounts else None)
                       for cloud, end, accounts in db.execute(COUNTED))


def floors(db: sqlite3.Connection, cov: Coverage) -> tuple[str, list[Any]]:
    """A ``floors(cloud, account, cov)`` CTE: where the estimates of each (cloud, account) the
    estimates hold start to count (pairs without coverage are absent: everything counts)."""
    rows = [(cloud, account, _ts(end)) for cloud, account in db.execute("SELECT DISTINCT cloud, account FROM estimates")
            if (end := cov.end(cloud, account or None)) is not None]
    if not rows:
        return "floors(cloud, account, cov) AS (SELECT NULL, NULL, NULL WHERE 0)", []
    values = ", ".join("(?, ?, ?)" for _ in rows)
    return f"floors(cloud, account, cov) AS (VALUES {values})", [v for r in rows for v in r]


def drop_covered_estimates(db: sqlite3.Connection, cloud: str, delivery_id: str, now: datetime) -> int:
    """Within the transaction that counted ``delivery_id``: record the error of the estimates
    of ``cloud`` for the hours now covered (per instance, against the bill's effective GPU cost
    of the same resource in the same hours) and drop them. Returns the rows dropped."""
    cov = coverage(db)
    if cov.clouds.get(cloud) is None:
        return 0
    ends = {account: _ts(e) for (account,) in db.execute("SELECT DISTINCT account FROM estimates WHERE cloud = ?",
                                                          (cloud,)) if (e := cov.end(cloud, account or None))}
    estimated = [row for row in db.execute(
        "SELECT instance_id, instance_type, source, currency, hour, seconds, rate_seconds, billing_key,"
        " rate_seconds_x, account FROM estimates WHERE cloud = ? AND hour < ?", (cloud, _ts(cov.clouds[cloud])))
        if row[9] in ends and row[4] < ends[row[9]]]
    if not estimated:
        return 0
    end = max(ends.values())
    hours = sorted({row[4] for row in estimated})
    billed: dict[tuple[str, str, str], int] = defaultdict(int)
    for rid, hour, cur, eff, eff_x in db.execute(
            "SELECT resource_id, hour, currency, effective, effective_x FROM gpu_hourly"
            " WHERE cloud = ? AND hour >= ? AND hour < ?", (cloud, hours[0], end)):
        billed[(resource_key(rid or ""), hour, cur)] += int(eff_x) if eff_x is not None else eff
    per: dict[tuple[str, str, str, str], list[int]] = {}
    for iid, itype, source, cur, hour, seconds, rate_seconds, key, rate_seconds_x, _account in estimated:
        acc = per.setdefault((iid, itype, source, cur), [0, 0, 0])
        acc[0] += seconds
        acc[1] += _join(rate_seconds, rate_seconds_x)
        acc[2] += billed.pop((key, hour, cur), 0)  # each billed hour counted once
    db.executemany(
        "INSERT OR IGNORE INTO estimate_errors (delivery_id, cloud, instance_id, instance_type, source, currency,"
        " seconds, rate_seconds, rate_seconds_x, billed, billed_x, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(delivery_id, cloud, iid, itype, source, cur, s, *split_int(e), *split_int(b), _ts(now))
         for (iid, itype, source, cur), (s, e, b) in per.items()])
    db.executemany("DELETE FROM estimates WHERE cloud = ? AND instance_id = ? AND hour = ? AND currency = ?"
                   " AND source = ?", [(cloud, row[0], row[4], row[3], row[2]) for row in estimated])
    return len(estimated)


class SqliteEstimates(SqliteStore):
    """The :class:`~burnguard.ports.ledger.EstimateLog` part of :class:`SqliteLedger`."""

    _query: Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]
    _insert_tagsets: Callable[[sqlite3.Connection, Mapping[str, Mapping[str, str]]], None]

    def record_readings(self, readings: Sequence[Reading]) -> list[Accrual]:
        out: list[Accrual] = []
        with self._tx() as db:
            cov = coverage(db)
            until = {(c, i): _dt(a) for c, i, a in db.execute("SELECT cloud, instance_id, accrued_until FROM meter")
                     if a}
            tagsets: dict[str, Mapping[str, str]] = {}
            rows: list[tuple[Any, ...]] = []
            state: list[tuple[Any, ...]] = []
            for r in readings:
                prev = until.get((r.cloud, r.instance_id))
                cov_end = cov.end(r.cloud, r.account)
                accruals = accrue(r, prev, cov_end)
                after = new_accrued_until(r, prev, cov_end)
                if after is not None:
                    until[(r.cloud, r.instance_id)] = after
                tid = tagset_id(dict(r.tags))
                tagsets[tid] = r.tags
                rate = r.rate
                state.append((r.cloud, r.instance_id, _ts(after) if after else None, _ts(r.at), int(r.running),
                               r.instance_type, tid, str(rate.amount) if rate else None,
                               rate.currency if rate else None, rate.source if rate else None, r.account or ""))
                rows += [(a.cloud, a.instance_id, _ts(a.hour), r.instance_type, tid, a.currency, a.source, a.seconds,
                          *split_int(to_nanos(r.rate.amount) * a.seconds), r.billing_key, r.account or "")
                         for a in accruals if r.rate is not None]
                out += accruals
            if tagsets:
                self._insert_tagsets(db, tagsets)
            db.executemany(
                "INSERT INTO estimates (cloud, instance_id, hour, instance_type, tagset, currency, source, seconds,"
                " rate_seconds, rate_seconds_x, billing_key, account) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (cloud, instance_id, hour, currency, source)"
                " DO UPDATE SET seconds = seconds + excluded.seconds,"
                " rate_seconds = xadd_small(rate_seconds, rate_seconds_x, excluded.rate_seconds,"
                " excluded.rate_seconds_x),"
                " rate_seconds_x = xadd_big(rate_seconds, rate_seconds_x, excluded.rate_seconds,"
                " excluded.rate_seconds_x)", rows)
            # accrued_until only moves forward (computed above); the state is the latest reading's
            # (a late reading, older than the one recorded, leaves it as it is)
            db.executemany(
                "INSERT INTO meter (cloud, instance_id, accrued_until, seen_at, running, instance_type, tagset, rate,"
                " currency, source, account) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (cloud, instance_id) DO UPDATE"
                " SET accrued_until = excluded.accrued_until, seen_at = MAX(seen_at, excluded.seen_at),"
                " account = excluded.account,"
                " running = CASE WHEN excluded.seen_at >= seen_at THEN excluded.running ELSE running END,"
                " instance_type = excluded.instance_type, tagset = excluded.tagset,"
                " rate = CASE WHEN excluded.seen_at >= seen_at THEN excluded.rate ELSE rate END,"
                " currency = CASE WHEN excluded.seen_at >= seen_at THEN excluded.currency ELSE currency END,"
                " source = CASE WHEN excluded.seen_at >= seen_at THEN excluded.source ELSE source END", state)
        return out

    def running_rate(self, scope: Scope, *, clouds: Sequence[str] | None = None) -> list[SpendRow]:
        where, params = _scope_filter(scope, clouds, "m")
        where += ["m.running = 1", "m.rate IS NOT NULL"]
        totals: dict[tuple[str | None, str], Decimal] = defaultdict(Decimal)
        for value, cur, rate in self._query(
                f"SELECT t.value, m.currency, m.rate FROM meter m JOIN tagset_tags t ON t.tagset = m.tagset"
                f" WHERE {' AND '.join(where)}", params):
            totals[(value, cur)] += Decimal(rate)
        return [SpendRow(v, c, a, a) for (v, c), a in sorted(totals.items(), key=lambda kv: (kv[0][0] or "", kv[0][1]))]

    def coverage(self) -> dict[str, datetime]:
        with self._lock:
            return dict(coverage(self._db).clouds)

    def _counted_query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """``sql`` (over ``estimates e``, joined with the ``floors`` CTE as ``f``) run with the
        coverage of each (cloud, account) the estimates hold, in one read under the lock."""
        with self._lock:
            cte, cte_params = floors(self._db, coverage(self._db))
            return self._db.execute(f"WITH {cte} {sql}", [*cte_params, *params]).fetchall()

    def estimated_spend(self, scope: Scope, window: Window, *,
                        clouds: Sequence[str] | None = None) -> list[SpendRow]:
        where, params = _scope_filter(scope, clouds, "e")
        where += ["e.hour >= ?", "e.hour < ?", "(f.cov IS NULL OR e.hour >= f.cov)"]
        params += [f"{window.start.isoformat()}T00:00:00Z", f"{window.end.isoformat()}T00:00:00Z"]
        rows = self._counted_query(
            f"SELECT t.value, e.currency, xsum(e.rate_seconds, e.rate_seconds_x) FROM estimates e"
            f" JOIN tagset_tags t ON t.tagset = e.tagset"
            f" LEFT JOIN floors f ON f.cloud = e.cloud AND f.account = e.account"
            f" WHERE {' AND '.join(where)}"
            " GROUP BY t.value, e.currency ORDER BY t.value, e.currency", params)
        return [SpendRow(v, c, from_rate_seconds(a), from_rate_seconds(a)) for v, c, a in rows]

    def estimates(self) -> list[EstimateRow]:
        rows = self._counted_query(
            "SELECT e.cloud, e.instance_id, e.instance_type, e.source, e.currency,"
            " xsum(e.rate_seconds, e.rate_seconds_x), SUM(e.seconds), MIN(e.hour), MAX(e.hour), m.accrued_until"
            " FROM estimates e LEFT JOIN floors f ON f.cloud = e.cloud AND f.account = e.account"
            " LEFT JOIN meter m ON m.cloud = e.cloud AND m.instance_id = e.instance_id"
            " WHERE f.cov IS NULL OR e.hour >= f.cov"
            " GROUP BY e.cloud, e.instance_id, e.instance_type, e.source, e.currency"
            " ORDER BY e.cloud, e.instance_id", [])
        return [EstimateRow(c, i, t, s, cur, from_rate_seconds(a), n, _dt(lo), _dt(hi), _dt(u) if u else None)
                for c, i, t, s, cur, a, n, lo, hi, u in rows]

    def estimate_errors(self) -> list[EstimateError]:
        rows = self._query(
            "SELECT instance_type, source, currency, COUNT(DISTINCT cloud || ':' || instance_id), SUM(seconds),"
            " xsum(rate_seconds, rate_seconds_x), xsum(billed, billed_x) FROM estimate_errors"
            " GROUP BY instance_type, source, currency"
            " ORDER BY instance_type, source, currency", [])
        return [EstimateError(t, s, n, (Decimal(sec) / 3600).quantize(Decimal("0.01")), from_rate_seconds(e),
                              from_nanos(b), cur) for t, s, cur, n, sec, e, b in rows]

    def latest_reading(self) -> datetime | None:
        """The time of the latest meter reading (``None`` if the meter never ran)."""
        row = self._query("SELECT MAX(seen_at) FROM meter", [])
        return _dt(row[0][0]) if row and row[0][0] else None

    def tick_snapshot(self) -> AbstractContextManager[None]:
        """Nothing to share: the questions are local reads (and SQLite's own page cache keeps them warm)."""
        return nullcontext()

    def estimate_rows(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM estimates", [])[0][0])

    def billed_rates(self, hours: int = 24) -> tuple[dict[tuple[str, str], tuple[Decimal, str, datetime]],
                                                      dict[tuple[str, ...], tuple[Decimal, str]]]:
        by_instance: dict[tuple[str, str], tuple[Decimal, str, datetime]] = {}
        for cloud, cov in self.coverage().items():
            for rid, hour, cur, eff, eff_x in self._iter_hours(cloud, cov - timedelta(hours=hours), cov):
                amount = from_nanos(eff_x if eff_x is not None else eff)
                key = (cloud, resource_key(rid))
                # a full hour: the largest of the window (the latest may be partial)
                if amount > 0 and (key not in by_instance or amount > by_instance[key][0]):
                    by_instance[key] = (amount, cur, _dt(hour))
        places: dict[tuple[str, str], tuple[str, str, str]] = {}
        for cloud, rid, itype, account, region in self._query(
                "SELECT DISTINCT cloud, resource_id, instance_type, account, region FROM spend WHERE gpu = 1"
                " AND resource_id != '' AND instance_type IS NOT NULL AND instance_type != ''", []):
            places[(cloud, resource_key(rid))] = (itype, account or "", region or "")
        by_type = mean_rates(by_instance, places)
        return by_instance, by_type

    def _iter_hours(self, cloud: str, since: datetime, end: datetime) -> Iterator[tuple[Any, ...]]:
        yield from self._query("SELECT resource_id, hour, currency, effective, effective_x FROM gpu_hourly"
                               " WHERE cloud = ? AND hour >= ? AND hour < ? AND resource_id != ''",
                               [cloud, _ts(since), _ts(end)])
