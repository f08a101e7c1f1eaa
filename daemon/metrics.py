"""Prometheus metrics of the ``eboxd serve`` process (one process: the default registry).

Names follow Prometheus conventions: ``eboxd_`` prefix, ``_total`` counters, base units.
Labels are bounded: kinds and reasons, never message or enterprise ids.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "OUTBOX_OLDEST_PENDING",
    "OUTBOX_PENDING",
    "OUTBOX_PUBLISHED",
    "OUTBOX_PUBLISH_FAILURES",
    "OUTBOX_RELAY_BATCH_SECONDS",
    "SCHEDULER_JOB_RUNS",
    "SCHEDULER_LAST_LOOP",
]

OUTBOX_PENDING = Gauge("eboxd_outbox_pending", "Outbox rows not yet confirmed by the broker.")
OUTBOX_OLDEST_PENDING = Gauge(
    "eboxd_outbox_oldest_pending_seconds", "Age of the oldest outbox row not yet confirmed by the broker."
)
OUTBOX_PUBLISHED = Counter(
    "eboxd_outbox_published_total", "Outbox rows published and confirmed by the broker.", ["kind"]
)
OUTBOX_PUBLISH_FAILURES = Counter(
    "eboxd_outbox_publish_failures_total", "Outbox publications that failed and will be retried.", ["reason"]
)
OUTBOX_RELAY_BATCH_SECONDS = Histogram(
    "eboxd_outbox_relay_batch_seconds", "Time to publish one outbox batch and record the confirms."
)
SCHEDULER_LAST_LOOP = Gauge(
    "eboxd_scheduler_last_loop_timestamp_seconds", "When the scheduler loop last completed a round."
)
SCHEDULER_JOB_RUNS = Counter(
    "eboxd_scheduler_job_runs_total", "Periodic job runs by the scheduler.", ["job", "outcome"]
)
