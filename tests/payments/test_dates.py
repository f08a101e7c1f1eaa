"""Date notations in FR, NL, DE (and EN)."""

from __future__ import annotations

from datetime import date

import pytest

from daemon.payments import DateError, find_dates, parse_date

MARCH_15 = date(2026, 3, 15)


@pytest.mark.parametrize(
    "text",
    ["15/03/2026", "15-03-2026", "15.03.2026", "15/3/2026", "15/03/26", "2026-03-15", "15 mars 2026",
     "15 Mars 2026", "15 maart 2026", "15 mrt. 2026", "15. März 2026", "15. Maerz 2026", "15 März 2026",
     "March 15, 2026", "15 march 2026", "15 / 03 / 2026"],
)
def test_notations(text):
    assert parse_date(text) == MARCH_15


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1er février 2026", date(2026, 2, 1)), ("3 août 2026", date(2026, 8, 3)), ("1 mei 2026", date(2026, 5, 1)),
     ("24. Dezember 2025", date(2025, 12, 24)), ("31 déc. 2025", date(2025, 12, 31)),
     ("2 juillet 2026", date(2026, 7, 2)), ("1. Jänner 2026", date(2026, 1, 1))],
)
def test_month_names(text, expected):
    assert parse_date(text) == expected


@pytest.mark.parametrize("text", ["31/02/2026", "31 juni 2026", "15 2026", "mars 2026", "", "15/03-2026"])
def test_not_dates(text):
    with pytest.raises(DateError):
        parse_date(text)


def test_find_in_text_skips_impossible_dates():
    found = find_dates("Brussel, 13-08-2025 - te betalen vóór 11 november 2025; niet 31/02/2025 maar 2025-12-01.")
    assert [m.value for m in found] == [date(2025, 8, 13), date(2025, 11, 11), date(2025, 12, 1)]
    assert found[1].raw == "11 november 2025"
