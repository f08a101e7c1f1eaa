"""``eboxd payment review / confirm / dismiss / reject`` after a real CODA import and matching pass
(SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal

import jsonschema
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from daemon.banking import make_ogm
from daemon.banking.coda_writer import MovementSpec, StatementSpec, coda_bytes
from daemon.db.models import BankTransaction, Document, Enterprise, Message, OutboxRow, PaymentMatch, PaymentRequest
from daemon.events import event_schema
from daemon.payments.bank_import import import_coda_file
from daemon.payments.matching import match_payments
from tests.cli.conftest import Run, assert_one_line_error

D = Decimal
NUMBER, OTHER = "0403170701", "0202239951"
IBAN_X, IBAN_Y = "BE71096123456769", "BE68539007547034"
DUE = dt.date(2026, 11, 27)
OGM_SHARED, OGM_D, OGM_G = (make_ogm(n).digits for n in (3333, 2222, 5555))


@dataclass
class Case:
    docs: dict[str, int]  # request key -> document id
    requests: dict[str, int]  # request key -> payment request id
    movements: dict[str, int]  # movement key -> bank transaction id


def _seed(engine: Engine) -> tuple[dict[str, int], dict[str, int]]:
    specs = {  # key: (enterprise, amount, iban, reference)
        "a": (NUMBER, "75.00", IBAN_Y, None), "d": (NUMBER, "200.00", IBAN_X, OGM_D),
        "e": (NUMBER, "30.00", IBAN_X, OGM_SHARED), "f": (NUMBER, "30.00", IBAN_X, OGM_SHARED),
        "g": (NUMBER, "50.00", IBAN_X, OGM_G), "h": (OTHER, "12.00", IBAN_Y, None),
    }
    docs, requests = {}, {}
    with Session(engine) as session, session.begin():
        companies = {n: Enterprise(number=n, name=n) for n in (NUMBER, OTHER)}
        session.add_all(companies.values())
        session.flush()
        for key, (number, amount, iban, reference) in specs.items():
            message = Message(enterprise_id=companies[number].id, provider_id="p", ebox_message_id=f"m-{key}",
                              subject=key, fetch_state="fetched")
            session.add(message)
            session.flush()
            document = Document(message_id=message.id, attachment_id=f"a-{key}", file_name=f"{key}.pdf")
            session.add(document)
            session.flush()
            request = PaymentRequest(
                enterprise_id=companies[number].id, message_id=message.id, document_id=document.id, amount=D(amount),
                iban=iban, reference=reference, reference_kind=reference and "ogm", beneficiary_name="SPF",
                status="open", due_date=DUE, field_sources={}, created_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
            session.add(request)
            session.flush()
            docs[key], requests[key] = document.id, request.id
    return docs, requests


@pytest.fixture
def case(db_env: dict[str, str], engine: Engine) -> Case:
    docs, requests = _seed(engine)
    statements = [
        StatementSpec(date=DUE, movements=[
            MovementSpec(D("-75.00"), communication="betaling", counterparty_account=IBAN_Y, counterparty_name="FOD"),
            MovementSpec.ogm(D("-30.00"), OGM_SHARED, counterparty_account=IBAN_X),
            MovementSpec.ogm(D("-120.00"), OGM_D, counterparty_account=IBAN_X),
            MovementSpec(D("500.00"), communication="klant"),
        ]),
        StatementSpec(account="BE43730004200601", date=DUE, movements=[
            MovementSpec(D("-12.00"), communication="x", counterparty_account=IBAN_Y),
        ]),
    ]
    import_coda_file(engine, coda_bytes(statements[:1]), name="ours.cod", enterprise_number=NUMBER)
    import_coda_file(engine, coda_bytes(statements[1:]), name="other.cod", enterprise_number=OTHER)
    match_payments(engine)
    with Session(engine) as session:
        ids = session.scalars(select(BankTransaction.id).order_by(BankTransaction.id)).all()
    return Case(docs, requests, dict(zip(["by_iban", "shared", "partial", "credit", "other"], ids, strict=True)))


def _status(engine: Engine, request_id: int) -> tuple[str, list[str]]:
    with Session(engine) as session:
        request = session.get(PaymentRequest, request_id)
        assert request is not None
        return request.status, [r["code"] for r in (request.field_sources or {}).get("review_reasons", [])]


def _tx_state(engine: Engine, tx_id: int) -> str | None:
    with Session(engine) as session:
        return session.scalar(select(BankTransaction.match_state).where(BankTransaction.id == tx_id))


def _matched(engine: Engine) -> list[dict]:
    with Session(engine) as session:
        rows = session.scalars(select(OutboxRow).where(OutboxRow.topic == "be.eboxd.payment.matched")).all()
    for row in rows:
        jsonschema.validate(row.payload, event_schema(row.topic), format_checker=jsonschema.FormatChecker())
    return [row.payload["data"] for row in rows]


def test_review_lists_requests_with_reasons_and_movements(run: Run, case: Case):
    result = run("payment", "review", "--json")
    assert result.exit_code == 0, result.stderr
    items = {item["document_id"]: item for item in json.loads(result.stdout)}
    keys = {doc: key for key, doc in case.docs.items()}
    assert sorted(keys[doc] for doc in items) == ["a", "d", "e", "f", "h"]
    a = items[case.docs["a"]]
    assert [r["code"] for r in a["reasons"]] == ["payment_suggested"]
    [movement] = a["movements"]
    assert movement["transaction_id"] == case.movements["by_iban"]
    assert (movement["match"], movement["matched_by"], movement["amount"]) == ("suggested", "amount_and_iban", "75.00")
    assert movement["confidence"] == pytest.approx(0.85)
    assert movement["counterparty_name"] == "FOD"
    d = items[case.docs["d"]]
    assert (d["paid"], d["amount"]) == ("120.00", "200.00")
    assert [m["match"] for m in d["movements"]] == ["applied"]
    assert [m["transaction_id"] for m in items[case.docs["f"]]["movements"]] == [case.movements["shared"]]

    only_other = json.loads(run("payment", "review", "--enterprise", OTHER, "--json").stdout)
    assert [item["document_id"] for item in only_other] == [case.docs["h"]]

    table = run("payment", "review")
    assert table.exit_code == 0
    assert "5 payment request(s) to review" in table.stdout
    assert f"#{case.movements['by_iban']} 2026-11-27 75.00 to FOD {IBAN_Y}" in table.stdout
    assert "applied" in table.stdout
    assert "confidence 0.85" in table.stdout


def test_confirm_marks_paid_once_and_emits_manual_match(run: Run, case: Case, engine: Engine):
    a = case.docs["a"]
    result = run("payment", "confirm", str(a), "--movement", str(case.movements["by_iban"]))
    assert result.exit_code == 0, result.stderr
    assert "marked paid" in result.stdout
    assert _status(engine, case.requests["a"]) == ("paid", [])
    assert _tx_state(engine, case.movements["by_iban"]) == "matched"
    [event] = _matched(engine)
    assert (event["payment_request_id"], event["matched_by"], event["amount"]) == (case.requests["a"], "manual",
                                                                                     "75.00")
    assert event["transaction_id"] == case.movements["by_iban"]
    again = run("payment", "confirm", str(a), "--movement", str(case.movements["by_iban"]))
    assert again.exit_code == 0
    assert "already paid" in again.stdout
    assert len(_matched(engine)) == 1
    listed = [item["document_id"] for item in json.loads(run("payment", "review", "--json").stdout)]
    assert a not in listed


def test_confirming_a_shared_movement_releases_the_other_candidate(run: Run, case: Case, engine: Engine):
    shared = str(case.movements["shared"])
    assert run("payment", "confirm", str(case.docs["e"]), "--movement", shared).exit_code == 0
    assert _status(engine, case.requests["e"]) == ("paid", [])
    assert _status(engine, case.requests["f"]) == ("open", [])  # the movement is used up
    refused = run("payment", "confirm", str(case.docs["f"]), "--movement", shared)
    assert_one_line_error(refused, 1, f"bank movement {shared} already pays payment request(s) "
                                      f"{case.requests['e']} in full")


def test_partial_plus_confirmed_movement(run: Run, case: Case, engine: Engine):
    # the rest of d was paid without reference; a person links it
    import_coda_file(engine, coda_bytes([StatementSpec(date=DUE, paper_number=2, coda_sequence=2, movements=[
        MovementSpec(D("-80.00"), communication="rest", counterparty_account=IBAN_X)])]), name="rest.cod",
        enterprise_number=NUMBER)
    match_payments(engine)
    with Session(engine) as session:
        rest = session.scalar(select(BankTransaction.id).order_by(BankTransaction.id.desc()).limit(1))
    result = run("payment", "confirm", str(case.docs["d"]), "--movement", str(rest))
    assert result.exit_code == 0, result.stderr
    assert _status(engine, case.requests["d"]) == ("paid", [])
    [event] = _matched(engine)
    assert event["amount"] == "200.00"


def test_confirm_refusals(run: Run, case: Case):
    doc = str(case.docs["a"])
    assert_one_line_error(run("payment", "confirm", doc, "--movement", str(case.movements["credit"])), 1,
                          "is a credit of 500.00")
    assert_one_line_error(run("payment", "confirm", doc, "--movement", "999999"), 1, "no bank movement with id 999999")
    assert_one_line_error(run("payment", "confirm", "999999", "--movement", "1"), 1, "no document with id 999999")
    missing = run("payment", "confirm", doc)
    assert missing.exit_code == 2
    assert "--movement" in missing.stderr


def test_dismiss_suggestion_and_partial(run: Run, case: Case, engine: Engine):
    a, by_iban = str(case.docs["a"]), str(case.movements["by_iban"])
    result = run("payment", "dismiss", a, "--movement", by_iban)
    assert result.exit_code == 0, result.stderr
    assert _status(engine, case.requests["a"]) == ("open", [])
    assert _tx_state(engine, case.movements["by_iban"]) == "unmatched"
    again = run("payment", "dismiss", a, "--movement", by_iban)
    assert (again.exit_code, "already dismissed" in again.stdout) == (0, True)
    assert_one_line_error(run("payment", "dismiss", str(case.docs["g"]), "--movement", by_iban), 1,
                          f"bank movement {by_iban} is not matched to payment request {case.requests['g']}")

    # a partial payment wrongly counted: d is back to open with nothing paid
    assert run("payment", "dismiss", str(case.docs["d"]), "--movement", str(case.movements["partial"])).exit_code == 0
    assert _status(engine, case.requests["d"]) == ("open", [])
    assert _tx_state(engine, case.movements["partial"]) == "unmatched"
    with Session(engine) as session:
        states = session.scalars(select(PaymentMatch.state).where(
            PaymentMatch.payment_request_id == case.requests["d"])).all()
    assert states == ["dismissed"]


def test_dismissing_one_of_two_candidates_keeps_the_other(run: Run, case: Case, engine: Engine):
    shared = str(case.movements["shared"])
    assert run("payment", "dismiss", str(case.docs["e"]), "--movement", shared).exit_code == 0
    assert _status(engine, case.requests["e"]) == ("open", [])
    assert _status(engine, case.requests["f"]) == ("review", ["payment_suggested"])
    assert _tx_state(engine, case.movements["shared"]) == "suggested"


def test_reject(run: Run, case: Case, engine: Engine):
    f = str(case.docs["f"])
    result = run("payment", "reject", f, "--reason", "cancelled by the administration")
    assert result.exit_code == 0, result.stderr
    assert _status(engine, case.requests["f"]) == ("rejected", [])
    with Session(engine) as session:
        request = session.get(PaymentRequest, case.requests["f"])
        assert request is not None
        assert request.field_sources["rejected"]["reason"] == "cancelled by the administration"
    assert "already rejected" in run("payment", "reject", f, "--reason", "again").stdout
    assert_one_line_error(run("payment", "confirm", f, "--movement", str(case.movements["shared"])), 1, "was rejected")
    listed = [item["document_id"] for item in json.loads(run("payment", "review", "--json").stdout)]
    assert int(f) not in listed
    # a rejected request is no longer a candidate: the shared OGM now names e alone, which it pays
    import_coda_file(engine, coda_bytes([StatementSpec(date=DUE, paper_number=2, coda_sequence=2, movements=[
        MovementSpec.ogm(D("-30.00"), OGM_SHARED, counterparty_account=IBAN_X)])]), name="again.cod",
        enterprise_number=NUMBER)
    assert match_payments(engine).paid_request_ids == [case.requests["e"]]
    run("payment", "confirm", str(case.docs["a"]), "--movement", str(case.movements["by_iban"]))
    assert_one_line_error(run("payment", "reject", str(case.docs["a"]), "--reason", "x"), 1, "is paid")


def test_one_unmatched_movement_confirmed_for_two_requests(run: Run, case: Case, engine: Engine):
    # 80.00 to IBAN_X without reference: nothing has that amount; a person knows it paid g (50) and e (30)
    import_coda_file(engine, coda_bytes([StatementSpec(date=DUE, paper_number=2, coda_sequence=2, movements=[
        MovementSpec(D("-80.00"), communication="twee brieven", counterparty_account=IBAN_X)])]), name="two.cod",
        enterprise_number=NUMBER)
    match_payments(engine)
    with Session(engine) as session:
        both = session.scalar(select(BankTransaction.id).order_by(BankTransaction.id.desc()).limit(1))
    assert _tx_state(engine, both) == "unmatched"
    assert run("payment", "confirm", str(case.docs["g"]), "--movement", str(both)).exit_code == 0
    assert run("payment", "confirm", str(case.docs["e"]), "--movement", str(both)).exit_code == 0
    assert _status(engine, case.requests["g"])[0] == _status(engine, case.requests["e"])[0] == "paid"
    with Session(engine) as session:
        shares = session.scalars(select(PaymentMatch.amount).where(
            PaymentMatch.bank_transaction_id == both).order_by(PaymentMatch.id)).all()
    assert shares == [D("50.00"), D("30.00")]
    refused = run("payment", "confirm", str(case.docs["a"]), "--movement", str(both))
    assert_one_line_error(refused, 1, f"bank movement {both} already pays payment request(s)")
