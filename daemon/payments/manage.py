"""Stored payment requests as people handle them: find one by document, correct its fields
(validated, recorded as ``manual``, re-announced with ``be.eboxd.payment.requested``), and turn it
into an EPC069-12 ("SEPA QR") payload.

Every refusal is a :class:`PaymentRefused` whose message names the field and what is wrong.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from daemon.banking import BankingError, parse_bic, parse_iban, parse_reference
from daemon.banking.references import ReferenceKind
from daemon.db.models import Document, Enterprise, Message, PaymentRequest
from daemon.errors import EboxdError
from daemon.outbox import add_event
from daemon.payments.requests import REVIEWS_KEY, event_data

__all__ = [
    "EPC_MAX_AMOUNT",
    "EPC_MAX_BYTES",
    "EditResult",
    "PaymentNotFound",
    "PaymentRefused",
    "edit_payment_request",
    "epc_payload",
    "find_payment_request",
    "validate_changes",
]

EPC_MIN_AMOUNT = Decimal("0.01")
EPC_MAX_AMOUNT = Decimal("999999999.99")
EPC_MAX_BYTES = 331
NAME_MAX = 70  # EPC069-12 field 6
REFERENCE_MAX = 35  # the stored column, and EPC field 10
_FIELD_COLUMN = {"amount": "amount", "iban": "iban", "bic": "bic", "reference": "reference",
                 "due_date": "due_date", "beneficiary": "beneficiary_name"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class PaymentRefused(EboxdError):
    """A value or an action on a payment request is refused; the message says why."""


class PaymentNotFound(EboxdError):
    """No document, or no payment request for it."""


def find_payment_request(session: Session, document_id: int, *, lock: bool = False) -> PaymentRequest:
    """The payment request of document ``document_id`` (that of its message)."""
    message_id = session.scalar(select(Document.message_id).where(Document.id == document_id))
    if message_id is None:
        raise PaymentNotFound(f"no document with id {document_id}: `eboxd messages list` and "
                              "`eboxd messages show ID` show the ids")
    query = select(PaymentRequest).where(PaymentRequest.message_id == message_id)
    request = session.scalar(query.with_for_update() if lock else query)
    if request is None:
        raise PaymentNotFound(f"document {document_id} has no payment request")
    return request


# --- validation -------------------------------------------------------------------------------

def _amount(text: str) -> Decimal:
    cleaned = text.strip().replace("\u00a0", "").replace(" ", "")
    if cleaned.upper().startswith("EUR"):
        cleaned = cleaned[3:]
    if "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise PaymentRefused(f"amount {text!r}: not a number; write it like 1234.56") from None
    if not value.is_finite():
        raise PaymentRefused(f"amount {text!r}: not a number; write it like 1234.56")
    if value.as_tuple().exponent < -2 and value != value.quantize(Decimal("0.01")):  # type: ignore[operator]
        raise PaymentRefused(f"amount {text!r}: more than 2 decimals")
    if value <= 0:
        raise PaymentRefused(f"amount {text!r}: must be positive")
    if value < EPC_MIN_AMOUNT or value > EPC_MAX_AMOUNT:
        raise PaymentRefused(f"amount {text!r}: must be between {EPC_MIN_AMOUNT} and {EPC_MAX_AMOUNT} "
                             "(the SEPA transfer and EPC QR limits)")
    return value.quantize(Decimal("0.01"))


def _due_date(text: str) -> dt.date:
    try:
        value = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise PaymentRefused(f"due date {text!r}: not a date; write it as YYYY-MM-DD (e.g. 2026-12-31)") from None
    if not dt.date(2000, 1, 1) <= value <= dt.date(2099, 12, 31):
        raise PaymentRefused(f"due date {text!r}: outside 2000-01-01 … 2099-12-31")
    return value


def _name(text: str) -> str:
    value = " ".join(text.split())
    if not value:
        raise PaymentRefused("name: is empty")
    if _CONTROL.search(text.replace("\t", " ").replace("\n", " ")):
        raise PaymentRefused(f"name {text!r}: contains control characters")
    if len(value) > NAME_MAX:
        raise PaymentRefused(f"name {text!r}: has {len(value)} characters; a SEPA beneficiary name has at most "
                             f"{NAME_MAX}")
    return value


def validate_changes(raw: dict[str, str | None]) -> dict[str, Any]:
    """Checked column values from the options given (field name → text; None = not given).

    Fields: ``amount``, ``iban``, ``bic``, ``reference``, ``due_date``, ``beneficiary``. The result
    maps column names to values; a reference also sets ``reference_kind``.
    """
    changes: dict[str, Any] = {}
    try:
        if raw.get("amount") is not None:
            changes["amount"] = _amount(str(raw["amount"]))
        if raw.get("iban") is not None:
            changes["iban"] = parse_iban(str(raw["iban"]))
        if raw.get("bic") is not None:
            changes["bic"] = parse_bic(str(raw["bic"]))
        if raw.get("reference") is not None:
            reference = parse_reference(str(raw["reference"]))
            if len(reference.value) > REFERENCE_MAX:
                raise PaymentRefused(f"reference {raw['reference']!r}: has {len(reference.value)} characters; "
                                     f"a stored reference has at most {REFERENCE_MAX}")
            changes["reference"] = reference.value
            changes["reference_kind"] = str(reference.kind)
    except BankingError as exc:
        raise PaymentRefused(str(exc)) from None
    if raw.get("due_date") is not None:
        changes["due_date"] = _due_date(str(raw["due_date"]))
    if raw.get("beneficiary") is not None:
        changes["beneficiary_name"] = _name(str(raw["beneficiary"]))
    return changes


# --- editing ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class EditResult:
    request_id: int
    version: int
    changed: tuple[str, ...]  # field names (FIELD_NAMES spelling)
    status: str


def edit_payment_request(engine: Engine, document_id: int, raw: dict[str, str | None], *,
                         now: dt.datetime | None = None) -> EditResult:
    """Apply validated manual corrections to the payment request of ``document_id``.

    Unchanged values are ignored; if something changed, the request's version goes up, the
    fields' sources become ``manual`` (with the previous value kept), review reasons about
    those fields are dropped (a request left without reasons goes from ``review`` to ``open``),
    and ``be.eboxd.payment.requested`` is queued again under ``payment.requested:<id>:<version>``.
    """
    changes = validate_changes(raw)
    if not changes:
        raise PaymentRefused("nothing to change: give at least one of --amount, --iban, --bic, --reference, "
                             "--due-date, --name")
    stamp = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    with Session(engine) as session, session.begin():
        # the row is locked where the database can (PostgreSQL); SQLite serialises writers anyway
        current = find_payment_request(session, document_id, lock=True)
        if current.status == "paid":
            raise PaymentRefused(f"payment request {current.id} is already paid; it cannot be edited")
        values = {column: getattr(current, column) for column in (*_FIELD_COLUMN.values(), "reference_kind")}
        changed = tuple(name for name, column in _FIELD_COLUMN.items()
                        if column in changes and changes[column] != values[column])
        if not changed:
            return EditResult(current.id, current.version, (), current.status)
        sources = dict(current.field_sources or {})
        for name in changed:
            previous = values[_FIELD_COLUMN[name]]
            sources[name] = {"source": "manual", "confidence": 1.0, "edited_at": stamp,
                             "previous": None if previous is None else str(previous)}
        reviews = [r for r in sources.get(REVIEWS_KEY) or []
                   if not (isinstance(r, dict) and r.get("field") in changed)]
        if reviews:
            sources[REVIEWS_KEY] = reviews
        else:
            sources.pop(REVIEWS_KEY, None)
        status = "open" if current.status == "review" and not reviews else current.status
        version = current.version + 1
        update = {**changes, "field_sources": sources, "status": status, "version": version}
        for column, value in update.items():
            setattr(current, column, value)
        session.flush()
        number, ebox_id = session.execute(
            select(Enterprise.number, Message.ebox_message_id).join(Message, Message.enterprise_id == Enterprise.id)
            .where(Message.id == current.message_id)).one()
        row = {**{c: getattr(current, c) for c in ("id", "document_id", "currency")}, **values, **update}
        add_event(session, "be.eboxd.payment.requested", subject=number,
                  idempotency_key=f"payment.requested:{current.id}:{version}",
                  data=event_data(row, number, ebox_id))
        return EditResult(current.id, version, changed, status)


# --- EPC QR -----------------------------------------------------------------------------------

def epc_payload(request: PaymentRequest) -> bytes:
    """The EPC069-12 payload (version 002, UTF-8) of a payment request, or :class:`PaymentRefused`
    when it cannot be paid by a SEPA credit transfer as it stands.

    OGM and RF go in the structured-reference field (10), as 12 digits / electronic RF; a free
    reference in the unstructured field (11). Trailing empty fields are dropped.
    """
    where = f"payment request {request.id}"
    if not request.iban:
        raise PaymentRefused(f"{where} has no IBAN: set it with `eboxd payment edit DOC --iban …`")
    if (request.currency or "EUR") != "EUR":
        raise PaymentRefused(f"{where} is in {request.currency}; an EPC QR code pays euros only")
    if request.amount is None:
        raise PaymentRefused(f"{where} has no amount: set it with `eboxd payment edit DOC --amount …`")
    amount = Decimal(request.amount)
    if not EPC_MIN_AMOUNT <= amount <= EPC_MAX_AMOUNT or amount != amount.quantize(Decimal("0.01")):
        raise PaymentRefused(f"{where}: amount {amount} is outside {EPC_MIN_AMOUNT} … {EPC_MAX_AMOUNT} "
                             "or has more than 2 decimals")
    if not request.beneficiary_name:
        raise PaymentRefused(f"{where} has no beneficiary name (mandatory in an EPC QR code): set it with "
                             "`eboxd payment edit DOC --name …`")
    try:
        iban = parse_iban(request.iban)
        bic = parse_bic(request.bic) if request.bic else ""
    except BankingError as exc:
        raise PaymentRefused(f"{where}: {exc}") from None
    name = " ".join(request.beneficiary_name.split())[:NAME_MAX]
    structured = unstructured = ""
    if request.reference:
        kind = request.reference_kind
        if kind in (ReferenceKind.OGM, ReferenceKind.RF):
            structured = request.reference
        else:
            unstructured = request.reference[:140]
    fields = ["BCD", "002", "1", "SCT", bic, name, iban, f"EUR{amount:.2f}", "", structured, unstructured]
    while fields and not fields[-1]:
        fields.pop()
    payload = "\n".join(fields).encode("utf-8")
    if len(payload) > EPC_MAX_BYTES:
        raise PaymentRefused(f"{where}: the EPC payload has {len(payload)} bytes, more than {EPC_MAX_BYTES}")
    return payload
