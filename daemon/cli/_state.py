"""What every command shares: the configuration, loaded once, and a checked database engine."""

from __future__ import annotations

import click
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from daemon.config import Config, load_config
from daemon.db import create_db_engine, current_revision, head_revision
from daemon.errors import StartupError
from daemon.logging import configure_logging, redact_secrets
from daemon.secrets import SecretBox

__all__ = ["State", "pass_state", "safe_url"]


class State:
    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        # Long-running commands log at the configured level; one-shot commands print their result
        # and log only errors (their failure is the one line they print), unless --verbose.
        self.long_running = False
        self.verbose = False
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
            level = self._config.logging.level if self.long_running or self.verbose else "error"
            configure_logging(level, self._config.logging.format)
        return self._config

    def engine(self, *, require_current_schema: bool = True) -> Engine:
        config = self.config
        engine = create_db_engine(config.database_url, busy_timeout_seconds=config.database.busy_timeout_seconds,
                                  pool_size=config.database.pool_size, echo=config.database.echo)
        try:
            current = current_revision(engine)
        except (OperationalError, DBAPIError) as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StartupError(f"database unreachable ({safe_url(config.database_url)}): {reason}") from None
        if require_current_schema and current != head_revision():
            raise StartupError(f"database schema is at {current or 'nothing'}, this eboxd needs {head_revision()}: "
                               "run `eboxd db upgrade`")
        return engine


    @property
    def secrets(self) -> SecretBox:
        return SecretBox.from_config(self.config)


pass_state = click.make_pass_decorator(State)


def safe_url(url: str) -> str:
    return str(redact_secrets(None, "", {"url": url})["url"])


