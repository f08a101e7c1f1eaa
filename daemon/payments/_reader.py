"""Finding candidate values in a document's text: every labelled amount, date, account, reference.

This module only *collects*; :mod:`daemon.payments.from_text` decides between candidates and
says when a person must look. A value belongs to a label when it follows it on the same line,
sits under it in a table column, or (label alone on its line) opens the next line.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Generic, TypeVar

from daemon.banking import IbanCandidate, OgmCandidate, RfCandidate, find_ibans, find_ogms, find_rfs
from daemon.payments._labels import Kind, LabelHit, find_labels, has_label
from daemon.payments._text import Line, cells, mask, split_lines
from daemon.payments.amounts import Money, find_amounts
from daemon.payments.dates import DateMatch, find_dates

__all__ = ["Candidate", "Document", "analyse", "labelled_amounts", "labelled_dates"]

T = TypeVar("T")
Spanned = TypeVar("Spanned", Money, DateMatch)

_NOISE = (
    re.compile(r"\b(?:BE ?)?0?[01]\d{2,3}[. ]\d{3}[. ]\d{3}\b"),  # enterprise / VAT numbers
    re.compile(r"\b\d{3}-\d{7}-\d{2}\b"),  # pre-IBAN Belgian account numbers
    re.compile(r"\d+(?:[.,]\d+)? ?%"),  # percentages
)
_TABLE_LOOKAHEAD = 3


@dataclass(frozen=True, slots=True)
class Candidate(Generic[T]):
    """A value found in the text; ``weight`` is its label's (0: no label), ``line`` its line index."""

    value: T
    weight: int
    line: int
    evidence: str
    certain: bool = True


@dataclass
class Document:
    """A document's lines and everything OGM-, RF-, IBAN- and date-shaped in them, by line."""

    lines: list[Line]
    ibans: dict[int, list[IbanCandidate]] = field(default_factory=dict)
    ogms: dict[int, list[OgmCandidate]] = field(default_factory=dict)
    rfs: dict[int, list[RfCandidate]] = field(default_factory=dict)
    dates: dict[int, list[DateMatch]] = field(default_factory=dict)
    amounts: dict[int, list[Money]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """True when there is (almost) no text: a scan without a text layer, say."""
        return sum(len(line.text.strip()) for line in self.lines) < 20

    def has(self, kind: Kind) -> bool:
        """True when some line carries a label of ``kind``."""
        return any(has_label(line.folded, kind) for line in self.lines)

    def following(self, line: Line, count: int) -> list[Line]:
        """Up to ``count`` non-blank lines after ``line``."""
        out: list[Line] = []
        for other in itertools.islice(self.lines, line.index + 1, None):
            if len(out) == count:
                break
            if other.text.strip():
                out.append(other)
        return out

    def previous(self, line: Line) -> Line | None:
        """The closest non-blank line before ``line``."""
        for index in range(line.index - 1, -1, -1):
            if self.lines[index].text.strip():
                return self.lines[index]
        return None


def _scan_line(doc: Document, line: Line) -> None:
    text = line.text
    ibans = find_ibans(text)
    without_accounts = mask(text, [(c.start, c.end) for c in ibans])
    without_accounts = mask(without_accounts, [(m.start(), m.end()) for m in _NOISE[1].finditer(without_accounts)])
    ogms = find_ogms(without_accounts)
    rfs = find_rfs(without_accounts)
    dates = find_dates(without_accounts)
    spans = [(c.start, c.end) for c in ibans] + [(c.start, c.end) for c in ogms]
    spans += [(c.start, c.end) for c in rfs] + [(d.start, d.end) for d in dates]
    clean = mask(text, spans)
    for pattern in _NOISE:
        clean = mask(clean, [(m.start(), m.end()) for m in pattern.finditer(clean)])
    doc.ibans[line.index], doc.ogms[line.index], doc.rfs[line.index] = ibans, ogms, rfs
    doc.dates[line.index], doc.amounts[line.index] = dates, find_amounts(clean)


def analyse(text: str) -> Document:
    """Split ``text`` into lines and find every structured value in each."""
    doc = Document(split_lines(text))
    for line in doc.lines:
        if line.text.strip():
            _scan_line(doc, line)
    return doc


def _is_amount(money: Money) -> bool:
    """Bare integers (years, article numbers) are not amounts unless a currency is written."""
    return money.currency is not None or money.has_decimals or not money.certain


def _first(items: Sequence[Spanned], start: int, end: int, *, immediate: str | None = None) -> Spanned | None:
    for item in items:
        if item.start >= start and item.end <= end:
            if immediate is not None and immediate[start : item.start].strip(" :.-\t"):
                return None
            return item
    return None


Finder = Callable[[int, int, int], "Money | DateMatch | None"]


def _after_label(doc: Document, line: Line, hit: LabelHit, find: Finder) -> tuple[Money | DateMatch, Line] | None:
    """The value after a label: same line, then the table column below, then the next line."""
    found = find(line.index, hit.end, len(line.text))
    if found is not None:
        return found, line
    row = cells(line.text)
    column = next((i for i, cell in enumerate(row) if cell.start <= hit.start < cell.end), None)
    following = doc.following(line, _TABLE_LOOKAHEAD)
    if len(row) > 1 and column is not None:
        for other in following:
            other_row = cells(other.text)
            if len(other_row) == len(row):
                value = find(other.index, other_row[column].start, other_row[column].end)
                if value is not None:
                    return value, other
                break
        return None
    if following and not line.text[hit.end :].strip(" :.-\t"):
        value = find(following[0].index, 0, len(following[0].text))
        if value is not None and not following[0].text[: value.start].strip(" :.-\t"):
            return value, following[0]
    return None


def _amount_before(doc: Document, line: Line, hit: LabelHit) -> Money | None:
    """``1.234,56 EUR à payer …``: an amount written just before a light label."""
    before = [m for m in doc.amounts.get(line.index, []) if m.end <= hit.start and _is_amount(m)]
    if before and not line.text[before[-1].end : hit.start].strip():
        return before[-1]
    return None


def labelled_amounts(doc: Document, kind: Kind) -> list[Candidate[Money]]:
    """Every amount that a label of ``kind`` (to pay, refunded…) announces."""

    def find(index: int, start: int, end: int) -> Money | None:
        return _first([m for m in doc.amounts.get(index, []) if _is_amount(m)], start, end)

    out: list[Candidate[Money]] = []
    for line in doc.lines:
        for hit in find_labels(line.folded, kind):
            found = _after_label(doc, line, hit, find)
            if found is None and hit.weight <= 2:
                before = _amount_before(doc, line, hit)
                found = None if before is None else (before, line)
            if found is not None:
                money, where = found
                assert isinstance(money, Money)
                out.append(Candidate(money, hit.weight, where.index, where.text.strip(), money.certain))
    return out


def _date_finder(doc: Document, label_line: Line, immediate: bool) -> Finder:
    def find(index: int, start: int, end: int) -> DateMatch | None:
        text = label_line.text if immediate and index == label_line.index else None
        return _first(doc.dates.get(index, []), start, end, immediate=text)

    return find


def labelled_dates(doc: Document, kind: Kind) -> list[Candidate[date]]:
    """Every date that a label of ``kind`` (due date) announces; light labels need the date right after."""
    out: list[Candidate[date]] = []
    for line in doc.lines:
        for hit in find_labels(line.folded, kind):
            found = _after_label(doc, line, hit, _date_finder(doc, line, immediate=hit.weight <= 1))
            if found is not None:
                match, where = found
                assert isinstance(match, DateMatch)
                out.append(Candidate(match.value, hit.weight, where.index, where.text.strip()))
    return out
