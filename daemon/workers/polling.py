"""``poll_enterprise``: poll one e-Box under the lease the scheduler claimed for it."""

from __future__ import annotations

import dramatiq
import structlog

from daemon import metrics
from daemon.poll import Lease, poll_enterprise, start_poll
from daemon.workers.context import worker_context
from daemon.workers.tasks import POLL_ENTERPRISE

__all__ = ["poll_enterprise_actor"]

log = structlog.get_logger(__name__)


# No retries: a failed poll is rescheduled with backoff in the database, and a poll message that
# outlived its lease would only find it gone.
@dramatiq.actor(actor_name=POLL_ENTERPRISE.actor_name, queue_name=POLL_ENTERPRISE.queue_name, max_retries=0)
def poll_enterprise_actor(enterprise_id: int, lease: str) -> None:
    context = worker_context()
    run = start_poll(context.engine, Lease(enterprise_id, lease), context.config.poll)
    if run is None:
        metrics.POLLS.labels(outcome="stale").inc()
        log.info("poll.skipped_stale_lease", enterprise_id=enterprise_id)
        return
    structlog.contextvars.bind_contextvars(enterprise_id=enterprise_id)
    with metrics.POLL_SECONDS.time():
        outcome = poll_enterprise(context.engine, context.access, context.config, enterprise_id, run)
    metrics.POLLS.labels(outcome="failed" if outcome.error else "ok").inc()
    if outcome.error:
        metrics.POLL_FAILURES.labels(reason=outcome.error.split(":", 1)[0][:40]).inc()
    metrics.MESSAGES_RECEIVED.inc(outcome.new_messages)
