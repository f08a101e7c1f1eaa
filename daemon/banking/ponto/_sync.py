"""Reading a linked account's transactions from Ponto into ``bank_transactions``.

A sync asks Ponto to synchronize the account with the bank (unless a webhook says it just did),
waits for it, then reads the account's transactions newest first down to ``overlap_days`` before
the newest execution date stored last time (value dates are not ordered, so an overlap is re-read
and deduped by Ponto's id). The rows are stored in one transaction with the account's new cursor,
and ``match_payments`` is queued when something is new. Each transaction is stored under
``ponto:<id>``, and one CODA already stored for the same movement is linked instead (§1.10).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from daemon import metrics
from daemon.banking import is_valid_iban, parse_reference
from daemon.banking.errors import BankingError
from daemon.banking.ponto._client import PontoClient
from daemon.db.models import PontoAccount, utcnow
from daemon.outbox import add_task
from daemon.payments.bank_import import store_movement
from daemon.workers.tasks import MATCH_PAYMENTS

__all__ = ["SyncResult", "store_transactions", "sync_account", "transaction_row"]

log = structlog.get_logger(__name__)

_CENT = Decimal("0.01")
_BRUSSELS = ZoneInfo("Europe/Brussels")


@dataclass(frozen=True)
class SyncResult:
    account_id: str
    status: str  # the synchronization's (success, error, timeout), "skipped" (not requested) or "done"
    read: int
    inserted: int
    linked: int
    known: int


def _day(value: str | None) -> dt.date | None:
    """Ponto's ISO 8601 UTC timestamp as the Belgian calendar day."""
    if not value:
        return None
    stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (stamp.astimezone(_BRUSSELS) if stamp.tzinfo else stamp).date()


def _iban(value: str | None) -> str | None:
    compact = (value or "").replace(" ", "").upper()
    return compact if compact and is_valid_iban(compact, national_check=False) else None


def _reference(attributes: dict[str, Any]) -> str | None:
    text = attributes.get("remittanceInformation") or ""
    if attributes.get("remittanceInformationType") != "structured" or not text:
        return None  # the matcher scans free text for typed OGMs itself
    try:
        found = parse_reference(text)
    except BankingError:
        return None
    return found.value if str(found.kind) in ("ogm", "rf") else None


def transaction_row(tx: dict[str, Any], *, account_iban: str | None, enterprise_id: int | None) -> dict[str, Any]:
    """The ``bank_transactions`` row of one Ponto transaction resource."""
    a = tx["attributes"]
    try:
        amount = Decimal(str(a["amount"])).quantize(_CENT, rounding=ROUND_HALF_EVEN)
    except (InvalidOperation, KeyError):
        raise ValueError(f"Ponto transaction {tx.get('id')}: no usable amount") from None
    name = a.get("counterpartName") or None
    return {
        "enterprise_id": enterprise_id, "source": "ponto", "dedupe_key": f"ponto:{tx['id']}",
        "account_iban": account_iban, "booking_date": _day(a.get("executionDate")),
        "value_date": _day(a.get("valueDate")),
        "amount": amount, "currency": a.get("currency") or "EUR",
        "counterparty_name": name and name[:140], "counterparty_iban": _iban(a.get("counterpartReference")),
        "counterparty_bic": None, "communication": a.get("remittanceInformation") or None,
        "structured_reference": _reference(a),
        "raw": {"ponto_id": tx["id"], "amount": str(a.get("amount")), "end_to_end_id": a.get("endToEndId"),
                "remittance_type": a.get("remittanceInformationType"),
                "counterpart_reference": a.get("counterpartReference"), "description": a.get("description"),
                "bank_transaction_code": a.get("bankTransactionCode"), "execution_date": a.get("executionDate"),
                "value_date": a.get("valueDate")},
    }


def store_transactions(engine: Engine, account: PontoAccount, transactions: Iterable[dict[str, Any]], *,
                       status: str, next_sync_at: dt.datetime | None, queue_key: str) -> SyncResult:
    """Store the rows and the account's new cursor in one transaction; queue matching if new."""
    rows = [transaction_row(tx, account_iban=account.iban, enterprise_id=account.enterprise_id) for tx in transactions]
    outcomes = {"inserted": 0, "linked": 0, "known": 0}
    newest = max((r["booking_date"] for r in rows if r["booking_date"]), default=None)
    with engine.begin() as conn:
        for row in rows:
            outcome = store_movement(conn, row)
            outcomes[outcome] += 1
            metrics.PONTO_TRANSACTIONS.labels(outcome=outcome).inc()
        cursor = account.newest_execution_date
        values: dict[str, Any] = {"last_synced_at": utcnow(), "last_sync_status": status,
                                  "last_error": None if status in ("success", "skipped", "done") else status,
                                  "newest_execution_date": max(d for d in (cursor, newest) if d) if (cursor or newest)
                                  else None}
        if next_sync_at is not None:
            values["next_sync_at"] = next_sync_at
        conn.execute(update(PontoAccount).where(PontoAccount.id == account.id).values(**values))
        if outcomes["inserted"]:
            add_task(conn, MATCH_PAYMENTS, {}, idempotency_key=f"match_payments:{queue_key}")
    return SyncResult(account.account_id, status, len(rows), outcomes["inserted"], outcomes["linked"],
                      outcomes["known"])


def sync_account(engine: Engine, client: PontoClient, account_pk: int, *, overlap_days: int,
                 request_sync: bool = True, requested_at: dt.datetime | None = None,
                 next_sync_at: dt.datetime | None = None,
                 today: Callable[[], dt.date] = dt.date.today) -> SyncResult | None:
    """One sync of a linked account; None when there is nothing to do (unknown or disabled
    account, or it was synced after ``requested_at``: a redelivered task)."""
    with Session(engine, expire_on_commit=False) as session:
        account = session.get(PontoAccount, account_pk)
        if account is not None:
            session.expunge(account)
    if account is None or not account.enabled:
        return None
    if requested_at is not None and account.last_synced_at is not None and account.last_synced_at >= requested_at:
        log.info("ponto.sync_already_done", account=account.account_id)
        return None
    status = "skipped"
    if request_sync:
        sync_id = client.create_synchronization(account.account_id)
        status = client.wait_synchronization(sync_id)
    cutoff = (account.newest_execution_date - dt.timedelta(days=overlap_days)
              if account.newest_execution_date else None)
    read: dict[str, dict[str, Any]] = {}
    for page in client.pages(f"/accounts/{account.account_id}/transactions"):
        for tx in page:
            read[tx["id"]] = tx
        days = [_day(tx["attributes"].get("executionDate")) for tx in page]
        if cutoff is not None and days and all(d is not None and d < cutoff for d in days):
            break  # a whole page before the overlap window: older ones are stored already
    result = store_transactions(engine, account, read.values(), status="success" if status == "skipped" else status,
                                next_sync_at=next_sync_at,
                                queue_key=f"ponto:{account.account_id}:{(requested_at or utcnow()).isoformat()}")
    log.info("ponto.synced", account=account.account_id, status=result.status, read=result.read,
             inserted=result.inserted, linked=result.linked, known=result.known)
    return result
