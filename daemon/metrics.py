"""Prometheus metrics of eboxd; the catalogue with meaning and alerts is ``docs/metrics.md``.

Names follow Prometheus conventions: ``eboxd_`` prefix, ``_total`` counters, base units
(``_seconds``, ``_timestamp_seconds``). Labels are bounded: kinds, reasons, outcomes, job and
exporter names, enterprise numbers; never message, document or event ids.

Two kinds of process use this module:

- ``eboxd serve`` (one process, the default registry, served on ``/metrics``): the serve metrics
  below are created on first use, or all at once by :func:`create_serve_metrics` when the daemon
  starts.
- ``eboxd worker`` (dramatiq, several processes): with ``PROMETHEUS_MULTIPROC_DIR`` set before
  Python starts (the systemd unit does it), every metric created here is written to that directory
  and dramatiq's exposition server sums them across processes. Worker metrics are counters and
  histograms only, which aggregate without a ``multiprocess_mode``. The serve metrics are not
  created in workers at all (they import the outbox module to purge it), so a worker's endpoint
  never shows a relay gauge or a scheduler timestamp stuck at zero.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BROKER_UP",
    "BUILD_INFO",
    "CERTIFICATE_EXPIRY",
    "CODA_FILES",
    "DOCUMENTS_STORED",
    "DOCUMENT_BYTES",
    "EBOX_TOKEN_FAILURES",
    "ENTERPRISES",
    "EXPORTS",
    "FETCH_FAILURES",
    "MESSAGES_PENDING_FETCH",
    "MESSAGES_RECEIVED",
    "OLDEST_PENDING_FETCH",
    "OUTBOX_OLDEST_PENDING",
    "OUTBOX_PENDING",
    "OUTBOX_PUBLISHED",
    "OUTBOX_PUBLISH_FAILURES",
    "OUTBOX_PURGED_ROWS",
    "OUTBOX_RELAY_BATCH_SECONDS",
    "PAYMENT_REQUESTS",
    "POLLS",
    "POLLS_OVERDUE",
    "POLL_FAILURES",
    "POLL_LAG",
    "POLL_SECONDS",
    "PONTO_RETRIES",
    "PONTO_TRANSACTIONS",
    "PONTO_WEBHOOKS",
    "QUEUE_MESSAGES",
    "SCHEDULER_JOB_RUNS",
    "SCHEDULER_LAST_LOOP",
    "SERVE_METRICS",
    "WORKER_METRICS",
    "create_serve_metrics",
]

# --- Any process (worker processes aggregate them through PROMETHEUS_MULTIPROC_DIR) ------------

EBOX_TOKEN_FAILURES = Counter(
    "eboxd_ebox_token_failures_total",
    "e-Box OAuth token requests that failed, by reason (unreachable, invalid_client, unknown_client, "
    "invalid_scope, unauthorized_client, endpoint_error).", ["reason"],
)
OUTBOX_PURGED_ROWS = Counter(
    "eboxd_outbox_purged_rows_total", "Confirmed outbox rows deleted after the retention period."
)
EXPORTS = Counter(
    "eboxd_exports_total", "Document exports by exporter and outcome (completed, failed, retried, deferred).",
    ["exporter", "outcome"],
)

POLLS = Counter(
    "eboxd_polls_total", "Enterprise polls by outcome (ok, failed, stale: the lease was gone).", ["outcome"]
)
POLL_FAILURES = Counter(
    "eboxd_poll_failures_total", "Failed polls by reason (the error's type: ServerError, EboxTimeout, …).", ["reason"]
)
POLL_SECONDS = Histogram(
    "eboxd_poll_duration_seconds", "Time to poll one enterprise (every provider, every page) and store the result.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
MESSAGES_RECEIVED = Counter("eboxd_messages_received_total", "New e-Box messages stored.")
DOCUMENTS_STORED = Counter("eboxd_documents_stored_total", "Documents downloaded, checked and stored.")
DOCUMENT_BYTES = Counter("eboxd_document_bytes_total", "Bytes of documents downloaded and stored.")
FETCH_FAILURES = Counter(
    "eboxd_fetch_failures_total",
    "Failed message fetches by reason (the error's type, or the document store's state: disk_full, read_only, "
    "permission_denied, store_unavailable); retried.", ["reason"]
)
PAYMENT_REQUESTS = Counter(
    "eboxd_payment_requests_total", "Payment requests read from documents, by status (open, review).", ["status"]
)
PONTO_RETRIES = Counter(
    "eboxd_ponto_retries_total", "Ponto Connect calls retried, by reason (429, 5xx, network).", ["reason"]
)
PONTO_TRANSACTIONS = Counter(
    "eboxd_ponto_transactions_total",
    "Ponto transactions read by sync_ponto, by outcome (inserted, known, linked: already imported from CODA).",
    ["outcome"],
)
PONTO_WEBHOOKS = Counter(
    "eboxd_ponto_webhooks_total", "Ponto webhooks received, by outcome (accepted, or the refusal reason).",
    ["outcome"],
)

WORKER_METRICS: tuple[Any, ...] = (
    EBOX_TOKEN_FAILURES, OUTBOX_PURGED_ROWS, EXPORTS, POLLS, POLL_FAILURES, POLL_SECONDS, MESSAGES_RECEIVED,
    DOCUMENTS_STORED, DOCUMENT_BYTES, FETCH_FAILURES, PAYMENT_REQUESTS, PONTO_RETRIES, PONTO_TRANSACTIONS,
    PONTO_WEBHOOKS,
)

# --- eboxd serve only: created on first use ----------------------------------------------------

_SERVE_FACTORIES: dict[str, Callable[[], Any]] = {
    "OUTBOX_PENDING": lambda: Gauge("eboxd_outbox_pending", "Outbox rows not yet confirmed by the broker."),
    "OUTBOX_OLDEST_PENDING": lambda: Gauge(
        "eboxd_outbox_oldest_pending_seconds", "Age of the oldest outbox row not yet confirmed by the broker."
    ),
    "OUTBOX_PUBLISHED": lambda: Counter(
        "eboxd_outbox_published_total", "Outbox rows published and confirmed by the broker.", ["kind"]
    ),
    "OUTBOX_PUBLISH_FAILURES": lambda: Counter(
        "eboxd_outbox_publish_failures_total", "Outbox publications that failed and will be retried.", ["reason"]
    ),
    "OUTBOX_RELAY_BATCH_SECONDS": lambda: Histogram(
        "eboxd_outbox_relay_batch_seconds", "Time to publish one outbox batch and record the confirms."
    ),
    "SCHEDULER_LAST_LOOP": lambda: Gauge(
        "eboxd_scheduler_last_loop_timestamp_seconds", "When the scheduler loop last completed a round."
    ),
    "SCHEDULER_JOB_RUNS": lambda: Counter(
        # "name", not "job": Prometheus owns the job label (it would become exported_job).
        "eboxd_scheduler_job_runs_total", "Periodic job runs by the scheduler.", ["name", "outcome"]
    ),
    "BROKER_UP": lambda: Gauge(
        "eboxd_broker_up", "1 while the outbox relay can publish to RabbitMQ, 0 while it backs off."
    ),
    "ENTERPRISES": lambda: Gauge("eboxd_enterprises", "Enterprises in the database, by state.", ["state"]),
    "CERTIFICATE_EXPIRY": lambda: Gauge(
        "eboxd_certificate_expiry_timestamp_seconds",
        "When the certificate of an enabled enterprise's credential expires (Unix time).", ["enterprise", "kind"],
    ),
    "BUILD_INFO": lambda: Gauge("eboxd_build_info", "Always 1; the labels say which eboxd runs.", ["version"]),
    "POLL_LAG": lambda: Gauge(
        "eboxd_poll_lag_seconds",
        "Now minus the last successful poll, over enabled enterprises (never polled: since they were added), "
        "as quantiles.", ["quantile"],
    ),
    "POLLS_OVERDUE": lambda: Gauge(
        "eboxd_polls_overdue", "Enabled enterprises whose next poll is more than one interval late."
    ),
    "MESSAGES_PENDING_FETCH": lambda: Gauge(
        "eboxd_messages_pending_fetch", "Messages whose documents are not stored yet, by state (queued, failing).",
        ["state"],
    ),
    "OLDEST_PENDING_FETCH": lambda: Gauge(
        "eboxd_oldest_pending_fetch_seconds", "Age of the oldest message whose documents are not stored yet."
    ),
    "CODA_FILES": lambda: Counter(
        "eboxd_coda_files_total", "CODA files taken from the drop folder, by outcome (imported, duplicate, "
        "rejected, failed: left in the folder and tried again).", ["outcome"],
    ),
    "QUEUE_MESSAGES": lambda: Gauge(
        "eboxd_queue_messages", "Messages ready in each of eboxd's RabbitMQ queues (and their delay queues).",
        ["queue"],
    ),
}

SERVE_METRICS: tuple[str, ...] = tuple(_SERVE_FACTORIES)

if TYPE_CHECKING:
    OUTBOX_PENDING: Gauge
    OUTBOX_OLDEST_PENDING: Gauge
    OUTBOX_PUBLISHED: Counter
    OUTBOX_PUBLISH_FAILURES: Counter
    OUTBOX_RELAY_BATCH_SECONDS: Histogram
    SCHEDULER_LAST_LOOP: Gauge
    SCHEDULER_JOB_RUNS: Counter
    BROKER_UP: Gauge
    ENTERPRISES: Gauge
    CERTIFICATE_EXPIRY: Gauge
    BUILD_INFO: Gauge
    POLL_LAG: Gauge
    POLLS_OVERDUE: Gauge
    QUEUE_MESSAGES: Gauge
    CODA_FILES: Counter
    MESSAGES_PENDING_FETCH: Gauge
    OLDEST_PENDING_FETCH: Gauge

_create_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    factory = _SERVE_FACTORIES.get(name)
    if factory is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _create_lock:  # the relay thread and the loop may ask at the same moment
        if name not in globals():
            globals()[name] = factory()
    return globals()[name]


def create_serve_metrics() -> None:
    """Create every serve metric now, so ``/metrics`` lists them all from the first scrape."""
    for name in SERVE_METRICS:
        __getattr__(name)
