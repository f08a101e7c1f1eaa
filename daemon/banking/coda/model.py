"""What the CODA parser returns: statements, movements, communications and their parts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from daemon.banking.coda.errors import CodaWarning

__all__ = ["Account", "Communication", "Counterparty", "Header", "Information", "Movement", "Statement",
           "TransactionCode"]


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


_new = object.__new__
_SETTERS = {name: getattr(Communication, name).__set__ for name in Communication.__slots__}  # the slots' descriptors
_set_structured, _set_raw, _set_type, _set_text = (_SETTERS[name] for name in ("structured", "raw", "type", "text"))
_set_ogm, _set_rf, _set_from_text, _set_fields = (_SETTERS[name] for name in ("ogm", "rf", "from_text", "fields"))


def new_communication(structured: bool, raw: str, kind: str | None, text: str, ogm: str | None, rf: str | None,
                      from_text: bool, fields: dict[str, Any]) -> Communication:
    """``Communication(…)`` in half the time, once per movement: a frozen dataclass's ``__init__``
    sets each field through ``object.__setattr__``, the slots' own setters are quicker."""
    self = _new(Communication)
    _set_structured(self, structured)
    _set_raw(self, raw)
    _set_type(self, kind)
    _set_text(self, text)
    _set_ogm(self, ogm)
    _set_rf(self, rf)
    _set_from_text(self, from_text)
    _set_fields(self, fields)
    return self


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
            if child.details:
                yield from child.walk()
            else:  # most details have none: no generator per leaf
                yield child


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
        """Every movement, each followed by its details depth first."""
        for movement in self.movements:
            if movement.details:
                yield from movement.walk()
            else:
                yield movement


