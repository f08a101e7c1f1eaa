"""The outbox relay: publishes committed outbox rows to RabbitMQ and marks them sent after the confirm.

A crash between the broker's confirm and our commit publishes the batch again on restart: the
duplicates carry the same CloudEvents ``id`` / dramatiq ``message_id``, so consumers can dedupe.
Nothing is marked sent without a confirm, so nothing is lost.

The database going away is not a crash: the relay backs off and retries, like for the broker. A
batch confirmed by the broker whose commit then failed is remembered (its keys, in memory), and
marked sent at the next round without being published again: a database restart sends nothing twice.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dramatiq
import pika
import structlog
from sqlalchemy import Connection, Engine, Row, delete, func, select, update
from sqlalchemy.exc import DBAPIError

from daemon import metrics
from daemon.db.models import OutboxRow, utcnow
from daemon.events.cloudevents import CONTENT_TYPE
from daemon.outbox.amqp import BatchResult, ConfirmingPublisher, Outgoing

__all__ = ["OutboxRelay", "RelayRound", "purge_sent_rows"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RelayRound:
    published: int = 0
    failed: int = 0
    broker_error: str | None = None
    database_error: str | None = None


# Keys confirmed whose marking failed are kept at most this many batches' worth (another node may
# have marked those rows since: then they are never seen again here).
_UNRECORDED_BATCHES = 10


class OutboxRelay:
    def __init__(self, engine: Engine, publisher: ConfirmingPublisher, *, batch_size: int = 500,
                 max_backoff_seconds: float = 300.0) -> None:
        self.engine = engine
        self.publisher = publisher
        self.batch_size = batch_size
        self.max_backoff_seconds = max_backoff_seconds
        self.last_round_at = time.monotonic()  # the serve loop checks the relay is not stuck
        self.broker_up = True
        self.database_up = True
        self.pending = 0
        # Confirmed by the broker, not yet marked sent: a failed commit must not mean a second publish.
        self._confirmed_unrecorded: set[str] = set()

    def relay_once(self) -> RelayRound:
        """Publish one batch of due rows. Holds the rows (FOR UPDATE SKIP LOCKED on PostgreSQL, the
        write lock on SQLite) until their outcome is recorded, so two relays never send one row."""
        started = time.perf_counter()
        now = utcnow()
        result: BatchResult | None = None
        try:
            with self.engine.begin() as tx:
                rows = tx.execute(
                    select(OutboxRow.id, OutboxRow.event_id, OutboxRow.kind, OutboxRow.topic,
                           OutboxRow.queue_name, OutboxRow.payload, OutboxRow.created_at, OutboxRow.attempts)
                    .where(OutboxRow.sent_at.is_(None), OutboxRow.available_at <= now)
                    .order_by(OutboxRow.id).limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                ).all()
                if not rows:
                    return RelayRound()
                unrecorded = self._confirmed_unrecorded
                result = self.publisher.publish_batch(
                    self._outgoing(row) for row in rows if row.event_id not in unrecorded)
                result.confirmed[:0] = [row.event_id for row in rows if row.event_id in unrecorded]
                self._record(tx, rows, result, now)
        except DBAPIError:
            if result is not None:  # confirmed, but the commit marking them sent failed
                if len(self._confirmed_unrecorded) > _UNRECORDED_BATCHES * self.batch_size:
                    self._confirmed_unrecorded.clear()
                self._confirmed_unrecorded.update(result.confirmed)
            raise
        self._confirmed_unrecorded.difference_update(result.confirmed)
        metrics.OUTBOX_RELAY_BATCH_SECONDS.observe(time.perf_counter() - started)
        return RelayRound(published=len(result.confirmed), failed=len(result.failed),
                          broker_error=result.broker_error)

    def run(self, stop: threading.Event, *, idle_interval: float = 0.5, max_pause: float = 30.0) -> None:
        """Relay until ``stop`` is set, pausing with capped exponential backoff while the broker is down."""
        pause = idle_interval
        while not stop.is_set():
            self.last_round_at = time.monotonic()
            try:
                outcome = self.relay_once()
            except DBAPIError as exc:
                outcome = RelayRound(database_error=str(exc.orig or exc).splitlines()[0][:300])
            if outcome.database_error:
                self.database_up = False
                pause = _back_off(stop, "outbox.database_unavailable", outcome.database_error, pause, max_pause)
                continue
            if not self.database_up:
                log.info("outbox.database_available")
                self.database_up = True
            if outcome.broker_error:
                self.broker_up = False
                pause = _back_off(stop, "outbox.broker_unavailable", outcome.broker_error, pause, max_pause)
                continue
            if not self.broker_up:
                log.info("outbox.broker_available")
            self.broker_up = True
            pause = idle_interval
            if outcome.published == 0:
                self.publisher.sleep(idle_interval)

    def refresh_gauges(self) -> None:
        with self.engine.connect() as conn:
            count, oldest = conn.execute(
                select(func.count(), func.min(OutboxRow.created_at)).where(OutboxRow.sent_at.is_(None))
            ).one()
        self.pending = int(count)
        metrics.OUTBOX_PENDING.set(count)
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=dt.UTC)
        metrics.OUTBOX_OLDEST_PENDING.set((utcnow() - oldest).total_seconds() if oldest else 0)

    # -- internals ------------------------------------------------------------------------------

    def _outgoing(self, row: Row[Any]) -> Outgoing:
        if row.kind == "event":
            return Outgoing(
                key=row.event_id, exchange=self.publisher.events_exchange, routing_key=row.topic,
                body=json.dumps(row.payload, separators=(",", ":")).encode(),
                properties=pika.BasicProperties(
                    content_type=CONTENT_TYPE, delivery_mode=2, message_id=row.event_id, type=row.topic,
                ),
            )
        created_ms = int(row.created_at.timestamp() * 1000)
        message = dramatiq.Message(queue_name=row.queue_name, actor_name=row.topic, args=(),
                                   kwargs=row.payload, options={}, message_id=row.event_id,
                                   message_timestamp=created_ms)
        return Outgoing(
            key=row.event_id, exchange="", routing_key=row.queue_name, body=message.encode(),
            properties=pika.BasicProperties(delivery_mode=2, message_id=row.event_id),
            mandatory=True, queue=row.queue_name,
        )

    def _record(self, tx: Connection, rows: Sequence[Row[Any]], result: BatchResult, now: dt.datetime) -> None:
        by_event = {row.event_id: row for row in rows}
        if result.confirmed:
            ids = [by_event[key].id for key in result.confirmed]
            tx.execute(update(OutboxRow).where(OutboxRow.id.in_(ids)).values(sent_at=now))
            for kind, count in Counter(by_event[key].kind for key in result.confirmed).items():
                metrics.OUTBOX_PUBLISHED.labels(kind=kind).inc(count)
        if result.in_doubt:
            # Say which: whoever counts deliveries on the exchange can tell a resend from a bug.
            log.warning("outbox.publish_in_doubt", count=len(result.in_doubt), event_ids=result.in_doubt,
                        reason=result.broker_error or "no confirm before the timeout")
        if result.broker_error:
            # The broker is down, not these rows: leave them due, the run loop backs off instead.
            metrics.OUTBOX_PUBLISH_FAILURES.labels(reason="broker_unavailable").inc()
            return
        for key, reason in result.failed.items():
            row = by_event[key]
            delay = min(2 ** row.attempts, self.max_backoff_seconds) * random.uniform(0.8, 1.2)  # noqa: S311
            tx.execute(update(OutboxRow).where(OutboxRow.id == row.id).values(
                attempts=row.attempts + 1, last_error=reason[:1000],
                available_at=now + dt.timedelta(seconds=delay)))
            metrics.OUTBOX_PUBLISH_FAILURES.labels(reason=reason.split(":")[0][:40]).inc()
            log.warning("outbox.publish_refused", event_id=key, topic=row.topic, reason=reason)



def purge_sent_rows(engine: Engine, older_than: dt.timedelta) -> int:
    """Delete rows confirmed by the broker longer ago than ``older_than``; pending rows are kept."""
    with engine.begin() as tx:
        result = tx.execute(
            delete(OutboxRow).where(OutboxRow.sent_at.is_not(None), OutboxRow.sent_at < utcnow() - older_than)
        )
    return int(result.rowcount)


def _back_off(stop: threading.Event, event: str, error: str, pause: float, max_pause: float) -> float:
    """Say why this round relayed nothing, wait ``pause`` (less if stopped); returns the next pause, doubled."""
    log.warning(event, error=error, retry_in=round(pause, 2))
    stop.wait(pause)
    return min(pause * 2, max_pause)
