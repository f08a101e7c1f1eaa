"""Issue #6's end to end: a payment letter published in the e-Box sandbox, polled and fetched by the
real pipeline code, is paid by a Ponto transaction (real TLS with our client certificate) carrying
its OGM → the letter's document is paid and ``be.eboxd.payment.matched`` is emitted once; the
letter the bank did not pay stays open. SQLite and PostgreSQL.

What the bank pays is taken from what the letter prints (the e-Box sandbox's expected payment), not
from the stored request, so a wrong extraction would show as no match.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from daemon.banking import parse_ogm
from daemon.banking.ponto import Pkce, PontoSettings, complete_connect, parse_pasted
from daemon.credentials import TokenStore
from daemon.db.models import Message, OutboxRow, PaymentRequest, PontoAccount
from daemon.poll import EboxAccess
from daemon.sandbox.ebox import serve_sandbox
from daemon.sandbox.ebox.server import EboxSandbox
from daemon.sandbox.ponto import PontoSandbox
from daemon.secrets import SecretBox
from daemon.store import create_store
from tests.pipeline.conftest import Pipeline, onboard_all, pipeline_config
from tests.pipeline.helpers import fetch_all, poll_due
from tests.ponto.conftest import IBAN, consent


@pytest.fixture
def ebox_sandbox() -> Iterator[EboxSandbox]:
    server = serve_sandbox("127.0.0.1", 0, seed=31, enterprises=1)
    yield server
    server.shutdown()


@pytest.fixture
def pipeline(database_url: str, engine: Engine, ebox_sandbox: EboxSandbox, tmp_path: Path) -> Iterator[Pipeline]:
    config = pipeline_config(database_url, ebox_sandbox.url, tmp_path / "state")
    secrets = SecretBox.from_config(config)
    numbers = onboard_all(engine, config, ebox_sandbox, secrets)
    access = EboxAccess(config, secrets)
    yield Pipeline(config, engine, secrets, access, create_store(config, engine), numbers)
    access.close()


def _request_of(engine: Engine, ebox_message_id: str) -> PaymentRequest:
    with Session(engine) as session:
        return session.scalars(select(PaymentRequest).join(Message, Message.id == PaymentRequest.message_id)
                               .where(Message.ebox_message_id == ebox_message_id)).one()


def test_a_sandbox_letter_paid_by_a_ponto_transaction_with_its_ogm(
        actors: ModuleType, engine: Engine, pipeline: Pipeline, ebox_sandbox: EboxSandbox, sandbox: PontoSandbox,
        settings: PontoSettings, store: TokenStore) -> None:
    number = pipeline.numbers[0]
    paid = ebox_sandbox.publish(number, kind="tax_assessment", language="fr")
    unpaid = ebox_sandbox.publish(number, kind="contributions", language="nl")
    poll_due(pipeline)
    fetch_all(pipeline)
    assert paid.payment is not None
    assert unpaid.payment is not None
    assert _request_of(engine, paid.message_id).status == "open"

    # The enterprise links its bank account through Ponto (pasted-code path), and pays the letter.
    account = sandbox.state.add_account(IBAN)
    pkce = Pkce.new()
    complete_connect(engine, store, settings, number, parse_pasted(consent(settings, pkce), pkce), pkce)
    sandbox.state.stage_transaction(account, f"-{paid.payment.amount}", execution_date=dt.date.today(),
                                    remittance=paid.payment.ogm, structured=True,
                                    counterpart_iban=paid.payment.iban, counterpart_name="SPF Finances")
    with Session(engine) as session:
        account_pk = session.scalars(select(PontoAccount.id)).one()
    for _ in range(2):  # a redelivered sync and matching change nothing
        actors.sync_ponto.fn(account_pk, dt.datetime.now(dt.UTC).isoformat(), True)
        actors.match_payments_actor.fn()

    request = _request_of(engine, paid.message_id)
    assert request.status == "paid"
    assert request.reference == parse_ogm(paid.payment.ogm).digits
    assert _request_of(engine, unpaid.message_id).status == "open"
    with Session(engine) as session:
        events = session.scalars(select(OutboxRow).where(OutboxRow.topic == "be.eboxd.payment.matched")).all()
    assert [event.payload["data"]["payment_request_id"] for event in events] == [request.id]
    assert request.document_id is not None  # the letter's PDF, now paid
