"""Outbox relay throughput: batched publisher confirms vs. publish-then-wait per message.

Both publish the same persistent CloudEvents to a durable topic exchange bound to a durable queue,
in the same run, on the same broker. The relay's figure includes its database work (select the
batch, mark it sent, on SQLite); the naive loop does no database work at all, so the ratio is
conservative. Last line: ``events_per_s=… naive_events_per_s=… ratio=…``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pika

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._services import rabbitmq
from daemon.db import create_db_engine, upgrade
from daemon.events import build_cloudevent, stable_event_id
from daemon.outbox import ConfirmingPublisher, OutboxRelay, add_event

RELAY_EVENTS = 30_000
NAIVE_EVENTS = 3_000
DATA = {"enterprise_number": "0403170701", "provider_id": "nsso", "message_id": "", "subject": "Avis de débit",
        "sender": "ONSS", "message_type": None, "published_at": "2026-11-27T09:00:00Z", "registered_mail": False}


def bind_queue(url: str, exchange: str) -> tuple[pika.BlockingConnection, str]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.exchange_declare(exchange, exchange_type="topic", durable=True)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, exchange, routing_key="#")
    return connection, queue


def measure_relay(url: str, exchange: str, workdir: Path) -> float:
    engine = create_db_engine(f"sqlite:///{workdir / 'bench.db'}")
    upgrade(engine)
    with engine.begin() as tx:
        for i in range(RELAY_EVENTS):
            add_event(tx, "be.eboxd.message.received", subject="0403170701", data={**DATA, "message_id": f"m{i}"},
                      idempotency_key=f"bench:{i}")
    relay = OutboxRelay(engine, ConfirmingPublisher(url, events_exchange=exchange), batch_size=500)
    relay.publisher.connect()
    started = time.perf_counter()
    sent = 0
    while (outcome := relay.relay_once()).published:
        sent += outcome.published
    elapsed = time.perf_counter() - started
    relay.publisher.close()
    assert sent == RELAY_EVENTS, f"relay sent {sent} of {RELAY_EVENTS}"
    return sent / elapsed


def measure_naive(url: str, exchange: str) -> float:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()  # basic_publish now waits for each confirm
    now = dt.datetime.now(dt.UTC)
    bodies = []
    for i in range(NAIVE_EVENTS):
        event_id = stable_event_id(f"naive:{i}")
        bodies.append((event_id, json.dumps(build_cloudevent("be.eboxd.message.received", subject="0403170701",
                                                             data={**DATA, "message_id": f"n{i}"},
                                                             event_id=event_id, time=now)).encode()))
    started = time.perf_counter()
    for event_id, body in bodies:
        channel.basic_publish(exchange, "be.eboxd.message.received", body,
                              pika.BasicProperties(delivery_mode=2, message_id=event_id,
                                                   content_type="application/cloudevents+json"))
    elapsed = time.perf_counter() - started
    connection.close()
    return NAIVE_EVENTS / elapsed


def main() -> None:
    with rabbitmq() as url, tempfile.TemporaryDirectory() as tmp:
        exchange = f"bench.events.{uuid.uuid4().hex[:8]}"
        admin, queue = bind_queue(url, exchange)
        try:
            naive = measure_naive(url, exchange)
            relay = measure_relay(url, exchange, Path(tmp))
        finally:
            admin.channel().queue_delete(queue)
            admin.channel().exchange_delete(exchange)
            admin.close()
    print(f"relay: {RELAY_EVENTS} events through the outbox (SQLite) with batched confirms")
    print(f"naive: {NAIVE_EVENTS} events, publish then wait for each confirm")
    print(f"events_per_s={relay:.0f} naive_events_per_s={naive:.0f} ratio={relay / naive:.1f}")


if __name__ == "__main__":
    main()
