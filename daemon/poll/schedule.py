"""When each enterprise is polled, and by whom: the schedule lives in the database.

``eboxd serve`` claims due enterprises (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several
nodes share them) and writes one ``poll_enterprise`` task per claim into the outbox. A claim is a
lease with a token; the worker swaps it for a run token when it starts, so a redelivered or
stale task finds the lease gone and does nothing: an enterprise is never polled twice at once.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, bindparam, exists, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from daemon.config import PollConfig
from daemon.db.models import Enterprise, PollState, UTCDateTime, utcnow
from daemon.outbox import add_task
from daemon.poll.writer import write_transaction
from daemon.workers.tasks import POLL_ENTERPRISE

__all__ = ["Lease", "claim_due_polls", "finish_poll", "request_poll", "start_poll"]


@dataclass(frozen=True)
class Lease:
    enterprise_id: int
    token: str


def _add_missing_rows(tx: Connection, now: dt.datetime) -> None:
    """Every enabled enterprise has a schedule row; new ones are due at once."""
    missing = select(Enterprise.id, literal(now, UTCDateTime())).where(
        Enterprise.enabled.is_(True), ~exists().where(PollState.enterprise_id == Enterprise.id)
    )
    dialect_insert = postgresql.insert if tx.dialect.name == "postgresql" else sqlite.insert
    # Two nodes may add the same row at once: the second insert is a no-op.
    tx.execute(dialect_insert(PollState).from_select(["enterprise_id", "next_poll_at"], missing)
               .on_conflict_do_nothing(index_elements=["enterprise_id"]))


# Built once: a poll cycle of 10,000 enterprises runs each of these 10,000 times.
_TAKE_CLAIM = (update(PollState).where(PollState.enterprise_id == bindparam("e_id"))
               .values(lease_token=bindparam("token"), leased_until=bindparam("until")))
_START = (update(PollState)
          .where(PollState.enterprise_id == bindparam("e_id"), PollState.lease_token == bindparam("claim"),
                 PollState.leased_until > bindparam("now"))
          .values(lease_token=bindparam("run"), leased_until=bindparam("until"), last_attempt_at=bindparam("now")))
_FINISH_OK = (update(PollState)
              .where(PollState.enterprise_id == bindparam("e_id"), PollState.lease_token == bindparam("run"))
              .values(lease_token=None, leased_until=None, next_poll_at=bindparam("next"), consecutive_failures=0,
                      last_success_at=bindparam("now"), last_error=None))


def claim_due_polls(tx: Connection, config: PollConfig, now: dt.datetime | None = None) -> list[Lease]:
    """Claim up to ``claim_batch`` due enterprises and queue a poll task for each (in ``tx``)."""
    now = now or utcnow()
    _add_missing_rows(tx, now)
    due = tx.execute(
        select(PollState.enterprise_id)
        .join(Enterprise, Enterprise.id == PollState.enterprise_id)
        .where(Enterprise.enabled.is_(True), PollState.next_poll_at <= now,
               or_(PollState.leased_until.is_(None), PollState.leased_until < now))
        .order_by(PollState.next_poll_at).limit(config.claim_batch)
        .with_for_update(of=PollState, skip_locked=True)
    ).scalars().all()
    leases = [Lease(enterprise_id, str(uuid.uuid4())) for enterprise_id in due]
    if not leases:
        return leases
    until = now + dt.timedelta(seconds=config.lease_seconds)
    # One statement for the batch: on SQLite every other writer waits while a claim round runs.
    tx.execute(_TAKE_CLAIM, [{"e_id": lease.enterprise_id, "token": lease.token, "until": until} for lease in leases])
    for lease in leases:
        add_task(tx, POLL_ENTERPRISE, {"enterprise_id": lease.enterprise_id, "lease": lease.token},
                 idempotency_key=f"poll:{lease.enterprise_id}:{lease.token}")
    return leases


def start_poll(engine: Engine, lease: Lease, config: PollConfig, now: dt.datetime | None = None) -> str | None:
    """Swap the claim for a run token; None if the claim is no longer ours (redelivered, expired,
    or another run already started it)."""
    now = now or utcnow()
    run = str(uuid.uuid4())
    with write_transaction(engine) as tx:
        taken = tx.execute(_START, {"e_id": lease.enterprise_id, "claim": lease.token, "now": now, "run": run,
                                    "until": now + dt.timedelta(seconds=config.lease_seconds)}).rowcount
    return run if taken == 1 else None


def finish_poll(tx: Connection, enterprise_id: int, run: str, config: PollConfig, *, error: str | None = None,
                now: dt.datetime | None = None) -> bool:
    """Release the lease and schedule the next poll: the interval plus jitter after a success, a
    doubling backoff after failures. False if the lease was not ours any more."""
    now = now or utcnow()
    if error is None:  # the common case, in one statement
        delay = config.interval_seconds + random.uniform(0, config.jitter_seconds)  # noqa: S311 - spreading load
        return tx.execute(_FINISH_OK, {"e_id": enterprise_id, "run": run, "now": now,
                                       "next": now + dt.timedelta(seconds=delay)}).rowcount == 1
    failures = tx.execute(select(PollState.consecutive_failures).where(
        PollState.enterprise_id == enterprise_id, PollState.lease_token == run)).scalar()
    if failures is None:
        return False
    failures += 1
    delay = min(config.max_backoff_seconds, 60 * 2 ** min(failures - 1, 16)) * random.uniform(0.8, 1.2)  # noqa: S311
    tx.execute(update(PollState).where(PollState.enterprise_id == enterprise_id, PollState.lease_token == run)
               .values(lease_token=None, leased_until=None, next_poll_at=now + dt.timedelta(seconds=delay),
                       consecutive_failures=failures, last_error=error[:2000]))
    return True


def request_poll(engine: Engine, enterprise_ids: Iterable[int] | None = None) -> int:
    """Make enterprises due now (all enabled ones if ``None``); a poll already running is left alone.
    Returns how many were made due."""
    now = utcnow()
    with engine.begin() as tx:
        _add_missing_rows(tx, now)
        stmt = update(PollState).where(or_(PollState.leased_until.is_(None), PollState.leased_until < now))
        if enterprise_ids is not None:
            stmt = stmt.where(PollState.enterprise_id.in_(list(enterprise_ids)))
        else:
            stmt = stmt.where(PollState.enterprise_id.in_(select(Enterprise.id).where(Enterprise.enabled.is_(True))))
        return int(tx.execute(stmt.values(next_poll_at=now)).rowcount)
