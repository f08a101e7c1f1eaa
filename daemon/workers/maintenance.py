"""Housekeeping actors."""

from __future__ import annotations

import datetime as dt

import dramatiq
import structlog

from daemon import metrics
from daemon.outbox.relay import purge_sent_rows
from daemon.workers.context import worker_context
from daemon.workers.tasks import PURGE_OUTBOX

__all__ = ["purge_outbox"]

log = structlog.get_logger(__name__)


@dramatiq.actor(actor_name=PURGE_OUTBOX.actor_name, queue_name=PURGE_OUTBOX.queue_name, max_retries=3)
def purge_outbox(retention_days: int) -> None:
    """Delete outbox rows confirmed more than ``retention_days`` ago. Idempotent by nature."""
    deleted = purge_sent_rows(worker_context().engine, dt.timedelta(days=retention_days))
    metrics.OUTBOX_PURGED_ROWS.inc(deleted)
    log.info("outbox.purged", deleted=deleted, retention_days=retention_days)
