"""Storing bank movements read from CODA files as ``bank_transactions`` rows, each once.

Which node of a movement tree is stored (``specs/banking.md`` §1.12): a simple movement (type 0)
itself; the details of a batch with details (types 1 and 2: each 5/6/7, or the 9s of a 7); a
movement with detail (type 3) as a whole, taking an OGM from its details (105) when it has none;
a batch without details as a whole.

The dedupe key is the statement key (account, CODA sequence, paper number, new-balance date) plus
sequence and detail numbers, so importing a file again, or a re-delivery (``D``), is a no-op.
A file is imported in one transaction: a malformed file (:class:`CodaError`) stores nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import IO, Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from daemon.banking.coda import Movement, Statement, iter_statements
from daemon.db.models import BankTransaction, Enterprise
from daemon.enterprises import EnterpriseError
from daemon.outbox import add_task
from daemon.workers.tasks import MATCH_PAYMENTS

__all__ = ["ImportResult", "import_coda_file", "matchable_movements", "transaction_values"]

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
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        for statement in iter_statements(source, name=label):
            statements += 1
            warnings.extend(f"statement {statements}: {w.message}" for w in statement.warnings)
            enterprise_id = _enterprise_id(conn, statement, given)
            rows = [transaction_values(statement, node, enterprise_id)
                    for top in statement.movements for node in matchable_movements(top)]
            movements += len(rows)
            for row in rows:
                new = conn.execute(insert(BankTransaction).values(**row)
                                   .on_conflict_do_nothing(index_elements=["dedupe_key"])
                                   .returning(BankTransaction.id)).scalar()
                inserted += new is not None
        if inserted and queue_matching:
            add_task(conn, MATCH_PAYMENTS, {}, idempotency_key=f"match_payments:{uuid.uuid4()}")
    return ImportResult(label, statements, movements, inserted, tuple(warnings))
