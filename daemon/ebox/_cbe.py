"""Belgian enterprise numbers (CBE / KBO / BCE).

Ten digits, the first 0 or 1; the last two are a check: ``97 - (first eight digits mod 97)``.
Accepted notations: ``0123.456.789``, ``0123 456 789``, ``0123-456-789``, ``BE0123456789``,
``BE 0123.456.789`` and the legacy nine-digit form ``123456789`` (a leading 0 is added).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ._errors import InvalidEnterpriseNumber

__all__ = ["EnterpriseNumber", "parse_enterprise_number"]

_SEPARATORS = re.compile(r"[\s.\-/]")


def _check_digits(first_eight: int) -> int:
    return 97 - (first_eight % 97)


def parse_enterprise_number(value: str | int | EnterpriseNumber) -> EnterpriseNumber:
    """Parse any common notation; raise :class:`InvalidEnterpriseNumber` saying what is wrong."""
    if isinstance(value, EnterpriseNumber):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidEnterpriseNumber(value, f"expected a string, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise InvalidEnterpriseNumber(value, "empty")
    compact = _SEPARATORS.sub("", text)
    if compact[:2].upper() == "BE":
        compact = compact[2:]
    if not compact:
        raise InvalidEnterpriseNumber(value, "no digits after the BE prefix")
    bad = sorted({c for c in compact if not c.isdigit() or not c.isascii()})
    if bad:
        raise InvalidEnterpriseNumber(value, f"unexpected character(s) {''.join(bad)!r}")
    if len(compact) == 9:
        compact = "0" + compact
    if len(compact) != 10:
        raise InvalidEnterpriseNumber(value, f"expected 10 digits (or 9 in the old notation), got {len(compact)}")
    if compact[0] not in "01":
        raise InvalidEnterpriseNumber(value, f"the first digit must be 0 or 1, got {compact[0]}")
    expected = _check_digits(int(compact[:8]))
    actual = int(compact[8:])
    if expected != actual:
        raise InvalidEnterpriseNumber(
            value, f"check digits {compact[8:]} do not match (expected {expected:02d} for {compact[:8]})"
        )
    return EnterpriseNumber(compact, _validated=True)


@dataclass(frozen=True, slots=True)
class EnterpriseNumber:
    """A validated enterprise number. ``str()`` gives the canonical ten digits."""

    digits: str
    _validated: bool = field(default=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self._validated:
            parsed = parse_enterprise_number(self.digits)
            object.__setattr__(self, "digits", parsed.digits)
            object.__setattr__(self, "_validated", True)

    @classmethod
    def parse(cls, value: str | int | EnterpriseNumber) -> EnterpriseNumber:
        return parse_enterprise_number(value)

    @property
    def canonical(self) -> str:
        """``0123456789``: the form the e-Box API and headers use."""
        return self.digits

    @property
    def display(self) -> str:
        """``0123.456.789``: the form people read."""
        d = self.digits
        return f"{d[:4]}.{d[4:7]}.{d[7:]}"

    @property
    def vat(self) -> str:
        """``BE0123456789``."""
        return "BE" + self.digits

    def __str__(self) -> str:
        return self.digits

    def __repr__(self) -> str:
        return f"EnterpriseNumber({self.display!r})"
