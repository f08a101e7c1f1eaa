"""The matching cases of issue #5, each explicit: partial movements adding up, overpayment, one
movement for several requests (several OGMs, or a sum to one IBAN), the confidence threshold, an
OGM paid to another IBAN. Real CODA bytes, real import, SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import jsonschema
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from daemon.banking import make_ogm, make_rf
from daemon.banking.coda_writer import MovementSpec, StatementSpec, coda_bytes
from daemon.db.models import BankTransaction, Enterprise, Message, OutboxRow, PaymentMatch, PaymentRequest
from daemon.events import event_schema
from daemon.payments.bank_import import import_coda_file
from daemon.payments.matching import BankMovement, Matcher, OpenRequest, match_payments, movement_references

D = Decimal
NUMBER = "0403170701"
IBAN_X, IBAN_Y = "BE71096123456769", "BE68539007547034"
DUE = dt.date(2026, 11, 27)
_files = iter(range(1, 10_000))


def seed(engine: Engine, *specs: tuple[str, str | None, str, dt.date]) -> list[int]:
    """Open payment requests of one enterprise from (amount, reference, iban, due date)."""
    with Session(engine) as session, session.begin():
        enterprise = session.scalar(select(Enterprise).where(Enterprise.number == NUMBER))
        if enterprise is None:
            enterprise = Enterprise(number=NUMBER, name="Ours")
            session.add(enterprise)
            session.flush()
        ids = []
        for amount, reference, iban, due in specs:
            message = Message(enterprise_id=enterprise.id, provider_id="p", ebox_message_id=f"m{len(ids)}-{amount}",
                              fetch_state="fetched")
            session.add(message)
            session.flush()
            kind = None if reference is None else "rf" if reference.startswith("RF") else "ogm"
            request = PaymentRequest(enterprise_id=enterprise.id, message_id=message.id, amount=D(amount), iban=iban,
                                     reference=reference, reference_kind=kind, beneficiary_name="SPF", status="open",
                                     due_date=due, field_sources={},
                                     created_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
            session.add(request)
            session.flush()
            ids.append(request.id)
        return ids


def pay(engine: Engine, *movements: MovementSpec, booked: dt.date = DUE, **match: object) -> list[int]:
    n = next(_files)
    data = coda_bytes([StatementSpec(date=booked, paper_number=n, coda_sequence=n, movements=list(movements))])
    import_coda_file(engine, data, name=f"f{n}.cod", enterprise_number=NUMBER)
    return match_payments(engine, **match).paid_request_ids  # type: ignore[arg-type]


def state(engine: Engine, request_id: int) -> tuple[str, list[str]]:
    with Session(engine) as session:
        request = session.get(PaymentRequest, request_id)
        assert request is not None
        return request.status, [r["code"] for r in (request.field_sources or {}).get("review_reasons", [])]


def matched_events(engine: Engine) -> dict[int, dict]:
    with Session(engine) as session:
        rows = session.scalars(select(OutboxRow).where(OutboxRow.topic == "be.eboxd.payment.matched")).all()
    for row in rows:
        jsonschema.validate(row.payload, event_schema(row.topic), format_checker=jsonschema.FormatChecker())
    return {row.payload["data"]["payment_request_id"]: row.payload["data"] for row in rows}


def ogm(n: int) -> str:
    return make_ogm(n).digits


def test_partial_movements_add_up_to_paid(engine: Engine):
    [request] = seed(engine, ("300.00", ogm(1), IBAN_X, DUE))
    assert pay(engine, MovementSpec.ogm(D("-100.00"), ogm(1), counterparty_account=IBAN_X)) == []
    assert state(engine, request) == ("review", ["partially_paid"])
    assert pay(engine, MovementSpec.ogm(D("-150.00"), ogm(1), counterparty_account=IBAN_X)) == []
    assert state(engine, request) == ("review", ["partially_paid", "partially_paid"])
    assert matched_events(engine) == {}
    assert pay(engine, MovementSpec.ogm(D("-50.00"), ogm(1), counterparty_account=IBAN_X)) == [request]
    assert state(engine, request) == ("paid", [])  # the partial-payment reasons are settled
    event = matched_events(engine)[request]
    assert (event["amount"], event["matched_by"]) == ("300.00", "reference")
    with Session(engine) as session:
        shares = session.scalars(select(PaymentMatch.amount).where(PaymentMatch.state == "applied")
                                 .order_by(PaymentMatch.id)).all()
    assert shares == [D("100.00"), D("150.00"), D("50.00")]


def test_overpayment_pays_and_is_noted(engine: Engine):
    [request] = seed(engine, ("80.00", make_rf("4711").value, IBAN_X, DUE))
    assert pay(engine, MovementSpec.rf(D("-95.50"), make_rf("4711").value, counterparty_account=IBAN_X)) == [request]
    assert state(engine, request) == ("paid", ["overpaid"])
    with Session(engine) as session:
        tx = session.scalars(select(BankTransaction)).one()
    assert (tx.match_state, tx.match_note) == ("matched", "overpaid by 15.50")
    assert matched_events(engine)[request]["amount"] == "95.50"


def test_one_movement_with_several_ogms_pays_them_all_when_the_sum_is_right(engine: Engine):
    a, b, c = seed(engine, ("40.00", ogm(11), IBAN_X, DUE), ("60.00", ogm(12), IBAN_X, DUE),
                   ("70.00", ogm(13), IBAN_X, DUE))
    text = f"+++{make_ogm(11).display[3:-3]}+++ and {ogm(12)}"
    assert sorted(pay(engine, MovementSpec(D("-100.00"), communication=text, counterparty_account=IBAN_X))) == [a, b]
    assert state(engine, c) == ("open", [])
    events = matched_events(engine)
    assert (events[a]["amount"], events[b]["amount"]) == ("40.00", "60.00")
    assert events[a]["transaction_id"] == events[b]["transaction_id"]


def test_several_ogms_with_the_wrong_sum_are_only_suggested(engine: Engine):
    a, b = seed(engine, ("40.00", ogm(21), IBAN_X, DUE), ("60.00", ogm(22), IBAN_X, DUE))
    assert pay(engine, MovementSpec(D("-90.00"), communication=f"{ogm(21)} {ogm(22)}", counterparty_account=IBAN_X)
               ) == []
    assert state(engine, a) == state(engine, b) == ("review", ["payment_suggested"])
    with Session(engine) as session:
        tx = session.scalars(select(BankTransaction)).one()
    assert tx.match_state == "suggested"
    assert "add up to 100.00" in (tx.match_note or "")


def test_amount_equal_to_the_sum_of_requests_to_one_iban_is_suggested_not_paid(engine: Engine):
    a, b, other = seed(engine, ("25.00", None, IBAN_Y, DUE), ("35.00", None, IBAN_Y, DUE),
                       ("35.00", None, IBAN_X, DUE))
    assert pay(engine, MovementSpec(D("-60.00"), communication="facturen", counterparty_account=IBAN_Y)) == []
    assert state(engine, a) == state(engine, b) == ("review", ["payment_suggested"])
    assert state(engine, other) == ("open", [])
    with Session(engine) as session:
        rows = session.execute(select(PaymentMatch.payment_request_id, PaymentMatch.amount))
        shares = dict(rows.all())
    assert shares == {a: D("25.00"), b: D("35.00")}


@pytest.mark.parametrize(("threshold", "booked", "expected"), [
    (0.9, DUE, "review"),  # amount + IBAN scores 0.85 at best: a person confirms by default
    (0.8, DUE, "paid"),
    (0.8, DUE + dt.timedelta(days=30), "review"),  # 0.6 + 0.25 × ½ = 0.725
])
def test_amount_and_iban_pay_only_above_the_threshold(engine: Engine, threshold: float, booked: dt.date,
                                                      expected: str):
    [request] = seed(engine, ("75.00", None, IBAN_Y, DUE))
    pay(engine, MovementSpec(D("-75.00"), communication="betaling", counterparty_account=IBAN_Y), booked=booked,
        confidence_threshold=threshold)
    assert state(engine, request)[0] == expected
    if expected == "paid":
        assert matched_events(engine)[request]["matched_by"] == "amount_and_iban"
    with Session(engine) as session:
        match = session.scalars(select(PaymentMatch)).one()
    assert match.confidence == pytest.approx(0.85 if booked == DUE else 0.725)


def test_the_right_ogm_paid_to_another_iban_goes_to_review(engine: Engine):
    [request] = seed(engine, ("10.00", ogm(31), IBAN_X, DUE))
    assert pay(engine, MovementSpec.ogm(D("-10.00"), ogm(31), counterparty_account=IBAN_Y)) == []
    assert state(engine, request) == ("review", ["payment_suggested"])


def test_matching_twice_changes_nothing(engine: Engine):
    [request] = seed(engine, ("10.00", ogm(41), IBAN_X, DUE))
    pay(engine, MovementSpec.ogm(D("-4.00"), ogm(41)))
    before = state(engine, request)
    again = match_payments(engine)
    assert (again.examined, again.paid_request_ids) == (0, [])
    assert state(engine, request) == before


# --- the in-memory core, without a database ---------------------------------------------------

def test_references_of_free_text():
    assert movement_references(None, f"+++{make_ogm(5).display[3:-3]}+++ {make_rf('AB12').value} x") == (
        ogm(5), make_rf("AB12").value)
    assert movement_references(None, "invoice 12 of 2026") == ()
    # "RF72E36801 000000898056" as a whole passes the RF check digits by chance; the OGM wins its digits
    assert movement_references(None, "RF72E36801 000000898056") == ("000000898056", "RF72E36801")
    assert movement_references(ogm(6), f"{ogm(7)}") == (ogm(6),)  # a structured reference wins


def test_core_never_pays_a_request_of_another_enterprise():
    request = OpenRequest(1, enterprise_id=7, amount=D("5.00"), iban=IBAN_X, reference=ogm(8), anchor=DUE)
    matcher = Matcher([request])
    other = matcher.decide(BankMovement(1, 8, D("-5.00"), "EUR", DUE, IBAN_X, (ogm(8),)))
    assert other.state == "unmatched"
    ours = matcher.decide(BankMovement(2, 7, D("-5.00"), "EUR", DUE, IBAN_X, (ogm(8),)))
    assert (ours.state, [r.id for r in ours.paid]) == ("matched", [1])
    again = matcher.decide(BankMovement(3, 7, D("-5.00"), "EUR", DUE, IBAN_X, (ogm(8),)))
    assert again.state == "unmatched"  # paid requests are no longer candidates
