"""The ``import_coda`` and ``match_payments`` actors' bodies, on both databases (no broker run)."""

from __future__ import annotations

import datetime as dt
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
from daemon.db.models import BankTransaction, Enterprise, Message, OutboxRow, PaymentRequest
from daemon.workers.tasks import IMPORT_CODA, MATCH_PAYMENTS, QUEUES


@pytest.fixture
def actors(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    dramatiq.set_broker(StubBroker())
    module = importlib.import_module("daemon.workers.banking")
    context = SimpleNamespace(engine=engine, config=load_config(environ={}))
    monkeypatch.setattr(module, "worker_context", lambda: context)
    monkeypatch.setattr(module, "context", context, raising=False)  # for tests that change the configuration
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


@pytest.mark.parametrize(("threshold", "status"), [("0.9", "review"), ("0.8", "paid")])
def test_match_actor_uses_the_configured_threshold(actors: ModuleType, engine: Engine, tmp_path: Path,
                                                   threshold: str, status: str) -> None:
    iban, due = "BE68539007547034", dt.date(2026, 11, 27)
    with Session(engine) as session, session.begin():
        enterprise = Enterprise(number="0403170701", name="Ours")
        session.add(enterprise)
        session.flush()
        message = Message(enterprise_id=enterprise.id, provider_id="p", ebox_message_id="m", fetch_state="fetched")
        session.add(message)
        session.flush()
        session.add(PaymentRequest(enterprise_id=enterprise.id, message_id=message.id, amount=Decimal("75.00"),
                                   iban=iban, beneficiary_name="B", status="open", due_date=due, field_sources={}))
    actors.context.config = load_config(environ={"EBOXD_BANKING__MATCH_CONFIDENCE_THRESHOLD": threshold})
    file = tmp_path / "bank.cod"
    file.write_bytes(coda_bytes([StatementSpec(date=due, movements=[
        MovementSpec(Decimal("-75.00"), communication="betaling", counterparty_account=iban)])]))
    actors.import_coda.fn(str(file), "0403170701")
    actors.match_payments_actor.fn()
    actors.match_payments_actor.fn()  # a redelivery: nothing left to examine
    with Session(engine) as session:
        assert session.scalar(select(PaymentRequest.status)) == status
        events = session.scalars(select(OutboxRow).where(OutboxRow.topic == "be.eboxd.payment.matched")).all()
    assert len(events) == (status == "paid")
