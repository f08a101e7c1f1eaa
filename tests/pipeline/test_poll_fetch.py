"""Poll → fetch → store → payment requests, step by step against the sandbox, on both databases."""

from __future__ import annotations

import datetime as dt
import hashlib

import sqlalchemy as sa
from sqlalchemy.orm import Session

from daemon.banking import parse_ogm
from daemon.db.models import Document, Message, OutboxRow, PaymentRequest, PollState, PollWatermark
from daemon.fetch import fetch_message
from daemon.poll import Lease, claim_due_polls, request_poll, start_poll
from tests.events.test_schemas import validate
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import active_letters, fetch_all, outbox_counts, poll_due


def test_first_poll_stores_every_message_once(pipeline: Pipeline, sandbox) -> None:
    outcomes = poll_due(pipeline)
    letters = active_letters(pipeline, sandbox)
    assert len(outcomes) == 3
    assert sum(o.new_messages for o in outcomes) == len(letters) > 0
    assert all(o.error is None for o in outcomes)
    with pipeline.engine.connect() as conn:
        stored = set(conn.execute(sa.select(Message.ebox_message_id)).scalars())
        assert conn.execute(sa.select(sa.func.count()).select_from(PollWatermark)).scalar() >= 3
    assert stored == {letter.message_id for letter in letters}
    counts = outbox_counts(pipeline)
    assert counts["be.eboxd.message.received"] == len(letters)
    assert counts["fetch_message"] == len(letters)
    # Nothing new: a second poll adds nothing, not even events.
    assert request_poll(pipeline.engine) == 3
    again = poll_due(pipeline)
    assert [o.new_messages for o in again] == [0, 0, 0]
    assert outbox_counts(pipeline) == counts


def test_new_message_is_found_by_the_next_poll(pipeline: Pipeline, sandbox) -> None:
    poll_due(pipeline)
    letter = sandbox.publish(pipeline.numbers[1])
    request_poll(pipeline.engine)
    outcomes = poll_due(pipeline)
    assert sum(o.new_messages for o in outcomes) == 1
    with pipeline.engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).where(Message.ebox_message_id == letter.message_id))
        assert stored.scalar() == 1


def test_fetch_stores_documents_and_reads_every_payment_letter(pipeline: Pipeline, sandbox) -> None:
    poll_due(pipeline)
    fetch_all(pipeline)
    letters = {letter.message_id: letter for letter in active_letters(pipeline, sandbox)}
    with Session(pipeline.engine) as session:
        messages = session.scalars(sa.select(Message)).all()
        assert {m.fetch_state for m in messages} == {"fetched"}
        documents = session.scalars(sa.select(Document)).all()
        requests = {r.message_id: r for r in session.scalars(sa.select(PaymentRequest))}
        by_row = {m.id: m for m in messages}
    assert len(documents) == sum(len(letter.attachments) for letter in letters.values())
    for document in documents:
        with pipeline.store.open(document.storage_key) as file:
            assert hashlib.sha256(file.read()).hexdigest() == document.sha256
    expected = {mid for mid, letter in letters.items() if letter.payment is not None}
    assert {by_row[r].ebox_message_id for r in requests} == expected
    for message_row, request in requests.items():
        payment = letters[by_row[message_row].ebox_message_id].payment
        ogm = parse_ogm(payment.ogm).digits
        assert (request.amount, request.iban, request.reference, request.due_date) == (
            payment.amount, payment.iban, ogm, payment.due_date), by_row[message_row].ebox_message_id
        assert request.status == "open"
        assert request.reference_kind == "ogm"
    languages = {d.language for d in documents if d.media_type == "application/pdf"}
    assert {"fr", "nl", "de"} <= languages


def test_events_of_the_pipeline_validate_against_their_schemas(pipeline: Pipeline) -> None:
    poll_due(pipeline)
    fetch_all(pipeline)
    with pipeline.engine.connect() as conn:
        events = conn.execute(sa.select(OutboxRow.payload).where(OutboxRow.kind == "event")).scalars().all()
    assert {e["type"] for e in events} == {"be.eboxd.message.received", "be.eboxd.document.stored",
                                          "be.eboxd.payment.requested"}
    for event in events:
        validate(event)


def test_fetch_twice_is_a_no_op(pipeline: Pipeline) -> None:
    poll_due(pipeline)
    fetch_all(pipeline)
    before = outbox_counts(pipeline)
    with pipeline.engine.connect() as conn:
        ids = conn.execute(sa.select(Message.id)).scalars().all()
        documents = conn.execute(sa.select(sa.func.count()).select_from(Document)).scalar()
    for message_id in ids:  # a redelivered fetch_message
        again = fetch_message(pipeline.engine, pipeline.access, pipeline.store, pipeline.config, message_id)
        assert again.already_fetched
    with pipeline.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Document)).scalar() == documents
    assert outbox_counts(pipeline) == before


def test_a_stale_or_redelivered_poll_does_nothing(pipeline: Pipeline) -> None:
    with pipeline.engine.begin() as tx:
        leases = claim_due_polls(tx, pipeline.config.poll)
    lease = leases[0]
    run = start_poll(pipeline.engine, lease, pipeline.config.poll)
    assert run is not None
    assert start_poll(pipeline.engine, lease, pipeline.config.poll) is None  # redelivered while running
    with pipeline.engine.begin() as tx:  # a claimed enterprise is not claimed again
        assert {c.enterprise_id for c in claim_due_polls(tx, pipeline.config.poll)}.isdisjoint({lease.enterprise_id})
    expired = Lease(leases[1].enterprise_id, leases[1].token)
    with pipeline.engine.begin() as tx:
        tx.execute(sa.update(PollState).where(PollState.enterprise_id == expired.enterprise_id)
                   .values(leased_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    assert start_poll(pipeline.engine, expired, pipeline.config.poll) is None


def test_failures_back_off_and_success_resets(pipeline: Pipeline, sandbox) -> None:
    sandbox.add_fault("error", status=500, path="/ebox/messages")
    before = dt.datetime.now(dt.UTC)
    outcomes = poll_due(pipeline)
    assert all(o.error and "500" in o.error for o in outcomes)
    with Session(pipeline.engine) as session:
        states = session.scalars(sa.select(PollState)).all()
    assert all(s.consecutive_failures == 1 and s.lease_token is None for s in states)
    assert all(s.next_poll_at > before + dt.timedelta(seconds=40) for s in states)
    assert all("500" in s.last_error for s in states)
    sandbox.clear_faults()
    request_poll(pipeline.engine)
    assert all(o.error is None for o in poll_due(pipeline))
    with Session(pipeline.engine) as session:
        states = session.scalars(sa.select(PollState)).all()
    assert all(s.consecutive_failures == 0 and s.last_success_at is not None for s in states)
    assert all(s.next_poll_at > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=800) for s in states)
