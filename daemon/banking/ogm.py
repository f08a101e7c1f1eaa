"""Belgian structured communication (OGM / VCS, "gestructureerde mededeling"): ``+++123/4567/89012+++``.

Twelve digits: a ten-digit stem and two check digits equal to ``stem mod 97``, written ``97``
when the remainder is 0. :func:`parse_ogm` accepts every common notation (``+++…+++``,
``***…***``, slashes, spaces, dots, dashes, bare digits); :func:`find_ogms` scans free text and
also reports OGM-shaped strings whose check digits are wrong, so that callers can flag them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from daemon.banking.errors import InvalidOGM

__all__ = [
    "OgmCandidate",
    "StructuredCommunication",
    "find_ogms",
    "is_valid_ogm",
    "make_ogm",
    "ogm_check_digits",
    "parse_ogm",
]

_SEPARATORS = frozenset(" /.-\u00a0\u202f\t")
_DECORATION = "+*"
_STEM_LENGTH = 10
_LENGTH = 12


def ogm_check_digits(stem: str | int) -> str:
    """The two check digits of a ten-digit stem: ``stem mod 97``, ``97`` when that is 0."""
    text = f"{stem:010d}" if isinstance(stem, int) else stem
    if len(text) != _STEM_LENGTH or not text.isascii() or not text.isdigit():
        raise InvalidOGM(str(stem), "format", f"the stem must be {_STEM_LENGTH} digits")
    rest = int(text) % 97
    return f"{97 if rest == 0 else rest:02d}"


@dataclass(frozen=True, slots=True)
class StructuredCommunication:
    """A valid OGM. ``digits`` is the canonical form (12 digits, no separators)."""

    digits: str

    def __post_init__(self) -> None:
        _check(self.digits, self.digits)

    @property
    def stem(self) -> str:
        """The first ten digits."""
        return self.digits[:_STEM_LENGTH]

    @property
    def check(self) -> str:
        """The two check digits."""
        return self.digits[_STEM_LENGTH:]

    @property
    def display(self) -> str:
        """``+++123/4567/89012+++``, as printed on Belgian payment slips."""
        d = self.digits
        return f"+++{d[:3]}/{d[3:7]}/{d[7:]}+++"

    def __str__(self) -> str:
        return self.display


def _check(digits: str, raw: str) -> None:
    if len(digits) != _LENGTH or not digits.isascii() or not digits.isdigit():
        raise InvalidOGM(raw, "length", f"has {len(digits)} digits; a structured communication has 12 (3+4+5)")
    stem, got = digits[:_STEM_LENGTH], digits[_STEM_LENGTH:]
    expected = ogm_check_digits(stem)
    if got != expected:
        how = "is 0, written 97" if expected == "97" else f"= {int(expected)}"
        raise InvalidOGM(
            raw, "check_digits",
            f"check digits {got} do not match the first ten digits {stem}: expected {expected}, got {got} "
            f"({stem} mod 97 {how})",
            expected=expected, got=got,
        )


def make_ogm(stem: str | int) -> StructuredCommunication:
    """The OGM of a ten-digit stem (an int below 10**10 or a ten-digit string), e.g. to generate test data."""
    text = f"{stem:010d}" if isinstance(stem, int) else stem
    return StructuredCommunication(text + ogm_check_digits(text))


def parse_ogm(text: str) -> StructuredCommunication:
    """Read an OGM in any common notation; raise :class:`InvalidOGM` saying exactly what is wrong."""
    core = text.strip().strip(_DECORATION).strip()
    if not core:
        raise InvalidOGM(text, "empty", "is empty")
    for position, char in enumerate(core, start=1):
        if not (char.isascii() and char.isdigit()) and char not in _SEPARATORS:
            raise InvalidOGM(text, "characters", f"unexpected character {char!r} at position {position}")
    digits = "".join(char for char in core if char.isdigit())
    _check(digits, text)
    return StructuredCommunication(digits)


def is_valid_ogm(text: str) -> bool:
    """True when :func:`parse_ogm` accepts ``text``."""
    try:
        parse_ogm(text)
    except InvalidOGM:
        return False
    return True


Form = Literal["wrapped", "grouped", "bare"]


@dataclass(frozen=True, slots=True)
class OgmCandidate:
    """An OGM-shaped string found in text, valid (``ogm``) or not (``error``).

    ``form`` tells how distinctive the match is: ``wrapped`` (``+++…+++`` or ``***…***``),
    ``grouped`` (3/4/5 digits with separators) or ``bare`` (a lone run of 12 digits).
    """

    raw: str
    start: int
    end: int
    form: Form
    digits: str
    ogm: StructuredCommunication | None
    error: InvalidOGM | None

    @property
    def valid(self) -> bool:
        """True when the check digits are right."""
        return self.ogm is not None


_WRAPPED = re.compile(r"(\+{3}|\*{3})[ \t\u00a0]*(\d[\d /.\-\u00a0]{6,24}\d)[ \t\u00a0]*\1")
_GROUPED = re.compile(r"(?<![\d/.\-])\d{3}[ \u00a0]?([/.\- ])[ \u00a0]?\d{4}[ \u00a0]?\1[ \u00a0]?\d{5}(?![\d/])")
_BARE = re.compile(r"(?<![\d/.\-])\d{12}(?![\d/])")
_PATTERNS: tuple[tuple[Form, re.Pattern[str]], ...] = (("wrapped", _WRAPPED), ("grouped", _GROUPED), ("bare", _BARE))


def _candidate(match: re.Match[str], form: Form, body: str) -> OgmCandidate:
    digits = "".join(char for char in body if char.isdigit())
    try:
        ogm: StructuredCommunication | None = parse_ogm(body)
        error = None
    except InvalidOGM as exc:
        ogm, error = None, InvalidOGM(match.group(0), exc.problem, exc.detail, expected=exc.expected, got=exc.got)
    return OgmCandidate(match.group(0), match.start(), match.end(), form, digits, ogm, error)


def find_ogms(text: str) -> list[OgmCandidate]:
    """Every OGM-shaped string in ``text``, in order, without overlaps, valid or not."""
    found: list[OgmCandidate] = []
    taken: list[tuple[int, int]] = []
    for form, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            if any(match.start() < end and start < match.end() for start, end in taken):
                continue
            body = match.group(2) if form == "wrapped" else match.group(0)
            found.append(_candidate(match, form, body))
            taken.append((match.start(), match.end()))
    return sorted(found, key=lambda candidate: candidate.start)
