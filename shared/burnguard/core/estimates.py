"""The live estimate's arithmetic: readings of running instances → provisional spend per hour.

Billing lands 8–48 hours after the spend. The meter reads the running instances every few
minutes and accrues, per instance, ``hours × hourly rate`` for the time since the instance's
previous reading. Pure: the ledger applies :func:`accrue` inside one transaction per tick.

Never double counted, by construction: an instance's accrual runs from
``max(accrued_until, coverage_end, started_at)`` to ``min(reading time, stopped_at)`` and
``accrued_until`` only moves forward. So a reading repeated, overlapping another, arriving late
(older than the last one) or stamped by a skewed clock adds nothing that was already added; a
meter that missed ticks catches up from the previous reading; a stopped instance accrues
nothing after its stop; hours a counted billing delivery covers are never estimated (and those
estimated before the delivery arrived drop out when it is counted).

Each accrual keeps the source of its rate (:data:`RATE_SOURCES`), so that its error, measured
when the bill lands, is reported per instance type and rate source.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from typing import Literal

HOUR = timedelta(hours=1)
#: How far back the first reading of an instance whose start time is unknown backfills, at
#: most: billing lags 8-48 hours, so coverage older than this means a stale ledger, not an
#: instance running since then.
MAX_BACKFILL = timedelta(hours=72)
#: Where an hourly rate comes from, most trusted first.
RateSource = Literal["billing:instance", "billing:type@region", "billing:type", "price-table"]
RATE_SOURCES: tuple[RateSource, ...] = ("billing:instance", "billing:type@region", "billing:type", "price-table")


@dataclass(frozen=True)
class Rate:
    """An hourly rate and where it comes from (``detail``: the price table's date, or the
    billing hour it was read from)."""

    amount: Decimal
    currency: str
    source: RateSource
    detail: str = ""

    @property
    def label(self) -> str:
        return f"{self.source} ({self.detail})" if self.detail else self.source


@dataclass(frozen=True)
class Reading:
    """An instance as the meter saw it at ``at``."""

    cloud: str
    instance_id: str
    instance_type: str
    location: str
    at: datetime
    running: bool
    rate: Rate | None
    tags: Mapping[str, str] = field(default_factory=dict)
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    #: the id billing exports name the instance by, if not ``instance_id`` (GCE: the numeric id)
    billing_id: str | None = None
    #: the account it runs in, as billing names it (:attr:`burnguard.core.instances.Instance.account`)
    account: str | None = None

    @property
    def billing_key(self) -> str:
        """How the bill's lines of this instance are found (:func:`resource_key`)."""
        return resource_key(self.billing_id or self.instance_id)

    @property
    def ref(self) -> str:
        return f"{self.cloud}:{self.instance_id}"


@dataclass(frozen=True)
class Coverage:
    """Up to when the counted billing deliveries cover each cloud and account.

    A delivery covers the accounts its rows charge (``SubAccountId``: the AWS usage account, the
    Google Cloud project, the Azure subscription, the ids instances carry as
    :attr:`Reading.account`), up to the end of its latest hour of usage; an account's coverage
    is the latest of the counted deliveries that hold it (of any billing period). So an account
    whose delivery lags keeps its estimates while another account's delivery is ahead.

    Where the mapping is unknown the cloud's coverage (the latest of all its counted deliveries)
    stands in: for a reading without an account, and for an account no counted delivery holds
    (a new account, or one billed elsewhere: its estimates would otherwise count forever). A
    delivery that names no account (its format has no account column, or it was counted before
    deliveries recorded their accounts) covers every account of its cloud. Account ids match
    case-insensitively (Azure subscription ids are GUIDs in either case).
    """

    clouds: Mapping[str, datetime] = field(default_factory=dict)
    accounts: Mapping[tuple[str, str], datetime] = field(default_factory=dict)
    everywhere: Mapping[str, datetime] = field(default_factory=dict)

    @classmethod
    def of(cls, deliveries: Iterable[tuple[str, datetime | None, Iterable[str] | None]]) -> Coverage:
        """From the counted deliveries' ``(cloud, end of data, accounts or None)``."""
        clouds: dict[str, datetime] = {}
        accounts: dict[tuple[str, str], datetime] = {}
        everywhere: dict[str, datetime] = {}
        for cloud, end, held in deliveries:
            if end is None:
                continue
            clouds[cloud] = max(end, clouds.get(cloud, end))
            names = [a.casefold() for a in held or () if a]
            if not names:
                everywhere[cloud] = max(end, everywhere.get(cloud, end))
            for a in names:
                accounts[(cloud, a)] = max(end, accounts.get((cloud, a), end))
        return cls(clouds, accounts, everywhere)

    def end(self, cloud: str, account: str | None = None) -> datetime | None:
        """Up to when ``account`` of ``cloud`` is covered (see the class)."""
        own = self.accounts.get((cloud, account.casefold())) if account else None
        if own is None:
            return self.clouds.get(cloud)
        wide = self.everywhere.get(cloud)
        return max(own, wide) if wide is not None else own


@dataclass(frozen=True)
class Accrual:
    """Provisional spend of one instance within one clock hour."""

    cloud: str
    instance_id: str
    hour: datetime  # start of the UTC hour
    seconds: int
    amount: Decimal
    currency: str
    source: RateSource


def as_utc(value: object) -> datetime | None:
    """A cloud API's time (a ``datetime``, or RFC 3339 text like GCE's ``lastStartTimestamp``)
    as tz-aware UTC; ``None`` when absent or unreadable (the meter then backfills from coverage)."""
    if isinstance(value, str) and value:
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def floor_hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def accrual_span(reading: Reading, accrued_until: datetime | None,
                 coverage_end: datetime | None) -> tuple[datetime, datetime] | None:
    """The interval ``[start, end)`` a reading adds, or ``None`` when it adds nothing.

    start = the latest of the previous reading's end, the end of billing coverage and the
    instance's start time (an instance first read without a start time backfills
    :data:`MAX_BACKFILL` at most); end = the reading's time, or the stop time of an instance found
    stopped (so a meter that missed ticks still counts the run up to the stop)."""
    if reading.running:
        end = reading.at
    elif reading.stopped_at is not None:
        end = min(reading.stopped_at, reading.at)
    else:
        return None
    starts = [t for t in (accrued_until, coverage_end, reading.started_at) if t is not None]
    if not starts:
        return None  # no start time, no previous reading, no billing: nothing to backfill from
    start = max(starts)
    if accrued_until is None and reading.started_at is None:
        start = max(start, reading.at - MAX_BACKFILL)
    if end <= start:
        return None
    return start, end


def accrue(reading: Reading, accrued_until: datetime | None, coverage_end: datetime | None) -> list[Accrual]:
    """The accruals of one reading, split at clock hours (exact ``Decimal``; seconds precision)."""
    span = accrual_span(reading, accrued_until, coverage_end)
    if span is None or reading.rate is None:
        return []
    start, end = span
    out: list[Accrual] = []
    hour = floor_hour(start)
    while hour < end:
        lo, hi = max(start, hour), min(end, hour + HOUR)
        seconds = int((hi - lo).total_seconds())
        if seconds > 0:
            out.append(Accrual(reading.cloud, reading.instance_id, hour, seconds,
                               reading.rate.amount * seconds / 3600, reading.rate.currency, reading.rate.source))
        hour += HOUR
    return out


def new_accrued_until(reading: Reading, accrued_until: datetime | None,
                      coverage_end: datetime | None) -> datetime | None:
    """Where the instance's accrual stands after the reading (never moves back)."""
    span = accrual_span(reading, accrued_until, coverage_end)
    if span is None:
        if accrued_until is None and reading.running and reading.started_at is None and coverage_end is None:
            return reading.at  # nothing to backfill from: the first reading starts the accrual
        return accrued_until
    return span[1] if accrued_until is None else max(accrued_until, span[1])


def crossing_time(now: datetime, spent: Decimal, budget: Decimal, rate: Decimal) -> datetime | None:
    """When ``spent`` reaches ``budget`` at ``rate`` per hour from ``now`` (``now`` if it has;
    ``None`` if it never will at that rate)."""
    if spent >= budget:
        return now
    if rate <= 0:
        return None
    # rounded up to the second: at that second it has crossed
    seconds = ((budget - spent) * 3600 / rate).to_integral_value(rounding=ROUND_CEILING)
    return now + timedelta(seconds=int(seconds))


def to_nanos(amount: Decimal) -> int:
    """A rate in nano-units (half-even): estimates sum ``rate nanos × seconds``, exact integers."""
    return int((amount * 10**9).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def from_rate_seconds(value: int | str | None) -> Decimal:
    """An amount from ``rate_seconds`` (nano-units × seconds, an int or its decimal text), to
    1e-18 (half-even): one division of the exact integer sum, so five-minute accruals never round."""
    if not value or not int(value):
        return Decimal(0)
    return (Decimal(f"{value}e-9") / 3600).quantize(Decimal("1e-18"), rounding=ROUND_HALF_EVEN) + 0


def place_key(cloud: str, account: str, region: str, instance_type: str) -> tuple[str, str, str, str]:
    """The key of "the same instance type in the same region and account" (ids case-folded)."""
    return (cloud, account.casefold(), region.casefold(), instance_type)


def mean_rates(by_instance: Mapping[tuple[str, str], tuple[Decimal, str, datetime]],
               places: Mapping[tuple[str, str], tuple[str, str, str]]) -> dict[tuple[str, ...], tuple[Decimal, str]]:
    """The mean effective hourly rate of the billed instances of each ``(cloud, instance type)``
    and of each :func:`place_key` (``places``: per ``(cloud, resource key)`` its type, account
    and region in the bill; a place is kept only where account and region are known)."""
    sums: dict[tuple[tuple[str, ...], str], list[Decimal]] = {}
    for (cloud, rkey), (amount, cur, _) in by_instance.items():
        itype, account, region = places.get((cloud, rkey), ("", "", ""))
        if not itype:
            continue
        sums.setdefault(((cloud, itype), cur), []).append(amount)
        if account and region:
            sums.setdefault((place_key(cloud, account, region, itype), cur), []).append(amount)
    return {key: ((sum(v, Decimal(0)) / len(v)).quantize(Decimal("1e-9")), cur) for (key, cur), v in sums.items()}


def fold_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags by case-folded key, as a scope selects them: the first key in sorted order wins
    (a set holding ``Team`` and ``team`` counts once), the rule of the ledgers' tag sets."""
    out: dict[str, str] = {}
    for k, v in sorted(tags.items()):
        out.setdefault(k.casefold(), v)
    return out


def resource_key(resource_id: str) -> str:
    """How an instance and a billing line's resource are matched: the last path segment,
    case-folded (AWS ``i-…``; a GCE ``…/instances/<name>`` or Azure
    ``…/virtualMachines/<name>`` resource against the instance's name or id)."""
    return resource_id.rstrip("/").rsplit("/", 1)[-1].casefold()


@dataclass(frozen=True)
class EstimateError:
    """How far the estimates of some hours were from the bill for them, per instance type and rate source."""

    instance_type: str
    source: str
    instances: int
    hours: Decimal
    estimated: Decimal
    billed: Decimal
    currency: str

    @property
    def error(self) -> Decimal:
        return self.estimated - self.billed

    @property
    def percent(self) -> Decimal | None:
        if not self.billed:
            return None
        return (self.error / self.billed * 100).quantize(Decimal("0.1"))


@dataclass(frozen=True)
class EstimateRow:
    """An instance's estimated spend still counted (hours no delivery covers yet)."""

    cloud: str
    instance_id: str
    instance_type: str
    source: str
    currency: str
    amount: Decimal
    seconds: int
    first_hour: datetime
    last_hour: datetime
    accrued_until: datetime | None = None
