from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import dramatiq
import sqlalchemy as sa
from dramatiq import Worker
from sqlalchemy import Engine

from daemon.config import load_config
from daemon.db.models import OutboxRow
from daemon.outbox import ConfirmingPublisher, OutboxRelay, add_event, add_task
from daemon.workers.broker import create_broker
from tests.amqp_helpers import channel, drain, unique_name
from tests.events.test_schemas import SAMPLES, validate

EVENT = "be.eboxd.message.received"


def add_events(engine: Engine, count: int, prefix: str = "m") -> None:
    with engine.begin() as tx:
        for i in range(count):
            data = {**SAMPLES[EVENT], "message_id": f"{prefix}{i}"}
            add_event(tx, EVENT, subject="0403170701", data=data, idempotency_key=f"{prefix}:{i}")


def unsent(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).where(OutboxRow.sent_at.is_(None))).scalar_one()


def test_events_are_published_as_valid_cloudevents_and_marked_sent(
        engine: Engine, relay: OutboxRelay, amqp_url: str, event_queue: str) -> None:
    add_events(engine, 450)
    total = 0
    while (outcome := relay.relay_once()).published:
        total += outcome.published
    assert total == 450
    assert unsent(engine) == 0
    received = drain(amqp_url, event_queue, expect=450)
    assert len(received) == 450
    ids = [body["id"] for _, body in received]
    assert len(set(ids)) == 450
    for properties, body in received:
        validate(body)
        assert properties.message_id == body["id"]
        assert properties.content_type == "application/cloudevents+json"
        assert properties.delivery_mode == 2
    with engine.connect() as conn:
        assert set(ids) == set(conn.execute(sa.select(OutboxRow.event_id)).scalars())


def test_routing_key_is_the_event_type(engine: Engine, relay: OutboxRelay, amqp_url: str,
                                       events_exchange: str) -> None:
    with channel(amqp_url) as ch:
        ch.exchange_declare(events_exchange, exchange_type="topic", durable=True)
        only_payments = unique_name("test-payments")
        ch.queue_declare(only_payments, durable=False, auto_delete=False)
        ch.queue_bind(only_payments, events_exchange, routing_key="be.eboxd.payment.*")
    add_events(engine, 3)
    with engine.begin() as tx:
        add_event(tx, "be.eboxd.payment.due_soon", subject="0403170701",
                  data=SAMPLES["be.eboxd.payment.due_soon"], idempotency_key="due:1")
    relay.relay_once()
    received = drain(amqp_url, only_payments, expect=1, timeout=5)
    assert [body["type"] for _, body in received] == ["be.eboxd.payment.due_soon"]


def test_tasks_reach_a_real_dramatiq_worker(engine: Engine, relay: OutboxRelay, amqp_url: str) -> None:
    config = load_config(environ={"EBOXD_BROKER__URL": amqp_url})
    broker = create_broker(config)
    queue = unique_name("test-tasks")
    seen: list[tuple[int, str]] = []

    @dramatiq.actor(broker=broker, queue_name=queue, actor_name=unique_name("record"), max_retries=0)
    def record(number: int) -> None:
        seen.append((number, dramatiq.middleware.CurrentMessage.get_current_message().message_id))

    broker.add_middleware(dramatiq.middleware.CurrentMessage())
    with engine.begin() as tx:
        for number in range(20):
            add_task(tx, record, {"number": number}, idempotency_key=f"record:{number}")
    assert relay.relay_once().published == 20
    worker = Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        broker.join(queue, timeout=20_000)
    finally:
        worker.stop()
        broker.close()
    assert sorted(n for n, _ in seen) == list(range(20))
    with engine.connect() as conn:  # the dramatiq message id is the outbox row's stable id
        assert {m for _, m in seen} == set(conn.execute(sa.select(OutboxRow.event_id)).scalars())


def test_a_refused_message_backs_off_and_is_sent_later(engine: Engine, relay: OutboxRelay, amqp_url: str) -> None:
    queue = unique_name("test-vanishing")
    target = type("Target", (), {"actor_name": "noop", "queue_name": queue})()
    with engine.begin() as tx:
        add_task(tx, target, {}, idempotency_key="first")
    assert relay.relay_once().published == 1
    with channel(amqp_url) as ch:  # someone deletes the queue behind the relay's back
        ch.queue_delete(queue)
    with engine.begin() as tx:
        add_task(tx, target, {}, idempotency_key="second")
    outcome = relay.relay_once()
    assert (outcome.published, outcome.failed, outcome.broker_error) == (0, 1, None)
    with engine.connect() as conn:
        row = conn.execute(sa.select(OutboxRow).where(OutboxRow.idempotency_key == "second")).one()
    assert row.attempts == 1
    assert "unroutable" in row.last_error
    assert row.available_at > dt.datetime.now(dt.UTC)
    with engine.begin() as tx:  # fast-forward the backoff
        tx.execute(sa.update(OutboxRow).values(available_at=dt.datetime.now(dt.UTC)))
    assert relay.relay_once().published == 1  # the queue was declared again
    with channel(amqp_url) as ch:
        assert ch.queue_declare(queue, passive=True).method.message_count == 1
        ch.queue_delete(queue)


def test_an_unreachable_broker_leaves_rows_untouched(engine: Engine) -> None:
    publisher = ConfirmingPublisher("amqp://guest:guest@127.0.0.1:9/", connect_timeout=1)
    add_events(engine, 5)
    outcome = OutboxRelay(engine, publisher).relay_once()
    assert outcome.published == 0
    assert outcome.broker_error
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.max(OutboxRow.attempts))).scalar() == 0
    assert unsent(engine) == 5


def test_two_relays_never_send_a_row_twice(engine: Engine, amqp_url: str, events_exchange: str,
                                           event_queue: str) -> None:
    add_events(engine, 1000)
    publishers = [ConfirmingPublisher(amqp_url, events_exchange=events_exchange) for _ in range(2)]
    relays = [OutboxRelay(engine, p, batch_size=50) for p in publishers]

    def drain_outbox(relay: OutboxRelay) -> None:
        while relay.relay_once().published:
            pass

    threads = [threading.Thread(target=drain_outbox, args=(r,)) for r in relays]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for p in publishers:
        p.close()
    received = drain(amqp_url, event_queue, expect=1000)
    counts = Counter(body["id"] for _, body in received)
    assert len(counts) == 1000
    assert max(counts.values()) == 1
