"""The outbox's promises under failure: a broker restart and a relay killed at the worst moment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import Engine

from daemon.outbox import ConfirmingPublisher, OutboxRelay
from tests.amqp_helpers import drain
from tests.outbox.test_relay import add_events, unsent

REPO = Path(__file__).resolve().parents[2]
RABBITMQ = REPO / "scripts" / "services" / "rabbitmq.sh"
RELAY_PROCESS = Path(__file__).with_name("relay_process.py")

pytestmark = pytest.mark.slow


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def by_id(received: list) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for _, body in received:
        grouped[body["id"]].append(body)
    return grouped


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_broker_restart_delivers_every_pending_event_exactly_once(
        engine: Engine, amqp_url: str, events_exchange: str, event_queue: str) -> None:
    add_events(engine, 300, prefix="before")
    subprocess.run([str(RABBITMQ), "pause"], check=True, timeout=120, capture_output=True)
    try:
        stop = threading.Event()
        relay = OutboxRelay(engine, ConfirmingPublisher(amqp_url, events_exchange=events_exchange,
                                                        connect_timeout=1), batch_size=100)
        thread = threading.Thread(target=relay.run, args=(stop,), kwargs={"idle_interval": 0.05, "max_pause": 1})
        thread.start()
        add_events(engine, 300, prefix="during")  # written while the broker is down
        wait_for(lambda: not relay.broker_up, 10, "the relay to notice the broker is down")
        assert unsent(engine) == 600
    finally:
        subprocess.run([str(RABBITMQ), "resume"], check=True, timeout=120, capture_output=True)
    try:
        wait_for(lambda: unsent(engine) == 0, 60, "the outbox to drain after the restart")
    finally:
        stop.set()
        thread.join(10)
        relay.publisher.close()
    received = drain(amqp_url, event_queue, expect=600)
    grouped = by_id(received)
    assert len(grouped) == 600, "an event is missing"
    assert len(received) == 600, "an event was delivered twice"


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_relay_killed_between_confirm_and_mark_sent_duplicates_only_with_the_same_id(
        engine: Engine, database_url: str, amqp_url: str, events_exchange: str, event_queue: str) -> None:
    add_events(engine, 1000)
    crashed = subprocess.run(
        [sys.executable, str(RELAY_PROCESS), database_url, amqp_url, events_exchange,
         "--batch-size", "100", "--die-after", "3"],
        check=False, timeout=60, capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode()[-2000:]
    assert unsent(engine) == 700  # three batches marked sent; the fourth was confirmed, not marked

    restarted = subprocess.Popen([sys.executable, str(RELAY_PROCESS), database_url, amqp_url, events_exchange],
                                 env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        wait_for(lambda: unsent(engine) == 0, 60, "the restarted relay to drain the outbox")
    finally:
        restarted.terminate()
        restarted.wait(10)
    received = drain(amqp_url, event_queue, expect=1100)
    grouped = by_id(received)
    assert len(grouped) == 1000, "an event is missing"
    duplicated = {event_id: bodies for event_id, bodies in grouped.items() if len(bodies) > 1}
    assert len(duplicated) == 100  # exactly the batch in flight at the crash
    for bodies in duplicated.values():
        assert all(body == bodies[0] for body in bodies), "a duplicate differs from its original"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_relay_killed_at_random_moments_loses_nothing(
        engine: Engine, database_url: str, amqp_url: str, events_exchange: str, event_queue: str) -> None:
    add_events(engine, 3000)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for delay in (0.9, 1.3, 0.7):
        relay = subprocess.Popen([sys.executable, str(RELAY_PROCESS), database_url, amqp_url, events_exchange,
                                  "--batch-size", "50"], env=env)
        time.sleep(delay)
        relay.send_signal(signal.SIGKILL)
        relay.wait(10)
    relay = subprocess.Popen([sys.executable, str(RELAY_PROCESS), database_url, amqp_url, events_exchange], env=env)
    try:
        wait_for(lambda: unsent(engine) == 0, 60, "the last relay to drain the outbox")
    finally:
        relay.terminate()
        relay.wait(10)
    received = drain(amqp_url, event_queue, expect=3000)
    grouped = by_id(received)
    assert len(grouped) == 3000, "an event is missing"
    assert len(received) - 3000 <= 3 * 50, "more duplicates than the batches in flight at the kills"
    for bodies in grouped.values():
        assert all(body == bodies[0] for body in bodies)
