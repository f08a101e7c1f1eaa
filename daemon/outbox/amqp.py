"""A RabbitMQ publisher that pipelines a batch and waits for all publisher confirms at once.

pika's ``BlockingChannel`` with confirms on waits for each message's confirm before returning
from ``basic_publish``: one broker round trip (and fsync) per message. We keep the blocking
connection for connecting, declaring and heartbeats, but publish on its underlying asynchronous
channel with our own ack/nack/return callbacks and collect the confirms by delivery tag.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions
from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL
from dramatiq.common import dq_name, xq_name
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

__all__ = ["BatchResult", "BrokerUnavailable", "ConfirmingPublisher", "Outgoing", "declare_dramatiq_queue"]

# What a dead or unreachable broker raises through pika, in every phase.
AMQP_ERRORS: tuple[type[BaseException], ...] = (
    pika.exceptions.AMQPError,
    ConnectionError,
    OSError,
)


class BrokerUnavailable(Exception):
    """The broker cannot be reached or dropped the connection."""


@dataclass(frozen=True)
class Outgoing:
    key: str  # unique within a batch; also sent as the AMQP message_id
    exchange: str
    routing_key: str
    body: bytes
    properties: pika.BasicProperties
    mandatory: bool = False
    queue: str | None = None  # a dramatiq queue that must exist before publishing


@dataclass
class BatchResult:
    confirmed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # key → reason (nack, unroutable, timeout)
    broker_error: str | None = None  # set when the connection failed during the batch
    # Sent but neither confirmed nor refused (connection lost, confirm timeout): the broker may have
    # routed them, so publishing them again may deliver them twice (same id: consumers dedupe).
    in_doubt: list[str] = field(default_factory=list)


def declare_dramatiq_queue(channel: BlockingChannel, queue: str) -> None:
    """Declare ``queue`` exactly as dramatiq's RabbitmqBroker does (its arguments are schema)."""
    dead_letter = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": xq_name(queue)}
    channel.queue_declare(queue=queue, durable=True, arguments=dead_letter)
    channel.queue_declare(queue=dq_name(queue), durable=True, arguments=dead_letter)
    channel.queue_declare(queue=xq_name(queue), durable=True, arguments={"x-message-ttl": DEAD_MESSAGE_TTL})


class ConfirmingPublisher:
    def __init__(self, url: str, *, heartbeat: int = 15, blocked_connection_timeout: int = 60,
                 connect_timeout: float = 5.0, confirm_timeout: float = 30.0,
                 events_exchange: str = "eboxd.events") -> None:
        self._parameters = pika.URLParameters(url)
        self._parameters.heartbeat = heartbeat
        self._parameters.blocked_connection_timeout = blocked_connection_timeout
        self._parameters.socket_timeout = connect_timeout
        self._parameters.stack_timeout = connect_timeout * 2
        self._parameters.connection_attempts = 1
        self._confirm_timeout = confirm_timeout
        self.events_exchange = events_exchange
        self._connection: BlockingConnection | None = None
        self._admin: BlockingChannel | None = None
        self._publishing: BlockingChannel | None = None
        self._channel: Any = None  # pika.channel.Channel (asynchronous) under a BlockingChannel
        self._declared_queues: set[str] = set()
        self._next_tag = 0
        self._in_flight: dict[int, str] = {}
        self._result = BatchResult()

    # -- connection ---------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connection is not None and self._connection.is_open

    def connect(self) -> None:
        if self.connected:
            return
        self.close()
        try:
            self._connection = pika.BlockingConnection(self._parameters)
            self._admin = self._connection.channel()
            self._admin.exchange_declare(self.events_exchange, exchange_type="topic", durable=True)
            self._publishing = self._connection.channel()
            self._channel = self._publishing._impl  # the asynchronous channel, see module docstring
            selected: list[bool] = []
            self._channel.add_on_return_callback(self._on_return)
            self._channel.confirm_delivery(self._on_confirm, callback=lambda _frame: selected.append(True))
            self._wait_until(lambda: bool(selected), self._confirm_timeout)
            if not selected:
                raise BrokerUnavailable("broker did not enable publisher confirms in time")
        except AMQP_ERRORS as exc:
            self.close()
            raise BrokerUnavailable(_describe(exc)) from exc
        self._next_tag = 0
        self._declared_queues.clear()

    def close(self) -> None:
        connection, self._connection = self._connection, None
        self._admin = self._publishing = self._channel = None
        if connection is not None and connection.is_open:
            with contextlib.suppress(*AMQP_ERRORS):  # already broken: nothing to release
                connection.close()

    def sleep(self, seconds: float) -> None:
        """Sleep while servicing heartbeats, so an idle relay keeps its connection."""
        if self.connected:
            assert self._connection is not None
            try:
                self._connection.process_data_events(time_limit=seconds)
                return
            except AMQP_ERRORS:
                self.close()
        time.sleep(seconds)

    # -- publishing -----------------------------------------------------------------------------

    def publish_batch(self, messages: Iterable[Outgoing]) -> BatchResult:
        """Publish every message, then wait until each is confirmed, refused or timed out.

        Never raises for broker trouble: the result says which keys were confirmed; everything
        else must be published again later.
        """
        self._result = result = BatchResult()
        self._in_flight = {}
        batch = list(messages)
        try:
            self.connect()
            for message in batch:
                if message.queue and message.queue not in self._declared_queues:
                    assert self._admin is not None
                    declare_dramatiq_queue(self._admin, message.queue)
                    self._declared_queues.add(message.queue)
                self._channel.basic_publish(message.exchange, message.routing_key, message.body,
                                            message.properties, message.mandatory)
                self._next_tag += 1
                self._in_flight[self._next_tag] = message.key
            self._wait_until(lambda: not self._in_flight, self._confirm_timeout)
        except (BrokerUnavailable, *AMQP_ERRORS) as exc:
            result.broker_error = _describe(exc)
            self.close()
        confirmed = set(result.confirmed)
        unconfirmed = set(self._in_flight.values()) | {
            m.key for m in batch if m.key not in result.failed and m.key not in confirmed
        }
        result.in_doubt = list(self._in_flight.values())
        if unconfirmed:
            result.confirmed = [key for key in result.confirmed if key not in unconfirmed]
        for key in unconfirmed:
            result.failed.setdefault(key, result.broker_error or "no confirm before the timeout")
        self._in_flight = {}
        return result

    def _wait_until(self, done: Callable[[], bool], timeout: float) -> None:
        assert self._connection is not None
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            # process_data_events waits out its whole time limit when only our own (asynchronous
            # channel) callbacks fire, so keep the slices short: confirms are noticed within 2 ms.
            self._connection.process_data_events(time_limit=min(remaining, 0.002))

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        acked = isinstance(method, pika.spec.Basic.Ack)
        tags = [t for t in self._in_flight if t <= method.delivery_tag] if method.multiple else [method.delivery_tag]
        for tag in tags:
            key = self._in_flight.pop(tag, None)
            if key is None:
                continue
            if not acked:
                self._result.failed[key] = "refused by the broker (nack)"
            elif key not in self._result.failed:  # a returned message is acked too
                self._result.confirmed.append(key)

    def _on_return(self, _channel: Any, method: Any, properties: pika.BasicProperties, _body: bytes) -> None:
        if properties.message_id:
            self._result.failed[properties.message_id] = f"unroutable: {method.reply_text}"
            # Its queue may have been deleted: declare again before the next attempt.
            self._declared_queues.discard(method.routing_key)


def _describe(exc: BaseException) -> str:
    # pika nests the socket error in the args of its connection errors: report the innermost one.
    for _ in range(5):
        inner = getattr(exc, "exception", None)  # pika's connector errors carry the socket error here
        if inner is None and isinstance(exc, pika.exceptions.AMQPConnectionError) and exc.args:
            inner = exc.args[0]
        if not isinstance(inner, BaseException):
            break
        exc = inner
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
