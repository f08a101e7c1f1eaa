"""Failed fetches: recorded on the message, and queued again once dramatiq's retries are spent.

dramatiq retries a failed fetch with backoff for a while (about 75 minutes with the defaults); an
e-Box outage can outlast that. The message then stays pending with its last error, and a periodic
job of ``eboxd serve`` queues its fetch again ``[documents] refetch_after_seconds`` after the last
failure, once per failure, until it succeeds.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, Engine, select, update

from daemon.db.models import Message, utcnow
from daemon.outbox import add_task
from daemon.store import StoreError
from daemon.workers.tasks import FETCH_MESSAGE

__all__ = ["failure_reason", "record_fetch_failure", "requeue_failed_fetches"]

REQUEUE_BATCH = 500


def failure_reason(exc: BaseException) -> str:
    """A bounded label for a failed fetch: the store's reason (``disk_full``, ``read_only``, …) when
    the document store refused, else the error's type."""
    if isinstance(exc, StoreError):
        return exc.reason
    return type(exc).__name__[:40]


def record_fetch_failure(engine: Engine, message_id: int, error: str) -> None:
    with engine.begin() as tx:
        tx.execute(update(Message).where(Message.id == message_id, Message.fetch_state == "pending").values(
            fetch_attempts=Message.fetch_attempts + 1, fetch_failed_at=utcnow(), fetch_error=error[:2000]))


def requeue_failed_fetches(tx: Connection, refetch_after: dt.timedelta, now: dt.datetime | None = None) -> int:
    """Queue a fetch for pending messages whose last failure is older than ``refetch_after``.

    The task's key names the failure count, so the same failure is queued once, however often
    this runs; a new failure gives a new key."""
    now = now or utcnow()
    rows = tx.execute(
        select(Message.id, Message.fetch_attempts)
        .where(Message.fetch_state == "pending", Message.fetch_failed_at < now - refetch_after)
        .order_by(Message.fetch_failed_at).limit(REQUEUE_BATCH)
    ).all()
    queued = 0
    for message_id, attempts in rows:
        queued += add_task(tx, FETCH_MESSAGE, {"message_id": message_id},
                           idempotency_key=f"fetch:{message_id}:after-failure:{attempts}")
    return queued
