"""``export_document``: deliver one stored document to one exporter's target (export ledger)."""

from __future__ import annotations

import dramatiq
import structlog
from dramatiq.middleware import CurrentMessage, Retries, TimeLimit

from daemon.exports import run_export
from daemon.exports.ledger import DEFAULT_LEASE_SECONDS
from daemon.plugins import get_plugin_manager
from daemon.workers.context import worker_context
from daemon.workers.tasks import EXPORT_DOCUMENT

__all__ = ["export_document_actor", "export_lease_seconds", "is_last_attempt"]

log = structlog.get_logger(__name__)


def is_last_attempt(message: dramatiq.Message | None, broker: dramatiq.Broker) -> bool:
    """Whether the ``Retries`` middleware will give up if this delivery fails.

    ``Retries`` counts earlier failures in ``options["retries"]`` and gives up once that count
    reaches ``max_retries`` (the message's, else the actor's, else the middleware's). Without the
    message (no ``CurrentMessage`` middleware) nothing is known: not the last.
    """
    if message is None:
        return False
    retries = next((m for m in broker.middleware if isinstance(m, Retries)), None)
    if retries is None:
        return True  # nothing will retry it
    actor = broker.get_actor(message.actor_name)
    limit = message.options.get("max_retries") or actor.options.get("max_retries", retries.max_retries)
    return int(message.options.get("retries", 0)) >= int(limit)


def export_lease_seconds(broker: dramatiq.Broker) -> float:
    """How long another delivery of an export may still be running: the ``TimeLimit`` middleware
    interrupts an actor after its limit (a few seconds more for it to notice)."""
    limit = next((m for m in broker.middleware if isinstance(m, TimeLimit)), None)
    return DEFAULT_LEASE_SECONDS if limit is None else limit.time_limit / 1000 + 5


@dramatiq.actor(actor_name=EXPORT_DOCUMENT.actor_name, queue_name=EXPORT_DOCUMENT.queue_name)
def export_document_actor(document_id: int, exporter: str, target: str) -> None:
    """Idempotent: a completed ledger row makes a redelivery a no-op; a failure is retried by
    dramatiq with backoff, and on its last retry the row is marked failed with an event."""
    context = worker_context()
    structlog.contextvars.bind_contextvars(document_id=document_id, exporter=exporter)
    broker = dramatiq.get_broker()
    last = is_last_attempt(CurrentMessage.get_current_message(), broker)
    outcome = run_export(context.engine, context.store, context.secrets, get_plugin_manager(), document_id,
                         exporter, target, last_attempt=last, lease_seconds=export_lease_seconds(broker))
    if not outcome.already_done:
        log.info("export.done", status=outcome.status, error=outcome.error)
