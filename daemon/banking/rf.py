"""ISO 11649 creditor references: ``RF18 5390 0754 7034``.

``RF`` + two check digits + 1–21 letters or digits. Valid when the string, with its first four
characters moved to the end and letters mapped A=10 … Z=35, is 1 modulo 97.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise

from daemon.banking.errors import InvalidRF

__all__ = ["CreditorReference", "RfCandidate", "find_rfs", "is_valid_rf", "make_rf", "parse_rf", "rf_check_digits"]

_MAX_BODY = 21
_WHITESPACE = re.compile(r"[\s\u00a0\u202f]+")


def _numeric(text: str) -> int:
    return int("".join(str(int(char, 36)) for char in text))


def _body_problem(body: str) -> str | None:
    if not body:
        return "has no reference after the check digits"
    if len(body) > _MAX_BODY:
        return f"has a reference part of {len(body)} characters; at most {_MAX_BODY} are allowed"
    for position, char in enumerate(body, start=5):
        if not (char.isascii() and char.isalnum()):
            return f"unexpected character {char!r} at position {position} (only letters and digits)"
    return None


def rf_check_digits(body: str) -> str:
    """The check digits for ``body`` (1–21 letters and digits): ``98 - numeric(body + "RF00") mod 97``."""
    canonical = body.upper()
    problem = _body_problem(canonical)
    if problem:
        raise InvalidRF(body, "format", problem)
    return f"{98 - _numeric(canonical + 'RF00') % 97:02d}"


@dataclass(frozen=True, slots=True)
class CreditorReference:
    """A valid RF reference. ``value`` is the electronic form (``RF18539007547034``)."""

    value: str

    def __post_init__(self) -> None:
        _check(self.value, self.value)

    @property
    def check(self) -> str:
        """The two check digits."""
        return self.value[2:4]

    @property
    def body(self) -> str:
        """The creditor's reference, after ``RF`` and the check digits."""
        return self.value[4:]

    @property
    def display(self) -> str:
        """Groups of four: ``RF18 5390 0754 7034``."""
        return " ".join(self.value[i : i + 4] for i in range(0, len(self.value), 4))

    def __str__(self) -> str:
        return self.display


def _check(compact: str, raw: str) -> None:
    if not compact.startswith("RF"):
        raise InvalidRF(raw, "format", "does not start with 'RF'")
    check = compact[2:4]
    if len(check) < 2 or not check.isascii() or not check.isdigit():
        raise InvalidRF(raw, "format", f"needs two check digits after 'RF', got {check!r}")
    problem = _body_problem(compact[4:])
    if problem:
        raise InvalidRF(raw, "characters" if "unexpected" in problem else "length", problem)
    expected = rf_check_digits(compact[4:])
    if check != expected:
        detail = f"check digits {check} do not match the reference {compact[4:]}: expected {expected}, got {check}"
        raise InvalidRF(raw, "check_digits", detail, expected=expected, got=check)


def make_rf(body: str) -> CreditorReference:
    """The creditor reference for ``body`` (1–21 letters and digits)."""
    canonical = _WHITESPACE.sub("", body).upper()
    return CreditorReference(f"RF{rf_check_digits(canonical)}{canonical}")


def parse_rf(text: str) -> CreditorReference:
    """Read an RF reference (any spacing, any case); raise :class:`InvalidRF` saying exactly what is wrong."""
    compact = _WHITESPACE.sub("", text).upper()
    if not compact:
        raise InvalidRF(text, "empty", "is empty")
    _check(compact, text)
    return CreditorReference(compact)


def is_valid_rf(text: str) -> bool:
    """True when :func:`parse_rf` accepts ``text``."""
    try:
        parse_rf(text)
    except InvalidRF:
        return False
    return True


@dataclass(frozen=True, slots=True)
class RfCandidate:
    """An RF-shaped string found in text, valid (``reference``) or not (``error``)."""

    raw: str
    start: int
    end: int
    reference: CreditorReference | None
    error: InvalidRF | None

    @property
    def valid(self) -> bool:
        """True when the check digits are right."""
        return self.reference is not None


_SHAPE = re.compile(r"(?<![A-Za-z0-9])RF\d{2}(?:[ \u00a0]?[0-9A-Z]{1,4}){1,6}(?![0-9A-Za-z])")
_GROUP = re.compile(r"[0-9A-Z]+")


def _groups(match: re.Match[str]) -> list[tuple[int, int]]:
    """(start, end) in ``match.string`` of each group of the reference part, after ``RFnn``."""
    base = match.start() + 4
    return [(base + g.start(), base + g.end()) for g in _GROUP.finditer(match.group(0)[4:])]


def _prefixes(match: re.Match[str]) -> list[tuple[int, str]]:
    """(end offset, text) of each way to cut the match after a group, longest first."""
    return [(end, match.string[match.start() : end]) for _, end in reversed(_groups(match))]


def _display_shaped(match: re.Match[str]) -> tuple[int, str]:
    """The longest cut whose groups are four characters long except the last one."""
    groups = _groups(match)
    end = groups[0][1]
    for (start, stop), (_, following_end) in pairwise(groups):
        if stop - start != 4:
            break
        end = following_end
    return end, match.string[match.start() : end]


def find_rfs(text: str) -> list[RfCandidate]:
    """Every RF-shaped string in ``text`` (``RF`` must be upper case), valid or not."""
    found: list[RfCandidate] = []
    for match in _SHAPE.finditer(text):
        for end, raw in _prefixes(match):
            if is_valid_rf(raw):
                found.append(RfCandidate(raw, match.start(), end, parse_rf(raw), None))
                break
        else:
            end, raw = _display_shaped(match)
            try:
                parse_rf(raw)
            except InvalidRF as exc:
                found.append(RfCandidate(raw, match.start(), end, None, exc))
    return found
