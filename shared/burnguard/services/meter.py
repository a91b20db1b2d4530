"""The meter: the live estimate of GPU spend before the bill lands.

Every few minutes (``burnguard meter``; in the cloud a scheduled function) a tick lists the
instances in every guardrail's scope on every cloud through the same controllers that stop
them, prices each running GPU instance (:class:`RateBook`), and records the readings in the
ledger (:meth:`~burnguard.ports.ledger.EstimateLog.record_readings`: the accrual arithmetic of
:mod:`burnguard.core.estimates`, one transaction). Then it evaluates the policy with billed +
estimated spend through the :class:`~burnguard.services.guardrail.GuardrailService`, so a
budget crossed by estimate is acted on at the first tick after the crossing, and projects when
each budget will be crossed at the scope's current rate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from burnguard.core.estimates import Accrual, Rate, Reading, crossing_time, place_key, resource_key
from burnguard.core.instances import RUNNING, Instance
from burnguard.core.ledger import Scope
from burnguard.core.messages import Message, decode_state_change
from burnguard.core.money import Money
from burnguard.core.policy import Guardrail, Policy
from burnguard.core.prices import PriceTable, region_of
from burnguard.core.state_events import StateChange
from burnguard.ports.instances import InstanceController
from burnguard.ports.ledger import EstimateLog, Ledger
from burnguard.rules.decisions import counted_spend, period_window
from burnguard.services.guardrail import ExecutionReport, GuardrailFault, GuardrailService


class EstimatingLedger(Ledger, EstimateLog, Protocol):
    """A ledger that also keeps the live estimate (the SQLite and the Firestore ledger are both)."""


class RateBook:
    """An instance's hourly rate, most trusted first: its own effective cost in the latest
    counted billing data (Savings Plans, reservations, spot and negotiated discounts carry
    over); else the mean effective rate of the same instance type in the same region and
    account in the billing data (``billing:type@region``: where the instance's account is known
    and its location names a region: EC2 and Compute Engine; an Azure instance's location is its
    resource group); else that of its type on its cloud (``billing:type``); else the public
    on-demand list price of the shipped table (with its date)."""

    def __init__(self, estimates: EstimateLog, prices: PriceTable, *, hours: int = 24):
        self.by_instance, self.by_type = estimates.billed_rates(hours)
        self.prices = prices

    def rate(self, instance: Instance) -> Rate | None:
        own = None
        for key in (instance.billing_id, instance.instance_id, instance.name):
            if own is None and key:
                own = self.by_instance.get((instance.cloud, resource_key(key)))
        if own is not None:
            return Rate(own[0], own[1], "billing:instance", f"{own[2]:%Y-%m-%d %H:%M}")
        if instance.account and instance.price_location:
            region = region_of(instance.cloud, instance.price_location)
            placed = self.by_type.get(place_key(instance.cloud, instance.account, region, instance.instance_type))
            if placed is not None:
                return Rate(placed[0], placed[1], "billing:type@region",
                            f"{instance.instance_type}@{region}/{instance.account}")
        typed = self.by_type.get((instance.cloud, instance.instance_type))
        if typed is not None:
            return Rate(typed[0], typed[1], "billing:type", instance.instance_type)
        listed = self.prices.price(instance.cloud, instance.instance_type, instance.price_location)
        if listed is not None:
            return Rate(listed, self.prices.currency, "price-table", self.prices.date)
        return None


@dataclass(frozen=True)
class Projection:
    """When a budget is crossed at its scope's current rate ("at 57 USD/h, 100% at Sat 03:10")."""

    guardrail: str
    scope: Scope
    spent: Money
    estimated: Decimal
    budget: Money
    rate: Money  # per hour, of the instances running now
    label: str  # the next threshold not reached
    at: datetime | None  # None: never at this rate

    def text(self) -> str:
        when = f"{self.at:%a %H:%M} UTC" if self.at is not None else "never at this rate"
        return f"at {self.rate.amount.quantize(Decimal('0.01'))} {self.rate.currency}/h, {self.label} at {when}"


@dataclass
class TickReport:
    at: datetime
    read: int = 0
    running: int = 0
    accrued: dict[str, Decimal] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    unpriced: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    reports: list[ExecutionReport] = field(default_factory=list)
    projections: list[Projection] = field(default_factory=list)


class MeterService:
    def __init__(self, policy: Policy, ledger: EstimatingLedger, controllers: Mapping[str, InstanceController],
                 prices: PriceTable, guardrail: GuardrailService, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), concurrent: bool = True):
        self.policy = policy
        self.ledger = ledger
        #: list the clouds at the same time (their APIs' waits overlap); False: one after another
        self.concurrent = concurrent
        self.controllers = dict(controllers)
        self.prices = prices
        self.guardrail = guardrail
        self.clock = clock

    def scan(self, report: TickReport) -> list[Instance]:
        """The GPU instances in every guardrail's scope on every cloud it names (each once).

        The clouds are listed at the same time (a thread each: against the clouds' APIs the
        time goes in waiting for them; ``concurrent=False`` lists them in turn, for a process
        whose CPU, not the network, is what runs out), each cloud's scopes one after the other
        through its controller; a
        scope a wildcard of the same key covers (``team=a`` under ``team=*``) is not listed
        again. One cloud failing never stops the others: its problem is reported, and the
        next tick catches up."""
        plans = {cloud: self._scopes(cloud) for cloud in sorted(self.controllers)}
        plans = {cloud: scopes for cloud, scopes in plans.items() if scopes}
        results: dict[str, tuple[list[Instance], list[str]]] = {}
        if self.concurrent and len(plans) > 1:
            with ThreadPoolExecutor(max_workers=len(plans), thread_name_prefix="meter-list") as pool:
                futures = {cloud: pool.submit(self._list, cloud, scopes) for cloud, scopes in plans.items()}
                results = {cloud: future.result() for cloud, future in futures.items()}
        else:
            results = {cloud: self._list(cloud, scopes) for cloud, scopes in plans.items()}
        found: dict[str, Instance] = {}
        for cloud in plans:  # in the clouds' order, whatever finished first
            listed, problems = results[cloud]
            report.problems += problems
            for inst in listed:
                if inst.is_gpu:
                    found.setdefault(inst.ref, inst)
        return list(found.values())

    def _scopes(self, cloud: str) -> list[tuple[str, str | None]]:
        scopes = {(g.scope.key, g.scope.value) for g in self.policy.guardrails if cloud in g.clouds}
        wildcards = {key.casefold() for key, value in scopes if value is None}
        return sorted(((k, v) for k, v in scopes if v is None or k.casefold() not in wildcards),
                      key=lambda s: (s[0], s[1] or ""))

    def _list(self, cloud: str, scopes: list[tuple[str, str | None]]) -> tuple[list[Instance], list[str]]:
        listed: list[Instance] = []
        problems: list[str] = []
        for key, value in scopes:
            try:
                listed += self.controllers[cloud].find(key, value)
            except Exception as exc:  # one cloud failing never stops the others; caught up next tick
                problems.append(f"{cloud}: listing {key}={value or '*'} failed: {type(exc).__name__}: {exc}")
        return listed, problems

    def on_state_change(self, change: StateChange) -> TickReport:
        """An instance started or stopped (a state-change event): read now, taking the event's
        time as the start or stop time the cloud's API does not give (EC2 keeps no stop time),
        so the accrual starts or ends the moment it happened; the projection follows."""
        return self.tick({(change.cloud, resource_key(change.instance_id)): change})

    def handle(self, message: Message) -> TickReport:
        """A ``state-change`` queue message (the AWS and Azure ``instance_event`` functions
        publish them): :meth:`on_state_change`. A malformed one raises
        :class:`~burnguard.core.errors.InputError` (the caller dead-letters it)."""
        return self.on_state_change(decode_state_change(message))

    def tick(self, changes: Mapping[tuple[str, str], StateChange] | None = None) -> TickReport:
        """One reading of every instance, the accruals, then the policy evaluated with them."""
        now = self.clock()
        report = TickReport(now)
        book = RateBook(self.ledger, self.prices)
        readings = []
        for found in self.scan(report):
            inst = _with_change(found, (changes or {}).get((found.cloud, resource_key(found.instance_id))))
            running = inst.state == RUNNING
            rate = book.rate(inst) if running or inst.stopped_at is not None else None
            if running and rate is None:
                report.unpriced.append(
                    f"{inst.ref} ({inst.instance_type}): no rate in the billing data or the price table")
            if rate is not None:
                report.sources[rate.source] = report.sources.get(rate.source, 0) + 1
            report.running += running
            readings.append(Reading(inst.cloud, inst.instance_id, inst.instance_type, inst.location, now, running,
                                    rate, inst.tags, inst.started_at, inst.stopped_at, inst.billing_id,
                                    inst.account))
        report.read = len(readings)
        accruals: list[Accrual] = self.ledger.record_readings(readings)
        for a in accruals:
            report.accrued[a.currency] = report.accrued.get(a.currency, Decimal(0)) + a.amount
        # The questions of the evaluation and the projections (every guardrail's) from one read of
        # the estimate made for them (Firestore: each meter document once, not once per question);
        # the run writes no meter document (stops, effects, audit), and a write that does
        # invalidates the read.
        with self.ledger.tick_snapshot():
            try:
                report.reports = self.guardrail.run(now)
            except GuardrailFault as fault:  # the readings are recorded; the next tick resumes the crossing
                report.reports = fault.reports
                report.problems += fault.errors
            report.projections = project(self.policy, self.ledger, now)
        return report


def _with_change(inst: Instance, change: StateChange | None) -> Instance:
    """The instance with the event's time as its start or stop time, where the API gave none
    (or an older one) and the event agrees with the state read."""
    if change is None:
        return inst
    if change.state == "running" and inst.state == RUNNING and (
            inst.started_at is None or inst.started_at < change.at):
        return replace(inst, started_at=change.at)
    if change.state == "stopped" and inst.state != RUNNING and (
            inst.stopped_at is None or inst.stopped_at < change.at):
        return replace(inst, stopped_at=change.at)
    return inst


def next_tick(report: TickReport, every: timedelta) -> datetime:
    """When the meter reads next: ``every`` after this tick, or earlier at the projected
    crossing of a stopping threshold (so a fleet started by an event is stopped at the
    crossing, not up to ``every`` after it)."""
    out = report.at + every
    for p in report.projections:
        if p.at is not None and report.at < p.at < out:
            out = p.at
    return out


def project(policy: Policy, ledger: EstimatingLedger, now: datetime) -> list[Projection]:
    """For each budget guardrail counting estimates and each scope value with instances
    running: when its next stopping threshold (else its highest) is crossed at the current rate."""
    out: list[Projection] = []
    for g in policy.guardrails:
        if g.budget is None or g.basis != "billed+estimated" or not g.thresholds:
            continue
        out += project_guardrail(g, ledger, now)
    return out


def project_guardrail(g: Guardrail, ledger: EstimateLog, now: datetime) -> list[Projection]:
    """One budget guardrail's projections (see :func:`project`); ``ledger`` must also be a
    :class:`~burnguard.ports.ledger.LedgerView` (the spend so far)."""
    if g.budget is None or not g.thresholds:
        return []
    budget = g.budget.money
    _, _, window, _ = period_window(g, now)
    view: Any = ledger  # an EstimatingLedger: both the bill and the estimate
    rows, estimated = counted_spend(g, view, window, ledger)
    spent = {r.scope_value: r.amount for r in rows if r.currency == budget.currency}
    out = []
    for rate in ledger.running_rate(Scope(g.scope.key, g.scope.value), clouds=g.clouds):
        if rate.currency != budget.currency or not rate.amount:
            continue
        amount = spent.get(rate.scope_value, Decimal(0))
        ahead = [t for t in sorted(g.thresholds, key=lambda t: t.at) if not t.reached_by(amount, g.budget)]
        if not ahead:
            continue
        # the crossing that acts (the first threshold that stops), else the highest ahead
        target = next((t for t in ahead if "stop" in t.actions), ahead[-1])
        out.append(Projection(
            g.name, Scope(g.scope.key, rate.scope_value), Money(amount, budget.currency),
            estimated.get((rate.scope_value, budget.currency), Decimal(0)), budget, Money(rate.amount, rate.currency),
            target.label, crossing_time(now, amount, target.amount(g.budget).amount, rate.amount)))
    return out
