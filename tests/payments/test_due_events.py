"""``be.eboxd.payment.due_soon`` / ``overdue`` from the scheduler's ``payment-reminders`` job, on both
databases: each once per request, kind and due date, whatever the outbox retention; only for
requests still to pay; again after a due date is corrected; days in Belgian time."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from daemon.config import load_config
from daemon.db.models import Document, Enterprise, Message, OutboxRow, PaymentRequest, utcnow
from daemon.events import event_schema, stable_event_id
from daemon.payments.manage import edit_payment_request
from daemon.service import default_jobs
from daemon.service.payment_reminders import BELGIAN_TIME, JOB_NAME, emit_payment_reminders
from daemon.service.scheduler import PeriodicJob, run_due_jobs

NUMBER = "0403170701"
TYPES = ("be.eboxd.payment.due_soon", "be.eboxd.payment.overdue")
# Simulated days lie in the past, so that real edits (updated_at = the real now) come after them.
T0 = (utcnow() - dt.timedelta(days=30)).replace(hour=8, minute=0, second=0, microsecond=0)
TODAY = T0.astimezone(BELGIAN_TIME).date()


def day(offset: int) -> dt.date:
    return TODAY + dt.timedelta(days=offset)


def seed(engine: Engine, due: dict[str, tuple[dt.date | None, str]]) -> dict[str, tuple[int, int]]:
    """Payment requests by label: (due date, status) → label: (request id, document id)."""
    ids = {}
    with Session(engine) as session, session.begin():
        company = Enterprise(number=NUMBER, name="Alpha")
        session.add(company)
        session.flush()
        for label, (due_date, status) in due.items():
            message = Message(enterprise_id=company.id, provider_id="p", ebox_message_id=label, subject=label)
            session.add(message)
            session.flush()
            document = Document(message_id=message.id, attachment_id="a", file_name=f"{label}.pdf")
            session.add(document)
            session.flush()
            created = T0 - dt.timedelta(days=10)
            request = PaymentRequest(
                enterprise_id=company.id, message_id=message.id, document_id=document.id,
                amount=Decimal("123.40"), iban="BE68539007547034", reference="010806817183", reference_kind="ogm",
                due_date=due_date, beneficiary_name="SPF Finances", status=status, field_sources={},
                created_at=created, updated_at=created)
            session.add(request)
            session.flush()
            ids[label] = (request.id, document.id)
    return ids


def reminder_job(due_soon_days: int = 5) -> PeriodicJob:
    config = load_config(environ={"EBOXD_BANKING__DUE_SOON_DAYS": str(due_soon_days)})
    (job,) = [job for job in default_jobs(config) if job.name == JOB_NAME]
    assert job.interval == dt.timedelta(hours=1)
    return job


def events(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(OutboxRow.payload, OutboxRow.idempotency_key).where(
            OutboxRow.topic.in_(TYPES)).order_by(OutboxRow.id)).all()
    for payload, key in rows:
        jsonschema.validate(payload, event_schema(payload["type"]), format_checker=jsonschema.FormatChecker())
        assert payload["id"] == stable_event_id(key)
    return [payload for payload, _ in rows]


def summary(found: list[dict[str, Any]], labels: dict[int, str]) -> list[tuple[str, str, int]]:
    """(kind, request label, days_left or days_overdue) of each event."""
    return [(event["type"].rsplit(".", 1)[1], labels[event["data"]["payment_request_id"]],
             event["data"].get("days_left", event["data"].get("days_overdue"))) for event in found]


def purge(engine: Engine) -> None:
    with engine.begin() as tx:
        tx.execute(delete(OutboxRow))


def test_each_reminder_once_over_two_weeks_even_with_the_outbox_purged(engine: Engine) -> None:
    """Daily runs, the outbox emptied after each (retention_days = 0): every event exactly once,
    on the right day, and never for a paid request or one without due date."""
    ids = seed(engine, {
        "later": (day(10), "open"),  # due_soon on day 5, overdue on day 11
        "soon": (day(3), "open"),  # due_soon at once, overdue on day 4
        "past": (day(-2), "review"),  # overdue at once
        "paid-later": (day(2), "open"),  # due_soon at once; paid on day 1: nothing after
        "paid": (day(1), "paid"),
        "no-date": (None, "open"),
        "today": (day(0), "open"),  # due_soon (0 days left) at once, overdue on day 1
    })
    labels = {request_id: label for label, (request_id, _) in ids.items()}
    job = reminder_job()
    seen: dict[int, list[tuple[str, str, int]]] = {}
    for offset in range(15):
        if offset == 1:
            with engine.begin() as tx:
                tx.execute(update(PaymentRequest).where(PaymentRequest.id == ids["paid-later"][0])
                           .values(status="paid"))
        for hour in (0, 1, 5):  # several runs a day change nothing more
            assert run_due_jobs(engine, [job], now=T0 + dt.timedelta(days=offset, hours=hour)) == [JOB_NAME]
            found = summary(events(engine), labels)
            if found:
                seen.setdefault(offset, []).extend(found)
            purge(engine)
    assert {offset: sorted(found) for offset, found in seen.items()} == {
        0: [("due_soon", "paid-later", 2), ("due_soon", "soon", 3), ("due_soon", "today", 0),
            ("overdue", "past", 2)],
        1: [("overdue", "today", 1)],
        4: [("overdue", "soon", 1)],
        5: [("due_soon", "later", 5)],
        11: [("overdue", "later", 1)],
    }


def test_downtime_does_not_lose_reminders(engine: Engine) -> None:
    """No run for a week: the next run sends what fell due meanwhile, once."""
    ids = seed(engine, {"soon": (day(3), "open"), "later": (day(9), "open")})
    labels = {request_id: label for label, (request_id, _) in ids.items()}
    job = reminder_job()
    run_due_jobs(engine, [job], now=T0)
    assert sorted(summary(events(engine), labels)) == [("due_soon", "soon", 3)]
    purge(engine)
    run_due_jobs(engine, [job], now=T0 + dt.timedelta(days=7))
    assert sorted(summary(events(engine), labels)) == [("due_soon", "later", 2), ("overdue", "soon", 4)]


def test_a_corrected_due_date_is_announced_again(engine: Engine) -> None:
    ids = seed(engine, {"tax": (day(-3), "open")})
    request_id, document_id = ids["tax"]
    job = reminder_job()
    run_due_jobs(engine, [job], now=T0)
    run_due_jobs(engine, [job], now=T0 + dt.timedelta(hours=1))
    found = events(engine)
    assert [(e["type"], e["data"]["due_date"]) for e in found] == [("be.eboxd.payment.overdue", day(-3).isoformat())]
    assert found[0]["data"] == {
        "enterprise_number": NUMBER, "payment_request_id": request_id, "document_id": document_id,
        "amount": "123.40", "currency": "EUR", "reference": "010806817183", "reference_kind": "ogm",
        "due_date": day(-3).isoformat(), "status": "open", "days_overdue": 3}
    assert found[0]["subject"] == NUMBER
    edit_payment_request(engine, document_id, {"due_date": day(4).isoformat()})
    run_due_jobs(engine, [job], now=T0 + dt.timedelta(hours=2))
    run_due_jobs(engine, [job], now=T0 + dt.timedelta(hours=3))
    found = events(engine)
    assert [(e["type"], e["data"]["due_date"], e["data"].get("days_left")) for e in found] == [
        ("be.eboxd.payment.overdue", day(-3).isoformat(), None),
        ("be.eboxd.payment.due_soon", day(4).isoformat(), 4)]
    assert found[1]["id"] == stable_event_id(f"payment.due_soon:{request_id}:{day(4).isoformat()}")


def test_the_same_facts_twice_queue_nothing_new(engine: Engine) -> None:
    """Idempotent without the scheduler's watermark too: the outbox key refuses a second copy."""
    seed(engine, {"soon": (day(1), "open"), "past": (day(-1), "review")})
    with engine.begin() as tx:
        first = emit_payment_reminders(tx, T0, due_soon_days=5, job_name=None)
    with engine.begin() as tx:
        second = emit_payment_reminders(tx, T0, due_soon_days=5, job_name=None)
    assert (first.due_soon, first.overdue) == (1, 1)
    assert (second.due_soon, second.overdue) == (0, 0)
    assert len(events(engine)) == 2


@pytest.mark.parametrize(("utc_time", "kind", "days"), [
    ("22:59", "due_soon", 0),  # 23:59 in Brussels (winter): still the due day
    ("23:01", "overdue", 1),  # 00:01 the next day in Brussels, still the due day in UTC
])
def test_days_are_counted_in_belgian_time(engine: Engine, utc_time: str, kind: str, days: int) -> None:
    due = dt.date(2026, 1, 15)
    with Session(engine) as session, session.begin():
        company = Enterprise(number=NUMBER, name="Alpha")
        session.add(company)
        session.flush()
        message = Message(enterprise_id=company.id, provider_id="p", ebox_message_id="m")
        session.add(message)
        session.flush()
        session.add(PaymentRequest(enterprise_id=company.id, message_id=message.id, amount=None, due_date=due,
                                   status="open"))
    now = dt.datetime.combine(due, dt.time.fromisoformat(utc_time), dt.UTC)
    with engine.begin() as tx:
        emit_payment_reminders(tx, now, due_soon_days=0, job_name=None)
    (event,) = events(engine)
    assert event["type"] == f"be.eboxd.payment.{kind}"
    assert event["data"]["days_left" if kind == "due_soon" else "days_overdue"] == days
    assert event["data"]["amount"] is None
    assert event["data"]["document_id"] is None
