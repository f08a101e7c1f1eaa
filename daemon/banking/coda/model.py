"""What the CODA parser returns: statements, movements, communications and their parts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from daemon.banking.coda.errors import CodaWarning
from daemon.banking.coda.references import single_ogm, valid_rf

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


_COUNTERPARTY_SETTERS = tuple(getattr(Counterparty, name).__set__ for name in Counterparty.__slots__)


def new_counterparty(name: str | None, account: str | None, iban: str | None, currency: str | None,
                     bic: str | None) -> Counterparty:
    """``Counterparty(name, account, iban, currency, bic)`` at a third of the cost (see :func:`new_communication`)."""
    self = object.__new__(Counterparty)
    set_name, set_account, set_iban, set_currency, set_bic, set_address = _COUNTERPARTY_SETTERS
    set_name(self, name)
    set_account(self, account)
    set_iban(self, iban)
    set_currency(self, currency)
    set_bic(self, bic)
    set_address(self, None)
    return self


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

    def __getattr__(self, name: str) -> Any:
        """The fields that :func:`free_communication` and :func:`rf_communication` leave to be found
        on first read: the OGM a free text may hold takes a scan, an RF its check digits, and many
        readers only want the text. Then they are set, as if decoded at once."""
        if name in _LAZY_FIELDS:
            if not self.structured:
                found = single_ogm(self.text) if len(self.text) >= 12 else None  # an OGM takes 12 digits at least
                _set_ogm(self, found)
                _set_rf(self, None)
                _set_from_text(self, found is not None)
                _set_fields(self, {})
                return getattr(self, name)
            if name == "rf" and self.type == "100":
                _set_rf(self, self.text if self.text and valid_rf(self.text) else None)
                return self.rf
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


class CommunicationBuilder:
    """A :class:`Communication` being filled in: the same slots without the frozen ``__setattr__``
    (whose every store goes through ``object.__setattr__``), so that the parser sets them with plain
    stores, then makes it a ``Communication`` (``__class__`` may change between classes with the same
    slots). Three times quicker than ``Communication(…)``, once per movement."""

    __slots__ = Communication.__slots__

    if TYPE_CHECKING:  # the slots' types, as Communication's
        structured: bool
        raw: str
        type: str | None
        text: str
        ogm: str | None
        rf: str | None
        from_text: bool
        fields: dict[str, Any]


_new = object.__new__


def new_communication(structured: bool, raw: str, kind: str | None, text: str, ogm: str | None, rf: str | None,
                      from_text: bool, fields: dict[str, Any]) -> Communication:
    """``Communication(structured, raw, kind, text, ogm, rf, from_text, fields)``, quicker (see
    :class:`CommunicationBuilder`)."""
    self = _new(CommunicationBuilder)
    self.structured = structured
    self.raw = raw
    self.type = kind
    self.text = text
    self.ogm = ogm
    self.rf = rf
    self.from_text = from_text
    self.fields = fields
    self.__class__ = Communication  # type: ignore[assignment]
    return self  # type: ignore[return-value]


_LAZY_FIELDS = frozenset(("ogm", "rf", "from_text", "fields"))
_SETTERS = {name: getattr(Communication, name).__set__ for name in Communication.__slots__}  # the slots' descriptors
_set_ogm, _set_rf, _set_from_text, _set_fields = (_SETTERS[name] for name in ("ogm", "rf", "from_text", "fields"))


def free_communication(raw: str, text: str) -> Communication:
    """A free communication (``text`` is ``raw`` stripped) whose other fields are found when first
    read (:meth:`Communication.__getattr__`): equal in every field to the eagerly decoded one."""
    self = _new(CommunicationBuilder)
    self.structured = False
    self.raw = raw
    self.type = None
    self.text = text
    self.__class__ = Communication  # type: ignore[assignment]
    return self  # type: ignore[return-value]


def rf_communication(raw: str, reference: str) -> Communication:
    """A structured communication of type 100 (``reference``: its body without spaces, upper case)
    whose ``rf`` is checked when first read (:meth:`Communication.__getattr__`)."""
    self = _new(CommunicationBuilder)
    self.structured = True
    self.raw = raw
    self.type = "100"
    self.text = reference
    self.ogm = None
    self.from_text = False
    self.fields = {"reference": reference}
    self.__class__ = Communication  # type: ignore[assignment]
    return self  # type: ignore[return-value]


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
        flat: list[Movement] = []  # listed first: cheaper per movement than a generator's resumes
        for movement in self.movements:
            if movement.details:
                flat.extend(movement.walk())
            else:
                flat.append(movement)
        return iter(flat)


