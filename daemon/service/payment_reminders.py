"""``be.eboxd.payment.due_soon`` and ``be.eboxd.payment.overdue``: a periodic job of ``eboxd serve``.

For each payment request still to pay (status ``open`` or ``review``) with a due date:

* ``due_soon`` once when the due date is ``[banking] due_soon_days`` days away or fewer (at once
  when the request arrives later than that), as long as the due date is not past;
* ``overdue`` once from the day after the due date.

"Once" is per request, kind and due date: the outbox idempotency key (and so the CloudEvent
``id``) is ``payment.<kind>:<request id>:<due date>``, so a due date corrected by
``eboxd payment edit`` announces itself again, and running the job again changes nothing.
Outbox rows are purged after ``[outbox] retention_days``, so the job does not rely on them
alone: it only looks at requests that crossed a threshold since its previous successful run
(``scheduled_jobs.last_run_at``, committed with the events) or that were created or changed since
then. Days are counted in Belgian time (Europe/Brussels).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Connection, or_, select

from daemon.db.models import Enterprise, PaymentRequest, ScheduledJob
from daemon.outbox import add_event

__all__ = ["BELGIAN_TIME", "JOB_NAME", "Reminders", "emit_payment_reminders"]

log = structlog.get_logger(__name__)

JOB_NAME = "payment-reminders"
BELGIAN_TIME = ZoneInfo("Europe/Brussels")
TO_PAY = ("open", "review")
# A request changed by a transaction that committed just after the previous run's query still
# counts as changed since then.
CHANGE_MARGIN = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class Reminders:
    due_soon: int  # events queued now (not counting those queued before)
    overdue: int


def emit_payment_reminders(tx: Connection, now: dt.datetime, *, due_soon_days: int,
                           since: dt.datetime | None = None, job_name: str | None = JOB_NAME) -> Reminders:
    """Queue the reminders due at ``now`` inside ``tx``.

    ``since`` is the previous successful run; by default it is read from the scheduler's row of
    ``job_name``, which the scheduler moves forward in this same transaction. None: first run,
    every request to pay is looked at.
    """
    if since is None and job_name is not None:
        since = tx.scalar(select(ScheduledJob.last_run_at).where(ScheduledJob.name == job_name))
    today = now.astimezone(BELGIAN_TIME).date()
    horizon = today + dt.timedelta(days=due_soon_days)
    query = (
        select(PaymentRequest.id, PaymentRequest.document_id, PaymentRequest.amount, PaymentRequest.currency,
               PaymentRequest.reference, PaymentRequest.reference_kind, PaymentRequest.due_date,
               PaymentRequest.status, PaymentRequest.created_at, PaymentRequest.updated_at, Enterprise.number)
        .join(Enterprise, Enterprise.id == PaymentRequest.enterprise_id)
        .where(PaymentRequest.status.in_(TO_PAY), PaymentRequest.due_date.is_not(None),
               PaymentRequest.due_date <= horizon)
        .order_by(PaymentRequest.id)
    )
    since_day: dt.date | None = None
    changed_after: dt.datetime | None = None
    if since is not None:
        since_day = since.astimezone(BELGIAN_TIME).date()
        changed_after = since - CHANGE_MARGIN
        # Crossing a threshold since then needs a due date on or after that day; older due dates
        # only matter for requests created or changed since.
        query = query.where(or_(PaymentRequest.due_date >= since_day, PaymentRequest.updated_at > changed_after,
                                PaymentRequest.created_at > changed_after))
    due_soon = overdue = 0
    for row in tx.execute(query):
        due: dt.date = row.due_date
        changed = changed_after is None or max(row.created_at, row.updated_at) > changed_after
        if due >= today:
            # Entered the window on due - N days: after the previous run's day, or changed since.
            if changed or (since_day is not None and due - dt.timedelta(days=due_soon_days) > since_day):
                due_soon += _emit(tx, "due_soon", row, now, {"days_left": (due - today).days})
        elif changed or (since_day is not None and due >= since_day):  # overdue from due + 1 day
            overdue += _emit(tx, "overdue", row, now, {"days_overdue": (today - due).days})
    if due_soon or overdue:
        log.info("payments.reminders_queued", due_soon=due_soon, overdue=overdue, today=today.isoformat())
    return Reminders(due_soon, overdue)


def _emit(tx: Connection, kind: str, row: Any, now: dt.datetime, extra: dict[str, Any]) -> bool:
    due = row.due_date.isoformat()
    data = {
        "enterprise_number": row.number, "payment_request_id": row.id, "document_id": row.document_id,
        "amount": None if row.amount is None else f"{row.amount:.2f}", "currency": row.currency or "EUR",
        "reference": row.reference, "reference_kind": row.reference_kind, "due_date": due,
        "status": row.status, **extra,
    }
    return add_event(tx, f"be.eboxd.payment.{kind}", subject=row.number, data=data, at=now,
                     idempotency_key=f"payment.{kind}:{row.id}:{due}")
