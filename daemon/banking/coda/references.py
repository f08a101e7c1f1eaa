"""The references a communication may hold, checked quickly: an OGM zone, the one valid OGM in
free text, and an RF's check digits.

Their own module so that :mod:`~daemon.banking.coda.model` (which calls them when a field is
first read) and :mod:`~daemon.banking.coda.decoding` share them without importing each other.
"""

from __future__ import annotations

import re
import string

from daemon.banking.ogm import _PATTERNS as OGM_PATTERNS  # find_ogms' own patterns, in its order
from daemon.banking.ogm import is_valid_ogm
from daemon.banking.rf import is_valid_rf

__all__ = ["single_ogm", "valid_ogm", "valid_rf"]

_NOT_DIGIT_BYTES = bytes(byte for byte in range(256) if not 0x30 <= byte <= 0x39)
_SEPARATORS = " /.-\u00a0"  # all that find_ogms' patterns match in the digits' group besides \d
_OGM_SCANS = tuple((2 if form == "wrapped" else 0, pattern) for form, pattern in OGM_PATTERNS)  # digits' group


def _ogm_check_digits_match(digits: str) -> bool:
    """Of 12 ASCII digits: are the last two the first ten mod 97 (97 for 0)?"""
    number = int(digits)
    return (number // 100 % 97 or 97) == number % 100


def valid_ogm(zone: str) -> bool:
    """:func:`is_valid_ogm` of a structured communication's 12-character OGM zone, without its
    general parsing for the usual 12 digits."""
    if len(zone) == 12 and zone.isascii() and zone.isdigit():
        return _ogm_check_digits_match(zone)
    return is_valid_ogm(zone)


def single_ogm(text: str) -> str | None:
    """The digits of the one valid OGM in free text, else None: ``{c.digits for c in find_ogms(text) if
    c.valid}``, computed without building a candidate (and an exception for each invalid one).

    The three patterns only match digits and the separators " /.-\u00a0", so a match is a valid OGM
    exactly when its digits are 12 ASCII digits with the right check digits.
    """
    # A valid OGM takes twelve ASCII digits outside the matches already taken (matches do not
    # overlap): with fewer left (most free text, or all taken by a +++…+++), no scan can add one.
    left = len(text.encode("ascii", "ignore").translate(None, _NOT_DIGIT_BYTES))
    found: set[str] = set()
    taken: list[tuple[int, int]] = []
    for group, pattern in _OGM_SCANS:
        if left < 12:
            break
        for match in pattern.finditer(text):
            start, end = match.span()
            if taken and any(start < taken_end and taken_start < end for taken_start, taken_end in taken):
                continue
            taken.append((start, end))
            digits = match.group(group)
            for separator in _SEPARATORS:
                if separator in digits:
                    digits = digits.replace(separator, "")
            if digits.isascii():
                left -= len(digits)
                if len(digits) == 12 and _ogm_check_digits_match(digits):
                    found.add(digits)
                if left < 12:  # the rest of this scan can only take spans, which no later scan needs
                    break
    return found.pop() if len(found) == 1 else None


_RF_ELECTRONIC = re.compile(r"RF[0-9]{2}[0-9A-Z]{1,21}")
_RF_NUMERIC = str.maketrans({letter: str(int(letter, 36)) for letter in string.ascii_uppercase})


def valid_rf(value: str) -> bool:
    """:func:`is_valid_rf` without its general parsing for a reference in electronic form: the check
    digits are 98 - (body + "RF00", letters as 10…35) mod 97 (ISO 11649)."""
    if _RF_ELECTRONIC.fullmatch(value):
        body = value[4:]  # usually digits only: no translation ("RF00" is "271500")
        numeric = body + "271500" if body.isdigit() else (body + "RF00").translate(_RF_NUMERIC)
        return int(value[2:4]) == 98 - int(numeric) % 97
    return is_valid_rf(value)
