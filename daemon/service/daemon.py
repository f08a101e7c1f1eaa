"""``eboxd serve``: the scheduler loop, the outbox relay thread, sd_notify and the status endpoints."""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from daemon import __version__, metrics
from daemon.config import Config
from daemon.fetch.failures import requeue_failed_fetches
from daemon.outbox import ConfirmingPublisher, OutboxRelay, add_task
from daemon.payments.drop_folder import CodaDropFolder
from daemon.poll.schedule import claim_due_polls
from daemon.service.gauges import refresh_credential_gauges, refresh_poll_gauges, refresh_queue_gauges
from daemon.service.http import StatusServer
from daemon.service.payment_reminders import JOB_NAME as PAYMENT_REMINDERS
from daemon.service.payment_reminders import emit_payment_reminders
from daemon.service.scheduler import PeriodicJob, run_due_jobs
from daemon.service.sdnotify import sd_notify, watchdog_interval
from daemon.workers.broker import amqp_url
from daemon.workers.tasks import PURGE_OUTBOX, QUEUES

__all__ = ["Daemon", "coda_drop_folder", "create_publisher", "default_jobs", "ponto_webhook_routes"]

log = structlog.get_logger(__name__)

# The relay thread must have started a round within this many seconds, or the daemon is stuck.
RELAY_STALL_SECONDS = 60.0
# How often each node re-reads the enterprise and certificate gauges from the database.
GAUGE_REFRESH_SECONDS = 60.0
# After the drop folder could not be read (missing mount, permissions), it is looked at again after this long.
DROP_FOLDER_RETRY_SECONDS = 60.0


def create_publisher(config: Config) -> ConfirmingPublisher:
    return ConfirmingPublisher(
        amqp_url(config), heartbeat=config.broker.heartbeat_seconds,
        blocked_connection_timeout=config.broker.blocked_connection_timeout_seconds,
        connect_timeout=config.broker.connect_timeout_seconds,
        confirm_timeout=config.outbox.confirm_timeout_seconds, events_exchange=config.broker.events_exchange,
    )


def default_jobs(config: Config) -> list[PeriodicJob]:
    retention = config.outbox.retention_days

    def purge_outbox(tx: Connection, now: dt.datetime) -> None:
        add_task(tx, PURGE_OUTBOX, {"retention_days": retention},
                 idempotency_key=f"purge_outbox:{now:%Y-%m-%dT%H}")

    def enqueue_polls(tx: Connection, now: dt.datetime) -> None:
        claim_due_polls(tx, config.poll, now)

    refetch_after = dt.timedelta(seconds=config.documents.refetch_after_seconds)

    def requeue_fetches(tx: Connection, now: dt.datetime) -> None:
        requeue_failed_fetches(tx, refetch_after, now)

    def payment_reminders(tx: Connection, now: dt.datetime) -> None:
        emit_payment_reminders(tx, now, due_soon_days=config.banking.due_soon_days)

    jobs = [
        # Every round: due enterprises are claimed under a lease and queued as poll tasks.
        PeriodicJob("enqueue-polls", dt.timedelta(seconds=config.service.loop_interval_seconds), enqueue_polls),
        PeriodicJob("requeue-fetches", min(dt.timedelta(minutes=1), refetch_after / 2), requeue_fetches),
        PeriodicJob("purge-outbox", dt.timedelta(hours=1), purge_outbox),
        # Hourly, so a request read today still hears about a due date within the hour; each
        # reminder is queued once whatever the interval.
        PeriodicJob(PAYMENT_REMINDERS, dt.timedelta(hours=1), payment_reminders),
    ]
    if config.ponto.enabled:
        from daemon.banking.ponto import queue_due_syncs  # noqa: PLC0415 - only when Ponto is on

        def ponto_syncs(tx: Connection, now: dt.datetime) -> None:
            queue_due_syncs(tx, now)

        # Each linked account is queued when due ([ponto] sync_interval_seconds after its last sync).
        jobs.append(PeriodicJob("ponto-syncs", dt.timedelta(minutes=1), ponto_syncs))
    return jobs


def ponto_webhook_routes(config: Config, engine: Engine) -> dict[str, Any]:
    """``{[ponto] webhook_path: handler}`` when Ponto and its webhook are on, else nothing."""
    if not (config.ponto.enabled and config.ponto.webhook_path):
        return {}
    from daemon.banking.ponto import PontoSettings, WebhookVerifier, webhook_route  # noqa: PLC0415

    return {config.ponto.webhook_path: webhook_route(WebhookVerifier(PontoSettings.from_config(config), engine))}


def coda_drop_folder(config: Config, engine: Engine) -> CodaDropFolder | None:
    """The watched CODA folder of ``[banking] coda_drop_dir`` (relative to the data directory), or None."""
    if not config.banking.coda_drop_dir:
        return None
    directory = Path(config.banking.coda_drop_dir).expanduser()
    return CodaDropFolder(engine, directory if directory.is_absolute() else config.data_dir / directory,
                          settle_seconds=config.banking.coda_drop_settle_seconds)


class Daemon:
    def __init__(self, config: Config, engine: Engine, publisher: ConfirmingPublisher,
                 jobs: Sequence[PeriodicJob] | None = None) -> None:
        self.config = config
        self.engine = engine
        self.stop = threading.Event()
        self.relay = OutboxRelay(engine, publisher, batch_size=config.outbox.batch_size,
                                 max_backoff_seconds=config.outbox.max_backoff_seconds)
        self.jobs = list(default_jobs(config) if jobs is None else jobs)
        self.status_server = StatusServer(config.service.http_host, config.service.http_port, self.health,
                                          ponto_webhook_routes(config, engine))
        self._relay_thread = threading.Thread(target=self._run_relay, name="outbox-relay", daemon=True)
        # Its own thread: importing a large file must not hold up the loop (and the watchdog).
        self.coda_drop = coda_drop_folder(config, engine)
        self._drop_thread = threading.Thread(target=self._watch_drop_folder, name="coda-drop", daemon=True)
        self._last_loop = time.monotonic()
        self._loop_ok = True
        self._gauges_due = 0.0  # monotonic time of the next gauge refresh; 0: at the first round
        self._enterprises = 0
        metrics.create_serve_metrics()
        metrics.BUILD_INFO.labels(version=__version__).set(1)
        # From the start, not only at the end of the first round: a scrape during that round (its
        # gauges are set one by one) would otherwise see the broker down.
        metrics.BROKER_UP.set(1 if self.relay.broker_up else 0)

    def install_signal_handlers(self) -> None:
        def request_stop(signum: int, _frame: Any) -> None:
            log.info("daemon.stopping", signal=signal.Signals(signum).name)
            self.stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)

    def health(self) -> tuple[bool, dict[str, Any]]:
        loop_age = time.monotonic() - self._last_loop
        relay_age = time.monotonic() - self.relay.last_round_at
        healthy = (self._loop_ok and self._relay_thread.is_alive() and relay_age < RELAY_STALL_SECONDS
                   and loop_age < max(10 * self.config.service.loop_interval_seconds, 30))
        return healthy, {"loop_age_seconds": round(loop_age, 3), "relay_age_seconds": round(relay_age, 3),
                         "broker": "up" if self.relay.broker_up else "down"}

    def run(self) -> None:
        self.status_server.start()
        host, port = self.status_server.address
        self._relay_thread.start()
        if self.coda_drop is not None:
            self._drop_thread.start()
        sd_notify("READY=1", "STATUS=eboxd running")
        watchdog = watchdog_interval()
        log.info("daemon.ready", http=f"http://{host}:{port}", database=self.engine.dialect.name,
                 watchdog_seconds=watchdog)
        if watchdog is not None and self.config.service.loop_interval_seconds >= watchdog:
            log.warning("daemon.watchdog_too_short", watchdog_seconds=watchdog,
                        loop_interval_seconds=self.config.service.loop_interval_seconds)
        try:
            while not self.stop.wait(self.config.service.loop_interval_seconds):
                self._round()
        finally:
            sd_notify("STOPPING=1")
            self.stop.set()
            self._relay_thread.join(timeout=self.config.outbox.confirm_timeout_seconds + 5)
            if self._drop_thread.is_alive():
                # An import under way finishes (one transaction) or is rolled back with the process;
                # either way the file is still in the folder and imported (again, harmlessly) next time.
                self._drop_thread.join(timeout=30)
            self.relay.publisher.close()
            self.status_server.stop()
            log.info("daemon.stopped")

    def _round(self) -> None:
        try:
            run_due_jobs(self.engine, self.jobs)
            self.relay.refresh_gauges()
            if time.monotonic() >= self._gauges_due:
                self._enterprises = refresh_credential_gauges(self.engine).enterprises_enabled
                refresh_poll_gauges(self.engine, self.config.poll.interval_seconds)
                refresh_queue_gauges(amqp_url(self.config), QUEUES)
                self._gauges_due = time.monotonic() + GAUGE_REFRESH_SECONDS
            self._loop_ok = True
        except DBAPIError as exc:
            # The database is down or restarting: one line per round, not a traceback five times a second.
            self._loop_ok = False
            log.warning("daemon.round_failed", error=str(exc.orig or exc).splitlines()[0][:300])
        except Exception:
            self._loop_ok = False
            log.exception("daemon.round_failed")
        self._last_loop = time.monotonic()
        metrics.SCHEDULER_LAST_LOOP.set_to_current_time()
        metrics.BROKER_UP.set(1 if self.relay.broker_up else 0)
        healthy, details = self.health()
        status = (f"STATUS={'healthy' if healthy else 'degraded'}: {self._enterprises} enterprises, "
                  f"outbox pending {self.relay.pending}, broker {details['broker']}")
        # The watchdog is fed from here only, after a round that returned and succeeded, while the
        # relay thread is alive and turning: a round stuck in a job or a database lock stops it.
        sd_notify(*(["WATCHDOG=1", status] if healthy else [status]))

    def _watch_drop_folder(self) -> None:
        assert self.coda_drop is not None
        folder = self.coda_drop
        log.info("coda_drop.watching", directory=str(folder.directory), settle_seconds=folder.settle_seconds)
        interval = self.config.service.loop_interval_seconds
        while not self.stop.wait(interval):
            try:
                folder.scan(should_stop=self.stop.is_set,
                            on_result=lambda result: metrics.CODA_FILES.labels(outcome=result.outcome).inc())
                interval = self.config.service.loop_interval_seconds
            except Exception:
                log.exception("coda_drop.scan_failed", directory=str(folder.directory),
                              retry_in_seconds=DROP_FOLDER_RETRY_SECONDS)
                interval = DROP_FOLDER_RETRY_SECONDS

    def _run_relay(self) -> None:
        try:
            self.relay.run(self.stop, idle_interval=self.config.outbox.idle_interval_seconds)
        except Exception:
            log.exception("outbox.relay_crashed")
            raise
