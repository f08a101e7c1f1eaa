"""Driving the pipeline step by step, without a broker: claim, poll, fetch."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from daemon import ebox
from daemon.db.models import Enterprise, Message, OutboxRow
from daemon.fetch import fetch_message
from daemon.poll import PollOutcome, claim_due_polls, poll_enterprise, start_poll
from tests.pipeline.conftest import Pipeline


def poll_due(p: Pipeline) -> list[PollOutcome]:
    with p.engine.begin() as tx:
        leases = claim_due_polls(tx, p.config.poll)
    outcomes = []
    for lease in leases:
        run = start_poll(p.engine, lease, p.config.poll)
        assert run is not None
        outcomes.append(poll_enterprise(p.engine, p.access, p.config, lease.enterprise_id, run))
    return outcomes


def fetch_all(p: Pipeline) -> None:
    with p.engine.connect() as conn:
        ids = conn.execute(sa.select(Message.id).where(Message.fetch_state == "pending")).scalars().all()
    for message_id in ids:
        fetch_message(p.engine, p.access, p.store, p.config, message_id)


def outbox_counts(p: Pipeline) -> dict[str, int]:
    """Outbox rows by topic, leaving out the poll tasks every round adds."""
    with p.engine.connect() as conn:
        rows = conn.execute(sa.select(OutboxRow.topic, sa.func.count()).where(OutboxRow.topic != "poll_enterprise")
                            .group_by(OutboxRow.topic)).all()
    return {str(topic): int(count) for topic, count in rows}


def active_letters(p: Pipeline, sandbox) -> list:
    """The letters an e-Box consumer sees: those of active providers, for onboarded enterprises."""
    active = {provider.provider_id for provider in sandbox_providers(p)}
    return [letter for letter in sandbox.catalogue.letters
            if letter.provider_id in active and letter.enterprise_number in p.numbers]


def sandbox_providers(p: Pipeline) -> list:
    with Session(p.engine) as session:
        enterprise = session.scalars(sa.select(Enterprise)).first()
        client = p.access.client(session, enterprise)
    with client:
        return list(ebox.select_providers(p.access.providers(client)).usable)
