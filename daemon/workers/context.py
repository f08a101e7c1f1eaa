"""What a worker process shares between its actors: configuration, database engine, secrets,
e-Box access (connection pool, token cache) and the document store. Built once per process,
after dramatiq forked it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property

import structlog
from sqlalchemy import Engine

from daemon.config import Config, load_config
from daemon.db import create_db_engine
from daemon.poll.access import EboxAccess
from daemon.secrets import SecretBox
from daemon.store import DocumentStore, create_store, sweep_staging

__all__ = ["WorkerContext", "worker_context"]

log = structlog.get_logger(__name__)


@dataclass
class WorkerContext:
    config: Config
    engine: Engine

    @cached_property
    def secrets(self) -> SecretBox:
        return SecretBox.from_config(self.config)

    @cached_property
    def access(self) -> EboxAccess:
        return EboxAccess(self.config, self.secrets)

    @cached_property
    def store(self) -> DocumentStore:
        store = create_store(self.config, self.engine)
        # A download cannot outlive its actor's time limit: older partial files are a killed worker's.
        if removed := sweep_staging(store, 2 * self.config.worker.time_limit_seconds):
            log.info("store.staging_swept", removed=removed)
        return store


@cache
def worker_context() -> WorkerContext:
    """From ``$EBOXD_CONFIG`` and the environment, on first use in each worker process."""
    config = load_config()
    engine = create_db_engine(config.database_url, busy_timeout_seconds=config.database.busy_timeout_seconds,
                              pool_size=config.database.pool_size)
    return WorkerContext(config, engine)
