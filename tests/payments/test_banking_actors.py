"""The ``import_coda`` and ``match_payments`` actors' bodies, on both databases (no broker run)."""

from __future__ import annotations

import importlib
from decimal import Decimal
from pathlib import Path
from types import ModuleType, SimpleNamespace

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from daemon.banking.coda import CodaError
from daemon.banking.coda_writer import MovementSpec, StatementSpec, coda_bytes
from daemon.config import load_config
from daemon.db.models import BankTransaction, OutboxRow
from daemon.workers.tasks import IMPORT_CODA, MATCH_PAYMENTS, QUEUES


@pytest.fixture
def actors(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    dramatiq.set_broker(StubBroker())
    module = importlib.import_module("daemon.workers.banking")
    context = SimpleNamespace(engine=engine, config=load_config(environ={}))
    monkeypatch.setattr(module, "worker_context", lambda: context)
    return module


def test_task_refs() -> None:
    assert IMPORT_CODA.queue_name in QUEUES
    assert MATCH_PAYMENTS.queue_name in QUEUES


def test_import_then_match(actors: ModuleType, engine: Engine, tmp_path: Path) -> None:
    file = tmp_path / "bank.cod"
    file.write_bytes(coda_bytes([StatementSpec(movements=[MovementSpec(Decimal("-1.00"), communication="x")])]))
    actors.import_coda.fn(str(file))
    actors.import_coda.fn(str(file))  # a redelivered task: nothing new
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(BankTransaction)) == 1
        tasks = session.scalars(select(OutboxRow.topic).where(OutboxRow.kind == "task")).all()
    assert tasks == [MATCH_PAYMENTS.actor_name]
    actors.match_payments_actor.fn()
    with Session(engine) as session:
        assert session.scalar(select(BankTransaction.match_state)) == "unmatched"


def test_malformed_file_is_not_retried(actors: ModuleType, tmp_path: Path) -> None:
    file = tmp_path / "bad.cod"
    file.write_bytes(b"not coda\n")
    with pytest.raises(CodaError):
        actors.import_coda.fn(str(file))
    assert CodaError in actors.import_coda.options["throws"]
