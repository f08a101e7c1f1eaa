"""Gauges that ``eboxd serve`` reads from the database (enterprises, certificate expiry, poll lag)
and from RabbitMQ (queue depth).

Every node refreshes its own copy (the values are facts about shared data, so alert rules take the
``min``/``max`` across nodes); this is not a scheduled job, which only one node would run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pika
import pika.exceptions
from dramatiq.common import dq_name
from prometheus_client import Gauge
from sqlalchemy import Engine, func, select

from daemon import metrics
from daemon.db.models import Credential, Enterprise, Message, PollState, utcnow

__all__ = ["CredentialGauges", "refresh_credential_gauges", "refresh_poll_gauges", "refresh_queue_gauges"]


@dataclass(frozen=True)
class CredentialGauges:
    enterprises_enabled: int
    enterprises_disabled: int
    certificates: int


def refresh_credential_gauges(engine: Engine) -> CredentialGauges:
    """Set ``eboxd_enterprises`` and ``eboxd_certificate_expiry_timestamp_seconds`` from the database.

    Series of enterprises that were removed, disabled or lost their certificate are dropped, so an
    expired certificate nobody uses any more stops alerting.
    """
    with engine.connect() as conn:
        counts = dict(conn.execute(select(Enterprise.enabled, func.count()).group_by(Enterprise.enabled)).all())
        rows = conn.execute(
            select(Enterprise.number, Credential.kind, Credential.certificate_not_after)
            .join(Credential, Credential.enterprise_id == Enterprise.id)
            .where(Enterprise.enabled.is_(True), Credential.certificate_not_after.is_not(None))
        ).all()
    enabled, disabled = int(counts.get(True, 0)), int(counts.get(False, 0))
    metrics.ENTERPRISES.labels(state="enabled").set(enabled)
    metrics.ENTERPRISES.labels(state="disabled").set(disabled)

    gauge = metrics.CERTIFICATE_EXPIRY
    current = {(number, kind): not_after.timestamp() for number, kind, not_after in rows if not_after is not None}
    for labels in _label_sets(gauge) - set(current):
        gauge.remove(*labels)
    for (number, kind), expires_at in current.items():
        gauge.labels(enterprise=number, kind=kind).set(expires_at)
    return CredentialGauges(enabled, disabled, len(current))


def _label_sets(gauge: Gauge) -> set[tuple[str, str]]:
    return {
        (sample.labels["enterprise"], sample.labels["kind"])
        for family in gauge.collect() for sample in family.samples
    }


LAG_QUANTILES = (0.5, 0.9, 0.99, 1.0)


def refresh_poll_gauges(engine: Engine, interval_seconds: float, now: dt.datetime | None = None) -> None:
    """``eboxd_poll_lag_seconds`` by quantile (1.0 is the worst enterprise) and ``eboxd_polls_overdue``.

    Quantiles, not one series per enterprise: 10,000 enterprises must not mean 10,000 series.
    """
    now = now or utcnow()
    with engine.connect() as conn:
        rows = conn.execute(
            select(PollState.last_success_at, Enterprise.created_at, PollState.next_poll_at)
            .join(Enterprise, Enterprise.id == PollState.enterprise_id).where(Enterprise.enabled.is_(True))
        ).all()
    lags = sorted((now - (success or created)).total_seconds() for success, created, _ in rows)
    for quantile in LAG_QUANTILES:
        value = lags[min(len(lags) - 1, int(quantile * len(lags)))] if lags else 0.0
        metrics.POLL_LAG.labels(quantile=f"{quantile:g}").set(max(value, 0.0))
    late = dt.timedelta(seconds=interval_seconds)
    metrics.POLLS_OVERDUE.set(sum(1 for *_, next_poll in rows if now - next_poll > late))
    with engine.connect() as conn:
        failing, queued, oldest = conn.execute(
            select(func.count(Message.fetch_failed_at), func.count(), func.min(Message.received_at))
            .where(Message.fetch_state == "pending")
        ).one()
    metrics.MESSAGES_PENDING_FETCH.labels(state="failing").set(failing)
    metrics.MESSAGES_PENDING_FETCH.labels(state="queued").set(queued - failing)
    metrics.OLDEST_PENDING_FETCH.set((now - oldest).total_seconds() if oldest else 0.0)


def refresh_queue_gauges(amqp_url: str, queues: tuple[str, ...]) -> None:
    """``eboxd_queue_messages`` from a passive declare of each queue, on a short-lived connection
    (the relay's connection belongs to the relay thread)."""
    parameters = pika.URLParameters(amqp_url)
    parameters.socket_timeout = parameters.stack_timeout = 2.0  # never hold up the loop (and watchdog) long
    parameters.connection_attempts = 1
    try:
        connection = pika.BlockingConnection(parameters)
    except (pika.exceptions.AMQPError, OSError):
        return  # the broker gauge and the relay already say the broker is down
    try:
        for queue in queues:
            for name in (queue, dq_name(queue)):
                channel = connection.channel()
                try:
                    count = channel.queue_declare(name, passive=True).method.message_count
                except pika.exceptions.ChannelClosedByBroker:
                    continue  # not declared yet: no worker and no message so far
                metrics.QUEUE_MESSAGES.labels(queue=name).set(count)
                channel.close()
    finally:
        connection.close()
