from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from daemon.outbox import ConfirmingPublisher, OutboxRelay
from tests.amqp_helpers import bind_event_queue, delete_queue, unique_name


@pytest.fixture
def events_exchange() -> str:
    return unique_name("test.eboxd.events")


@pytest.fixture
def event_queue(amqp_url: str, events_exchange: str) -> Iterator[str]:
    queue = bind_event_queue(amqp_url, events_exchange)
    yield queue
    delete_queue(amqp_url, queue)


@pytest.fixture
def publisher(amqp_url: str, events_exchange: str) -> Iterator[ConfirmingPublisher]:
    pub = ConfirmingPublisher(amqp_url, events_exchange=events_exchange, confirm_timeout=10)
    yield pub
    pub.close()


@pytest.fixture
def relay(engine: Engine, publisher: ConfirmingPublisher) -> OutboxRelay:
    return OutboxRelay(engine, publisher, batch_size=200)
