"""Transactional outbox: write events with the change that causes them; a relay publishes them."""

from __future__ import annotations

from daemon.outbox.amqp import BrokerUnavailable, ConfirmingPublisher
from daemon.outbox.relay import OutboxRelay, RelayRound
from daemon.outbox.write import add_event, add_task

__all__ = ["BrokerUnavailable", "ConfirmingPublisher", "OutboxRelay", "RelayRound", "add_event", "add_task"]
