"""Timestamps as billing exports and notifications write them, parsed to aware UTC datetimes.

Every format seen in the reference exports is accepted (ISO 8601 with ``T`` or a space, with
or without fractional seconds and zone, ``YYYY-MM-DD``, the CUR manifest's basic format
``20180801T000000.000Z``, BigQuery's ``... UTC`` suffix, Azure's ``MM/DD/YYYY`` with an optional
``h:mm:ss AM -08:00`` part, and two-digit years). A value without a zone is UTC.

Slashed dates are month-first (the Azure convention). :func:`slash_order` decides per file
whether a column is day-first instead, from all its values: never guess per row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, timezone


class TimestampError(ValueError):
    """A text that is not a timestamp; the message quotes it."""


_BASIC = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$")
_SLASHED = re.compile(
    r"^(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})"
    r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?\s*([AaPp][Mm])?)?"
    r"\s*(Z|UTC|[+-]\d{2}:?\d{2})?$"
)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ZONE_WORD = re.compile(r"\s*(UTC|GMT|Z)$")


def _offset(text: str | None) -> timezone:
    if not text or text in ("Z", "UTC"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def parse_timestamp(text: str | None, *, day_first: bool = False) -> datetime | None:
    """Parse ``text`` to an aware UTC datetime; ``None`` for the empty string and ``NULL``.

    Raises :class:`TimestampError` naming the text when it is not a valid timestamp (hour 30,
    month 13, a word).
    """
    if text is None:
        return None
    s = text.strip()
    if s in ("", "NULL", "null", "None"):
        return None
    try:
        m = _BASIC.match(s)
        if m:
            y, mo, d, h, mi, se = (int(g) for g in m.groups())
            return datetime(y, mo, d, h, mi, se, tzinfo=UTC)
        m = _SLASHED.match(s)
        if m:
            a, b, y_text, h_text, mi_text, se_text, ampm, zone = m.groups()
            month, day = (int(b), int(a)) if day_first else (int(a), int(b))
            year = int(y_text) + (2000 if len(y_text) == 2 else 0)
            hour = int(h_text or 0)
            if ampm:
                if not 1 <= hour <= 12:
                    raise TimestampError(f"{text!r} has hour {hour} with {ampm.upper()}")
                hour = hour % 12 + (12 if ampm.lower() == "pm" else 0)
            local = datetime(year, month, day, hour, int(mi_text or 0), int(se_text or 0), tzinfo=_offset(zone))
            return local.astimezone(UTC)
        if _ISO_DATE.match(s):
            return datetime.combine(date.fromisoformat(s), datetime.min.time(), tzinfo=UTC)
        iso = _ZONE_WORD.sub("+00:00", s) if not s.endswith("Z") else s
        value = datetime.fromisoformat(iso)
    except TimestampError:
        raise
    except ValueError as exc:
        raise TimestampError(f"{text!r} is not a valid timestamp ({exc})") from None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def slash_order(values: Iterable[str]) -> bool:
    """Return ``True`` when slashed dates in ``values`` must be day-first.

    A file is day-first only if one of its values has a first part above 12 and none has a
    second part above 12; otherwise month-first (Azure's documented order).
    """
    first_big = second_big = False
    for v in values:
        m = _SLASHED.match(v.strip()) if v else None
        if m:
            first_big |= int(m.group(1)) > 12
            second_big |= int(m.group(2)) > 12
    return first_big and not second_big


def require_utc(value: datetime) -> datetime:
    """Reject naive datetimes at the boundaries of the core."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"timestamp {value!r} is naive; burnguard keeps timezone-aware UTC")
    return value.astimezone(UTC)
