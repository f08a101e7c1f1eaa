"""Belgian identifiers and formats for fake data: CBE numbers, OGM/VCS, IBAN, amounts, dates.

Self-contained on purpose (the sandbox must not depend on the code it is used to test).
"""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

__all__ = [
    "BANKS",
    "cbe_is_valid",
    "format_amount",
    "format_cbe",
    "format_date",
    "format_iban",
    "make_cbe",
    "make_iban",
    "make_ogm",
    "ogm_is_valid",
]

BANKS: dict[str, str] = {
    "001": "GEBABEBB",  # BNP Paribas Fortis
    "363": "BBRUBEBB",  # ING Belgium
    "734": "KREDBEBB",  # KBC
    "068": "GKCCBEBB",  # Belfius
    "979": "ARSPBE22",  # Argenta
}
"""Belgian bank codes (first three BBAN digits) and the BIC they belong to."""


def _mod97_check(number: int) -> int:
    rest = number % 97
    return 97 if rest == 0 else rest


def cbe_is_valid(cbe: str) -> bool:
    """10 digits, first 0 or 1, last two = 97 - (first eight mod 97)."""
    if len(cbe) != 10 or not cbe.isdigit() or cbe[0] not in "01":
        return False
    return int(cbe[8:]) == 97 - int(cbe[:8]) % 97


def make_cbe(rng: random.Random) -> str:
    """Draw a valid enterprise number (CBE/KBO/BCE), e.g. ``0412345697``-style."""
    while True:
        base = f"{rng.choice('01')}{rng.randrange(2_000_000, 9_999_999):07d}"
        check = 97 - int(base) % 97
        if check < 97:  # 97 itself would not fit two digits
            return f"{base}{check:02d}"


def format_cbe(cbe: str) -> str:
    """``0123456789`` → ``0123.456.789``."""
    return f"{cbe[:4]}.{cbe[4:7]}.{cbe[7:]}"


def make_ogm(rng: random.Random) -> str:
    """A structured communication ``+++123/4567/89012+++`` with a valid mod-97 check."""
    base = rng.randrange(10**9, 10**10)
    digits = f"{base:010d}{_mod97_check(base):02d}"
    return f"+++{digits[:3]}/{digits[3:7]}/{digits[7:]}+++"


def ogm_is_valid(ogm: str) -> bool:
    """Check an OGM in ``+++ddd/dddd/ddddd+++`` form."""
    digits = "".join(ch for ch in ogm if ch.isdigit())
    if len(digits) != 12:
        return False
    return int(digits[10:]) == _mod97_check(int(digits[:10]))


def make_iban(rng: random.Random, bank_code: str | None = None) -> tuple[str, str]:
    """Return ``(iban, bic)``: a checksum-valid Belgian IBAN (electronic form) and its BIC."""
    code = bank_code or rng.choice(sorted(BANKS))
    account = f"{code}{rng.randrange(0, 10**7):07d}"
    bban = f"{account}{_mod97_check(int(account)):02d}"
    numeric = int(bban + "111400")  # "BE00" moved to the end, B=11 E=14
    iban_check = 98 - numeric % 97
    return f"BE{iban_check:02d}{bban}", BANKS[code]


def format_iban(iban: str) -> str:
    """Group an IBAN by four characters, as printed on letters."""
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def format_amount(amount: Decimal, currency: str = "EUR") -> str:
    """Belgian style for all three languages: ``1.234,56 EUR``."""
    whole, cents = f"{amount:.2f}".split(".")
    groups: list[str] = []
    while whole:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    return f"{'.'.join(groups)},{cents} {currency}"


def format_date(day: date, language: str) -> str:
    """Numeric dates as each language's letters print them (fr ``dd/mm/yyyy``, nl ``dd-mm-yyyy``, de ``dd.mm.yyyy``)."""
    separator = {"fr": "/", "nl": "-", "de": "."}[language]
    return f"{day.day:02d}{separator}{day.month:02d}{separator}{day.year}"
