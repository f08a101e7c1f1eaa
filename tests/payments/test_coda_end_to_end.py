"""End to end, issue #5's must-show: sandbox payment letters (a real HTTP sandbox, the real poll and
fetch code) → payment requests → a CODA file (coda_writer) paying some of them, imported with
``eboxd bank import-coda`` → exactly the right documents paid, the rest in review or open; then a
person confirms the one matched by amount + IBAN only. SQLite and PostgreSQL.

What the bank pays is taken from what the letters print (the sandbox's expected payment), not from
the stored requests, so a wrong extraction would show as a wrong match.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session

from daemon.banking import make_rf, parse_ogm
from daemon.banking.coda_writer import MovementSpec, StatementSpec, coda_bytes
from daemon.cli import cli
from daemon.config import Config
from daemon.db.models import BankTransaction, Document, Message, OutboxRow, PaymentRequest
from daemon.events import event_schema
from daemon.poll import EboxAccess
from daemon.sandbox.ebox import serve_sandbox
from daemon.sandbox.ebox.seed import SeedLetter
from daemon.sandbox.ebox.server import EboxSandbox
from daemon.secrets import SecretBox
from daemon.store import create_store
from tests.log_capture import restored_logging
from tests.pipeline.conftest import Pipeline, onboard_all, pipeline_config
from tests.pipeline.helpers import fetch_all, poll_due

# Eight payment letters for one enterprise; the keys say how the bank file treats each.
PLAN = ("ogm", "rf", "iban_only", "partial", "two_parts", "together_1", "together_2", "unpaid")
KINDS = ("contributions", "reminder", "tax_assessment", "vat_statement")
RF_BODY = "EBOXD2026"


@pytest.fixture
def sandbox() -> Iterator[EboxSandbox]:
    server = serve_sandbox("127.0.0.1", 0, seed=11, enterprises=2)
    yield server
    server.shutdown()


@pytest.fixture
def config(database_url: str, sandbox: EboxSandbox, tmp_path: Path) -> Config:
    return pipeline_config(database_url, sandbox.url, tmp_path / "state")


@pytest.fixture
def pipeline(config: Config, engine: sa.Engine, sandbox: EboxSandbox) -> Iterator[Pipeline]:
    secrets = SecretBox.from_config(config)
    numbers = onboard_all(engine, config, sandbox, secrets)
    access = EboxAccess(config, secrets)
    yield Pipeline(config, engine, secrets, access, create_store(config, engine), numbers)
    access.close()


@pytest.fixture
def eboxd(database_url: str, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[Any]:
    """``eboxd …`` in-process, configured like an operator's shell: the test database and state."""
    (tmp_path / "eboxd.toml").write_text("")
    env = {"EBOXD_CONFIG": str(tmp_path / "eboxd.toml"), "EBOXD_DATABASE__URL": database_url,
           "EBOXD_DAEMON__DATA_DIR": config.daemon.data_dir}

    def invoke(*args: str) -> Result:
        result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result

    with restored_logging():
        yield invoke


def _digits(ogm: str) -> str:
    return parse_ogm(ogm).digits


def _letters_and_documents(pipeline: Pipeline, sandbox: EboxSandbox) -> dict[str, tuple[SeedLetter, int, int]]:
    """Publish the plan's letters, poll and fetch them: key → (letter, document id, request id)."""
    number = pipeline.numbers[0]
    letters = {key: sandbox.publish(number, kind=KINDS[i % len(KINDS)], language="nl") for i, key in enumerate(PLAN)}
    poll_due(pipeline)
    fetch_all(pipeline)
    found = {}
    with Session(pipeline.engine) as session:
        for key, letter in letters.items():
            request, document = session.execute(
                sa.select(PaymentRequest, Document.id).join(Message, Message.id == PaymentRequest.message_id)
                .join(Document, Document.id == PaymentRequest.document_id)
                .where(Message.ebox_message_id == letter.message_id)).one()
            assert letter.payment is not None
            # the extraction read what the letter prints; otherwise nothing below would mean much
            assert (request.amount, request.iban, request.reference) == (
                letter.payment.amount, letter.payment.iban, _digits(letter.payment.ogm)), key
            assert request.status == "open", (key, request.field_sources)
            found[key] = (letter, document, request.id)
    return found


def _bank_file(plan: dict[str, tuple[SeedLetter, int, int]]) -> bytes:
    pay = {key: letter.payment for key, (letter, _, _) in plan.items()}
    assert all(pay.values())
    p = {key: value for key, value in pay.items() if value is not None}
    half = (p["partial"].amount / 2).quantize(Decimal("0.01"))
    first = (p["two_parts"].amount * Decimal("0.4")).quantize(Decimal("0.01"))
    return coda_bytes([StatementSpec(date=p["iban_only"].due_date, movements=[
        MovementSpec.ogm(-p["ogm"].amount, _digits(p["ogm"].ogm), counterparty_account=p["ogm"].iban,
                         counterparty_name="RSZ"),
        MovementSpec.rf(-p["rf"].amount, make_rf(RF_BODY).value, counterparty_account=p["rf"].iban),
        MovementSpec(-p["iban_only"].amount, communication="betaling brief", counterparty_account=p["iban_only"].iban),
        MovementSpec.ogm(-half, _digits(p["partial"].ogm), counterparty_account=p["partial"].iban),
        MovementSpec.ogm(-first, _digits(p["two_parts"].ogm), counterparty_account=p["two_parts"].iban),
        MovementSpec(-(p["two_parts"].amount - first), communication=f"rest {p['two_parts'].ogm}",
                     counterparty_account=p["two_parts"].iban),
        MovementSpec(-(p["together_1"].amount + p["together_2"].amount),
                     communication=f"{p['together_1'].ogm} {p['together_2'].ogm}"),
        MovementSpec(Decimal("1250.00"), communication="klant betaalt factuur 17"),
        MovementSpec(Decimal("-19.99"), communication="abonnement", counterparty_account="BE71096123456769"),
    ])])


def _statuses(engine: sa.Engine, plan: dict[str, tuple[SeedLetter, int, int]]) -> dict[str, str]:
    with Session(engine) as session:
        status = dict(session.execute(sa.select(PaymentRequest.id, PaymentRequest.status)).all())
    return {key: status[request_id] for key, (_, _, request_id) in plan.items()}


def _matched(engine: sa.Engine) -> dict[int, dict[str, Any]]:
    with Session(engine) as session:
        rows = session.scalars(sa.select(OutboxRow).where(OutboxRow.topic == "be.eboxd.payment.matched")).all()
    for row in rows:
        jsonschema.validate(row.payload, event_schema(row.topic), format_checker=jsonschema.FormatChecker())
    return {row.payload["data"]["payment_request_id"]: row.payload["data"] for row in rows}


def test_letters_to_coda_to_paid(pipeline: Pipeline, sandbox: EboxSandbox, eboxd: Any, tmp_path: Path) -> None:
    plan = _letters_and_documents(pipeline, sandbox)
    with Session(pipeline.engine) as session:
        others = set(session.scalars(sa.select(PaymentRequest.id))) - {r for _, _, r in plan.values()}
    # the RF one: a person corrects the reference, as the administration asked by letter
    eboxd("payment", "edit", str(plan["rf"][1]), "--reference", make_rf(RF_BODY).value)

    bank = tmp_path / "bank.cod"
    bank.write_bytes(_bank_file(plan))
    imported = eboxd("bank", "import-coda", str(bank), "-e", pipeline.numbers[0])
    assert f"{bank}: 1 statement(s), 9 movement(s), 9 new" in imported.stdout
    assert "matching: 9 examined, 5 paid, 2 partial, 1 to review, 1 unmatched" in imported.stdout

    assert _statuses(pipeline.engine, plan) == {
        "ogm": "paid", "rf": "paid", "iban_only": "review", "partial": "review", "two_parts": "paid",
        "together_1": "paid", "together_2": "paid", "unpaid": "open"}
    with Session(pipeline.engine) as session:  # requests of the other letters: untouched
        untouched = session.scalars(sa.select(PaymentRequest.status).where(PaymentRequest.id.in_(others))).all()
    assert "paid" not in untouched
    events = _matched(pipeline.engine)
    request_of = {key: request_id for key, (_, _, request_id) in plan.items()}
    assert set(events) == {request_of[k] for k in ("ogm", "rf", "two_parts", "together_1", "together_2")}
    letter_amount = {key: letter.payment.amount for key, (letter, _, _) in plan.items() if letter.payment}
    for key in ("ogm", "rf", "two_parts", "together_1", "together_2"):
        assert Decimal(events[request_of[key]]["amount"]) == letter_amount[key], key
        assert events[request_of[key]]["matched_by"] == "reference"
    assert events[request_of["rf"]]["reference"] == make_rf(RF_BODY).value
    assert events[request_of["together_1"]]["transaction_id"] == events[request_of["together_2"]]["transaction_id"]

    review = {item["payment_request_id"]: item for item in json.loads(eboxd("payment", "review", "--json").stdout)}
    assert [r["code"] for r in review[request_of["partial"]]["reasons"]] == ["partially_paid"]
    [suggested] = review[request_of["iban_only"]]["movements"]
    assert (suggested["match"], suggested["matched_by"]) == ("suggested", "amount_and_iban")

    # a person confirms the movement found by amount + IBAN; the rest of "partial" stays in review
    eboxd("payment", "confirm", str(plan["iban_only"][1]), "--movement", str(suggested["transaction_id"]))
    assert _statuses(pipeline.engine, plan)["iban_only"] == "paid"
    assert _matched(pipeline.engine)[request_of["iban_only"]]["matched_by"] == "manual"

    # the same file again (a re-delivery): nothing stored, nothing changed
    settled = _statuses(pipeline.engine, plan)
    eboxd("bank", "import-coda", str(bank), "-e", pipeline.numbers[0])
    assert _statuses(pipeline.engine, plan) == settled
    assert len(_matched(pipeline.engine)) == 6
    with Session(pipeline.engine) as session:
        counts = session.execute(sa.select(BankTransaction.match_state, sa.func.count())
                                 .group_by(BankTransaction.match_state))
        states = dict(counts.all())
    # a movement keeps the state it was given when examined: the first part of "two_parts" was partial
    assert states == {"matched": 5, "partial": 2, "credit": 1, "unmatched": 1}
