"""What must hold after a run: every message, document, payment request and event exactly once,
as the sandbox's catalogue says, and no e-Box request that betrays a duplicate fetch."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from daemon.banking import parse_ogm
from daemon.db.models import Document, Enterprise, Message, OutboxRow, PaymentRequest, PollState
from daemon.sandbox.ebox import EboxSandbox
from daemon.store import DocumentStore
from tests.events.test_schemas import validate
from tests.integration.ebox_side import SandboxRecorder, expected_letters


def progress(engine: Engine, expected: int) -> tuple[bool, str, int]:
    """Whether the run is over: every expected message stored and fetched, the outbox drained and
    no poll lease held. Also a description, and how many messages are stored."""
    with engine.connect() as conn:
        states = dict(conn.execute(sa.select(Message.fetch_state, sa.func.count()).group_by(Message.fetch_state)).all())
        unsent = conn.execute(sa.select(sa.func.count()).where(OutboxRow.sent_at.is_(None))).scalar()
        leased = conn.execute(sa.select(sa.func.count()).where(PollState.lease_token.is_not(None))).scalar()
        errors = conn.execute(sa.select(PollState.last_error).where(PollState.last_error.is_not(None))).scalars().all()
    stored = sum(states.values())
    done = states.get("fetched", 0) == expected == stored and unsent == 0 and leased == 0
    return done, (f"messages by state {states} of {expected} expected, outbox unsent {unsent}, leases held {leased}, "
                  f"last poll errors {errors}"), stored


@dataclass
class Summary:
    messages: int = 0
    documents: int = 0
    payment_requests: int = 0
    events: Counter[str] = field(default_factory=Counter)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_store(engine: Engine, store: DocumentStore, sandbox: EboxSandbox, numbers: list[str]) -> Summary:
    """Every expected message, document and payment request stored exactly once, with the
    sandbox's bytes and the letter's payment facts; nothing else stored."""
    letters = expected_letters(sandbox, numbers)
    with engine.connect() as conn:
        messages = conn.execute(sa.select(Message.id, Message.ebox_message_id, Message.provider_id,
                                          Message.fetch_state, Enterprise.number)
                                .join(Enterprise, Enterprise.id == Message.enterprise_id)).all()
        documents = conn.execute(sa.select(Document)).all()
        requests = conn.execute(sa.select(PaymentRequest)).all()
    stored_ids = Counter(m.ebox_message_id for m in messages)
    assert [mid for mid, n in stored_ids.items() if n > 1] == [], "messages stored twice"
    assert set(stored_ids) == set(letters), (
        f"missing {sorted(set(letters) - set(stored_ids))}, unexpected {sorted(set(stored_ids) - set(letters))}")
    by_row = {m.id: m for m in messages}
    for m in messages:
        letter = letters[m.ebox_message_id]
        assert (m.number, m.provider_id, m.fetch_state) == (letter.enterprise_number, letter.provider_id, "fetched")

    stored_docs = Counter((by_row[d.message_id].ebox_message_id, d.attachment_id) for d in documents)
    assert [key for key, n in stored_docs.items() if n > 1] == [], "documents stored twice"
    wanted_docs = {(mid, a.attachment_id): a for mid, letter in letters.items() for a in letter.attachments}
    assert set(stored_docs) == set(wanted_docs)
    for document in documents:
        attachment = wanted_docs[(by_row[document.message_id].ebox_message_id, document.attachment_id)]
        assert document.sha256 == _sha256(attachment.content), document.attachment_id
        assert document.size == len(attachment.content)
        with store.open(document.storage_key) as file:
            assert _sha256(file.read()) == document.sha256

    stored_requests = Counter(by_row[r.message_id].ebox_message_id for r in requests)
    assert [mid for mid, n in stored_requests.items() if n > 1] == [], "payment requests stored twice"
    assert set(stored_requests) == {mid for mid, letter in letters.items() if letter.payment is not None}
    for request in requests:
        mid = by_row[request.message_id].ebox_message_id
        payment = letters[mid].payment
        assert payment is not None
        assert (request.amount, request.currency, request.iban, request.reference_kind, request.reference,
                request.due_date, request.status) == (
            payment.amount, payment.currency, payment.iban, "ogm", parse_ogm(payment.ogm).digits,
            payment.due_date, "open"), mid
    return Summary(len(messages), len(documents), len(requests))


def check_events(engine: Engine, received: list[tuple[Any, dict[str, Any]]], sandbox: EboxSandbox,
                 numbers: list[str], summary: Summary) -> None:
    """Every event of the outbox arrived on the exchange exactly once, one per domain fact, with
    the payment facts of the letter."""
    letters = expected_letters(sandbox, numbers)
    with engine.connect() as conn:
        outbox = dict(conn.execute(sa.select(OutboxRow.event_id, OutboxRow.topic)
                                   .where(OutboxRow.kind == "event")).all())
        unsent = conn.execute(sa.select(sa.func.count()).where(OutboxRow.sent_at.is_(None))).scalar()
    assert unsent == 0, "outbox not drained"
    ids = Counter(body["id"] for _, body in received)
    assert [event_id for event_id, n in ids.items() if n > 1] == [], "an event was published twice"
    assert set(ids) == set(outbox), f"{len(set(outbox) - set(ids))} events of the outbox never arrived"
    for properties, body in received:
        assert properties.message_id == body["id"]
        validate(body)  # against its JSON schema
    summary.events = Counter(body["type"] for _, body in received)
    assert summary.events == {"be.eboxd.message.received": summary.messages,
                              "be.eboxd.document.stored": summary.documents,
                              "be.eboxd.payment.requested": summary.payment_requests}

    facts: Counter[tuple[str, ...]] = Counter()
    for _, body in received:
        data = body["data"]
        if body["type"] == "be.eboxd.document.stored":
            facts[("document", data["message_id"], data["attachment_id"])] += 1
        else:
            facts[(body["type"], data["message_id"])] += 1
            assert data["enterprise_number"] == letters[data["message_id"]].enterprise_number
        if body["type"] == "be.eboxd.payment.requested":
            payment = letters[data["message_id"]].payment
            assert payment is not None
            assert (data["amount"], data["iban"], data["reference"], data["due_date"]) == (
                f"{payment.amount:.2f}", payment.iban, parse_ogm(payment.ogm).digits, payment.due_date.isoformat())
    assert [fact for fact, n in facts.items() if n > 1] == [], "one fact announced by two events"


def check_poll_state(engine: Engine, numbers: list[str], *, failures_allowed: bool = False) -> None:
    """No lease left behind; every enterprise polled successfully."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(Enterprise.number, PollState.lease_token, PollState.last_success_at,
                                      PollState.consecutive_failures)
                            .join(Enterprise, Enterprise.id == PollState.enterprise_id)).all()
    assert sorted(r.number for r in rows) == sorted(numbers)
    for row in rows:
        assert row.lease_token is None, f"{row.number}: lease still held after the run"
        assert row.last_success_at is not None, row.number
        if not failures_allowed:
            assert row.consecutive_failures == 0, row.number


def downloads(recorder: SandboxRecorder, client_timeout: float) -> Counter[tuple[str | None, str | None]]:
    """Successful downloads per (message, attachment)."""
    return Counter((e.message_id, e.attachment_id) for e in recorder.exchanges("content")
                   if e.succeeded(client_timeout))


def check_fetched_once(recorder: SandboxRecorder, sandbox: EboxSandbox, numbers: list[str]) -> None:
    """Without faults: each message asked for once (its attachments and payment data come with it),
    each attachment downloaded once; nothing else of a message asked for twice."""
    letters = expected_letters(sandbox, numbers)
    per_message: Counter[tuple[str, str | None]] = Counter(
        (e.kind, e.message_id) for e in recorder.exchanges() if e.message_id is not None and e.kind != "content")
    assert {key for key, n in per_message.items() if n > 1} == set(), "a message was fetched twice"
    assert {mid for kind, mid in per_message if kind == "message"} == set(letters)
    got = downloads(recorder, client_timeout=float("inf"))
    assert {key for key, n in got.items() if n > 1} == set(), "an attachment was downloaded twice"
    assert set(got) == {(mid, a.attachment_id) for mid, letter in letters.items() for a in letter.attachments}
    assert all(e.status == 200 for e in recorder.exchanges("content"))
