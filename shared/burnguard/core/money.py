"""Money is ``Decimal`` with its currency, never float.

Scalar parsers live here (budget notifications, policies, property tests); the columnar
parser the normalizers use on whole batches is :func:`burnguard.core.columnar.to_decimal`, which
falls back to :func:`parse_decimal` for the values Arrow cannot cast, so both agree.
"""

from __future__ import annotations

import decimal
import re
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

#: Digits kept on every amount: Arrow ``decimal128(36, 18)``. Exports carry up to 20+
#: fractional digits; rounding at 1e-18 cannot move a total by a cent below 10^16 rows. Two
#: digits below Arrow's maximum of 38 leave room for a sum or difference before it is cast back.
PRECISION = 36
SCALE = 18
QUANTUM = Decimal(1).scaleb(-SCALE)
CENT = Decimal("0.01")
_WIDE = Context(prec=PRECISION + 4)
#: Digits of Python's decimal arithmetic on money. Its default (28) would round a sum of
#: 38-digit amounts silently; every thread's context starts from ``DefaultContext``.
ARITHMETIC_DIGITS = 100
decimal.DefaultContext.prec = max(decimal.DefaultContext.prec, ARITHMETIC_DIGITS)
decimal.getcontext().prec = max(decimal.getcontext().prec, ARITHMETIC_DIGITS)

NULL_TOKENS = frozenset({"", "null", "NULL", "Null", "None", "none", "NaN"})
NUMBER_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_NUMBER = re.compile(NUMBER_PATTERN)
_GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_CURRENCY_JUNK = re.compile(r"[^\d.,+\-]")


class NumberError(ValueError):
    """A text that is not a decimal number; the message quotes it."""


def parse_decimal(text: str | None) -> Decimal | None:
    """Parse a cost or quantity as written in a billing export.

    Accepts plain and scientific notation (``5.64902E-05``), leading ``+``/``-``, surrounding
    white space and up to any number of fractional digits (rounded half-even to 18). Returns
    ``None`` for "no value": the empty string, ``NULL``/``null`` and ``None``.
    Raises :class:`NumberError` for anything else (``1,000``, ``abc``, ``inf``).
    """
    if text is None:
        return None
    s = text.strip()
    if s in NULL_TOKENS:
        if s == "NaN":
            raise NumberError(f"{text!r} is not a number")
        return None
    if not _NUMBER.match(s):
        raise NumberError(f"{text!r} is not a number")
    try:
        value = Decimal(s)
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only valid literals
        raise NumberError(f"{text!r} is not a number") from exc
    if value.adjusted() >= PRECISION - SCALE:
        raise NumberError(f"{text!r} is out of range (more than {PRECISION - SCALE} integer digits)")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -SCALE:
        return value.quantize(QUANTUM, rounding=ROUND_DOWN, context=_WIDE)
    return value


def parse_amount(text: str) -> Decimal:
    """Parse a currency-formatted amount from a notification: ``$11,111.00``, ``$0.59``, ``100``.

    Currency symbols, codes and spaces are dropped; a comma is taken as a thousands separator
    only in the grouped form ``1,234,567.89``. Raises :class:`NumberError` when no number is left.
    """
    s = _CURRENCY_JUNK.sub("", text.strip())
    if _GROUPED.match(s):
        s = s.replace(",", "")
    value = parse_decimal(s)
    if value is None:
        raise NumberError(f"{text!r} holds no amount")
    return value


def cents(value: Decimal) -> Decimal:
    """Round to the cent, half-even (the way totals are compared and shown)."""
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in a currency (ISO 4217 code, upper case)."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError(f"Money.amount must be Decimal, not {type(self.amount).__name__}")

    def __str__(self) -> str:
        return f"{cents(self.amount):,} {self.currency}"


#: ISO 4217 currency codes (active, plus HRK and SLL that exports of past periods still carry;
#: without XTS "testing" and XXX "no currency", which are not money).
ISO_4217 = frozenset({
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
    "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHE", "CHF", "CHW", "CLF",
    "CLP", "CNY", "COP", "COU", "CRC", "CUC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB",
    "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HRK", "HTG", "HUF",
    "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD",
    "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU",
    "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD",
    "SHP", "SLE", "SLL", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY",
    "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES", "VND", "VUV", "WST",
    "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XCG", "XDR", "XOF", "XPD", "XPF", "XPT", "XSU", "XUA",
    "YER", "ZAR", "ZMW", "ZWG", "ZWL",
})


def is_currency(code: object) -> bool:
    """True for an ISO 4217 code, exactly (upper case, no spaces)."""
    return isinstance(code, str) and code in ISO_4217


def currency_problem(code: object) -> str | None:
    """Why ``code`` is not an ISO 4217 currency code, or None."""
    if is_currency(code):
        return None
    text = str(code)
    if isinstance(code, str) and code.strip().upper() in ISO_4217:
        return f"{text!r} is not an ISO 4217 currency code (write {code.strip().upper()!r})"
    return f"{text!r} is not an ISO 4217 currency code"
