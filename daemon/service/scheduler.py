"""Periodic jobs whose schedule lives in the database, so several nodes never run one twice.

A job runs inside the transaction that claims it and moves its next run forward; what it does
(usually: write tasks into the outbox) commits with the claim or not at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from daemon import metrics
from daemon.db.models import ScheduledJob, utcnow

__all__ = ["PeriodicJob", "run_due_jobs"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    interval: dt.timedelta
    run: Callable[[Connection, dt.datetime], None]


def _ensure_rows(tx: Connection, jobs: Sequence[PeriodicJob], now: dt.datetime) -> None:
    table = ScheduledJob.__table__
    insert = postgresql.insert if tx.dialect.name == "postgresql" else sqlite.insert
    for job in jobs:
        tx.execute(insert(table).values(name=job.name, next_run_at=now).on_conflict_do_nothing(
            index_elements=["name"]))


def run_due_jobs(engine: Engine, jobs: Sequence[PeriodicJob], now: dt.datetime | None = None) -> list[str]:
    """Run every job that is due; returns the names of those that ran."""
    now = now or utcnow()
    ran: list[str] = []
    with engine.begin() as tx:
        _ensure_rows(tx, jobs, now)
    for job in jobs:
        try:
            with engine.begin() as tx:
                claimed = tx.execute(
                    select(ScheduledJob.name).where(ScheduledJob.name == job.name, ScheduledJob.next_run_at <= now)
                    .with_for_update(skip_locked=True)
                ).first()
                if claimed is None:
                    continue
                job.run(tx, now)
                tx.execute(ScheduledJob.__table__.update().where(ScheduledJob.name == job.name).values(
                    next_run_at=now + job.interval, last_run_at=now, last_error=None))
            ran.append(job.name)
            metrics.SCHEDULER_JOB_RUNS.labels(name=job.name, outcome="ok").inc()
        except Exception as exc:
            log.exception("scheduler.job_failed", job=job.name)
            metrics.SCHEDULER_JOB_RUNS.labels(name=job.name, outcome="error").inc()
            with engine.begin() as tx:  # try again after one interval, and say why
                tx.execute(ScheduledJob.__table__.update().where(ScheduledJob.name == job.name).values(
                    next_run_at=now + job.interval, last_error=f"{type(exc).__name__}: {exc}"[:1000]))
    return ran
