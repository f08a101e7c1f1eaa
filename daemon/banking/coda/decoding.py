"""Field decoding for the CODA parser: amounts, dates, accounts and communications.

Everything here is a pure function of the record text, and none of it raises on odd content:
the parser validates the fields whose errors matter (amounts, dates, types) before calling in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any

from schwifty import IBAN, exceptions

from daemon.banking.coda.model import (
    Communication,
    Counterparty,
    Movement,
    free_communication,
    new_communication,
    new_counterparty,
    rf_communication,
)
from daemon.banking.coda.references import single_ogm as _single_ogm
from daemon.banking.coda.references import valid_ogm as _valid_ogm
from daemon.banking.coda.references import valid_rf as _valid_rf

__all__ = ["UNDECODED", "amount", "as_written", "counterparty_of", "date", "decode_communication", "decode_information",
           "iban_of", "name_from_information", "with_changes"]


def amount(digits: str) -> Decimal:
    """``digits`` (checked ASCII digits) with 3 implied decimals: ``Decimal(int(digits)).scaleb(-3)``, read
    at once from the text."""
    return Decimal(digits + "E-3")


def _lenient_amount(text: str, scale: int = 3) -> Decimal | None:
    text = text.strip()
    return Decimal(f"{text}E-{scale}") if text.isascii() and text.isdigit() else None


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


def _belgian_check_digits(bban: str) -> int:
    """The check digits of the Belgian IBAN of a 12-digit BBAN: ISO 7064 mod 97-10 ("BE" reads 1114)."""
    return 98 - int(bban + "111400") % 97


@lru_cache(maxsize=4096)  # accounts repeat within and across statements; bounded memory
def iban_of(number: str, *, belgian_bban: bool = False) -> str | None:
    """The IBAN (electronic form) of an account number as written, or None when it is none: a
    12-digit Belgian BBAN gets its check digits; with ``belgian_bban`` nothing else is taken."""
    compact = number.replace(" ", "").upper()
    if not (compact.isascii() and compact.isalnum()) or set(compact) == {"0"}:  # ASCII letters and digits only
        return None
    if compact.isdigit() and len(compact) == 12:  # IBAN.from_bban("BE", …) without the call
        return f"BE{_belgian_check_digits(compact):02d}{compact}"
    if belgian_bban:
        return None
    if len(compact) == 16 and compact.startswith("BE") and compact[2:].isdigit():
        # what IBAN(…).is_valid checks of a Belgian IBAN (length, 12-digit BBAN, check digits
        # 02-98 by ISO 7064 mod 97-10) at a tenth of the cost: counterparties are mostly Belgian
        return compact if _belgian_check_digits(compact[4:]) == int(compact[2:4]) else None
    try:
        iban = IBAN(compact, allow_invalid=True)
    except (exceptions.SchwiftyException, ValueError):
        return None
    return str(iban.compact) if iban.is_valid else None


def as_written(number: str) -> str | None:
    """A bank-supplied account that fails its checks (synthetic test accounts), unless all zeros."""
    compact = number.replace(" ", "")
    return compact if compact[4:].strip("0") else None


UNDECODED = Communication(False, "")  # a movement's until it is complete


_Decoded = tuple[dict[str, Any], str | None, str | None, str | None]  # fields, ogm, rf, text (None: body)


def _decode_ogm(body: str) -> _Decoded:
    digits = body[0:12]
    ogm = digits if _valid_ogm(digits) else None
    return {"number": digits}, ogm, None, f"+++{digits[:3]}/{digits[3:7]}/{digits[7:12]}+++" if ogm else digits.strip()


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


_DECODERS: dict[str, Callable[[str], _Decoded]] = {  # and 100, an RF: see decode_communication
    "101": _decode_ogm, "102": _decode_ogm, "105": _decode_105, "106": _decode_106,
    "107": _decode_107, "127": _decode_127,
    "103": lambda body: ({"number": body[0:12].strip()}, None, None, None),
}


def decode_communication(structured: bool, raw: str) -> Communication:
    """Decode an assembled communication (untrimmed): free text, or ``type + body``."""
    if not structured:
        return free_communication(raw, raw.strip())  # its OGM, if any, is looked for when first read
    kind, body = raw[:3], raw[3:]
    if kind == "100":  # its RF check digits are checked when first read
        return rf_communication(raw, "".join(body.split()).upper())
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
    if not number.strip("0"):  # blank or all zeros: no account
        number, iban, currency = "", None, ""
    name = zone[37:72].strip()
    return new_counterparty(name or None, number or None, iban, currency or None, bic)


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
