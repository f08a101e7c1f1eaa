"""Storing bank movements read from CODA files as ``bank_transactions`` rows, each once.

Which node of a movement tree is stored (``specs/banking.md`` §1.12): a simple movement (type 0)
itself; the details of a batch with details (types 1 and 2: each 5/6/7, or the 9s of a 7); a
movement with detail (type 3) as a whole, taking an OGM from its details (105) when it has none;
a batch without details as a whole.

The dedupe key is the statement key (account, CODA sequence, paper number, new-balance date) plus
sequence and detail numbers, so importing a file again, or a re-delivery (``D``), is a no-op.
A file is imported in one transaction: a malformed file (:class:`CodaError`) stores nothing.

CODA and Ponto share no id (``specs/banking.md`` §1.10): :func:`same_movement` finds the row another
source already stored for a movement — same account IBAN, booking date and signed amount, plus the
same end-to-end id, OGM/RF or counterparty IBAN — and the importer links to it instead of storing
the movement twice. Each row is linked to at most one movement of the other source.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import IO, Any

from sqlalchemy import Connection, Engine, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from daemon.banking.coda import Movement, Statement, iter_statements
from daemon.db.models import BankTransaction, Enterprise
from daemon.enterprises import EnterpriseError
from daemon.outbox import add_task
from daemon.workers.tasks import MATCH_PAYMENTS

__all__ = ["ImportResult", "import_coda_file", "link_movement", "matchable_movements", "same_movement",
           "store_movement", "transaction_values"]

_CENT = Decimal("0.01")


@dataclass(frozen=True)
class ImportResult:
    file: str
    statements: int
    movements: int  # stored nodes read from the file
    inserted: int  # new rows (0 when the file was imported before)
    warnings: tuple[str, ...]  # statement warnings, "statement N: message"


def matchable_movements(movement: Movement) -> Iterator[Movement]:
    """The nodes of a top-level movement that stand for one payment each (§1.12)."""
    if movement.type in ("1", "2") and movement.details:
        for detail in movement.details:
            if detail.type == "7" and detail.details:
                yield from detail.details
            else:
                yield detail
    else:
        yield movement


def _reference(movement: Movement) -> str | None:
    comm = movement.communication
    if comm.ogm or comm.rf:
        return comm.ogm or comm.rf
    if movement.type == "3":  # use the OGM of its details (105) as evidence
        for child in movement.walk():
            if child.communication.ogm:
                return child.communication.ogm
    return None


def transaction_values(statement: Statement, movement: Movement, enterprise_id: int | None) -> dict[str, Any]:
    """The ``bank_transactions`` row of one stored node."""
    comm = movement.communication
    party = movement.counterparty
    return {
        "enterprise_id": enterprise_id, "source": "coda", "dedupe_key": statement.movement_key(movement)[:200],
        "account_iban": (statement.account.iban or statement.account.number or None),
        "booking_date": movement.entry_date or statement.new_balance_date, "value_date": movement.value_date,
        "amount": movement.amount.quantize(_CENT, rounding=ROUND_HALF_EVEN),
        "currency": statement.account.currency or "EUR",
        "counterparty_name": (party.name or None) and party.name[:140], "counterparty_iban": party.iban,
        "counterparty_bic": (party.bic or None) and party.bic[:11],
        "communication": comm.text or None, "structured_reference": _reference(movement),
        "raw": {"file": statement.file, "statement": statement.key, "digest": statement.digest,
                "sequence": movement.sequence, "detail": movement.detail, "type": movement.type,
                "transaction_code": movement.transaction_code.code, "bank_reference": movement.bank_reference,
                "amount": str(movement.amount), "communication_type": comm.type,
                "end_to_end_id": movement.end_to_end_id, "duplicate": statement.header.duplicate},
    }


def _evidence(row: dict[str, Any]) -> dict[str, str]:
    raw = row.get("raw") or {}
    found = {"end_to_end_id": raw.get("end_to_end_id"), "reference": row.get("structured_reference"),
             "counterparty_iban": row.get("counterparty_iban")}
    return {key: str(value).replace(" ", "").upper() for key, value in found.items()
            if value and str(value).strip().upper() not in ("", "NOTPROVIDED")}


def same_movement(conn: Connection, row: dict[str, Any]) -> int | None:
    """The id of the row another source stored for the movement ``row`` describes, if any (§1.10):
    same account IBAN, booking date and signed amount, and one of end-to-end id, OGM/RF or
    counterparty IBAN equal. A row already linked to another movement of ``row``'s source is
    not a candidate (two equal transfers on one day stay two)."""
    if not row.get("account_iban") or row.get("booking_date") is None:
        return None
    mine = _evidence(row)
    if not mine:
        return None
    candidates = conn.execute(select(BankTransaction.id, BankTransaction.dedupe_key, BankTransaction.raw,
                                     BankTransaction.structured_reference, BankTransaction.counterparty_iban)
                              .where(BankTransaction.source != row["source"],
                                     BankTransaction.account_iban == row["account_iban"],
                                     BankTransaction.booking_date == row["booking_date"],
                                     BankTransaction.amount == row["amount"])
                              .order_by(BankTransaction.id)).all()
    for candidate in candidates:
        linked = (candidate.raw or {}).get("linked_key")
        if linked is not None and linked != row["dedupe_key"]:
            continue
        theirs = _evidence({"raw": candidate.raw, "structured_reference": candidate.structured_reference,
                            "counterparty_iban": candidate.counterparty_iban})
        if linked == row["dedupe_key"] or any(theirs.get(key) == value for key, value in mine.items()):
            return int(candidate.id)
    return None


def link_movement(conn: Connection, row_id: int, dedupe_key: str) -> None:
    """Note on row ``row_id`` that the other source's movement ``dedupe_key`` is the same one."""
    raw = conn.scalar(select(BankTransaction.raw).where(BankTransaction.id == row_id)) or {}
    if raw.get("linked_key") != dedupe_key:
        conn.execute(update(BankTransaction).where(BankTransaction.id == row_id)
                     .values(raw={**raw, "linked_key": dedupe_key}))


def _lock_account(conn: Connection, account_iban: str | None) -> None:
    """On PostgreSQL, serialise the writers of one account until the transaction ends: a CODA import
    and a Ponto sync storing the same movement at the same instant would each miss the other's
    uncommitted row and both insert it. SQLite's writers are serialised already (BEGIN IMMEDIATE)."""
    if conn.dialect.name != "postgresql" or not account_iban:
        return
    transaction = conn.get_transaction()
    held = conn.info.get("bank_account_locks")
    if held is None or held[0] is not transaction:  # transaction-scoped locks: forget the last one's
        held = conn.info["bank_account_locks"] = (transaction, set())
    if account_iban not in held[1]:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                     {"key": f"eboxd.bank_account:{account_iban}"})
        held[1].add(account_iban)


def store_movement(conn: Connection, row: dict[str, Any]) -> str:
    """Store one movement once: ``inserted``, ``known`` (its dedupe key is stored) or ``linked``
    (another source stored it: linked, not stored again)."""
    if conn.scalar(select(BankTransaction.id).where(BankTransaction.dedupe_key == row["dedupe_key"])) is not None:
        return "known"
    _lock_account(conn, row.get("account_iban"))
    twin = same_movement(conn, row)
    if twin is not None:
        link_movement(conn, twin, row["dedupe_key"])
        return "linked"
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    new = conn.execute(insert(BankTransaction).values(**row).on_conflict_do_nothing(index_elements=["dedupe_key"])
                       .returning(BankTransaction.id)).scalar()
    return "inserted" if new is not None else "known"


def _enterprise_id(conn: Connection, statement: Statement, given: int | None) -> int | None:
    if given is not None:
        return given
    holder = statement.header.holder_id
    number = holder[-10:] if len(holder) >= 10 and holder[-10:].isdigit() else None
    if number is None:
        return None
    return conn.scalar(select(Enterprise.id).where(Enterprise.number == number))


def import_coda_file(engine: Engine, source: str | os.PathLike[str] | IO[bytes] | bytes, *,
                     name: str | None = None, enterprise_number: str | None = None,
                     queue_matching: bool = True) -> ImportResult:
    """Store every movement of a CODA file once; queue ``match_payments`` if something is new.

    The enterprise is ``enterprise_number`` if given, else the one whose number is in the header's
    holder id (record 0 columns 72–82), else none.
    """
    statements = movements = inserted = 0
    warnings: list[str] = []
    label = name or (str(source) if isinstance(source, (str, os.PathLike)) else "<stream>")
    with engine.begin() as conn:
        given: int | None = None
        if enterprise_number is not None:
            given = conn.scalar(select(Enterprise.id).where(Enterprise.number == enterprise_number))
            if given is None:
                raise EnterpriseError(f"no enterprise {enterprise_number}: `eboxd enterprise list` shows them")
        for statement in iter_statements(source, name=label):
            statements += 1
            warnings.extend(f"statement {statements}: {w.message}" for w in statement.warnings)
            enterprise_id = _enterprise_id(conn, statement, given)
            rows = [transaction_values(statement, node, enterprise_id)
                    for top in statement.movements for node in matchable_movements(top)]
            movements += len(rows)
            for row in rows:
                inserted += store_movement(conn, row) == "inserted"
        if inserted and queue_matching:
            add_task(conn, MATCH_PAYMENTS, {}, idempotency_key=f"match_payments:{uuid.uuid4()}")
    return ImportResult(label, statements, movements, inserted, tuple(warnings))
