"""Importing CODA movements (each once) and matching them to payment requests (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import jsonschema
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from daemon.banking import make_ogm, make_rf
from daemon.banking.coda import CodaError
from daemon.banking.coda_writer import MovementSpec, StatementSpec, coda_bytes
from daemon.db.models import BankTransaction, Enterprise, Message, OutboxRow, PaymentRequest
from daemon.events import event_schema
from daemon.payments.bank_import import import_coda_file
from daemon.payments.matching import match_payments

D = Decimal
NUMBER, OTHER = "0403170701", "0202239951"
OGM_A, OGM_D, OGM_SHARED, OGM_OTHER = (make_ogm(n).digits for n in (1111, 2222, 3333, 4444))
RF_B = make_rf("539007547034").value
IBAN_X, IBAN_Y = "BE71096123456769", "BE68539007547034"
BOOKED = dt.date(2026, 11, 27)


@dataclass
class Seeded:
    ids: dict[str, int]


def _seed(session: Session) -> dict[str, int]:
    ours, other = Enterprise(number=NUMBER, name="Ours"), Enterprise(number=OTHER, name="Other")
    session.add_all([ours, other])
    session.flush()
    specs = {
        "a": (ours, D("100.00"), IBAN_X, OGM_A, "ogm"),
        "b": (ours, D("50.00"), IBAN_X, RF_B, "rf"),
        "c": (ours, D("75.00"), IBAN_Y, None, None),
        "d": (ours, D("200.00"), IBAN_X, OGM_D, "ogm"),
        "e": (ours, D("30.00"), IBAN_X, OGM_SHARED, "ogm"),
        "f": (ours, D("30.00"), IBAN_X, OGM_SHARED, "ogm"),
        "g": (other, D("60.00"), IBAN_X, OGM_OTHER, "ogm"),
    }
    ids = {}
    for key, (company, amount, iban, reference, kind) in specs.items():
        message = Message(enterprise_id=company.id, provider_id="p", ebox_message_id=f"m-{key}", subject=key,
                          fetch_state="fetched")
        session.add(message)
        session.flush()
        request = PaymentRequest(enterprise_id=company.id, message_id=message.id, amount=amount, iban=iban,
                                 reference=reference, reference_kind=kind, beneficiary_name="B", status="open",
                                 due_date=BOOKED, field_sources={},
                                 created_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
        session.add(request)
        session.flush()
        ids[key] = request.id
    return ids


@pytest.fixture
def seeded(engine: Engine) -> dict[str, int]:
    with Session(engine) as session, session.begin():
        return _seed(session)


def first_file() -> bytes:
    return coda_bytes([StatementSpec(account="BE43730004200601", date=BOOKED, movements=[
        MovementSpec.ogm(D("-100.00"), OGM_A, counterparty_account=IBAN_X, counterparty_name="SPF"),
        MovementSpec.rf(D("-50.00"), RF_B, counterparty_account=IBAN_X),
        MovementSpec(D("-75.00"), communication="factuur", counterparty_account=IBAN_Y),
        MovementSpec.ogm(D("-120.00"), OGM_D, counterparty_account=IBAN_X),
        MovementSpec.ogm(D("-30.00"), OGM_SHARED, counterparty_account=IBAN_X),
        MovementSpec(D("500.00"), communication="klant betaalt"),
        MovementSpec(D("-9.99"), communication="kosten"),
        MovementSpec.ogm(D("-60.00"), OGM_OTHER),  # another enterprise's reference: not ours
    ])])


def second_file() -> bytes:
    return coda_bytes([StatementSpec(account="BE43730004200601", date=BOOKED + dt.timedelta(days=1),
                                     paper_number=2, coda_sequence=2, movements=[
        MovementSpec(D("-80.00"), communication=f"rest +++{OGM_D[:3]}/{OGM_D[3:7]}/{OGM_D[7:]}+++"),
    ])])


def _requests(engine: Engine) -> dict[int, PaymentRequest]:
    with Session(engine) as session:
        return {r.id: r for r in session.scalars(select(PaymentRequest))}


def _matched_events(engine: Engine) -> list[OutboxRow]:
    with Session(engine) as session:
        return list(session.scalars(select(OutboxRow).where(OutboxRow.topic == "be.eboxd.payment.matched")))


def test_import_match_reimport(engine: Engine, seeded: dict[str, int]):
    result = import_coda_file(engine, first_file(), name="first.cod", enterprise_number=NUMBER)
    assert (result.statements, result.movements, result.inserted) == (1, 8, 8)
    matched = match_payments(engine)
    assert matched.examined == 8
    assert matched.credits == 1
    assert sorted(matched.paid_request_ids) == sorted([seeded["a"], seeded["b"]])
    requests = _requests(engine)
    status = {key: requests[rid].status for key, rid in seeded.items()}
    assert status == {"a": "paid", "b": "paid", "c": "review", "d": "review", "e": "review", "f": "review",
                      "g": "open"}
    reasons = {key: [r["code"] for r in requests[rid].field_sources.get("review_reasons", [])]
               for key, rid in seeded.items()}
    assert reasons["c"] == ["payment_suggested"]
    assert reasons["d"] == ["partially_paid"]
    assert reasons["e"] == reasons["f"] == ["payment_suggested"]

    events = _matched_events(engine)
    assert len(events) == 2
    for event in events:
        jsonschema.validate(event.payload, event_schema(event.topic), format_checker=jsonschema.FormatChecker())
        assert event.payload["data"]["matched_by"] == "reference"
        assert event.payload["subject"] == NUMBER
    by_request = {e.payload["data"]["payment_request_id"]: e.payload["data"] for e in events}
    assert by_request[seeded["a"]]["amount"] == "100.00"
    assert by_request[seeded["a"]]["reference"] == OGM_A

    # the same file again (and a re-delivery): nothing new
    again = import_coda_file(engine, first_file(), name="first.cod", enterprise_number=NUMBER)
    assert again.inserted == 0
    assert match_payments(engine).examined == 0

    # the rest of d, paid with its OGM typed in free text
    import_coda_file(engine, second_file(), name="second.cod", enterprise_number=NUMBER)
    assert match_payments(engine).paid_request_ids == [seeded["d"]]
    assert _requests(engine)[seeded["d"]].status == "paid"
    assert len(_matched_events(engine)) == 3
    with Session(engine) as session:
        states = dict(session.execute(
            select(BankTransaction.match_state, func.count()).group_by(BankTransaction.match_state)).all())
    assert states == {"matched": 3, "partial": 1, "suggested": 2, "credit": 1, "unmatched": 2}


def test_enterprise_from_header_holder_and_unknown(engine: Engine, seeded: dict[str, int]):
    # the writer puts "00123456789" as holder id: no such enterprise, so the movement has none
    import_coda_file(engine, first_file(), name="first.cod")
    with Session(engine) as session:
        assert session.scalar(select(func.count()).where(BankTransaction.enterprise_id.is_not(None))) == 0
    result = match_payments(engine)
    # without an enterprise, the other enterprise's OGM is unique and pays its request
    assert seeded["g"] in result.paid_request_ids


def test_malformed_file_stores_nothing(engine: Engine, seeded: dict[str, int]):
    data = first_file()
    broken = data[: data.rfind(b"\n9")]  # no trailer
    with pytest.raises(CodaError, match="record 9"):
        import_coda_file(engine, broken, name="broken.cod")
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(BankTransaction)) == 0
