"""Periods, one grammar: what a policy's ``period:`` says (``month``, ``day``, ``rolling:<N>d``,
``rolling:<N>h``) and what a spend question asks (those, plus a calendar month ``YYYY-MM``, a
day ``YYYY-MM-DD``, and ``<N>d`` for the last N calendar days), and the days of ledger data
(:class:`~burnguard.core.ledger.Window`) each one covers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from burnguard.core.errors import InputError
from burnguard.core.ledger import Window
from burnguard.core.timeparse import require_utc

MAX_ROLLING_DAYS = 366
_PERIOD = re.compile(r"^rolling:([1-9][0-9]*)([dh])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LAST_DAYS = re.compile(r"^(\d{1,3})d$")


@dataclass(frozen=True, slots=True)
class Period:
    """``month`` and ``day`` are UTC calendar periods; ``rolling`` the last ``count`` days or hours."""

    kind: Literal["month", "day", "rolling"]
    count: int = 0
    unit: Literal["d", "h", ""] = ""

    def __str__(self) -> str:
        return self.kind if self.kind != "rolling" else f"rolling:{self.count}{self.unit}"

    @property
    def length(self) -> timedelta | None:
        """Length of a rolling window (``None`` for calendar periods, whose length varies)."""
        if self.kind != "rolling":
            return None
        return timedelta(days=self.count) if self.unit == "d" else timedelta(hours=self.count)

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """``(start, end)`` in UTC of the period holding ``now``; ``end`` is exclusive.

        A rolling window ends at ``now``.
        """
        now = require_utc(now)
        if self.kind == "month":
            start = datetime(now.year, now.month, 1, tzinfo=UTC)
            end = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
            return start, end
        if self.kind == "day":
            start = datetime(now.year, now.month, now.day, tzinfo=UTC)
            return start, start + timedelta(days=1)
        length = self.length
        assert length is not None
        return now - length, now


def parse_period(text: object) -> Period:
    if isinstance(text, Period):
        return text
    if isinstance(text, str):
        s = text.strip()
        if s in ("month", "day"):
            return Period(s)  # type: ignore[arg-type]
        m = _PERIOD.match(s)
        if m:
            count, unit = int(m.group(1)), m.group(2)
            hours = count * 24 if unit == "d" else count
            if hours > MAX_ROLLING_DAYS * 24:
                raise PydanticCustomError(
                    "period", "a rolling window is at most {days} days, got {got}",
                    {"days": MAX_ROLLING_DAYS, "got": repr(text)},
                )
            return Period("rolling", count, unit)  # type: ignore[arg-type]
    raise PydanticCustomError(
        "period", 'must be "month", "day", "rolling:<N>d" or "rolling:<N>h", got {got}', {"got": repr(text)}
    )


PeriodField = Annotated[
    Period,
    PlainValidator(parse_period),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^(month|day|rolling:[1-9][0-9]*[dh])$",
                    "description": "month | day (UTC calendar) | rolling:<N>d | rolling:<N>h"}),
]


def period_days(period: Period, now: datetime) -> tuple[datetime, datetime, Window, str]:
    """The period holding ``now``: ``(start, end)``, the days of data it covers, and its key
    (``2024-09``, ``2024-09-14``, ``rolling:7d@2024-09-14``). A month's window carries its
    period-level charges (monthly fees and tax have no day)."""
    start, end = period.window(now)
    if period.kind == "month":
        key = start.strftime("%Y-%m")
        return start, end, Window(start.date(), end.date(), (key,)), key
    if period.kind == "day":
        key = start.strftime("%Y-%m-%d")
        return start, end, Window(start.date(), end.date()), key
    # Rolling windows count whole days of data (line items are hourly or daily).
    return start, end, Window(start.date(), end.date() + timedelta(days=1)), f"{period}@{now.strftime('%Y-%m-%d')}"


#: a question's period must start and end on a date Python can hold
MIN_YEAR, MAX_YEAR = 1970, 9998


def parse_query_period(text: str | None, now: datetime) -> tuple[Window, str]:
    """A spend question's period and its label: ``YYYY-MM`` (a month, with its monthly
    charges), ``YYYY-MM-DD`` (a day), ``Nd`` (the last N calendar days, today included), any
    policy period (``month``, ``day``, ``rolling:<N>d``) judged at ``now``; default the month
    of ``now``."""
    text = (text or now.strftime("%Y-%m")).strip()
    m = _MONTH.match(text)
    if m:
        year, month = int(m.group(1)), int(m.group(2))
        if not 1 <= month <= 12:
            raise InputError(f"month {month} does not exist", field="period")
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise InputError(f"year {year} is out of range ({MIN_YEAR}-{MAX_YEAR})", field="period")
        start = date(year, month, 1)
        end = date(year + month // 12, month % 12 + 1, 1)
        return Window(start, end, (text,)), text
    if _DAY.match(text):
        try:
            day = date.fromisoformat(text)
        except ValueError as exc:
            raise InputError(f"{text!r} is not a date ({exc})", field="period") from None
        if not MIN_YEAR <= day.year <= MAX_YEAR:
            raise InputError(f"year {day.year} is out of range ({MIN_YEAR}-{MAX_YEAR})", field="period")
        return Window(day, day + timedelta(days=1)), text
    m = _LAST_DAYS.match(text)
    if m:
        if int(m.group(1)) < 1:
            raise InputError("a period of 0 days is empty: write 1d or more", field="period")
        end = now.date() + timedelta(days=1)
        return Window(end - timedelta(days=int(m.group(1))), end), f"last {m.group(1)} days"
    try:
        period = parse_period(text)
    except PydanticCustomError:
        period = None
    if period is None or period.unit == "h":
        raise InputError(f"a period is YYYY-MM, YYYY-MM-DD, Nd (last N days), month, day or rolling:Nd, not {text!r}",
                         field="period")
    _start, _end, window, key = period_days(period, now)
    return window, key
