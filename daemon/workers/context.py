"""What a worker process shares between its actors: configuration and a database engine."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sqlalchemy import Engine

from daemon.config import Config, load_config
from daemon.db import create_db_engine

__all__ = ["WorkerContext", "worker_context"]


@dataclass(frozen=True)
class WorkerContext:
    config: Config
    engine: Engine


@cache
def worker_context() -> WorkerContext:
    """Built on first use in each worker process (after dramatiq forks), from ``$EBOXD_CONFIG``."""
    config = load_config()
    engine = create_db_engine(config.database_url, busy_timeout_seconds=config.database.busy_timeout_seconds,
                              pool_size=config.database.pool_size)
    return WorkerContext(config, engine)
