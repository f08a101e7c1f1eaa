"""The dramatiq broker of eboxd's workers: RabbitMQ with publisher confirms, bounded retries."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from daemon.config import Config
from daemon.workers.middleware import LogContext

__all__ = ["amqp_url", "create_broker"]


def amqp_url(config: Config) -> str:
    """The broker URL with heartbeat and blocked-connection timeout, unless the URL sets them."""
    url = config.broker.url
    extra = []
    if "heartbeat=" not in url:
        extra.append(f"heartbeat={config.broker.heartbeat_seconds}")
    if "blocked_connection_timeout=" not in url:
        extra.append(f"blocked_connection_timeout={config.broker.blocked_connection_timeout_seconds}")
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + "&".join(extra)


def create_broker(config: Config, *, prometheus: bool = False) -> RabbitmqBroker:
    worker = config.worker
    middleware: list[dramatiq.Middleware] = [
        AgeLimit(),
        TimeLimit(time_limit=int(worker.time_limit_seconds * 1000)),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        # Waits stay under RabbitMQ's 30-minute ack timeout (config enforces the bound).
        Retries(max_retries=worker.max_retries, min_backoff=int(worker.min_backoff_seconds * 1000),
                max_backoff=int(worker.max_backoff_seconds * 1000)),
        LogContext(),
        CurrentMessage(),  # the export actor reads its retry count (last attempt → ledger row failed)
    ]
    if prometheus:
        # Imported only when wanted: the module creates its metrics database at import time.
        from dramatiq.middleware.prometheus import Prometheus  # noqa: PLC0415

        middleware.append(Prometheus())
    return RabbitmqBroker(url=amqp_url(config), confirm_delivery=True, middleware=middleware)
