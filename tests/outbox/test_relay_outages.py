"""The relay when PostgreSQL drops its connection at the worst moment: after the broker confirmed a
batch, before the commit that marks it sent. Found by the chaos run (tests/reliability): the relay
thread died there, leaving ``eboxd serve`` up with nothing relayed, and a restarted relay would
have published the batch a second time."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.pool import NullPool

from daemon.db.models import OutboxRow
from daemon.outbox import ConfirmingPublisher, OutboxRelay
from daemon.outbox.amqp import BatchResult, Outgoing
from tests.amqp_helpers import drain
from tests.outbox.test_relay import add_events, unsent

pytestmark = pytest.mark.rabbitmq


class CutAfterConfirm:
    """The real publisher; after its first confirmed batch, every other connection to the database
    (the relay's, inside its transaction) is terminated by the server."""

    def __init__(self, publisher: ConfirmingPublisher, engine: Engine) -> None:
        self.publisher = publisher
        self.admin = sa.create_engine(engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self.cuts = 0

    def publish_batch(self, messages: Any) -> BatchResult:
        batch: list[Outgoing] = list(messages)
        result = self.publisher.publish_batch(batch)
        if batch and result.confirmed and not self.cuts:
            with self.admin.connect() as conn:
                conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
            self.cuts += 1
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.publisher, name)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_commit_lost_after_the_confirm_sends_nothing_twice_and_the_relay_carries_on(
        engine: Engine, publisher: ConfirmingPublisher, amqp_url: str, event_queue: str) -> None:
    add_events(engine, 60)
    cutting = CutAfterConfirm(publisher, engine)
    relay = OutboxRelay(engine, cutting, batch_size=20)  # type: ignore[arg-type]
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), kwargs={"idle_interval": 0.05})
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while unsent(engine) and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.1)
        assert thread.is_alive(), "the relay thread died with the database connection"
        assert unsent(engine) == 0
    finally:
        stop.set()
        thread.join(10)
        cutting.admin.dispose()
    assert cutting.cuts == 1
    received = drain(amqp_url, event_queue, expect=60, timeout=10)
    ids = Counter(body["id"] for _, body in received)
    assert [event_id for event_id, n in ids.items() if n > 1] == [], "the confirmed batch was published again"
    assert len(ids) == 60
    assert relay.database_up


def test_only_messages_in_doubt_can_arrive_twice_and_the_relay_names_them(
        engine: Engine, amqp_url: str, events_exchange: str, event_queue: str) -> None:
    """No time at all for confirms: what was sent unconfirmed is in doubt, sent again, and only
    those ids may show up twice on the exchange."""
    add_events(engine, 40)
    hasty = ConfirmingPublisher(amqp_url, events_exchange=events_exchange, confirm_timeout=10)
    in_doubt: set[str] = set()
    try:
        hasty.connect()  # with time to set up confirms; then none for the confirms themselves
        hasty._confirm_timeout = 1e-9
        result = hasty.publish_batch([OutboxRelay(engine, hasty)._outgoing(row) for row in _rows(engine)])
        assert result.in_doubt, "every confirm arrived within a nanosecond"
        assert set(result.in_doubt) <= set(result.failed)
        assert not set(result.in_doubt) & set(result.confirmed)
        in_doubt.update(result.in_doubt)
    finally:
        hasty.close()
    patient = ConfirmingPublisher(amqp_url, events_exchange=events_exchange, confirm_timeout=10)
    try:
        relay = OutboxRelay(engine, patient)
        while relay.relay_once().published:
            pass
    finally:
        patient.close()
    assert unsent(engine) == 0
    ids = Counter(body["id"] for _, body in drain(amqp_url, event_queue, expect=40 + len(in_doubt), timeout=10))
    assert len(ids) == 40
    assert {event_id for event_id, n in ids.items() if n > 1} <= in_doubt


def _rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(sa.select(OutboxRow.id, OutboxRow.event_id, OutboxRow.kind, OutboxRow.topic,
                                      OutboxRow.queue_name, OutboxRow.payload, OutboxRow.created_at,
                                      OutboxRow.attempts).order_by(OutboxRow.id)).all()
