"""The ledger port: what the guardrail remembers, and the questions it answers.

Split by concern, so that an adapter is written (and a caller depends on) one part at a time:

* :class:`SpendFacts`: deliveries and their chunks in, the counted snapshot switched atomically;
* :class:`SpendQueries`: spend per scope, day, hour, resource, service, tag value;
* :class:`OnceOnly`: idempotency and replay (a key claimed once: crossings, slash commands,
  Slack signatures);
* :class:`AlertState`: what was announced (the edge-triggering of alerts);
* :class:`AuditLog`: every decision, action, command;
* :class:`StopLog`: stops (to resume them) and snoozes.

:class:`Ledger` is their union. Adapters: SQLite (``burnguard.adapters.local.ledger``, the
embedded default) and Firestore (``burnguard.adapters.gcp``). Every adapter passes the same
contract suite (``tests/contract``, which calls every method). The semantics it carries
(deliveries are snapshots, at-least-once) are in :mod:`burnguard.core.ledger`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol, runtime_checkable

from burnguard.core.estimates import Accrual, EstimateError, EstimateRow, Reading
from burnguard.core.facts import Facts
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
)
from burnguard.core.messages import DeliveryRef, DeliverySummary, Totals

ClaimState = Literal["new", "pending", "settled"]


class EffectLog(Protocol):
    """What the guardrail did about a crossing, recorded before and after each effect, so an
    attempt that fails half way is resumed by the next one and never repeats what is done.

    A *claim* is one document per crossing key (the announcement key of a decision's first
    crossing). It holds a state (pending or settled) and a map of *effects* (one entry per
    effect id: ``decision``, ``stop:<cloud>:<instance>``, ``skip:<cloud>:<instance>``,
    ``notify``, ``notify-failures``), each ``{"state": "pending" | "done", "outcome": str,
    "details": {...}}``. Every method is one atomic unit (one transaction). A settled claim's
    keys are announcements (:meth:`Ledger.announced` lists them, :meth:`Ledger.announce`
    returns ``False`` for them); a pending claim's keys are not, so re-evaluation decides the
    crossing again and the next attempt resumes the claim.
    """

    def claim(self, key: str, at: datetime, details: Mapping[str, Any]) -> ClaimState:
        """Open the claim ``key``. ``"new"``: it did not exist and is now pending; ``"pending"``:
        an earlier attempt opened it and did not settle it (resume it); ``"settled"``: it is
        settled, or ``key`` was announced by :meth:`Ledger.announce` (do nothing)."""
        ...

    def effects(self, key: str) -> dict[str, dict[str, Any]]:
        """The effects recorded on claim ``key`` (pending and done), by effect id; ``{}`` if none."""
        ...

    def begin_effect(self, key: str, effect: str, at: datetime, details: Mapping[str, Any]) -> bool:
        """Record effect ``effect`` of claim ``key`` as pending with ``details`` (what is about to
        be done, enough to do it again). ``False`` (and nothing changes) if it is already
        recorded, pending or done: another attempt began it, so this one must not do it too."""
        ...

    def complete_effect(self, key: str, effect: str, outcome: str, at: datetime, *, details: Mapping[str, Any],
                        audit: AuditEvent, stop: StopRecord | None = None) -> bool:
        """Atomically: mark the effect done with ``outcome`` and ``details``, append ``audit`` to
        the audit log and, if given, record ``stop`` (as :meth:`Ledger.record_stop`). ``False``
        (and nothing written) if the effect was already done."""
        ...

    def drop_effect(self, key: str, effect: str) -> None:
        """Forget a *pending* effect of claim ``key`` known not to have happened (the notifier
        said it could not deliver), so the next attempt does it; a done effect is kept."""
        ...

    def settle(self, key: str, at: datetime, also: Sequence[str] = ()) -> None:
        """Mark claim ``key`` settled and announce ``key`` and the keys ``also`` (the other
        crossings its decision reports) at ``at``, atomically. Idempotent."""
        ...

    def pending_claims(self) -> dict[str, dict[str, Any]]:
        """Claims never settled, by key: ``{"at": datetime, "details": {...}, "effects": {...}}``."""
        ...


class SpendFacts(Protocol):
    """Spend facts in: a delivery's chunks and summary; the counted snapshot of each slice."""

    def add_chunk(self, chunk_id: str, delivery: DeliveryRef, declared: Totals, facts: Facts,
                  received_at: datetime) -> bool:
        """Store a chunk's aggregates; ``False`` if that chunk id was already stored."""
        ...

    def add_summary(self, summary: DeliverySummary, received_at: datetime) -> bool:
        """Store a delivery's closing summary; ``False`` if already stored."""
        ...

    def complete(self, delivery_id: str, now: datetime) -> Completion:
        """Check the delivery; if complete and the latest of its slice, make it the counted
        one, atomically replacing the previous one. Idempotent."""
        ...

    def deliveries(self, *, include_superseded: bool = False) -> list[DeliveryStatus]: ...


class SpendQueries(Protocol):
    """Questions on the counted spend."""

    def spend(self, scope: Scope, window: Window, *, basis: CostBasis = "effective",
              clouds: Sequence[str] | None = None) -> list[SpendRow]:
        """Spend per scope value (one row per value and currency; GPU part alongside)."""
        ...

    def daily(self, scope: Scope, window: Window, *, basis: CostBasis = "effective",
              clouds: Sequence[str] | None = None) -> dict[str | None, dict[date, dict[str, Decimal]]]:
        """Spend per scope value, per day, per currency (days with data only)."""
        ...

    def gpu_hourly(self, scope: Scope, since: datetime, *, basis: CostBasis = "effective",
                   clouds: Sequence[str] | None = None) -> dict[str | None, dict[datetime, dict[str, Decimal]]]:
        """GPU spend per scope value, per hour, per currency, from ``since``."""
        ...

    def top_resources(self, scope: Scope, window: Window, *, limit: int = 10, basis: CostBasis = "effective",
                      gpu_only: bool = False) -> list[ResourceRow]: ...

    def gpu_by_resource(self, scope: Scope, start: datetime, end: datetime, *, basis: CostBasis = "effective",
                        clouds: Sequence[str] | None = None) -> list[ResourceRow]:
        """GPU spend per resource and currency over the hours ``[start, end)``, largest first
        (the hourly facts: the last days of data only). ``instance_type`` is empty: the hourly
        facts do not keep it (:meth:`top_resources` has it)."""
        ...

    def by_service(self, scope: Scope, window: Window, *, basis: CostBasis = "effective") -> list[ServiceRow]: ...

    def top_tag_values(self, key: str, window: Window, *, limit: int = 10,
                       basis: CostBasis = "effective") -> list[SpendRow]: ...

    def latest_data(self) -> datetime | None:
        """End of the latest hour of counted usage data (the ledger's "now" of data)."""
        ...


class SpendStore(SpendFacts, SpendQueries, Protocol):
    """Spend facts and deliveries, and the questions on them."""


class OnceOnly(Protocol):
    """Idempotency and replay protection: a key is claimed once, atomically, across instances."""

    def announce(self, key: str, at: datetime, details: Mapping[str, Any]) -> bool:
        """Record an announcement (a threshold crossing, a native alert, a slash command, a
        Slack signature); ``False`` if that key was announced before. Edge-triggering rests on
        this."""
        ...


class AlertState(OnceOnly, Protocol):
    """What was announced, by key prefix (``threshold|<guardrail>|<scope>|<period>|``)."""

    def announced(self, prefix: str) -> dict[str, datetime]: ...


class AuditLog(Protocol):
    def audit(self, event: AuditEvent) -> None: ...

    def audit_log(self, *, limit: int = 100, guardrail: str | None = None) -> list[AuditEvent]:
        """The latest events first; of one guardrail when given."""
        ...


class StopLog(Protocol):
    """The instances the guardrail stopped (to resume them) and the guardrails snoozed."""

    def record_stop(self, record: StopRecord) -> None: ...

    def stops(self, guardrail: str | None = None, *, active_only: bool = True) -> list[StopRecord]:
        """Stops in order of time; ``active_only``: not dry-run and not yet resumed."""
        ...

    def mark_resumed(self, guardrail: str, cloud: str, instance_id: str, at: datetime) -> None: ...

    def snooze(self, guardrail: str, until: datetime, by: str, at: datetime) -> None: ...

    def snoozed_until(self, guardrail: str) -> datetime | None: ...


class Ledger(SpendStore, AlertState, AuditLog, StopLog, EffectLog, Protocol):
    """Everything the guardrail remembers: the union of the concerns above."""


class BilledRates(Protocol):
    """Effective hourly rates found in the counted billing data (where the live estimate's rates
    come from first)."""

    def billed_rates(self, hours: int = 24) -> tuple[dict[tuple[str, str], tuple[Decimal, str, datetime]],
                                                      dict[tuple[str, ...], tuple[Decimal, str]]]:
        """``(by_instance, by_type)``: per ``(cloud, resource_key)`` the effective cost of the
        resource's largest counted GPU hour (with its currency and hour); per ``(cloud, account,
        region, instance_type)`` (:func:`~burnguard.core.estimates.place_key`: where the bill
        names the resource's account and region) and per ``(cloud, instance_type)`` the mean
        effective cost of an hour of that type, over the last ``hours`` of each cloud's counted
        data (:func:`~burnguard.core.estimates.mean_rates`)."""
        ...


class EstimateView(Protocol):
    """The read side of the live estimate that evaluation uses."""

    def estimated_spend(self, scope: Scope, window: Window, *,
                        clouds: Sequence[str] | None = None) -> list[SpendRow]:
        """Estimated spend per scope value and currency, for the hours of ``window`` that no
        counted delivery of the instance's cloud and account covers yet
        (:class:`~burnguard.core.estimates.Coverage`; ``gpu_amount`` equals ``amount``)."""
        ...

    def running_rate(self, scope: Scope, *, clouds: Sequence[str] | None = None) -> list[SpendRow]:
        """Per scope value and currency, the summed hourly rate of the instances the latest
        readings found running (``amount``; what the projections of a budget crossing use)."""
        ...


@runtime_checkable
class EstimateLog(EstimateView, BilledRates, Protocol):
    """The live estimate (``burnguard meter``): provisional spend of running instances per
    (instance, hour), counted only for hours no counted billing delivery covers yet.

    A separate concern from :class:`Ledger` (the SQLite and Firestore ledgers implement both),
    so a caller that meters asks for ``Ledger`` and ``EstimateLog``.
    Rules (:mod:`burnguard.core.estimates`): one reading accrues from
    ``max(accrued_until, coverage_end, started_at)`` to its time, atomically with moving
    ``accrued_until``, so nothing is counted twice; when :meth:`SpendFacts.complete` counts a
    delivery, the estimates of the hours it covers stop counting **in the same transaction**
    (SQLite deletes them in it; Firestore's switch moves the coverage every question filters
    by, then deletes them within the same ``complete`` call, resumably), and their error
    against the bill for those hours is recorded per instance."""

    def record_readings(self, readings: Sequence[Reading]) -> list[Accrual]:
        """Apply a tick's readings in one transaction; the accruals they added."""
        ...

    def coverage(self) -> dict[str, datetime]:
        """Per cloud, the end of the hours its counted deliveries cover (the latest of its
        accounts'; estimates count from their own account's, see
        :class:`~burnguard.core.estimates.Coverage`)."""
        ...

    def estimates(self) -> list[EstimateRow]:
        """Every instance's estimated spend still counted, per currency and rate source."""
        ...

    def estimate_errors(self) -> list[EstimateError]:
        """The recorded errors of estimates against the bill, per instance type and rate source."""
        ...

    def latest_reading(self) -> datetime | None:
        """The time of the latest meter reading (``None`` if the meter never ran)."""
        ...

    def estimate_rows(self) -> int:
        """How many (instance, hour) estimate rows the ledger holds (growth measure)."""
        ...

    def tick_snapshot(self) -> AbstractContextManager[None]:
        """A context for the questions of one meter tick (the guardrail's evaluation, the
        projections of every guardrail): within it, in the calling thread, the ledger may
        answer them from one read of the estimate's state and the coverage made for the tick,
        rather than one read per question (Firestore bills each document read). Any write
        through the ledger that changes them (:meth:`record_readings`, a delivery's switch and
        the estimates it drops) invalidates that read: no answer within it is older than the
        ledger's own latest write. Outside it every question reads afresh. Reentrant; a ledger
        whose reads cost nothing (SQLite) returns a context that does nothing."""
        ...


class LedgerView(Protocol):
    """The read side of the ledger that evaluation uses."""

    def spend(self, scope: Scope, window: Window, *, basis: CostBasis = "effective",
              clouds: Sequence[str] | None = None) -> list[SpendRow]: ...

    def gpu_hourly(self, scope: Scope, since: datetime, *, basis: CostBasis = "effective",
                   clouds: Sequence[str] | None = None) -> dict[str | None, dict[datetime, dict[str, Decimal]]]: ...

    def latest_data(self) -> datetime | None: ...

    def announced(self, prefix: str) -> dict[str, datetime]: ...

    def snoozed_until(self, guardrail: str) -> datetime | None: ...


class ContextView(Protocol):
    def top_resources(self, scope: Scope, window: Window, *, limit: int = 10, basis: CostBasis = "effective",
                      gpu_only: bool = False) -> list[ResourceRow]: ...

    def gpu_by_resource(self, scope: Scope, start: datetime, end: datetime, *, basis: CostBasis = "effective",
                        clouds: Sequence[str] | None = None) -> list[ResourceRow]: ...

    def by_service(self, scope: Scope, window: Window, *, basis: CostBasis = "effective") -> list[ServiceRow]: ...

