from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from daemon.db import create_db_engine, current_revision, head_revision, upgrade
from daemon.db.models import Base, Enterprise, Message, PaymentRequest

REQUIRED_TABLES = {"enterprises", "credentials", "messages", "documents", "payment_requests",
                   "bank_transactions", "exports", "outbox", "scheduled_jobs"}


def test_migrations_create_every_table_at_head(engine: Engine) -> None:
    assert set(sa.inspect(engine).get_table_names()) >= REQUIRED_TABLES
    assert current_revision(engine) == head_revision()


def test_migrations_match_the_models(engine: Engine) -> None:
    """A model change without its migration fails here."""
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_upgrade_twice_is_a_no_op(engine: Engine) -> None:
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_datetimes_come_back_aware_utc_and_naive_ones_are_refused(engine: Engine) -> None:
    brussels = dt.timezone(dt.timedelta(hours=1))
    with engine.begin() as tx:
        tx.execute(sa.insert(Enterprise).values(number="0403170701", name="A", enabled=True,
                                                created_at=dt.datetime(2026, 3, 1, 10, 0, tzinfo=brussels),
                                                updated_at=dt.datetime.now(dt.UTC)))
    with engine.connect() as conn:
        created = conn.execute(sa.select(Enterprise.created_at)).scalar_one()
    assert created == dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    assert created.tzinfo is not None
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), engine.begin() as tx:
        tx.execute(sa.insert(Enterprise).values(number="0202239951", name="B", enabled=True,
                                                created_at=dt.datetime(2026, 3, 1), updated_at=dt.datetime(2026, 3, 1)))


def test_unique_keys_make_duplicates_fail(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        enterprise = Enterprise(number="0403170701", name="A")
        session.add(enterprise)
        session.flush()
        enterprise_id = enterprise.id
        session.add(Message(enterprise_id=enterprise_id, provider_id="nsso", ebox_message_id="m-1"))
    with pytest.raises(IntegrityError), Session(engine) as session, session.begin():
        session.add(Message(enterprise_id=enterprise_id, provider_id="nsso", ebox_message_id="m-1"))


def test_amounts_keep_their_cents(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        enterprise = Enterprise(number="0403170701", name="A")
        session.add(enterprise)
        session.flush()
        message = Message(enterprise_id=enterprise.id, provider_id="nsso", ebox_message_id="m-1")
        session.add(message)
        session.flush()
        session.add(PaymentRequest(enterprise_id=enterprise.id, message_id=message.id, amount=Decimal("1234.56")))
    with engine.connect() as conn:
        assert conn.execute(sa.select(PaymentRequest.amount)).scalar_one() == Decimal("1234.56")


def test_sqlite_uses_wal_and_a_second_writer_waits(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = create_db_engine(url, busy_timeout_seconds=10)
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    other = create_db_engine(url, busy_timeout_seconds=10)
    order: list[str] = []

    def second_writer() -> None:
        # Read then write in one transaction: with a deferred BEGIN this fails at once with
        # "database is locked"; BEGIN IMMEDIATE makes it wait for the first writer instead.
        with other.begin() as tx:
            tx.execute(sa.select(sa.func.count()).select_from(Enterprise)).scalar()
            tx.execute(sa.insert(Enterprise).values(number="0202239951", name="B", enabled=True,
                                                    created_at=dt.datetime.now(dt.UTC),
                                                    updated_at=dt.datetime.now(dt.UTC)))
        order.append("second")

    with engine.begin() as tx:
        tx.execute(sa.insert(Enterprise).values(number="0403170701", name="A", enabled=True,
                                                created_at=dt.datetime.now(dt.UTC), updated_at=dt.datetime.now(dt.UTC)))
        thread = threading.Thread(target=second_writer)
        thread.start()
        time.sleep(0.3)
        order.append("first")
    thread.join(10)
    assert order == ["first", "second"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Enterprise)).scalar() == 2
