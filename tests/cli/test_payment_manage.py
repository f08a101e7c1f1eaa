"""``eboxd payment show / edit / qr`` on stored payment requests (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from daemon.db.models import Document, Enterprise, Message, OutboxRow, PaymentRequest
from daemon.events import event_schema
from tests.cli.conftest import Run, assert_one_line_error

T0 = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
OGM = "010806817183"


@dataclass
class Ids:
    tax: int  # document with an open request in review
    paid: int  # document whose request is paid
    bare: int  # document whose request has no IBAN
    none: int  # document of a message without payment request


def _seed(session: Session) -> Ids:
    company = Enterprise(number="0403170701", name="Alpha")
    session.add(company)
    session.flush()
    messages = [Message(enterprise_id=company.id, provider_id="p", ebox_message_id=f"m{i}", subject=f"s{i}",
                        published_at=T0, fetch_state="fetched") for i in range(4)]
    session.add_all(messages)
    session.flush()
    docs = [Document(message_id=m.id, attachment_id=f"a{m.id}", file_name="x.pdf") for m in messages]
    session.add_all(docs)
    session.flush()
    session.add_all([
        PaymentRequest(enterprise_id=company.id, message_id=messages[0].id, document_id=docs[0].id,
                       amount=Decimal("1234.56"), iban="BE76734933575495", bic="KREDBEBB", reference=OGM,
                       reference_kind="ogm", due_date=dt.date(2026, 3, 31), beneficiary_name="SPF Finances",
                       status="review",
                       field_sources={"amount": {"source": "pdf", "confidence": 0.3},
                                      "iban": {"source": "ebox", "confidence": 0.99},
                                      "review_reasons": [{"field": "amount", "code": "ambiguous",
                                                          "message": "2 amounts are labelled as to pay"}]}),
        PaymentRequest(enterprise_id=company.id, message_id=messages[1].id, document_id=docs[1].id,
                       amount=Decimal("99.00"), iban="BE76734933575495", beneficiary_name="X", status="paid"),
        PaymentRequest(enterprise_id=company.id, message_id=messages[2].id, document_id=docs[2].id,
                       amount=Decimal("10.00"), beneficiary_name="Y", status="open", field_sources={}),
    ])
    return Ids(docs[0].id, docs[1].id, docs[2].id, docs[3].id)


@pytest.fixture
def ids(db_env: dict[str, str], engine: Engine) -> Ids:
    with Session(engine) as session, session.begin():
        return _seed(session)


def _events(engine: Engine) -> list[OutboxRow]:
    with Session(engine) as session:
        return list(session.scalars(select(OutboxRow).where(OutboxRow.topic == "be.eboxd.payment.requested")
                                    .order_by(OutboxRow.id)))


def test_show_table_and_json(run: Run, ids: Ids):
    result = run("payment", "show", str(ids.tax))
    assert result.exit_code == 0, result.stderr
    assert "review, version 1" in result.stdout
    assert "1234.56" in result.stdout
    assert "review: amount: 2 amounts are labelled as to pay" in result.stdout
    data = json.loads(run("payment", "show", str(ids.tax), "--json").stdout)
    assert data["amount"] == "1234.56"
    assert data["reference"] == OGM
    assert data["status"] == "review"
    assert data["review_reasons"][0]["code"] == "ambiguous"


def test_show_unknown(run: Run, ids: Ids):
    assert_one_line_error(run("payment", "show", "987654"), 1, "no document with id 987654")
    assert_one_line_error(run("payment", "show", str(ids.none)), 1, f"document {ids.none} has no payment request")


def test_edit_records_manual_bumps_version_and_reemits(run: Run, ids: Ids, engine: Engine):
    result = run("payment", "edit", str(ids.tax), "--amount", "1200,00", "--reference", "RF18 5390 0754 7034",
                 "--name", "  SPF  Financiën ", "--due-date", "2026-04-30", "--iban", "be68 5390 0754 7034",
                 "--bic", "gkccbebb")
    assert result.exit_code == 0, result.stderr
    assert "version 2, status open" in result.stdout  # the only review reason was about the amount
    with Session(engine) as session:
        request = session.scalar(select(PaymentRequest).where(PaymentRequest.document_id == ids.tax))
        assert request is not None
        assert request.amount == Decimal("1200.00")
        assert request.reference == "RF18539007547034"
        assert request.reference_kind == "rf"
        assert request.beneficiary_name == "SPF Financiën"
        assert request.iban == "BE68539007547034"
        assert request.bic == "GKCCBEBB"
        assert request.due_date == dt.date(2026, 4, 30)
        assert request.version == 2
        assert request.field_sources["amount"]["source"] == "manual"
        assert request.field_sources["amount"]["previous"] == "1234.56"
        assert "review_reasons" not in request.field_sources
        request_id = request.id
    [event] = _events(engine)
    assert event.idempotency_key == f"payment.requested:{request_id}:2"
    jsonschema.validate(event.payload, event_schema(event.topic), format_checker=jsonschema.FormatChecker())
    data = event.payload["data"]
    assert data["amount"] == "1200.00"
    assert data["reference_kind"] == "rf"
    assert data["needs_review"] is False
    assert data["sources"]["iban"]["source"] == "manual"
    # the same values again: nothing changes, no new event
    again = run("payment", "edit", str(ids.tax), "--amount", "1200.00")
    assert "nothing changed (version 2)" in again.stdout
    assert len(_events(engine)) == 1
    run("payment", "edit", str(ids.tax), "--amount", "1200.01")
    assert [e.idempotency_key for e in _events(engine)][-1] == f"payment.requested:{request_id}:3"


def test_edit_of_another_field_keeps_review(run: Run, ids: Ids, engine: Engine):
    result = run("payment", "edit", str(ids.tax), "--name", "SPF")
    assert "status review" in result.stdout
    [event] = _events(engine)
    assert event.payload["data"]["needs_review"] is True


@pytest.mark.parametrize(("args", "needle"), [
    (["--amount", "0"], "must be positive"),
    (["--amount", "-5"], "must be positive"),
    (["--amount", "12.345"], "more than 2 decimals"),
    (["--amount", "1000000000"], "between 0.01 and 999999999.99"),
    (["--amount", "12a"], "not a number"),
    (["--iban", "BE68 5390 0754 7035"], "check digits"),
    (["--iban", "XX12"], "IBAN"),
    (["--bic", "KRED"], "8 or 11"),
    (["--reference", "+++010/8068/17184+++"], "structured communication"),
    (["--reference", "RF19539007547034"], "creditor reference"),
    (["--reference", "x" * 36], "at most 35"),
    (["--due-date", "31/12/2026"], "YYYY-MM-DD"),
    (["--due-date", "2026-02-30"], "YYYY-MM-DD"),
    (["--name", "n" * 71], "at most 70"),
    ([], "nothing to change"),
])
def test_edit_refusals(run: Run, ids: Ids, engine: Engine, args: list[str], needle: str):
    result = run("payment", "edit", str(ids.tax), *args)
    if args:  # a value that could never be stored is a usage error naming the option
        assert result.exit_code == 2, (result.stdout, result.stderr)
        assert f"Invalid value for '{args[0]}'" in result.stderr
        assert needle in result.stderr
    else:
        assert_one_line_error(result, 1, needle)
    assert _events(engine) == []


def test_edit_paid_is_refused(run: Run, ids: Ids):
    assert_one_line_error(run("payment", "edit", str(ids.paid), "--amount", "1"), 1, "already paid")


def _fields(payload: bytes) -> list[str]:
    return payload.decode("utf-8").split("\n")


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_qr_writes_file(run: Run, ids: Ids, tmp_path: Path, suffix: str):
    target = tmp_path / f"pay{suffix}"
    result = run("payment", "qr", str(ids.tax), "-o", str(target))
    assert result.exit_code == 0, result.stderr
    data = target.read_bytes()
    assert data.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in data
    assert "EPC QR code" in result.stdout


def test_qr_refusals(run: Run, ids: Ids, tmp_path: Path):
    assert_one_line_error(run("payment", "qr", str(ids.bare), "-o", str(tmp_path / "a.png")), 1, "has no IBAN")
    assert_one_line_error(run("payment", "qr", str(ids.tax), "-o", str(tmp_path / "a.jpg")), 1, ".png or .svg")
    assert not (tmp_path / "a.png").exists()
