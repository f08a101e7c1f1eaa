"""Banking actors: ``import_coda`` (store a CODA file's movements once), ``sync_ponto`` (read a
linked account's transactions from Ponto) and ``match_payments`` (pay payment requests with them).
All are idempotent: a redelivered task changes nothing."""

from __future__ import annotations

import datetime as dt

import dramatiq
import structlog
from sqlalchemy import select, update

from daemon.banking.coda import CodaError
from daemon.banking.ponto import PontoClient, PontoSettings, sync_account
from daemon.credentials import NeedsReconnect, TokenStore
from daemon.db.models import Enterprise, PontoAccount
from daemon.payments.bank_import import import_coda_file
from daemon.payments.matching import match_payments
from daemon.workers.context import worker_context
from daemon.workers.tasks import IMPORT_CODA, MATCH_PAYMENTS, SYNC_PONTO

__all__ = ["import_coda", "match_payments_actor", "sync_ponto"]

log = structlog.get_logger(__name__)


@dramatiq.actor(actor_name=IMPORT_CODA.actor_name, queue_name=IMPORT_CODA.queue_name, max_retries=3,
                throws=(CodaError,))
def import_coda(path: str, enterprise_number: str | None = None) -> None:
    """Import the CODA file at ``path`` (movements stored once by their dedupe key); queues
    ``match_payments`` when something new was stored. A malformed file is not retried."""
    try:
        result = import_coda_file(worker_context().engine, path, enterprise_number=enterprise_number)
    except CodaError as exc:
        log.warning("coda.rejected", file=path, error=str(exc))
        raise
    log.info("coda.imported", file=path, statements=result.statements, movements=result.movements,
             inserted=result.inserted, warnings=len(result.warnings))


@dramatiq.actor(actor_name=MATCH_PAYMENTS.actor_name, queue_name=MATCH_PAYMENTS.queue_name, max_retries=5)
def match_payments_actor() -> None:
    """Examine the bank transactions not examined yet; each is examined once (its ``match_state``
    is set in the transaction that records what it pays), so a redelivery finds nothing to do."""
    context = worker_context()
    banking = context.config.banking
    result = match_payments(context.engine, window_days=banking.match_window_days,
                            confidence_threshold=banking.match_confidence_threshold)
    log.info("payments.matched", examined=result.examined, paid=result.matched, partial=result.partial,
             suggested=result.suggested, unmatched=result.unmatched)


@dramatiq.actor(actor_name=SYNC_PONTO.actor_name, queue_name=SYNC_PONTO.queue_name, max_retries=5,
                throws=(NeedsReconnect,))
def sync_ponto(account_pk: int, requested_at: str, request_sync: bool = True) -> None:
    """Read a linked Ponto account's transactions (asking Ponto to synchronize it first unless
    ``request_sync`` is false: a webhook said it just did) and store them once; queues
    ``match_payments`` when something is new. A task redelivered after the account was synced
    since ``requested_at`` does nothing. A connection needing a person (reconnect) is not retried."""
    context = worker_context()
    engine = context.engine
    with engine.connect() as conn:
        number = conn.scalar(select(Enterprise.number).join(PontoAccount, PontoAccount.enterprise_id == Enterprise.id)
                             .where(PontoAccount.id == account_pk))
    if number is None:
        log.info("ponto.sync_unknown_account", account_pk=account_pk)
        return
    settings = PontoSettings.from_config(context.config)
    interval = dt.timedelta(seconds=context.config.ponto.sync_interval_seconds)
    try:
        with PontoClient(settings, TokenStore(engine, context.secrets), number) as client:
            sync_account(engine, client, account_pk, overlap_days=settings.overlap_days, request_sync=request_sync,
                         requested_at=dt.datetime.fromisoformat(requested_at),
                         next_sync_at=dt.datetime.now(dt.UTC) + interval)
    except Exception as exc:
        # `eboxd bank ponto status` shows why the account is behind while dramatiq retries.
        with engine.begin() as conn:
            conn.execute(update(PontoAccount).where(PontoAccount.id == account_pk).values(
                last_sync_status="failed", last_error=f"{type(exc).__name__}: {exc}"[:500]))
        raise
