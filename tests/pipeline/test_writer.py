"""The poll and fetch actors' transactions on SQLite: reads take no lock, writers queue on a lock
file next to the database; PostgreSQL is left alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from daemon.db import create_db_engine, upgrade
from daemon.db.models import Enterprise
from daemon.poll.writer import READ_ONLY, write_transaction


def _count(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(Enterprise)).scalar_one())


def test_reads_do_not_wait_for_a_writer_on_sqlite(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'eboxd.db'}", busy_timeout_seconds=0.1)
    upgrade(engine)
    with write_transaction(engine) as tx:
        tx.execute(sa.insert(Enterprise).values(number="0403170701", name="Writer SRL"))
        with engine.connect().execution_options(**READ_ONLY) as reader:
            assert _count(reader) == 0  # a snapshot from before the write, at once
        with pytest.raises(OperationalError, match="locked"), engine.connect() as other:
            _count(other)  # an ordinary transaction begins IMMEDIATE: it waits for the writer
    with engine.connect().execution_options(**READ_ONLY) as reader:
        assert _count(reader) == 1
    assert (tmp_path / "eboxd.db.writer-lock").exists()
    engine.dispose()


def _insert_then_fail(engine: sa.Engine) -> None:
    with write_transaction(engine) as tx:
        tx.execute(sa.insert(Enterprise).values(number="0202239951", name="Dropped SRL"))
        raise RuntimeError("rolled back")


def test_write_transaction_commits_and_rolls_back(engine: sa.Engine) -> None:
    with write_transaction(engine) as tx:
        tx.execute(sa.insert(Enterprise).values(number="0403170701", name="Kept SRL"))
    with pytest.raises(RuntimeError):
        _insert_then_fail(engine)
    with write_transaction(engine) as tx:  # the lock was released by the failed one
        assert tx.execute(sa.select(Enterprise.name)).scalars().all() == ["Kept SRL"]
