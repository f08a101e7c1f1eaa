"""Shared fixtures: every database test runs on SQLite and on PostgreSQL; messaging tests use the
real RabbitMQ that `make test` starts. A missing service is an error, never a skip."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from daemon.db import create_db_engine, upgrade

# The suite's property tests run a fixed, reproducible set of examples (a red CI must be red again
# on a rerun); longer, randomised budgets belong in benchmarks/ (`--hypothesis-profile=long`, which
# the hypothesis pytest plugin loads after this file). Tests that set max_examples keep theirs.
hypothesis.settings.register_profile("ci", max_examples=100, derandomize=True, deadline=None, database=None)
hypothesis.settings.register_profile("long", max_examples=2000, derandomize=False, deadline=None, database=None)
hypothesis.settings.load_profile("ci")

REPO = Path(__file__).resolve().parent.parent


def _required_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"${name} is not set: run the suite with `make test`, which starts the test services")
    return value


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'eboxd.db'}"
        return
    server = make_url(_required_env("EBOXD_TEST_DATABASE_URL_PG"))
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a database migrated to the latest schema."""
    eng = create_db_engine(database_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def amqp_url() -> str:
    return _required_env("EBOXD_TEST_AMQP_URL")
