"""Banking actors: ``import_coda`` (store a CODA file's movements once) and ``match_payments``
(pay payment requests with them). Both are idempotent: a redelivered task changes nothing."""

from __future__ import annotations

import dramatiq
import structlog

from daemon.banking.coda import CodaError
from daemon.payments.bank_import import import_coda_file
from daemon.payments.matching import match_payments
from daemon.workers.context import worker_context
from daemon.workers.tasks import IMPORT_CODA, MATCH_PAYMENTS

__all__ = ["import_coda", "match_payments_actor"]

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
