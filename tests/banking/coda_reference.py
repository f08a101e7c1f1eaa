"""The CODA parser as it was before the speed-up (eboxd ``daemon/banking/coda.py`` of 2026-11-27), kept
unchanged as the oracle of ``test_coda_equivalence.py``: the fast parser must give the same
statements, movements, warnings and errors on every input.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from schwifty import IBAN, exceptions

from daemon.banking.ogm import find_ogms, is_valid_ogm
from daemon.banking.rf import is_valid_rf
from daemon.errors import EboxdError

__all__ = [
    "RECORD_LENGTH",
    "Account",
    "CodaError",
    "CodaWarning",
    "Communication",
    "Counterparty",
    "Header",
    "Information",
    "Movement",
    "Statement",
    "TransactionCode",
    "iter_movements",
    "iter_statements",
    "parse_coda",
]

RECORD_LENGTH = 128
_TOP_LEVEL_TYPES = frozenset("0123")
_DETAIL_OF = {"5": "1", "6": "2", "7": "2", "8": "3"}  # detail type → parent type
_BOM = b"\xef\xbb\xbf"


class CodaError(EboxdError, ValueError):
    """A CODA file is malformed. ``file``, ``line`` (1-based), ``columns`` (1-based inclusive
    ``(first, last)`` or None), ``expected`` and ``got`` say where and what."""

    def __init__(self, file: str, line: int | None, columns: tuple[int, int] | None, expected: str,
                 got: str | None = None) -> None:
        self.file, self.line, self.columns, self.expected, self.got = file, line, columns, expected, got
        where = file if line is None else f"{file}:{line}"
        if columns is not None:
            first, last = columns
            where += f": column {first}" if first == last else f": columns {first}-{last}"
        message = f"{where}: expected {expected}"
        if got is not None:
            message += f", got {got!r}"
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class CodaWarning:
    """A problem that does not stop the import: ``code`` is stable (``short_line``,
    ``record_count``, ``debit_total``, ``credit_total``, ``balance``, ``account_mismatch``,
    ``sequence_gap``, ``application_code``, ``duplicate``, ``orphan_detail``, ``orphan_information``)."""

    code: str
    message: str
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Header:
    """Record 0."""

    creation_date: dt.date | None
    bank_id: str
    application_code: str
    duplicate: bool
    file_reference: str
    addressee: str
    bic: str
    holder_id: str
    separate_application: str
    transaction_reference: str
    related_reference: str
    version: str


@dataclass(frozen=True, slots=True)
class Account:
    """The statement's account: ``structure`` (0 Belgian BBAN, 1 foreign BBAN, 2 Belgian IBAN,
    3 foreign IBAN), ``number`` as written, ``iban`` (electronic form) when it is one, ``currency``."""

    structure: str
    number: str
    iban: str | None
    currency: str


@dataclass(frozen=True, slots=True)
class TransactionCode:
    """Positions 54–61 of 2.1: type, family, transaction, category."""

    type: str
    family: str
    transaction: str
    category: str

    @property
    def code(self) -> str:
        return f"{self.type}{self.family}{self.transaction}{self.category}"


@dataclass(frozen=True, slots=True)
class Counterparty:
    """From 2.2 (BIC) and 2.3 (account, name), completed by information 001 when 2.3 has no name."""

    name: str | None = None
    account: str | None = None
    iban: str | None = None
    currency: str | None = None
    bic: str | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Communication:
    """An assembled communication. ``raw`` is the untrimmed concatenation of the zones; for a
    structured one ``type`` is its 3-digit type and ``fields`` its decoded layout. ``ogm`` (12
    digits) and ``rf`` are set when a valid reference was found: in the structured layout, or for
    a free communication when the text holds exactly one valid OGM (``from_text`` is then True)."""

    structured: bool
    raw: str
    type: str | None = None
    text: str = ""
    ogm: str | None = None
    rf: str | None = None
    from_text: bool = False
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Information:
    """A 3.1 [3.2] [3.3] group."""

    sequence: int
    detail: int
    bank_reference: str
    transaction_code: str
    communication: Communication
    line: int


@dataclass(slots=True)
class Movement:
    """A 2.1 [2.2] [2.3] group, with its details (types 5–9) and information groups (3.x)."""

    sequence: int
    detail: int
    bank_reference: str
    amount: Decimal  # signed: negative for a debit
    value_date: dt.date | None
    entry_date: dt.date | None
    transaction_code: TransactionCode
    communication: Communication
    paper_number: str
    globalisation: int
    line: int
    end_to_end_id: str | None = None
    counterparty: Counterparty = field(default_factory=Counterparty)
    r_type: str = ""
    iso_reason: str = ""
    category_purpose: str = ""
    purpose: str = ""
    details: list[Movement] = field(default_factory=list)
    information: list[Information] = field(default_factory=list)
    # assembly state
    _zones: list[str] = field(default_factory=lambda: [" " * 53, " " * 53, " " * 43], repr=False)
    _structured: bool = field(default=False, repr=False)

    @property
    def is_debit(self) -> bool:
        return self.amount < 0

    @property
    def type(self) -> str:
        return self.transaction_code.type

    def walk(self) -> Iterator[Movement]:
        """This movement, then its details depth first."""
        yield self
        for child in self.details:
            yield from child.walk()


@dataclass(slots=True)
class Statement:
    """One statement (records 0…9). In :func:`iter_movements` mode ``movements`` stays empty."""

    file: str
    header: Header
    account: Account
    paper_number: str
    coda_sequence: str
    old_balance: Decimal
    old_balance_date: dt.date | None
    holder_name: str
    description: str
    first_line: int
    new_balance: Decimal | None = None
    new_balance_date: dt.date | None = None
    movements: list[Movement] = field(default_factory=list)
    free_messages: list[str] = field(default_factory=list)
    record_count: int | None = None
    debit_total: Decimal | None = None
    credit_total: Decimal | None = None
    warnings: list[CodaWarning] = field(default_factory=list)
    digest: str = ""  # SHA-256 of records 1…9 (not the header), to recognise re-deliveries

    @property
    def key(self) -> str:
        """Dedupe key of the statement (§1.10): account, CODA sequence, paper number, new-balance date."""
        date = self.new_balance_date or self.old_balance_date
        return (f"{self.account.iban or self.account.number}:{self.coda_sequence}:{self.paper_number}:"
                f"{date.isoformat() if date else '-'}")

    def movement_key(self, movement: Movement) -> str:
        """Dedupe key of a movement: statement key + sequence + detail (sequences restart per statement)."""
        return f"coda:{self.key}:{movement.sequence:04d}:{movement.detail:04d}"

    def all_movements(self) -> Iterator[Movement]:
        for movement in self.movements:
            yield from movement.walk()


# --- decoding helpers -------------------------------------------------------------------------

def _amount(digits: str) -> Decimal:
    return Decimal(int(digits)).scaleb(-3)


def _lenient_amount(text: str, scale: int = 3) -> Decimal | None:
    text = text.strip()
    return Decimal(int(text)).scaleb(-scale) if text.isascii() and text.isdigit() else None


def _date(text: str) -> dt.date | None:
    """DDMMYY; blank or 000000 is missing; None when not a date (see callers for strictness)."""
    if not text.strip() or text == "000000":
        return None
    if not (text.isascii() and text.isdigit()):
        raise ValueError(text)
    return dt.date(2000 + int(text[4:6]), int(text[2:4]), int(text[0:2]))


def _lenient_date(text: str) -> dt.date | None:
    try:
        return _date(text)
    except ValueError:
        return None


@lru_cache(maxsize=4096)  # accounts repeat within and across statements; bounded memory
def _iban_of(number: str, *, belgian_bban: bool = False) -> str | None:
    compact = number.replace(" ", "").upper()
    if not compact.isascii():  # schwifty raises KeyError on other digits ("٣"): no account, as the parser
        return None
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


def _as_written(number: str) -> str | None:
    """A bank-supplied account that fails its checks (synthetic test accounts), unless all zeros."""
    compact = number.replace(" ", "")
    return compact if compact[4:].strip("0") else None


_Decoded = tuple[dict[str, Any], str | None, str | None, str | None]  # fields, ogm, rf, text (None: body)


def _single_ogm(text: str) -> str | None:
    found = {c.digits for c in find_ogms(text) if c.valid} if text.strip() else set()
    return found.pop() if len(found) == 1 else None


def _decode_ogm(body: str) -> _Decoded:
    digits = body[0:12]
    ogm = digits if is_valid_ogm(digits) else None
    return {"number": digits}, ogm, None, f"+++{digits[:3]}/{digits[3:7]}/{digits[7:12]}+++" if ogm else digits.strip()


def _decode_rf(body: str) -> _Decoded:
    value = "".join(body.split()).upper()
    return {"reference": value}, None, (value if value and _valid_rf(value) else None), value


@lru_cache(maxsize=4096)
def _valid_rf(value: str) -> bool:
    return is_valid_rf(value)


def _decode_105(body: str) -> _Decoded:
    fields = {"amount": _lenient_amount(body[0:15]), "original_amount": _lenient_amount(body[15:30]),
              "rate": _lenient_amount(body[30:42], 8), "currency": body[42:45].strip(),
              "structured_reference": body[45:57].strip(), "country": body[57:59].strip(),
              "eur_equivalent": _lenient_amount(body[59:74])}
    return fields, (body[45:57] if is_valid_ogm(body[45:57]) else None), None, None


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
    ogm = digits if len(digits) == 12 and is_valid_ogm(digits) else None
    rf = compact if ogm is None and compact and is_valid_rf(compact) else None
    return fields, ogm, rf, text


_DECODERS: dict[str, Callable[[str], _Decoded]] = {
    "100": _decode_rf, "101": _decode_ogm, "102": _decode_ogm, "105": _decode_105, "106": _decode_106,
    "107": _decode_107, "127": _decode_127,
    "103": lambda body: ({"number": body[0:12].strip()}, None, None, None),
}


def _decode(structured: bool, raw: str) -> Communication:
    """Decode an assembled communication (untrimmed): free text, or ``type + body``."""
    if not structured:
        text = raw.strip()
        found = _single_ogm(text)
        return Communication(False, raw, text=text, ogm=found, from_text=found is not None)
    kind, body = raw[:3], raw[3:]
    decoder = _DECODERS.get(kind)
    fields, ogm, rf, decoded = decoder(body) if decoder else ({"body": body.rstrip()}, None, None, None)
    return Communication(True, raw, type=kind, text=body.strip() if decoded is None else decoded, ogm=ogm, rf=rf,
                         fields=fields)


def _decode_information(structured: bool, raw: str) -> Communication:
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


_RECORD_WIDTH = 128

# --- the parser -------------------------------------------------------------------------------

def _lines(stream: IO[bytes]) -> Iterator[tuple[int, str]]:
    """(1-based line number, decoded line without its end) for each non-blank line."""
    for number, line in enumerate(stream, start=1):
        raw = line[len(_BOM):] if number == 1 and line.startswith(_BOM) else line
        raw = raw.rstrip(b"\r\n")
        if raw.strip():
            yield number, _decode_line(raw)


def _decode_line(raw: bytes) -> str:
    """UTF-8 when the line is valid UTF-8, else cp1252, else latin-1 (0x81, 0x8D… are undefined in cp1252).

    Some cp1252 text is also valid UTF-8 ("Â" + no-break space): a record is 128 characters, so
    when only the cp1252 reading has that length, it is the right one.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
    if len(text) != _RECORD_WIDTH and len(raw) == _RECORD_WIDTH:
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
    return text


class _Parser:
    def __init__(self, name: str, *, collect: bool) -> None:
        self.name = name
        self.collect = collect
        self.statement: Statement | None = None
        self.account_line8: str | None = None
        self.counted = 0
        self.debits = Decimal(0)
        self.credits = Decimal(0)
        self.last_sequence: int | None = None
        self.top: Movement | None = None  # current top-level movement
        self.last_seven: Movement | None = None
        self.last_21: Movement | None = None  # the movement the next 2.2/2.3 belongs to
        self.last_record: str | None = None  # "2.1", "2.2", "2.3", "3.1", …
        self.info: Information | None = None
        self.info_zones: list[str] = []
        self.info_structured = False
        self.digest = hashlib.sha256()
        self.pending_warnings: list[CodaWarning] = []
        self.line = 0
        self.text = ""

    # field access with precise errors
    def error(self, columns: tuple[int, int] | None, expected: str, got: str | None = None) -> CodaError:
        return CodaError(self.name, self.line, columns, expected, got)

    def field(self, first: int, last: int) -> str:
        return self.text[first - 1:last]

    def digits(self, first: int, last: int, what: str) -> str:
        value = self.field(first, last)
        if not (value.isascii() and value.isdigit()):
            raise self.error((first, last), f"{what} ({last - first + 1} digits)", value)
        return value

    def number(self, first: int, last: int, what: str) -> int:
        return int(self.digits(first, last, what))

    def amount(self, sign_at: int, first: int, last: int, what: str) -> Decimal:
        sign = self.field(sign_at, sign_at)
        if sign not in ("0", "1"):
            raise self.error((sign_at, sign_at), f"the sign of the {what}: 0 (credit) or 1 (debit)", sign)
        value = _amount(self.digits(first, last, f"the {what}, 3 implied decimals"))
        return -value if sign == "1" else value

    def date(self, first: int, last: int, what: str) -> dt.date | None:
        value = self.field(first, last)
        try:
            return _date(value)
        except ValueError:
            raise self.error((first, last), f"the {what} as DDMMYY", value) from None

    def warn(self, code: str, message: str) -> None:
        warning = CodaWarning(code, message, self.line)
        if self.statement is None:
            self.pending_warnings.append(warning)
        else:
            self.statement.warnings.append(warning)

    # main loop
    def run(self, lines: Iterable[tuple[int, str]]) -> Iterator[tuple[str, Any]]:
        for self.line, line in lines:
            text = self.fit(line)
            kind = text[0]
            if kind == "0":
                yield from self.record_0()
                continue
            if self.statement is None:
                raise self.error((1, 1), "record 0 (header) before any other record", kind)
            self.digest.update(text.encode("utf-8", "surrogatepass"))
            handler = self.handlers.get(kind)
            if handler is None:
                if kind == "1":
                    raise self.error((1, 1), "one record 1 per statement, right after record 0", kind)
                raise self.error((1, 1), "a record type among 0, 1, 2, 3, 4, 8, 9", kind)
            yield from handler()
        if self.statement is not None:
            raise CodaError(self.name, self.line or None, None,
                            "record 9 (trailer) to end the statement begun at line "
                            f"{self.statement.first_line}, got the end of the file")
        if self.line == 0:
            raise CodaError(self.name, None, None, "a CODA file, got an empty file")

    def fit(self, line: str) -> str:
        """The line as a 128-character record (short lines padded with a warning), kept in ``self.text``."""
        if len(line) > RECORD_LENGTH:
            if line[RECORD_LENGTH:].strip():
                raise self.error((RECORD_LENGTH + 1, len(line)), f"a record of {RECORD_LENGTH} characters",
                                 f"{len(line)} characters")
            line = line[:RECORD_LENGTH]
        elif len(line) < RECORD_LENGTH:
            self.warn("short_line", f"line {self.line} has {len(line)} characters; padded to {RECORD_LENGTH}")
            line = line.ljust(RECORD_LENGTH)
        self.text = line
        return line

    @property
    def handlers(self) -> dict[str, Callable[[], Iterator[tuple[str, Any]]]]:
        return {"2": self.record_2, "3": self.record_3, "4": self.record_4, "8": self.record_8, "9": self.record_9}

    def record_0(self) -> Iterator[tuple[str, Any]]:
        if self.statement is not None:
            raise self.error((1, 1), f"record 9 (trailer) of the statement begun at line {self.statement.first_line} "
                             "before a new record 0", "0")
        if self.field(1, 5) != "00000":
            raise self.error((1, 5), "00000 (record 0)", self.field(1, 5))
        self.digits(6, 16, "creation date, bank id and application code")
        if self.field(128, 128) != "2":
            raise self.error((128, 128), "version 2 (CODA 2.x)", self.field(128, 128))
        header = Header(
            creation_date=self.date(6, 11, "creation date"), bank_id=self.field(12, 14),
            application_code=self.field(15, 16), duplicate=self.field(17, 17) == "D",
            file_reference=self.field(25, 34).strip(), addressee=self.field(35, 60).strip(),
            bic=self.field(61, 71).strip(), holder_id=self.field(72, 82).strip(),
            separate_application=self.field(84, 88).strip(), transaction_reference=self.field(89, 104).strip(),
            related_reference=self.field(105, 120).strip(), version=self.field(128, 128))
        header_line = self.line
        lines = self._lines
        try:
            self.line, text = next(lines)
        except StopIteration:
            raise CodaError(self.name, self.line, None, "record 1 (old balance) after record 0, "
                            "got the end of the file") from None
        self.fit(text)
        if self.text[0] != "1":
            raise self.error((1, 1), "record 1 (old balance) right after record 0", self.text[0])
        # records 1…9 only: a re-delivery differs in its header (D flag, creation date)
        self.digest = hashlib.sha256(self.text.encode("utf-8", "surrogatepass"))
        structure = self.field(2, 2)
        if structure not in ("0", "1", "2", "3"):
            raise self.error((2, 2), "account structure 0, 1, 2 or 3", structure)
        account = self.account(structure, 0)
        statement = Statement(
            file=self.name, header=header, account=account, paper_number=self.field(3, 5),
            coda_sequence=self.field(126, 128),
            old_balance=self.amount(43, 44, 58, "old balance"), old_balance_date=self.date(59, 64, "old balance date"),
            holder_name=self.field(65, 90).strip(), description=self.field(91, 125).strip(), first_line=header_line)
        statement.warnings.extend(self.pending_warnings)
        self.pending_warnings = []
        if header.application_code != "05":
            statement.warnings.append(CodaWarning(
                "application_code", f"application code {header.application_code!r}, usually '05'", header_line))
        if header.duplicate:
            statement.warnings.append(CodaWarning("duplicate", "the header marks this file as a re-delivery (D)",
                                                  header_line))
        self.statement = statement
        self.counted = 1
        self.debits = self.credits = Decimal(0)
        self.last_sequence = None
        self.top = self.last_seven = self.last_21 = None
        self.info = None
        self.last_record = "1"
        self.account_line8 = None
        return
        yield  # a generator, for symmetry with the other records

    def account(self, structure: str, shift: int) -> Account:
        """The account zone of record 1 (shift 0) or 8 (shift 1)."""
        def at(first: int, last: int) -> str:
            return self.field(first - shift, last - shift)
        if structure == "0":
            number, currency = at(6, 17), at(19, 21)
            return Account(structure, number, _iban_of(number, belgian_bban=True), currency.strip())
        if structure == "2":
            number = at(6, 21).strip()
            return Account(structure, number, _iban_of(number) or _as_written(number), at(40, 42).strip())
        number = at(6, 39).strip()
        iban = (_iban_of(number) or _as_written(number)) if structure == "3" else None
        return Account(structure, number, iban, at(40, 42).strip())

    def flush_info(self) -> None:
        if self.info is not None:
            self.info.communication = _decode_information(self.info_structured, "".join(self.info_zones))
            self.info = None

    def finish_movement(self) -> Movement | None:
        """Close the current top-level movement; returns it (for streaming)."""
        self.flush_info()
        done, self.top = self.top, None
        if done is not None:
            for movement in done.walk():
                _finish_communication(movement)
        return done

    def record_2(self) -> Iterator[tuple[str, Any]]:
        assert self.statement is not None
        article = self.field(2, 2)
        self.counted += 1
        sequence = self.number(3, 6, "sequence number")
        detail = self.number(7, 10, "detail number")
        if article == "1":
            yield from self.record_21(sequence, detail)
            return
        if article not in ("2", "3"):
            raise self.error((2, 2), "record 2.1, 2.2 or 2.3", f"2.{article}")
        movement = self.last_21
        if movement is None or self.last_record not in (("2.1",) if article == "2" else ("2.1", "2.2")):
            raise self.error((1, 2), f"record 2.{article} right after its record 2.1"
                             + ("" if article == "2" else " or 2.2"), f"2{article} after {self.last_record}")
        if (movement.sequence, movement.detail) != (sequence, detail):
            raise self.error((3, 10), f"the sequence and detail numbers of the 2.1 at line {movement.line} "
                             f"({movement.sequence:04d}{movement.detail:04d})", self.field(3, 10))
        if article == "2":
            movement._zones[1] = self.field(11, 63)
            e2e = self.field(64, 98).strip()
            movement.end_to_end_id = None if not e2e or e2e == "NOTPROVIDED" else e2e
            bic = self.field(99, 109).strip()
            if bic:
                movement.counterparty = _replace(movement.counterparty, bic=bic)
            movement.r_type, movement.iso_reason = self.field(113, 113).strip(), self.field(114, 117).strip()
            movement.category_purpose, movement.purpose = self.field(118, 121).strip(), self.field(122, 125).strip()
        else:
            if self.field(23, 23) == " ":
                number, currency = self.field(11, 22).strip(), self.field(24, 26).strip()
                iban = _iban_of(number, belgian_bban=True) if number.isdigit() and len(number) == 12 else None
            else:
                number, currency = self.field(11, 44).strip(), self.field(45, 47).strip()
                iban = _iban_of(number)
            if not number or set(number) == {"0"}:
                number, iban, currency = "", None, ""
            name = self.field(48, 82).strip()
            movement.counterparty = _replace(movement.counterparty, account=number or None, iban=iban,
                                             currency=currency or None, name=name or None)
            movement._zones[2] = self.field(83, 125)
        self.last_record = f"2.{article}"

    def record_21(self, sequence: int, detail: int) -> Iterator[tuple[str, Any]]:
        assert self.statement is not None
        self.flush_info()
        amount = self.amount(32, 33, 47, "amount")
        structured = self.field(62, 62)
        if structured not in ("0", "1"):
            raise self.error((62, 62), "communication type 0 (free) or 1 (structured)", structured)
        glob = self.field(125, 125)
        code = TransactionCode(self.field(54, 54), self.field(55, 56), self.field(57, 58), self.field(59, 61))
        movement = Movement(
            sequence=sequence, detail=detail, bank_reference=self.field(11, 31).strip(), amount=amount,
            value_date=self.date(48, 53, "value date"), entry_date=self.date(116, 121, "entry date"),
            transaction_code=code, communication=Communication(structured == "1", ""),
            paper_number=self.field(122, 124), globalisation=int(glob) if glob.isdigit() else 0, line=self.line)
        movement._structured = structured == "1"
        movement._zones[0] = self.field(63, 115)
        kind = code.type
        parent: Movement | None = None
        if kind in _DETAIL_OF and self.top is not None and self.top.sequence == sequence:
            parent = self.top
        elif kind == "9" and self.last_seven is not None and self.last_seven.sequence == sequence:
            parent = self.last_seven
        if parent is not None:
            parent.details.append(movement)
        else:
            if kind not in _TOP_LEVEL_TYPES:
                self.warn("orphan_detail", f"movement {sequence:04d}/{detail:04d} of type {kind!r} has no parent "
                          "movement with its sequence number; kept as a top-level movement")
            done = self.finish_movement()
            if done is not None:
                yield from self.emit(done)
            if self.last_sequence is not None and sequence != self.last_sequence + 1 and sequence != self.last_sequence:
                self.warn("sequence_gap", f"sequence {sequence:04d} follows {self.last_sequence:04d}")
            self.last_sequence = sequence
            self.top = movement
        if kind == "7":
            self.last_seven = movement
        if detail == 0:
            if amount < 0:
                self.debits -= amount
            else:
                self.credits += amount
        self.last_21 = movement
        self.last_record = "2.1"

    def emit(self, movement: Movement) -> Iterator[tuple[str, Any]]:
        assert self.statement is not None
        if self.collect:
            self.statement.movements.append(movement)
        else:
            yield "movement", (self.statement, movement)

    def record_3(self) -> Iterator[tuple[str, Any]]:
        self.information_record()
        return
        yield

    def information_record(self) -> None:
        assert self.statement is not None
        article = self.field(2, 2)
        self.counted += 1
        sequence = self.number(3, 6, "sequence number")
        detail = self.number(7, 10, "detail number")
        if article == "1":
            self.flush_info()
            owner = self.last_21
            structured = self.field(40, 40)
            if structured not in ("0", "1"):
                raise self.error((40, 40), "communication type 0 (free) or 1 (structured)", structured)
            info = Information(sequence, detail, self.field(11, 31).strip(), self.field(32, 39),
                               Communication(structured == "1", ""), self.line)
            if owner is None or owner.sequence != sequence:
                self.warn("orphan_information", f"information {sequence:04d}/{detail:04d} follows no movement with "
                          "its sequence number; dropped from the hierarchy")
            else:
                owner.information.append(info)
            self.info, self.info_structured = info, structured == "1"
            self.info_zones = [self.field(41, 113), " " * 105, " " * 90]
            self.last_record = "3.1"
            return
        if article not in ("2", "3"):
            raise self.error((2, 2), "record 3.1, 3.2 or 3.3", f"3.{article}")
        if self.info is None or self.last_record not in (("3.1",) if article == "2" else ("3.1", "3.2")):
            raise self.error((1, 2), f"record 3.{article} right after its record 3.1"
                             + ("" if article == "2" else " or 3.2"), f"3{article} after {self.last_record}")
        if (self.info.sequence, self.info.detail) != (sequence, detail):
            raise self.error((3, 10), f"the sequence and detail numbers of the 3.1 at line {self.info.line} "
                             f"({self.info.sequence:04d}{self.info.detail:04d})", self.field(3, 10))
        if article == "2":
            self.info_zones[1] = self.field(11, 115)
        else:
            self.info_zones[2] = self.field(11, 100)
        self.last_record = f"3.{article}"

    def record_4(self) -> Iterator[tuple[str, Any]]:
        assert self.statement is not None
        self.flush_info()
        self.statement.free_messages.append(self.field(33, 112).strip())
        self.last_record = "4"
        return
        yield

    def record_8(self) -> Iterator[tuple[str, Any]]:
        statement = self.statement
        assert statement is not None
        done = self.finish_movement()
        if done is not None:
            yield from self.emit(done)
        self.counted += 1
        statement.new_balance = self.amount(42, 43, 57, "new balance")
        statement.new_balance_date = self.date(58, 63, "new balance date")
        self.account_line8 = self.account(statement.account.structure, 1).number
        self.last_record = "8"

    def record_9(self) -> Iterator[tuple[str, Any]]:
        statement = self.statement
        assert statement is not None
        done = self.finish_movement()
        if done is not None:
            yield from self.emit(done)
        statement.record_count = self.number(17, 22, "the record count")
        statement.debit_total = _amount(self.digits(23, 37, "the debit total, 3 implied decimals"))
        statement.credit_total = _amount(self.digits(38, 52, "the credit total, 3 implied decimals"))
        if statement.new_balance is None:  # empty statement: 0, 1, 9
            statement.new_balance = statement.old_balance
            statement.new_balance_date = statement.old_balance_date
        self.check_trailer(statement)
        statement.digest = self.digest.hexdigest()
        self.statement = None
        self.last_21 = self.top = self.last_seven = None
        yield "statement", statement

    def check_trailer(self, st: Statement) -> None:
        line = self.line
        if st.record_count != self.counted:
            st.warnings.append(CodaWarning("record_count", f"trailer counts {st.record_count} records 1/2/3/8, "
                                           f"the statement has {self.counted}", line))
        if st.debit_total != self.debits:
            st.warnings.append(CodaWarning("debit_total", f"trailer debit total {st.debit_total}, the movements "
                                           f"add up to {self.debits}", line))
        if st.credit_total != self.credits:
            st.warnings.append(CodaWarning("credit_total", f"trailer credit total {st.credit_total}, the movements "
                                           f"add up to {self.credits}", line))
        assert st.new_balance is not None
        expected = st.old_balance + self.credits - self.debits
        if expected != st.new_balance:
            st.warnings.append(CodaWarning(
                "balance", f"old balance {st.old_balance} + credit {self.credits} - debit {self.debits} = {expected}, "
                f"but the new balance is {st.new_balance}", line))
        if self.account_line8 is not None and self.account_line8 != st.account.number:
            st.warnings.append(CodaWarning("account_mismatch", f"record 8 account {self.account_line8!r} differs "
                                           f"from record 1 account {st.account.number!r}", line))

    _lines: Iterator[tuple[int, str]]


def _replace(counterparty: Counterparty, **changes: Any) -> Counterparty:
    values = {name: getattr(counterparty, name) for name in Counterparty.__slots__}
    values.update(changes)
    return Counterparty(**values)


def _finish_communication(movement: Movement) -> None:
    movement.communication = _decode(movement._structured, "".join(movement._zones))
    party = movement.counterparty
    if party.name is None:
        for info in movement.information:
            comm = info.communication
            if comm.structured and comm.type == "001" and comm.fields.get("name"):
                address = ", ".join(p for p in (comm.fields["street"], comm.fields["locality"]) if p) or None
                movement.counterparty = _replace(party, name=comm.fields["name"], address=address)
                break


def _open(source: str | os.PathLike[str] | IO[bytes] | bytes, name: str | None) -> tuple[IO[bytes], str, bool]:
    if isinstance(source, bytes):
        return io.BytesIO(source), name or "<bytes>", True
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            return path.open("rb"), name or str(path), True
        except OSError as exc:
            raise CodaError(str(path), None, None, "a readable file", exc.strerror) from None
    return source, name or str(getattr(source, "name", "<stream>")), False


def _run(source: str | os.PathLike[str] | IO[bytes] | bytes, name: str | None, collect: bool
         ) -> Iterator[tuple[str, Any]]:
    stream, label, owned = _open(source, name)
    try:
        parser = _Parser(label, collect=collect)
        parser._lines = _lines(stream)
        try:
            yield from parser.run(parser._lines)
        except CodaError:
            raise
        except (ValueError, IndexError, ArithmeticError, KeyError) as exc:  # defensive: never leak these
            raise CodaError(label, parser.line or None, None, "a well-formed record", f"{type(exc).__name__}: {exc}"
                            ) from None
    finally:
        if owned:
            stream.close()


def iter_statements(source: str | os.PathLike[str] | IO[bytes] | bytes, *, name: str | None = None
                    ) -> Iterator[Statement]:
    """Each statement of a CODA file (path, binary stream or bytes), one at a time, complete with
    its movements and warnings. Raises :class:`CodaError` on malformed input."""
    for kind, item in _run(source, name, True):
        if kind == "statement":
            yield item


def iter_movements(source: str | os.PathLike[str] | IO[bytes] | bytes, *, name: str | None = None,
                   on_statement: Callable[[Statement], None] | None = None) -> Iterator[tuple[Statement, Movement]]:
    """(statement, top-level movement) pairs as they are read, keeping only the movement being
    built in memory. The statement is complete (balances, trailer, warnings) only when
    ``on_statement`` is called with it, after its last movement."""
    for kind, item in _run(source, name, False):
        if kind == "movement":
            yield item
        elif on_statement is not None:
            on_statement(item)


def parse_coda(source: str | os.PathLike[str] | IO[bytes] | bytes, *, name: str | None = None) -> list[Statement]:
    """Every statement of a CODA file, in a list."""
    return list(iter_statements(source, name=name))
