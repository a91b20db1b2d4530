"""The ledger port: what the guardrail remembers, and the questions it answers.

Two adapters implement it: SQLite (``burnguard.adapters.local.ledger``, the embedded default)
and Firestore (the cloud control plane). Both pass the same contract tests, so the port speaks
in documents and transactions, not SQL: every method is one atomic unit.

Correctness rules it carries (ARCHITECTURE.md):

1. **Deliveries are snapshots.** Per (provider, source, billing period) only the latest
   complete delivery counts; the switch from the previous one is atomic.
2. **At-least-once.** Chunks are idempotent by id, summaries by delivery id; a delivery is
   counted only when every chunk its summary names has arrived and the sums agree. One whose
   chunks and summary disagree is never counted and is reported (:class:`Completion`).

Amounts: line items keep 18 decimals; the ledger keeps sums in nano-units (9 decimals), exact
integer arithmetic in every store, at any size (a store whose native integers are bounded
keeps the amounts beyond them exactly too, e.g. as decimal text, and sums them exactly).
Rounding happens once per aggregate row, half-even, so a total can move by at most half a
nano-unit per row: never by a cent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from burnguard.core.messages import DeliveryRef, DeliverySummary, Totals, chunk_id

NANO = Decimal("1e9")
CostBasis = Literal["effective", "billed"]


def from_nanos(value: int | str | None) -> Decimal:
    """An amount from nano-units (an int, or the decimal text of one), exactly."""
    if value is None:
        return Decimal(0)
    return Decimal(f"{value}e-9") + 0  # built from text: exact at any size (``+ 0`` normalizes -0)


def nanos_array(amounts: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A money column in nano-units as ``decimal256(76, 0)``: rounded half-even at 1e-9, then
    scaled, in Arrow (exact up to 56 integer digits)."""
    wide = pc.round(pc.cast(amounts, pa.decimal256(76, 18)), ndigits=9, round_mode="half_to_even")
    scaled = pc.multiply(pc.cast(wide, pa.decimal256(65, 9)), pa.scalar(NANO, pa.decimal256(10, 0)))
    return pc.cast(scaled, pa.decimal256(76, 0))


@dataclass(frozen=True)
class Completion:
    """What :meth:`Ledger.complete` found."""

    delivery_id: str
    status: Literal["complete", "waiting", "rejected", "superseded", "unknown"]
    reason: str = ""
    #: the delivery this one replaced as the counted one of its slice, if any
    replaced: str | None = None
    #: True only on the call that switched it in (not on a replay)
    switched: bool = False


def check_delivery(summary: DeliverySummary, chunks: Mapping[str, Totals]) -> tuple[str, str]:
    """Decide a delivery from its summary and the chunks that arrived (pure).

    Returns ``("complete", "")``, ``("waiting", why)`` when chunks are missing, or
    ``("rejected", why)`` when the chunks disagree with the summary.
    """
    expected = summary.chunk_ids
    missing = [c for c in expected if c not in chunks]
    if missing:
        parts = [f"{f.key} #{i + 1}" for f in summary.files for i in range(f.chunks)
                 if chunk_id(summary.delivery.delivery_id, f.key, i) not in chunks]
        shown = ", ".join(parts[:5]) + (f" and {len(parts) - 5} more" if len(parts) > 5 else "")
        return "waiting", f"{len(missing)} of {len(expected)} chunks not yet received (waiting for {shown})"
    extra = [c for c in chunks if c not in set(expected)]
    if extra:
        return "rejected", f"{len(extra)} chunks that the summary does not name"
    rows = sum(chunks[c].rows for c in expected)
    if rows != summary.totals.rows:
        return "rejected", f"chunks hold {rows} rows, the summary says {summary.totals.rows}"
    if summary.expected_rows is not None and summary.expected_rows != rows + sum(f.rows_skipped for f in summary.files):
        return "rejected", (f"the manifest announces {summary.expected_rows} rows, the delivery read "
                            f"{rows + sum(f.rows_skipped for f in summary.files)}")
    for kind in ("billed", "effective"):
        got: dict[str, Decimal] = {}
        for c in expected:
            for cur, v in getattr(chunks[c], kind).items():
                got[cur] = got.get(cur, Decimal(0)) + v
        want = {k: v for k, v in getattr(summary.totals, kind).items() if v or k in got}
        got = {k: v for k, v in got.items() if v or k in want}
        if got != want:
            return "rejected", f"{kind} cost of the chunks {_fmt(got)} differs from the summary {_fmt(want)}"
    return "complete", ""


def _fmt(amounts: Mapping[str, Decimal]) -> str:
    return ", ".join(f"{v} {k}" for k, v in sorted(amounts.items())) or "0"


@dataclass(frozen=True)
class Scope:
    """A tag scope: ``team=ml-research`` (one value) or ``project=*`` (``value`` None)."""

    key: str
    value: str | None = None

    def __str__(self) -> str:
        return f"{self.key}={self.value if self.value is not None else '*'}"


@dataclass(frozen=True)
class Window:
    """Days ``[start, end)`` plus, optionally, the period-level charges of some billing periods
    (monthly tax and fees, which have no day)."""

    start: date
    end: date
    periods: tuple[str, ...] = ()


@dataclass(frozen=True)
class SpendRow:
    scope_value: str | None
    currency: str
    amount: Decimal
    gpu_amount: Decimal = Decimal(0)


@dataclass(frozen=True)
class ResourceRow:
    resource_id: str
    cloud: str
    instance_type: str
    gpu: bool
    currency: str
    amount: Decimal


@dataclass(frozen=True)
class ServiceRow:
    cloud: str
    service: str
    currency: str
    amount: Decimal


@dataclass(frozen=True)
class DeliveryStatus:
    delivery: DeliveryRef
    status: str
    reason: str
    counted: bool
    rows: int
    received_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True)
class AuditEvent:
    at: datetime
    kind: str  # decision | action | alert | delivery | command | dead-letter
    actor: str  # "guardrail", a Slack user id, "cli"
    outcome: str  # ok | dry-run | failed | refused | skipped
    guardrail: str | None = None
    scope: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StopRecord:
    """An instance the guardrail stopped (or would have, in dry-run)."""

    guardrail: str
    scope: str
    cloud: str
    instance_id: str
    name: str
    location: str
    instance_type: str
    stopped_at: datetime
    dry_run: bool
    hourly_cost: Decimal | None = None
    currency: str | None = None
    resumed_at: datetime | None = None


