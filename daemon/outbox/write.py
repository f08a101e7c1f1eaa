"""Writing to the outbox, inside the caller's transaction.

The row commits or rolls back with the state change that caused it. A unique idempotency key makes
writing the same fact twice a no-op (``ON CONFLICT DO NOTHING``), so a re-poll or a redelivered
task never queues a second event.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, Protocol

from sqlalchemy import Connection, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from daemon.db.models import OutboxRow, utcnow
from daemon.events.cloudevents import build_cloudevent, stable_event_id

__all__ = ["TaskTarget", "add_event", "add_task"]


class TaskTarget(Protocol):
    """What a dramatiq actor exposes that the outbox needs (``dramatiq.Actor`` satisfies it)."""

    actor_name: str
    queue_name: str


@functools.cache
def _insert_statement(dialect: str) -> Executable:
    """The outbox insert for one dialect, built once: building it per row cost more than running it."""
    table = OutboxRow.__table__
    if dialect == "postgresql":
        stmt = postgresql.insert(table).on_conflict_do_nothing(index_elements=["idempotency_key"])
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=["idempotency_key"])
    else:  # pragma: no cover - only the two supported databases reach here
        stmt = insert(table)
    # RETURNING tells a skipped duplicate apart on both backends (rowcount is -1 with RETURNING).
    return stmt.returning(table.c.id)  # type: ignore[no-any-return,attr-defined]


def _insert_ignoring_duplicates(db: Session | Connection, values: dict[str, Any]) -> bool:
    dialect = (db.get_bind() if isinstance(db, Session) else db).dialect.name
    return db.execute(_insert_statement(dialect), values).first() is not None


def add_event(db: Session | Connection, event_type: str, *, subject: str, data: dict[str, Any],
              idempotency_key: str, at: dt.datetime | None = None) -> bool:
    """Queue a CloudEvent for the integrator exchange. Returns False if this key was already queued."""
    event_id = stable_event_id(idempotency_key)
    now = at or utcnow()
    envelope = build_cloudevent(event_type, subject=subject, data=data, event_id=event_id, time=now)
    return _insert_ignoring_duplicates(db, {
        "event_id": event_id, "idempotency_key": idempotency_key, "kind": "event", "topic": event_type,
        "queue_name": None, "subject": subject, "payload": envelope, "created_at": now,
        "available_at": now, "attempts": 0,
    })


def add_task(db: Session | Connection, actor: TaskTarget, kwargs: dict[str, Any], *, idempotency_key: str,
             delay: dt.timedelta | None = None, subject: str | None = None) -> bool:
    """Queue a message for one of our dramatiq actors. Returns False if this key was already queued."""
    now = utcnow()
    return _insert_ignoring_duplicates(db, {
        "event_id": stable_event_id(idempotency_key), "idempotency_key": idempotency_key, "kind": "task",
        "topic": actor.actor_name, "queue_name": actor.queue_name, "subject": subject, "payload": kwargs,
        "created_at": now, "available_at": now + (delay or dt.timedelta()), "attempts": 0,
    })
