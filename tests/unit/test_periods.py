"""One period grammar: a spend question accepts calendar names, the last N days, and every
policy period, each judged at ``now``; hours are refused (the ledger counts days)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from burnguard.core.errors import InputError
from burnguard.core.ledger import Window
from burnguard.core.periods import parse_query_period

NOW = datetime(2024, 2, 28, 22, 30, tzinfo=UTC)  # 2024 is a leap year


@pytest.mark.parametrize(("text", "window", "label"), [
    (None, Window(date(2024, 2, 1), date(2024, 3, 1), ("2024-02",)), "2024-02"),
    ("2023-12", Window(date(2023, 12, 1), date(2024, 1, 1), ("2023-12",)), "2023-12"),
    ("2024-02-29", Window(date(2024, 2, 29), date(2024, 3, 1)), "2024-02-29"),
    ("3d", Window(date(2024, 2, 26), date(2024, 2, 29)), "last 3 days"),
    ("month", Window(date(2024, 2, 1), date(2024, 3, 1), ("2024-02",)), "2024-02"),
    ("day", Window(date(2024, 2, 28), date(2024, 2, 29)), "2024-02-28"),
    # rolling:2d from 2024-02-26 22:30 to now: the days it touches, 26th to 28th.
    ("rolling:2d", Window(date(2024, 2, 26), date(2024, 2, 29)), "rolling:2d@2024-02-28"),
])
def test_a_question_period_is_a_window_of_days(text: str | None, window: Window, label: str) -> None:
    assert parse_query_period(text, NOW) == (window, label)


@pytest.mark.parametrize(("text", "words"), [
    ("2024-13", "month 13 does not exist"), ("2023-02-29", "is not a date"), ("rolling:6h", "a period is"),
    ("soon", "a period is"),
])
def test_a_bad_period_names_the_field(text: str, words: str) -> None:
    with pytest.raises(InputError) as err:
        parse_query_period(text, NOW)
    assert err.value.field == "period" and words in err.value.reason
