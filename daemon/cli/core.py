"""Core commands: init, db, config, outbox, serve, worker."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click
from sqlalchemy import func, select

from daemon.cli._state import State, pass_state, safe_url
from daemon.db import current_revision, head_revision, upgrade
from daemon.db.models import Document, Enterprise, Message, OutboxRow, PaymentRequest, PollState
from daemon.errors import StartupError
from daemon.secrets import create_key_file, master_key_path

__all__ = ["COMMANDS"]


@click.command()
@pass_state
def init(state: State) -> None:
    """Create the data directory and bring the database schema up to date."""
    state.config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = state.engine(require_current_schema=False)
    upgrade(engine)
    key_file = master_key_path(state.config)
    created = create_key_file(key_file) if not key_file.exists() else False
    state.secrets  # noqa: B018 - fails here, clearly, if an existing key file is unusable
    click.echo(f"data directory {state.config.data_dir}; database at revision {current_revision(engine)}; "
               f"master key {key_file}{' (created: back it up)' if created else ''}")


@click.group()
def db() -> None:
    """Database schema migrations."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target alembic revision.")
@pass_state
def db_upgrade(state: State, revision: str) -> None:
    """Apply pending migrations."""
    engine = state.engine(require_current_schema=False)
    before = current_revision(engine)
    upgrade(engine, revision)
    click.echo(f"database upgraded from {before or 'nothing'} to {current_revision(engine)}")


@db.command("current")
@pass_state
def db_current(state: State) -> None:
    """Show the schema revision of the database and of this eboxd."""
    engine = state.engine(require_current_schema=False)
    click.echo(f"database: {current_revision(engine) or 'empty'}; eboxd expects: {head_revision()}")


@click.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("check")
@pass_state
def config_check(state: State) -> None:
    """Validate the configuration and print where it came from."""
    config = state.config
    click.echo(f"configuration OK ({config.source}); database {safe_url(config.database_url)}; "
               f"broker {safe_url(config.broker.url)}; e-Box environment {config.ebox.environment}")


@click.group()
def outbox() -> None:
    """The transactional outbox."""


@outbox.command("status")
@pass_state
def outbox_status(state: State) -> None:
    """Count events waiting for the broker's confirm."""
    with state.engine().connect() as conn:
        pending, oldest = conn.execute(
            select(func.count(), func.min(OutboxRow.created_at)).where(OutboxRow.sent_at.is_(None))
        ).one()
        failing = conn.execute(select(func.count()).where(OutboxRow.sent_at.is_(None), OutboxRow.attempts > 0)).scalar()
    click.echo(f"pending {pending}; retrying {failing}; oldest {oldest.isoformat() if oldest else '-'}")


def _status_line(state: State) -> str:
    with state.engine().connect() as conn:
        enterprises = conn.execute(select(func.count()).where(Enterprise.enabled.is_(True))).scalar()
        messages = dict(conn.execute(select(Message.fetch_state, func.count()).group_by(Message.fetch_state)).all())
        documents, size = conn.execute(select(func.count(), func.coalesce(func.sum(Document.size), 0))).one()
        payments = dict(conn.execute(select(PaymentRequest.status, func.count()).group_by(PaymentRequest.status)).all())
        pending = conn.execute(select(func.count()).where(OutboxRow.sent_at.is_(None))).scalar()
        last_poll = conn.execute(select(func.max(PollState.last_success_at))).scalar()
    polled = f"last poll {last_poll:%H:%M:%S}" if last_poll else "not polled yet"
    payment_text = ", ".join(f"{count} {status}" for status, count in sorted(payments.items())) or "none"
    return (f"{enterprises} enterprises ({polled}); messages: {sum(messages.values())} "
            f"({messages.get('fetched', 0)} fetched, {messages.get('pending', 0)} pending); documents: {documents} "
            f"({size / 1e6:.1f} MB); payment requests: {payment_text}; outbox pending: {pending}")


@click.command()
@click.option("--watch", type=click.FloatRange(0.5, 3600), help="Print again every this many seconds.")
@pass_state
def status(state: State, watch: float | None) -> None:
    """One line: enterprises, messages, documents, payment requests, outbox backlog."""
    click.echo(_status_line(state))
    while watch:
        time.sleep(watch)
        click.echo(_status_line(state))


@click.command()
@pass_state
def serve(state: State) -> None:
    """Run the daemon: scheduler loop, outbox relay, /metrics and /healthz (Type=notify under systemd)."""
    from daemon.outbox import BrokerUnavailable  # noqa: PLC0415 - keeps `eboxd --help` fast
    from daemon.service import Daemon, create_publisher  # noqa: PLC0415

    engine = state.engine()
    publisher = create_publisher(state.config)
    try:
        publisher.connect()
    except BrokerUnavailable as exc:
        raise StartupError(f"broker unreachable ({safe_url(state.config.broker.url)}): {exc}") from None
    try:
        daemon = Daemon(state.config, engine, publisher)
    except OSError as exc:
        raise StartupError(f"cannot listen on {state.config.service.http_host}:{state.config.service.http_port}: "
                           f"{exc.strerror}") from None
    daemon.install_signal_handlers()
    daemon.run()


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--processes", type=click.IntRange(1, 64), help="Worker processes (default: [worker] processes).")
@click.option("--threads", type=click.IntRange(1, 256), help="Threads per process (default: [worker] threads).")
@click.option("--queues", "-Q", multiple=True, help="Only these queues (repeatable; default: all).")
@pass_state
def worker(state: State, processes: int | None, threads: int | None, queues: tuple[str, ...]) -> None:
    """Run dramatiq worker processes for eboxd's actors (replaces this process)."""
    config = state.config
    state.engine()  # fail here, in one line, rather than in every worker process
    args = [sys.executable, "-m", "dramatiq", "daemon.workers.entry", "--skip-logging",
            "--processes", str(processes or config.worker.processes),
            "--threads", str(threads or config.worker.threads),
            "--worker-shutdown-timeout", str(config.worker.shutdown_timeout_seconds * 1000)]
    selected = queues or config.worker.queues
    if selected:
        args += ["--queues", *selected]
    env = dict(os.environ)
    if multiproc_dir := env.get("PROMETHEUS_MULTIPROC_DIR"):
        # dramatiq's metrics server is forked before our code runs: it reads only the environment.
        env.setdefault("dramatiq_prom_db", multiproc_dir)
        env.setdefault("dramatiq_prom_host", "127.0.0.1")
    if state.config_path:
        env["EBOXD_CONFIG"] = str(Path(state.config_path).absolute())
    os.execve(sys.executable, args, env)  # noqa: S606 - replaces this process, no shell involved



COMMANDS = [init, db, config_group, outbox, status, serve, worker]
