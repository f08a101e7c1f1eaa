"""Queueing ``sync_ponto`` tasks: from ``eboxd serve``'s schedule (each linked account every
``[ponto] sync_interval_seconds``) and from a verified webhook (at once, without asking Ponto to
synchronize again: the webhook says it just did)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, select, update

from daemon.db.models import PontoAccount
from daemon.outbox import add_task
from daemon.workers.tasks import SYNC_PONTO

__all__ = ["SYNC_LEASE", "queue_due_syncs", "queue_webhook_sync"]

# A queued sync not finished within this is queued again (its worker died); a finished one sets
# next_sync_at itself.
SYNC_LEASE = dt.timedelta(hours=1)


def queue_due_syncs(tx: Connection, now: dt.datetime, *, limit: int = 500) -> int:
    """Queue a sync of every enabled account due; each is claimed (``SKIP LOCKED``) by one node."""
    due = tx.execute(select(PontoAccount.id, PontoAccount.next_sync_at)
                     .where(PontoAccount.enabled.is_(True), PontoAccount.next_sync_at <= now)
                     .order_by(PontoAccount.next_sync_at).limit(limit)
                     .with_for_update(skip_locked=True)).all()
    for row in due:
        add_task(tx, SYNC_PONTO, {"account_pk": row.id, "requested_at": now.isoformat(), "request_sync": True},
                 idempotency_key=f"sync_ponto:{row.id}:{row.next_sync_at.isoformat()}")
        tx.execute(update(PontoAccount).where(PontoAccount.id == row.id).values(next_sync_at=now + SYNC_LEASE))
    return len(due)


def queue_webhook_sync(tx: Connection, account_id: str, event_id: str, now: dt.datetime) -> bool:
    """Queue a sync of the linked account a webhook names; False if it is not one of ours."""
    account_pk = tx.scalar(select(PontoAccount.id).where(PontoAccount.account_id == account_id,
                                                         PontoAccount.enabled.is_(True)))
    if account_pk is None:
        return False
    add_task(tx, SYNC_PONTO, {"account_pk": account_pk, "requested_at": now.isoformat(), "request_sync": False},
             idempotency_key=f"sync_ponto:webhook:{event_id}")
    return True
