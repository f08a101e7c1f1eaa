"""Engines for SQLite (embedded, one node) and PostgreSQL (several nodes).

SQLite: WAL, and every write transaction opened with ``BEGIN IMMEDIATE`` so a second writer waits
for the lock instead of failing at once with "database is locked" when it upgrades a read lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from daemon.errors import ConfigError

__all__ = ["create_db_engine", "is_sqlite"]


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def create_db_engine(url: str, *, busy_timeout_seconds: float = 10.0, pool_size: int = 5,
                     echo: bool = False) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"[database] url: not a database URL: {url!r}") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database, busy_timeout_seconds, echo)
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(f"[database] url: unsupported database {parsed.get_backend_name()!r}; "
                          "use sqlite:/// or postgresql+psycopg://")
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(
        parsed, pool_size=pool_size, pool_pre_ping=True, echo=echo,
        connect_args={"connect_timeout": 10, "keepalives_idle": 30, "keepalives_interval": 10,
                      "keepalives_count": 3},
    )


def _sqlite_engine(url: str, database: str | None, busy_timeout: float, echo: bool) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, echo=echo, connect_args={"timeout": busy_timeout})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the driver stops issuing its own BEGIN
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                       f"busy_timeout={int(busy_timeout * 1000)}"):
            dbapi_conn.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        readonly = conn.get_execution_options().get("sqlite_readonly")
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine
