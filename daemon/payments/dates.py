"""Dates as Belgian letters print them, in French, Dutch, German (and English).

Numeric: ``15/03/2026``, ``15-03-2026``, ``15.03.2026`` (day first; two-digit years are
20xx), ISO ``2026-03-15``. Written: ``15 mars 2026``, ``1er mars 2026``, ``15 maart 2026``,
``15. März 2026``, ``15 Maerz 2026``, ``15 mrt. 2026``, ``March 15, 2026``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from daemon.payments._text import fold

__all__ = ["DateError", "DateMatch", "find_dates", "parse_date"]

_MONTHS: dict[int, tuple[str, ...]] = {
    1: ("janvier", "janv", "januari", "januar", "janner", "january", "jan"),
    2: ("fevrier", "fevr", "fev", "februari", "februar", "february", "feb", "febr"),
    3: ("mars", "maart", "marz", "maerz", "march", "mrt", "mar", "mrz"),
    4: ("avril", "avr", "april", "apr"),
    5: ("mai", "mei", "may"),
    6: ("juin", "juni", "june", "jun"),
    7: ("juillet", "juil", "juli", "july", "jul"),
    8: ("aout", "augustus", "august", "aug"),
    9: ("septembre", "september", "sept", "sep"),
    10: ("octobre", "oktober", "october", "oct", "okt"),
    11: ("novembre", "november", "nov"),
    12: ("decembre", "december", "dezember", "dec", "dez"),
}
_MONTH_OF = {name: number for number, names in _MONTHS.items() for name in names}
_MONTH_RE = "|".join(sorted(_MONTH_OF, key=len, reverse=True))

_NUMERIC = re.compile(r"(?<![\d/.\-])(\d{1,2}) ?([/.\-]) ?(\d{1,2}) ?\2 ?(\d{4}|\d{2})(?![\d/.\-]\d|\d)")
_ISO = re.compile(r"(?<![\d/.\-])(\d{4})-(\d{2})-(\d{2})(?![\d])")
_WRITTEN = re.compile(
    rf"(?<![\w])(\d{{1,2}})(?:er|e|ste|de|\.)?[ \u00a0]+({_MONTH_RE})\.?[ \u00a0]+(\d{{4}})(?!\d)", re.IGNORECASE
)
_WRITTEN_EN = re.compile(rf"(?<![\w])({_MONTH_RE})\.?[ \u00a0]+(\d{{1,2}})(?:st|nd|rd|th)?,?[ \u00a0]+(\d{{4}})(?!\d)",
                         re.IGNORECASE)


class DateError(ValueError):
    """Text is not a date."""


@dataclass(frozen=True, slots=True)
class DateMatch:
    """A date found in text."""

    value: date
    raw: str
    start: int
    end: int


def _make(year: int, month: int, day: int) -> date | None:
    if year < 100:
        year += 2000
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _candidates(text: str) -> list[DateMatch]:
    folded = fold(text)
    found: list[DateMatch] = []
    for match in _NUMERIC.finditer(text):
        value = _make(int(match.group(4)), int(match.group(3)), int(match.group(1)))
        if value is not None:
            found.append(DateMatch(value, match.group(0), match.start(), match.end()))
    for match in _ISO.finditer(text):
        value = _make(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        if value is not None:
            found.append(DateMatch(value, match.group(0), match.start(), match.end()))
    for match in _WRITTEN.finditer(folded):
        value = _make(int(match.group(3)), _MONTH_OF[match.group(2).lower()], int(match.group(1)))
        if value is not None:
            found.append(DateMatch(value, text[match.start() : match.end()], match.start(), match.end()))
    for match in _WRITTEN_EN.finditer(folded):
        value = _make(int(match.group(3)), _MONTH_OF[match.group(1).lower()], int(match.group(2)))
        if value is not None:
            found.append(DateMatch(value, text[match.start() : match.end()], match.start(), match.end()))
    return found


def find_dates(text: str) -> list[DateMatch]:
    """Every valid date in ``text``, in order, without overlaps (impossible dates are skipped)."""
    chosen: list[DateMatch] = []
    for candidate in sorted(_candidates(text), key=lambda m: (m.start, -(m.end - m.start))):
        if chosen and candidate.start < chosen[-1].end:
            continue
        chosen.append(candidate)
    return chosen


def parse_date(text: str) -> date:
    """Read ``text`` as exactly one date; raise :class:`DateError` otherwise."""
    stripped = text.strip()
    found = find_dates(stripped)
    if len(found) != 1 or found[0].start != 0 or found[0].end != len(stripped):
        raise DateError(f"not a date: {text!r} (expected e.g. '15/03/2026', '15 mars 2026', '15. März 2026')")
    return found[0].value
