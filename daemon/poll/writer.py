"""Transactions of the poll and fetch actors, shaped for SQLite's single writer.

SQLite lets one connection write at a time; a second ``BEGIN IMMEDIATE`` waits in SQLite's busy
handler, which sleeps between attempts (up to 100 ms each) however soon the lock is free, while
the writer itself may be waiting for the GIL held by one of its process's other threads. With the
threads of several worker processes all writing, the database was locked, or free with nobody
taking it, most of the time. So on SQLite the writers of these actors queue instead: the threads
of one process on a lock, the processes on an ``flock`` of a file next to the database; both wake
the next writer as soon as the lock is free. Others (``eboxd serve``, the CLI) still meet them in
SQLite's busy handler. Reads use a plain ``BEGIN``, which takes no lock in WAL mode. PostgreSQL is
left alone.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

__all__ = ["READ_ONLY", "write_transaction"]

READ_ONLY = {"sqlite_readonly": True}
"""Execution options of a read-only transaction: on SQLite a plain ``BEGIN`` (see ``daemon.db``)."""

_WRITER = threading.Lock()
_LOCK_FILES: dict[tuple[int, str], int] = {}  # (pid, database) -> descriptor; a forked child opens its own


def _lock_file(database: str) -> int:
    key = (os.getpid(), database)
    if key not in _LOCK_FILES:
        _LOCK_FILES[key] = os.open(f"{database}.writer-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    return _LOCK_FILES[key]


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """``engine.begin()``; on SQLite entered by one writer of these actors at a time."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        with engine.begin() as tx:
            yield tx
        return
    with _WRITER:
        descriptor = _lock_file(database)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            with engine.begin() as tx:
                yield tx
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
