"""Field decoding for the CODA parser: amounts, dates, accounts and communications.

Everything here is a pure function of the record text, and none of it raises on odd content:
the parser validates the fields whose errors matter (amounts, dates, types) before calling in.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any

from schwifty import IBAN, exceptions

from daemon.banking.coda.model import Communication, Counterparty, Movement, new_communication
from daemon.banking.ogm import _PATTERNS as OGM_PATTERNS  # find_ogms' own patterns, in its order
from daemon.banking.ogm import is_valid_ogm
from daemon.banking.rf import is_valid_rf

__all__ = ["UNDECODED", "amount", "as_written", "counterparty_of", "date", "decode_communication", "decode_information",
           "iban_of", "name_from_information", "with_changes"]

_NOT_DIGIT_BYTES = bytes(byte for byte in range(256) if not 0x30 <= byte <= 0x39)
_SEPARATORS = " /.-\u00a0"  # all that find_ogms' patterns match in the digits' group besides \d
_OGM_SCANS = tuple((2 if form == "wrapped" else 0, pattern) for form, pattern in OGM_PATTERNS)  # digits' group


def amount(digits: str) -> Decimal:
    return Decimal(int(digits)).scaleb(-3)


def _lenient_amount(text: str, scale: int = 3) -> Decimal | None:
    text = text.strip()
    return Decimal(int(text)).scaleb(-scale) if text.isascii() and text.isdigit() else None


def date(text: str) -> dt.date | None:
    """DDMMYY; blank or 000000 is missing; None when not a date (see callers for strictness)."""
    if not text.strip() or text == "000000":
        return None
    if not (text.isascii() and text.isdigit()):
        raise ValueError(text)
    return dt.date(2000 + int(text[4:6]), int(text[2:4]), int(text[0:2]))


def _lenient_date(text: str) -> dt.date | None:
    try:
        return date(text)
    except ValueError:
        return None


@lru_cache(maxsize=4096)  # accounts repeat within and across statements; bounded memory
def iban_of(number: str, *, belgian_bban: bool = False) -> str | None:
    compact = number.replace(" ", "").upper()
    if not compact or not compact.isalnum() or set(compact) == {"0"}:
        return None
    try:
        if belgian_bban or (compact.isdigit() and len(compact) == 12):
            if not (compact.isdigit() and len(compact) == 12):
                return None
            return str(IBAN.from_bban("BE", compact).compact)
        iban = IBAN(compact, allow_invalid=True)
        return str(iban.compact) if iban.is_valid else None
    except (exceptions.SchwiftyException, ValueError):
        return None


def as_written(number: str) -> str | None:
    """A bank-supplied account that fails its checks (synthetic test accounts), unless all zeros."""
    compact = number.replace(" ", "")
    return compact if compact[4:].strip("0") else None


UNDECODED = Communication(False, "")  # a movement's until it is complete


_Decoded = tuple[dict[str, Any], str | None, str | None, str | None]  # fields, ogm, rf, text (None: body)


def _single_ogm(text: str) -> str | None:
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
                if len(digits) == 12 and (int(digits[:10]) % 97 or 97) == int(digits[10:]):
                    found.add(digits)
                if left < 12:  # the rest of this scan can only take spans, which no later scan needs
                    break
    return found.pop() if len(found) == 1 else None


def _valid_ogm(digits: str) -> bool:
    """:func:`is_valid_ogm` for a 12-character zone, without its general parsing for the usual 12 digits."""
    if len(digits) == 12 and digits.isascii() and digits.isdigit():
        return (int(digits[:10]) % 97 or 97) == int(digits[10:])
    return is_valid_ogm(digits)


def _decode_ogm(body: str) -> _Decoded:
    digits = body[0:12]
    if digits.isdigit() and digits.isascii():  # the usual case: no call to is_valid_ogm
        ogm = digits if (int(digits[:10]) % 97 or 97) == int(digits[10:]) else None
    else:
        ogm = digits if is_valid_ogm(digits) else None
    return {"number": digits}, ogm, None, f"+++{digits[:3]}/{digits[3:7]}/{digits[7:12]}+++" if ogm else digits.strip()


def _decode_rf(body: str) -> _Decoded:
    value = "".join(body.split()).upper()
    return {"reference": value}, None, (value if value and _valid_rf(value) else None), value


_RF_ELECTRONIC = re.compile(r"RF[0-9]{2}[0-9A-Z]{1,21}")
_RF_NUMERIC = str.maketrans({letter: str(int(letter, 36)) for letter in string.ascii_uppercase})


def _valid_rf(value: str) -> bool:
    """:func:`is_valid_rf` without its general parsing for a reference in electronic form: the check
    digits are 98 - (body + "RF00", letters as 10…35) mod 97 (ISO 11649)."""
    if _RF_ELECTRONIC.fullmatch(value):
        body = value[4:]  # usually digits only: no translation ("RF00" is "271500")
        numeric = body + "271500" if body.isdigit() else (body + "RF00").translate(_RF_NUMERIC)
        return int(value[2:4]) == 98 - int(numeric) % 97
    return is_valid_rf(value)


def _decode_105(body: str) -> _Decoded:
    fields = {"amount": _lenient_amount(body[0:15]), "original_amount": _lenient_amount(body[15:30]),
              "rate": _lenient_amount(body[30:42], 8), "currency": body[42:45].strip(),
              "structured_reference": body[45:57].strip(), "country": body[57:59].strip(),
              "eur_equivalent": _lenient_amount(body[59:74])}
    return fields, (body[45:57] if _valid_ogm(body[45:57]) else None), None, None


def _decode_106(body: str) -> _Decoded:
    fields = {"amount": _lenient_amount(body[0:15]), "base": _lenient_amount(body[15:30]),
              "percent": _lenient_amount(body[30:42], 8), "minimum": body[42:43].strip(),
              "equivalent": _lenient_amount(body[43:58])}
    return fields, None, None, None


def _decode_107(body: str) -> _Decoded:
    # DOM'80 direct debit: the layout is not documented in our sources (spec §7); keep the body
    # and a valid OGM-shaped number it holds.
    return {"body": body.rstrip()}, _single_ogm(body), None, None


def _decode_127(body: str) -> _Decoded:
    text = body[79:141].strip()
    fields = {"settlement_date": _lenient_date(body[0:6]), "type": body[6:7], "scheme": body[7:8],
              "paid_or_reason": body[8:9], "creditor_id": body[9:44].strip(), "mandate": body[44:79].strip(),
              "communication": text, "r_type": body[141:142], "reason": body[142:146].strip()}
    compact = "".join(text.split()).upper()
    digits = "".join(ch for ch in text if ch.isdigit())
    ogm = digits if len(digits) == 12 and _valid_ogm(digits) else None
    rf = compact if ogm is None and compact and _valid_rf(compact) else None
    return fields, ogm, rf, text


_DECODERS: dict[str, Callable[[str], _Decoded]] = {
    "100": _decode_rf, "101": _decode_ogm, "102": _decode_ogm, "105": _decode_105, "106": _decode_106,
    "107": _decode_107, "127": _decode_127,
    "103": lambda body: ({"number": body[0:12].strip()}, None, None, None),
}


def decode_communication(structured: bool, raw: str) -> Communication:
    """Decode an assembled communication (untrimmed): free text, or ``type + body``."""
    if not structured:
        text = raw.strip()
        found = _single_ogm(text) if len(text) >= 12 else None  # an OGM takes 12 digits at least
        return new_communication(False, raw, None, text, found, None, found is not None, {})
    kind, body = raw[:3], raw[3:]
    decoder = _DECODERS.get(kind)
    fields, ogm, rf, decoded = decoder(body) if decoder else ({"body": body.rstrip()}, None, None, None)
    return new_communication(True, raw, kind, body.strip() if decoded is None else decoded, ogm, rf, False, fields)


def decode_information(structured: bool, raw: str) -> Communication:
    if not structured:
        return Communication(False, raw, text=raw.strip())
    kind, body = raw[:3], raw[3:]
    fields: dict[str, Any] = {}
    if kind == "001":
        fields.update(name=body[0:70].strip(), street=body[70:105].strip(), locality=body[105:140].strip(),
                      identification=body[140:175].strip())
    elif kind in ("008", "009"):
        fields.update(name=body[0:70].strip(), identification=body[70:105].strip())
    else:
        fields["body"] = body.rstrip()
    return Communication(True, raw, type=kind, text=" ".join(body.split()), fields=fields)


def counterparty_of(zone: str, bic: str | None) -> Counterparty:
    """The counterparty of a 2.3 from its columns 11-82 (account, currency, name) and the 2.2's BIC."""
    if zone[12] == " ":
        number, currency = zone[0:12].strip(), zone[13:16].strip()
        iban = iban_of(number, belgian_bban=True) if number.isdigit() and len(number) == 12 else None
    else:
        number, currency = zone[0:34].strip(), zone[34:37].strip()
        iban = iban_of(number)
    if not number or set(number) == {"0"}:
        number, iban, currency = "", None, ""
    name = zone[37:72].strip()
    return Counterparty(name=name or None, account=number or None, iban=iban, currency=currency or None, bic=bic)


def with_changes(counterparty: Counterparty, **changes: Any) -> Counterparty:
    values = {name: getattr(counterparty, name) for name in Counterparty.__slots__}
    values.update(changes)
    return Counterparty(**values)


def name_from_information(movement: Movement, comm: Communication) -> None:
    """A counterparty without a name takes it (and the address) from the movement's first information 001 with one."""
    party = movement.counterparty
    if party.name is None and comm.structured and comm.type == "001" and comm.fields.get("name"):
        address = ", ".join(p for p in (comm.fields["street"], comm.fields["locality"]) if p) or None
        movement.counterparty = with_changes(party, name=comm.fields["name"], address=address)
