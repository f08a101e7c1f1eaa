"""The ``eboxd`` command line. Errors an operator can fix print as one line and exit non-zero."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
import structlog
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError, OperationalError

from daemon import __version__
from daemon.config import Config, load_config
from daemon.db import create_db_engine, current_revision, head_revision, upgrade
from daemon.db.models import OutboxRow
from daemon.errors import EboxdError, StartupError
from daemon.logging import configure_logging, redact_secrets

__all__ = ["main"]

log = structlog.get_logger(__name__)


class _State:
    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
            configure_logging(self._config.logging.level, self._config.logging.format)
        return self._config

    def engine(self, *, require_current_schema: bool = True) -> Engine:
        config = self.config
        engine = create_db_engine(config.database_url, busy_timeout_seconds=config.database.busy_timeout_seconds,
                                  pool_size=config.database.pool_size, echo=config.database.echo)
        try:
            current = current_revision(engine)
        except (OperationalError, DBAPIError) as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StartupError(f"database unreachable ({_safe_url(config.database_url)}): {reason}") from None
        if require_current_schema and current != head_revision():
            raise StartupError(f"database schema is at {current or 'nothing'}, this eboxd needs {head_revision()}: "
                               "run `eboxd db upgrade`")
        return engine


pass_state = click.make_pass_decorator(_State)


def _safe_url(url: str) -> str:
    return str(redact_secrets(None, "", {"url": url})["url"])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False), envvar="EBOXD_CONFIG",
              help="TOML configuration file (default: $EBOXD_CONFIG, else /etc/eboxd/eboxd.toml).")
@click.version_option(__version__, prog_name="eboxd")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """eboxd: e-Box Enterprise to bank and accountant, for many enterprises at once."""
    ctx.obj = _State(config_path)


@cli.command()
@pass_state
def init(state: _State) -> None:
    """Create the data directory and bring the database schema up to date."""
    state.config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = state.engine(require_current_schema=False)
    upgrade(engine)
    click.echo(f"data directory {state.config.data_dir}; database at revision {current_revision(engine)}")


@cli.group()
def db() -> None:
    """Database schema migrations."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target alembic revision.")
@pass_state
def db_upgrade(state: _State, revision: str) -> None:
    """Apply pending migrations."""
    engine = state.engine(require_current_schema=False)
    before = current_revision(engine)
    upgrade(engine, revision)
    click.echo(f"database upgraded from {before or 'nothing'} to {current_revision(engine)}")


@db.command("current")
@pass_state
def db_current(state: _State) -> None:
    """Show the schema revision of the database and of this eboxd."""
    engine = state.engine(require_current_schema=False)
    click.echo(f"database: {current_revision(engine) or 'empty'}; eboxd expects: {head_revision()}")


@cli.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("check")
@pass_state
def config_check(state: _State) -> None:
    """Validate the configuration and print where it came from."""
    config = state.config
    click.echo(f"configuration OK ({config.source}); database {_safe_url(config.database_url)}; "
               f"broker {_safe_url(config.broker.url)}; e-Box environment {config.ebox.environment}")


@cli.group()
def outbox() -> None:
    """The transactional outbox."""


@outbox.command("status")
@pass_state
def outbox_status(state: _State) -> None:
    """Count events waiting for the broker's confirm."""
    with state.engine().connect() as conn:
        pending, oldest = conn.execute(
            select(func.count(), func.min(OutboxRow.created_at)).where(OutboxRow.sent_at.is_(None))
        ).one()
        failing = conn.execute(select(func.count()).where(OutboxRow.sent_at.is_(None), OutboxRow.attempts > 0)).scalar()
    click.echo(f"pending {pending}; retrying {failing}; oldest {oldest.isoformat() if oldest else '-'}")


@cli.command()
@pass_state
def serve(state: _State) -> None:
    """Run the daemon: scheduler loop, outbox relay, /metrics and /healthz (Type=notify under systemd)."""
    from daemon.outbox import BrokerUnavailable  # noqa: PLC0415 - keeps `eboxd --help` fast
    from daemon.service import Daemon, create_publisher  # noqa: PLC0415

    engine = state.engine()
    publisher = create_publisher(state.config)
    try:
        publisher.connect()
    except BrokerUnavailable as exc:
        raise StartupError(f"broker unreachable ({_safe_url(state.config.broker.url)}): {exc}") from None
    try:
        daemon = Daemon(state.config, engine, publisher)
    except OSError as exc:
        raise StartupError(f"cannot listen on {state.config.service.http_host}:{state.config.service.http_port}: "
                           f"{exc.strerror}") from None
    daemon.install_signal_handlers()
    daemon.run()


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("--processes", type=click.IntRange(1, 64), help="Worker processes (default: [worker] processes).")
@click.option("--threads", type=click.IntRange(1, 256), help="Threads per process (default: [worker] threads).")
@click.option("--queues", "-Q", multiple=True, help="Only these queues (repeatable; default: all).")
@pass_state
def worker(state: _State, processes: int | None, threads: int | None, queues: tuple[str, ...]) -> None:
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
    if state.config_path:
        env["EBOXD_CONFIG"] = str(Path(state.config_path).absolute())
    os.execve(sys.executable, args, env)  # noqa: S606 - replaces this process, no shell involved


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="eboxd", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("eboxd: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except EboxdError as exc:
        click.echo(f"eboxd: error: {exc}", err=True)
        sys.exit(exc.exit_code)
