"""Property tests for the scalar parsers every normalizer and notification parser relies on."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from burnguard.core.columnar import to_decimal, to_timestamp
from burnguard.core.money import QUANTUM, NumberError, parse_amount, parse_decimal
from burnguard.core.tags import MAX_VALUE_LENGTH, TagError, normalize_key, normalize_tags, parse_tag_object
from burnguard.core.timeparse import TimestampError, parse_timestamp

money = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), allow_nan=False, allow_infinity=False,
                    places=None).filter(lambda d: d.is_finite())


@given(money)
def test_decimal_round_trips_plain_and_scientific(value: Decimal) -> None:
    for text in (str(value), f"{value:E}", f"{value:e}", f"  {value}\t"):
        parsed = parse_decimal(text)
        assert parsed is not None
        # Exact, except for digits past the 18th decimal, truncated toward zero.
        assert abs(parsed - Decimal(text.strip())) < QUANTUM, text
        assert abs(parsed) <= abs(Decimal(text.strip()))


@given(money)
def test_columnar_decimal_agrees_with_scalar(value: Decimal) -> None:
    texts = [str(value), f"{value:e}", f"{value:.20E}", "", None]
    arr, bad = to_decimal(pa.array(texts, pa.string()))
    assert bad == []
    got = arr.to_pylist()
    assert got[:3] == [parse_decimal(t) for t in texts[:3]]
    assert got[3] is None and got[4] is None


@given(st.text(min_size=1).filter(lambda s: s.strip() not in ("", "null", "NULL", "Null", "None", "none")))
def test_non_numbers_are_rejected_with_the_text_quoted(text: str) -> None:
    try:
        Decimal(text.strip())
        assume(False)
    except ArithmeticError:
        pass
    with pytest.raises(NumberError) as info:
        parse_decimal(text)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize(("text", "expected"), [
    ("$11,111.00", Decimal("11111.00")), ("$0.59", Decimal("0.59")), ("$100", Decimal("100")),
    ("1,234,567.89 USD", Decimal("1234567.89")), ("-€3.50", Decimal("-3.50")),
])
def test_formatted_amounts(text: str, expected: Decimal) -> None:
    assert parse_amount(text) == expected


def test_columnar_reports_bad_rows_by_index() -> None:
    arr, bad = to_decimal(pa.array(["1.5", "abc", "2", "1,000"]))
    assert arr.to_pylist() == [Decimal("1.5"), None, Decimal("2"), None]
    assert [(b.index, b.text) for b in bad] == [(1, "abc"), (3, "1,000")]


def test_columnar_long_fractions_truncate_and_overflow_is_an_error() -> None:
    arr, bad = to_decimal(pa.array(["1.23456789012345E-05", "-0.1234567890123456789999"]))
    assert bad == []
    assert arr.to_pylist() == [Decimal("0.000012345678901234"), Decimal("-0.123456789012345678")]
    # Values where Arrow's own unsafe rescale goes wrong (sign, or a digit out of nowhere).
    tiny = ["3.39104514193242880295E-24", "8.50705923346616390156844434767584467335E-21",
            "6.801913471165407497336216589635707889521E-20"]
    arr, bad = to_decimal(pa.array(tiny))
    assert bad == [] and arr.to_pylist() == [Decimal(0)] * 3
    arr, bad = to_decimal(pa.array(["1.5", "1234567890123456789012.5", "2.12345678901234567891"]))
    assert arr.to_pylist()[0] == Decimal("1.5") and arr.to_pylist()[1] is None
    assert [(b.index, "out of range" in b.reason) for b in bad] == [(1, True)]


instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC))


@given(instants)
def test_every_export_timestamp_format_parses_to_the_same_instant(moment: datetime) -> None:
    moment = moment.replace(microsecond=0)
    forms = [
        moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        moment.strftime("%Y-%m-%d %H:%M:%S"),
        moment.strftime("%Y-%m-%d %H:%M:%S+00:00"),
        moment.strftime("%Y-%m-%d %H:%M:%S UTC"),
        moment.strftime("%Y%m%dT%H%M%S.000Z"),
        moment.astimezone(__import__("datetime").timezone(timedelta(hours=-8))).strftime("%m/%d/%Y %I:%M:%S %p -08:00"),
    ]
    for text in forms:
        assert parse_timestamp(text) == moment, text
    parsed, bad = to_timestamp(pa.array(forms))
    assert bad == []
    assert all(p == moment for p in parsed.to_pylist())


@given(st.dates(min_value=datetime(2000, 1, 1).date(), max_value=datetime(2099, 12, 31).date()))
def test_slashed_dates_are_month_first(day: object) -> None:
    from datetime import date
    assert isinstance(day, date)
    expected = datetime(day.year, day.month, day.day, tzinfo=UTC)
    assert parse_timestamp(f"{day.month}/{day.day}/{day.year}") == expected
    assert parse_timestamp(f"{day.month:02d}/{day.day:02d}/{day.year}") == expected
    assert parse_timestamp(f"{day.day}/{day.month}/{day.year}", day_first=True) == expected


@pytest.mark.parametrize("text", ["2023-02-01T30:00:00Z", "2024-13-01", "13/45/2020", "yesterday", "2024-02-30"])
def test_invalid_timestamps_are_errors(text: str) -> None:
    with pytest.raises(TimestampError) as info:
        parse_timestamp(text)
    assert repr(text) in str(info.value)


tag_keys = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters='"\\'), min_size=1, max_size=40)
tag_values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)


@given(st.dictionaries(tag_keys, tag_values, max_size=8))
def test_tag_json_with_and_without_braces_agree(tags: dict[str, str]) -> None:
    text = json.dumps(tags)
    assert parse_tag_object(text) == tags
    assert parse_tag_object(text[1:-1]) == tags  # Azure EA writes the object without braces


@given(st.dictionaries(tag_keys, tag_values, max_size=8))
def test_normalized_keys_are_stripped_and_azure_keys_folded(tags: dict[str, str]) -> None:
    for cloud in ("aws", "gcp", "azure"):
        out = normalize_tags(cloud, tags)
        for key in out:
            assert key == key.strip() and key
            if cloud == "azure":
                assert key == key.lower()
        # Nothing but empty keys is lost: every input key maps to an output key.
        expected_keys = {normalize_key(cloud, k) for k in tags if normalize_key(cloud, k)}
        assert set(out) == expected_keys


def test_aws_user_prefix_removed_and_case_kept() -> None:
    assert normalize_tags("aws", {"user:Team": "ml", "aws:createdBy": "x"}) == {"Team": "ml", "aws:createdBy": "x"}


def test_azure_case_variants_merge_first_non_empty_wins() -> None:
    assert normalize_tags("azure", [("CostCenter", ""), ("costcenter", "1234"), ("COSTCENTER", "9")]) == {"costcenter": "1234"}


def test_huge_tag_values_are_errors() -> None:
    with pytest.raises(TagError, match="limit"):
        normalize_tags("aws", {"team": "x" * (MAX_VALUE_LENGTH + 1)})
