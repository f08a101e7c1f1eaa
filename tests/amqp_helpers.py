"""Test-side RabbitMQ helpers: a durable queue bound to a per-test events exchange, drained with
basic_get so the test sees exactly what the broker holds (no dedupe of any kind)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pika
import pytest

from benchmarks._services import private_vhost


def unique_name(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


@contextmanager
def channel(url: str) -> Iterator[Any]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        yield connection.channel()
    finally:
        if connection.is_open:
            connection.close()


def bind_event_queue(url: str, exchange: str, binding: str = "#") -> str:
    """A durable queue receiving every event of ``exchange``; survives a broker restart."""
    queue = unique_name("test-events")
    with channel(url) as ch:
        ch.exchange_declare(exchange, exchange_type="topic", durable=True)
        ch.queue_declare(queue, durable=True)
        ch.queue_bind(queue, exchange, routing_key=binding)
    return queue


def drain(url: str, queue: str, *, expect: int, timeout: float = 30.0) -> list[tuple[Any, dict[str, Any]]]:
    """Take messages until ``expect`` arrived and the queue stays empty a moment, or the timeout."""
    received: list[tuple[Any, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    with channel(url) as ch:
        while time.monotonic() < deadline:
            method, properties, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                if len(received) >= expect:
                    quiet_since = quiet_since or time.monotonic()
                    if time.monotonic() - quiet_since > 0.5:  # give duplicates a chance to show up
                        break
                time.sleep(0.05)
                continue
            quiet_since = None
            received.append((properties, json.loads(body)))
    return received


def delete_queue(url: str, queue: str) -> None:
    with channel(url) as ch:
        ch.queue_delete(queue)


def private_amqp_url() -> Iterator[str]:
    """For a fixture: a vhost of the test's own on the test broker, deleted afterwards. A worker
    the test starts, or kills, must not take or leave tasks of another test sharing the broker
    (the task queues have fixed names)."""
    url = os.environ.get("EBOXD_TEST_AMQP_URL")
    if not url:
        pytest.fail("$EBOXD_TEST_AMQP_URL is not set: run the suite with `make test`")
    with private_vhost(url) as private:
        yield private
