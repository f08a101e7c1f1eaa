"""``sync_ponto`` end to end against the sandbox over mTLS: transactions stored once (also when
CODA brought the same movement), matching queued, a payment request paid by a Ponto transaction
carrying its OGM; the schedule queues each linked account once per interval."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from daemon.banking.coda_writer import MovementSpec, StatementSpec, coda_bytes
from daemon.banking.ponto import queue_due_syncs
from daemon.db.models import BankTransaction, Message, OutboxRow, PaymentRequest, PontoAccount
from daemon.payments.bank_import import import_coda_file
from daemon.sandbox.ponto import PontoSandbox
from daemon.workers.tasks import MATCH_PAYMENTS, SYNC_PONTO
from tests.ponto.conftest import IBAN

OGM, OGM_TEXT = "010806817183", "+++010/8068/17183+++"
CREDITOR = "BE71096123456769"
DAY = dt.date(2026, 11, 20)


def _account_pk(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(PontoAccount.id)) or 0)


def _run_sync(actors: ModuleType, engine: Engine, *, request_sync: bool = True,
              at: dt.datetime | None = None) -> None:
    actors.sync_ponto.fn(_account_pk(engine), (at or dt.datetime.now(dt.UTC)).isoformat(), request_sync)


def _count(engine: Engine, source: str | None = None) -> int:
    query = select(func.count()).select_from(BankTransaction)
    if source:
        query = query.where(BankTransaction.source == source)
    with Session(engine) as session:
        return int(session.scalar(query) or 0)


def _match_tasks(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(OutboxRow)
                                  .where(OutboxRow.topic == MATCH_PAYMENTS.actor_name)) or 0)


def test_sync_stores_each_transaction_once_and_a_redelivery_does_nothing(
        actors: ModuleType, engine: Engine, sandbox: PontoSandbox, connected: str) -> None:
    for i in range(3):
        sandbox.state.stage_transaction(connected, f"-{i + 1}.50", execution_date=DAY, remittance=f"x{i}")
    requested = dt.datetime.now(dt.UTC)
    _run_sync(actors, engine, at=requested)
    assert _count(engine, "ponto") == 3
    assert _match_tasks(engine) == 1
    syncs = len(sandbox.state.syncs)
    _run_sync(actors, engine, at=requested)  # the same task redelivered: no new synchronization, nothing stored
    assert len(sandbox.state.syncs) == syncs
    assert _count(engine) == 3
    _run_sync(actors, engine)  # a later sync re-reads the overlap: nothing new, no matching queued
    assert _count(engine) == 3
    assert _match_tasks(engine) == 1
    with Session(engine) as session:
        account = session.scalars(select(PontoAccount)).one()
        row = session.scalars(select(BankTransaction).order_by(BankTransaction.amount)).first()
    assert account.newest_execution_date == DAY
    assert account.last_sync_status == "success"
    assert account.next_sync_at > dt.datetime.now(dt.UTC) + dt.timedelta(hours=5)
    assert row is not None
    assert row.amount == Decimal("-3.50")
    assert row.account_iban == IBAN
    assert row.booking_date == DAY
    assert row.dedupe_key.startswith("ponto:")


def _payment_request(engine: Engine) -> int:
    with Session(engine) as session, session.begin():
        enterprise_id = session.scalar(select(PontoAccount.enterprise_id))
        message = Message(enterprise_id=enterprise_id, provider_id="p", ebox_message_id="m1", fetch_state="fetched")
        session.add(message)
        session.flush()
        request = PaymentRequest(enterprise_id=enterprise_id, message_id=message.id, amount=Decimal("75.00"),
                                 iban=CREDITOR, beneficiary_name="SPF Finances", reference=OGM,
                                 reference_kind="ogm", status="open", due_date=DAY, field_sources={})
        session.add(request)
        session.flush()
        return request.id


def test_a_ponto_transaction_with_the_ogm_pays_the_request_and_emits_payment_matched(
        actors: ModuleType, engine: Engine, sandbox: PontoSandbox, connected: str) -> None:
    request_id = _payment_request(engine)
    sandbox.state.stage_transaction(connected, "-75.00", execution_date=DAY, remittance=OGM_TEXT, structured=True,
                                    counterpart_iban=CREDITOR, counterpart_name="SPF Finances")
    _run_sync(actors, engine)
    actors.match_payments_actor.fn()
    with Session(engine) as session:
        request = session.get(PaymentRequest, request_id)
        tx = session.scalars(select(BankTransaction)).one()
        events = session.scalars(select(OutboxRow).where(OutboxRow.topic == "be.eboxd.payment.matched")).all()
    assert request is not None
    assert request.status == "paid"
    assert tx.structured_reference == OGM
    assert tx.match_state == "matched"
    assert len(events) == 1
    assert events[0].payload["data"]["payment_request_id"] == request_id


def _coda(tmp_path: Path) -> Path:
    file = tmp_path / "bank.cod"
    file.write_bytes(coda_bytes([StatementSpec(account=IBAN, date=DAY, movements=[
        MovementSpec(Decimal("-75.00"), communication="101" + OGM, structured=True, entry_date=DAY,
                     value_date=DAY, counterparty_account=CREDITOR),
        MovementSpec(Decimal("-12.00"), communication="other", entry_date=DAY, value_date=DAY)])]))
    return file


@pytest.mark.parametrize("coda_first", [True, False])
def test_a_movement_in_coda_and_in_ponto_is_stored_once(actors: ModuleType, engine: Engine, sandbox: PontoSandbox,
                                                        connected: str, tmp_path: Path, coda_first: bool) -> None:
    sandbox.state.stage_transaction(connected, "-75.00", execution_date=DAY, remittance=OGM_TEXT, structured=True,
                                    counterpart_iban=CREDITOR)
    sandbox.state.stage_transaction(connected, "-75.00", execution_date=DAY, remittance="a twin, other payee",
                                    counterpart_iban="BE62510007547061")
    if coda_first:
        import_coda_file(engine, _coda(tmp_path))
        _run_sync(actors, engine)
    else:
        _run_sync(actors, engine)
        import_coda_file(engine, _coda(tmp_path))
        import_coda_file(engine, _coda(tmp_path))  # again: still linked, not stored
    # CODA: 75 (the same as Ponto's first) and 12; Ponto: 75 (linked) and the other 75 (different payee).
    assert _count(engine) == 3
    with Session(engine) as session:
        linked = session.scalars(select(BankTransaction).where(BankTransaction.structured_reference == OGM)).one()
    assert linked.source == ("coda" if coda_first else "ponto")
    assert linked.raw["linked_key"].startswith("ponto:") == coda_first


def test_the_schedule_queues_each_linked_account_once_per_interval(engine: Engine, connected: str) -> None:
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as tx:
        assert queue_due_syncs(tx, now) == 1
    with engine.begin() as tx:
        assert queue_due_syncs(tx, now + dt.timedelta(minutes=5)) == 0  # leased while it runs
    with Session(engine) as session:
        tasks = session.scalars(select(OutboxRow).where(OutboxRow.topic == SYNC_PONTO.actor_name)).all()
    assert [t.payload["account_pk"] for t in tasks] == [_account_pk(engine)]
    assert tasks[0].payload["request_sync"] is True


def test_a_failed_sync_records_why_and_the_next_success_clears_it(actors: ModuleType, engine: Engine,
                                                                   sandbox: PontoSandbox, connected: str) -> None:
    sandbox.state.fail_next(503, count=5)  # every attempt of the first call
    with pytest.raises(Exception, match="503"):
        _run_sync(actors, engine)
    with Session(engine) as session:
        account = session.scalars(select(PontoAccount)).one()
    assert account.last_sync_status == "failed"
    assert account.last_error is not None
    assert "503" in account.last_error
    assert account.last_synced_at is None
    _run_sync(actors, engine)  # dramatiq's retry
    with Session(engine) as session:
        account = session.scalars(select(PontoAccount)).one()
    assert account.last_sync_status == "success"
    assert account.last_error is None
