"""A CODA 2.x writer, for tests, fixtures and benchmarks: describe statements with
:class:`StatementSpec`/:class:`MovementSpec` and get the file's bytes, with trailer, record count,
totals and new balance computed (or deliberately wrong, to test the warnings).

Positions are those read by :mod:`daemon.banking.coda` (``specs/banking.md`` §1).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

__all__ = ["InfoSpec", "MovementSpec", "StatementSpec", "coda_bytes", "coda_lines", "record"]

_WIDTH = 128


def record(*parts: tuple[int, str]) -> str:
    """A 128-character record from (1-based first column, text) parts; the rest is blank."""
    line = [" "] * _WIDTH
    for first, text in parts:
        if first - 1 + len(text) > _WIDTH:
            raise ValueError(f"{text!r} at column {first} overflows the record")
        line[first - 1:first - 1 + len(text)] = list(text)
    return "".join(line)


def _ddmmyy(date: dt.date | None) -> str:
    return "000000" if date is None else date.strftime("%d%m%y")


def _amount(value: Decimal) -> tuple[str, str]:
    """(sign digit, 15 digits with 3 implied decimals)."""
    milli = int((abs(value) * 1000).to_integral_value())
    return ("1" if value < 0 else "0"), f"{milli:015d}"


@dataclass
class InfoSpec:
    """A 3.1 [3.2] [3.3] group. ``communication`` is the raw zone text (at most 73+105+90
    characters); for a structured one, start it with the 3-digit type."""

    communication: str = ""
    structured: bool = False
    transaction_code: str = "00150000"


@dataclass
class MovementSpec:
    """A 2.1 [2.2] [2.3] group. ``amount`` is signed (negative = debit). ``communication`` is the
    raw 149-character zone text: free text, or a structured one such as ``"101" + 12 digits``
    (use :meth:`ogm`). Details (types 5–9) go in ``details``."""

    amount: Decimal
    communication: str = ""
    structured: bool = False
    type: str = "0"
    family: str = "01"
    transaction: str = "50"
    category: str = "000"
    value_date: dt.date | None = None
    entry_date: dt.date | None = None
    bank_reference: str = "REF"
    end_to_end_id: str = ""
    counterparty_bic: str = ""
    counterparty_account: str = ""  # an IBAN, or a 12-digit Belgian BBAN
    counterparty_currency: str = "EUR"
    counterparty_name: str = ""
    globalisation: str = "0"
    details: list[MovementSpec] = field(default_factory=list)
    information: list[InfoSpec] = field(default_factory=list)

    @classmethod
    def ogm(cls, amount: Decimal, digits: str, **kwargs: object) -> MovementSpec:
        return cls(amount, communication="101" + digits, structured=True, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def rf(cls, amount: Decimal, reference: str, **kwargs: object) -> MovementSpec:
        return cls(amount, communication="100" + reference, structured=True, **kwargs)  # type: ignore[arg-type]


@dataclass
class StatementSpec:
    """One statement. ``account`` is a Belgian IBAN (structure 2) unless ``structure`` says
    otherwise (0: 12-digit BBAN; 3: foreign IBAN). ``new_balance``/``record_count``/totals/
    ``account_8`` override the computed values (to write inconsistent trailers)."""

    account: str = "BE68539007547034"
    currency: str = "EUR"
    structure: str = "2"
    old_balance: Decimal = Decimal(0)
    date: dt.date = dt.date(2026, 11, 27)
    holder_name: str = "EBOXD TEST"
    paper_number: int = 1
    coda_sequence: int = 1
    application_code: str = "05"
    duplicate: bool = False
    movements: list[MovementSpec] = field(default_factory=list)
    free_messages: list[str] = field(default_factory=list)
    new_balance: Decimal | None = None
    record_count: int | None = None
    debit_total: Decimal | None = None
    credit_total: Decimal | None = None
    account_8: str | None = None


def _account_zone(structure: str, account: str, currency: str) -> str:
    """The 37-character zone at record 1 columns 6–42."""
    if structure == "0":
        return f"{account:<12} {currency:<3} BE".ljust(37)
    if structure == "2":
        return f"{account:<16}".ljust(34) + f"{currency:<3}"
    return f"{account:<34}{currency:<3}"


def _movement_records(m: MovementSpec, sequence: int, counter: list[int], date: dt.date, paper: str) -> Iterator[str]:
    detail = counter[0]
    counter[0] += 1
    seq = f"{sequence:04d}{detail:04d}"
    comm = m.communication.ljust(149)
    if len(comm) > 149:
        raise ValueError("a movement communication has at most 149 characters")
    has_22 = bool(comm[53:106].strip() or m.end_to_end_id or m.counterparty_bic)
    has_23 = bool(comm[106:].strip() or m.counterparty_account or m.counterparty_name)
    has_3 = bool(m.information)
    sign, digits = _amount(m.amount)
    code = f"{m.type}{m.family}{m.transaction}{m.category}"
    yield record((1, "21"), (3, seq), (11, m.bank_reference[:21]), (32, sign), (33, digits),
                 (48, _ddmmyy(m.value_date or date)), (54, code), (62, "1" if m.structured else "0"),
                 (63, comm[:53]), (116, _ddmmyy(m.entry_date or date)), (122, paper), (125, m.globalisation),
                 (126, "1" if has_22 or has_23 else "0"), (128, "1" if has_3 else "0"))
    if has_22:
        yield record((1, "22"), (3, seq), (11, comm[53:106]), (64, (m.end_to_end_id or "")[:35]),
                     (99, m.counterparty_bic[:11]), (126, "1" if has_23 else "0"), (128, "1" if has_3 else "0"))
    if has_23:
        account = m.counterparty_account
        zone = (f"{account:<12} {m.counterparty_currency:<3}" if account.isdigit() and len(account) == 12
                else f"{account:<34}{m.counterparty_currency:<3}" if account else "")
        yield record((1, "23"), (3, seq), (11, zone), (48, m.counterparty_name[:35]), (83, comm[106:]),
                     (126, "0"), (128, "1" if has_3 else "0"))
    for info in m.information:
        info_detail = counter[0]
        counter[0] += 1
        iseq = f"{sequence:04d}{info_detail:04d}"
        text = info.communication.ljust(268)
        has_32, has_33 = bool(text[73:178].strip()), bool(text[178:].strip())
        yield record((1, "31"), (3, iseq), (11, m.bank_reference[:21]), (32, info.transaction_code[:8]),
                     (40, "1" if info.structured else "0"), (41, text[:73]), (126, "1" if has_32 else "0"))
        if has_32:
            yield record((1, "32"), (3, iseq), (11, text[73:178]), (126, "1" if has_33 else "0"))
        if has_33:
            yield record((1, "33"), (3, iseq), (11, text[178:268]))
    for child in m.details:
        yield from _movement_records(child, sequence, counter, date, paper)


def _statement_records(spec: StatementSpec) -> Iterator[str]:
    paper = f"{spec.paper_number:03d}"
    date = _ddmmyy(spec.date)
    yield record((1, "00000"), (6, date), (12, "725"), (15, spec.application_code),
                 (17, "D" if spec.duplicate else " "), (25, "0000000001"),
                 (35, spec.holder_name[:26]), (61, "KREDBEBB"), (72, "00123456789"), (128, "2"))
    sign, digits = _amount(spec.old_balance)
    zone = _account_zone(spec.structure, spec.account, spec.currency)
    yield record((1, "1"), (2, spec.structure), (3, paper), (6, zone), (43, sign), (44, digits),
                 (59, _ddmmyy(spec.date - dt.timedelta(days=1))), (65, spec.holder_name[:26]),
                 (91, "Zichtrekening"), (126, f"{spec.coda_sequence:03d}"))
    count = 1
    debit = credit = Decimal(0)
    for sequence, movement in enumerate(spec.movements, start=1):
        if movement.amount < 0:
            debit -= movement.amount
        else:
            credit += movement.amount
        for line in _movement_records(movement, sequence, [0], spec.date, paper):
            count += 1
            yield line
    new = spec.old_balance + credit - debit if spec.new_balance is None else spec.new_balance
    if spec.movements or spec.new_balance is not None or spec.account_8 is not None:
        sign, digits = _amount(new)
        zone = _account_zone(spec.structure, spec.account_8 or spec.account, spec.currency)
        yield record((1, "8"), (2, paper), (5, zone), (42, sign), (43, digits), (58, date),
                     (128, "1" if spec.free_messages else "0"))
        count += 1
    for sequence, text in enumerate(spec.free_messages, start=1):
        yield record((1, "4 "), (3, f"{sequence:04d}0000"), (33, text[:80]))
    yield record((1, "9"), (17, f"{spec.record_count if spec.record_count is not None else count:06d}"),
                 (23, _amount(spec.debit_total if spec.debit_total is not None else debit)[1]),
                 (38, _amount(spec.credit_total if spec.credit_total is not None else credit)[1]), (128, "2"))


def coda_lines(statements: Iterable[StatementSpec]) -> Iterator[str]:
    """The records of a file holding ``statements``, without line ends."""
    for spec in statements:
        yield from _statement_records(spec)


def coda_bytes(statements: Iterable[StatementSpec], *, newline: str = "\n", encoding: str = "cp1252",
               final_newline: bool = True) -> bytes:
    """The file's bytes."""
    text = newline.join(coda_lines(statements))
    return (text + (newline if final_newline else "")).encode(encoding)
