"""IBAN and BIC validation on top of schwifty, with errors that say exactly what is wrong.

schwifty does the checking (country formats, mod 97-10, national check digits, the bank
registry); this module adds precise messages (which check digits, expected and found) and a
scanner that finds IBANs in free text, including IBAN-shaped strings that fail their checksum.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

from schwifty import BIC, IBAN, exceptions, registry

from daemon.banking.errors import InvalidBIC, InvalidIBAN

__all__ = [
    "IbanCandidate",
    "bic_for_iban",
    "find_ibans",
    "format_iban",
    "is_valid_iban",
    "parse_bic",
    "parse_iban",
]

_WHITESPACE = re.compile(r"[\s\u00a0\u202f\-]+")
_PREFIX = re.compile(r"^\s*IBAN\s*:?\s*", re.IGNORECASE)


def _numeric(text: str) -> int:
    return int("".join(str(int(char, 36)) for char in text))


def _expected_check_digits(compact: str) -> str:
    return f"{98 - _numeric(compact[4:] + compact[:2] + '00') % 97:02d}"


def _check_shape(compact: str, raw: str) -> None:
    if not compact:
        raise InvalidIBAN(raw, "empty", "is empty")
    for position, char in enumerate(compact, start=1):
        if not (char.isascii() and char.isalnum()):
            raise InvalidIBAN(raw, "characters", f"unexpected character {char!r} at position {position}")
    country = compact[:2]
    if len(compact) < 4 or not country.isalpha() or not compact[2:4].isdigit():
        raise InvalidIBAN(raw, "format", "must start with a two-letter country code and two check digits")
    try:
        spec = registry.get_iban_spec(country)
    except exceptions.InvalidCountryCode:
        raise InvalidIBAN(raw, "country", f"unknown country code {country!r}") from None
    if len(compact) != spec.iban_length:
        raise InvalidIBAN(raw, "length", f"{country} IBANs have {spec.iban_length} characters, got {len(compact)}",
                          expected=str(spec.iban_length), got=str(len(compact)))
    if not spec.regex.match(compact[4:]):
        raise InvalidIBAN(raw, "format", f"account part {compact[4:]} does not match the {country} format "
                          f"{spec.bban_spec}")


def _check_digits(compact: str, raw: str, national: bool) -> None:
    expected, got = _expected_check_digits(compact), compact[2:4]
    if expected != got:
        raise InvalidIBAN(raw, "check_digits", f"check digits {got} do not match the account: expected {expected}, "
                          f"got {got}", expected=expected, got=got)
    if national and compact.startswith("BE"):
        stem, check = compact[4:14], compact[14:16]
        rest = int(stem) % 97
        want = f"{97 if rest == 0 else rest:02d}"
        if check != want:
            raise InvalidIBAN(raw, "national_check_digits",
                              f"Belgian account check digits {check} do not match {stem}: expected {want}, got {check}",
                              expected=want, got=check)


def parse_iban(text: str, *, national_check: bool = True) -> str:
    """The electronic form (``BE68539007547034``) of an IBAN in any spacing or case.

    ``national_check`` also verifies the country's own account check digits where schwifty knows
    them (for Belgium: last two = first ten mod 97). Raises :class:`InvalidIBAN`.
    """
    compact = _WHITESPACE.sub("", _PREFIX.sub("", text)).upper()
    _check_shape(compact, text)
    _check_digits(compact, text, national_check)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", exceptions.NationalChecksumNotVerified)
            return str(IBAN(compact, validate_bban=national_check).compact)
    except exceptions.SchwiftyException as exc:
        problem = "national_check_digits" if isinstance(exc, exceptions.InvalidBBANChecksum) else "format"
        raise InvalidIBAN(text, problem, str(exc)) from None


def is_valid_iban(text: str, *, national_check: bool = True) -> bool:
    """True when :func:`parse_iban` accepts ``text``."""
    try:
        parse_iban(text, national_check=national_check)
    except InvalidIBAN:
        return False
    return True


def format_iban(iban: str) -> str:
    """Groups of four, as printed on paper: ``BE68 5390 0754 7034``."""
    compact = parse_iban(iban, national_check=False)
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def parse_bic(text: str) -> str:
    """The BIC in upper case without spaces; 8 or 11 characters (ISO 9362). Raises :class:`InvalidBIC`."""
    compact = _WHITESPACE.sub("", text).upper()
    if not compact:
        raise InvalidBIC(text, "empty", "is empty")
    if len(compact) not in (8, 11):
        raise InvalidBIC(text, "length", f"has {len(compact)} characters; a BIC has 8 or 11",
                         expected="8 or 11", got=str(len(compact)))
    if not compact.isascii() or not compact[:4].isalnum() or not compact[4:6].isalpha() or not compact.isalnum():
        raise InvalidBIC(text, "format", "must be 4 bank characters, a 2-letter country code, a 2-character "
                         "location and an optional 3-character branch")
    try:
        return str(BIC(compact).compact)
    except exceptions.SchwiftyException as exc:
        problem = "country" if isinstance(exc, exceptions.InvalidCountryCode) else "format"
        raise InvalidBIC(text, problem, str(exc)) from None


def bic_for_iban(iban: str) -> str | None:
    """The BIC schwifty's bank registry gives for the IBAN's bank code, or None when unknown."""
    try:
        found = IBAN(parse_iban(iban, national_check=False)).bic
    except (InvalidIBAN, exceptions.SchwiftyException):
        return None
    return None if found is None else str(found.compact)


@dataclass(frozen=True, slots=True)
class IbanCandidate:
    """An IBAN-shaped string found in text, valid (``iban``, electronic form) or not (``error``)."""

    raw: str
    start: int
    end: int
    iban: str | None
    error: InvalidIBAN | None

    @property
    def valid(self) -> bool:
        """True when the IBAN passes every check."""
        return self.iban is not None


_SHAPE = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2})(\d{2})((?:[ \u00a0]?[0-9A-Z]{1,4}){2,8})(?![0-9A-Za-z])")
_GROUP = re.compile(r"[0-9A-Z]+")


def _candidate_at(match: re.Match[str]) -> IbanCandidate | None:
    """Cut the match where the country's IBAN length is reached; None when it is not IBAN-like."""
    try:
        length = registry.get_iban_spec(match.group(1)).iban_length
    except exceptions.InvalidCountryCode:
        return None
    count, end = 4, match.start(3)
    for group in _GROUP.finditer(match.string, match.start(3), match.end()):
        if count >= length:
            break
        size = len(group.group(0))
        count, end = count + size, group.end()
    if count < min(length - 4, 12):
        return None
    raw = match.string[match.start() : end]
    try:
        return IbanCandidate(raw, match.start(), end, parse_iban(raw), None)
    except InvalidIBAN as exc:
        return IbanCandidate(raw, match.start(), end, None, exc)


def find_ibans(text: str) -> list[IbanCandidate]:
    """Every IBAN-shaped string in ``text`` (known country code, right length), valid or not."""
    found: list[IbanCandidate] = []
    position = 0
    while (match := _SHAPE.search(text, position)) is not None:
        candidate = None if match.group(1) == "RF" else _candidate_at(match)
        if candidate is None:
            position = match.start() + 1
        else:
            found.append(candidate)
            position = candidate.end
    return found
