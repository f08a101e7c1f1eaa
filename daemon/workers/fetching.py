"""``fetch_message``: store one message's documents and its payment request."""

from __future__ import annotations

import dramatiq
import structlog

from daemon import metrics
from daemon.fetch import failure_reason, fetch_message, record_fetch_failure
from daemon.workers.context import worker_context
from daemon.workers.tasks import FETCH_MESSAGE

__all__ = ["fetch_message_actor"]

log = structlog.get_logger(__name__)


@dramatiq.actor(actor_name=FETCH_MESSAGE.actor_name, queue_name=FETCH_MESSAGE.queue_name)
def fetch_message_actor(message_id: int) -> None:
    """Idempotent: a fetched message is left alone; a failure leaves it pending and dramatiq
    retries with backoff (bounded under RabbitMQ's ack timeout)."""
    context = worker_context()
    structlog.contextvars.bind_contextvars(message_row=message_id)
    try:
        outcome = fetch_message(context.engine, context.access, context.store, context.config, message_id)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        reason = failure_reason(exc)
        metrics.FETCH_FAILURES.labels(reason=reason).inc()
        log.warning("fetch.failed", reason=reason, error=error)
        record_fetch_failure(context.engine, message_id, error)
        raise  # dramatiq retries with backoff; after its last retry serve queues it again later
    metrics.DOCUMENTS_STORED.inc(outcome.documents)
    metrics.DOCUMENT_BYTES.inc(outcome.bytes)
    if outcome.payment_status:
        metrics.PAYMENT_REQUESTS.labels(status=outcome.payment_status).inc()
    if not outcome.already_fetched:
        log.info("fetch.done", documents=outcome.documents, bytes=outcome.bytes,
                 payment_request=outcome.payment_request, skipped=outcome.skipped or None)
