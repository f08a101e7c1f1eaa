"""End to end: sandbox payment letters → payment requests → a CODA file paying some of them →
exactly those requests paid, with be.eboxd.payment.matched; the rest open or in review."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from daemon.banking import make_ogm
from daemon.banking.coda_writer import MovementSpec, StatementSpec, coda_bytes
from daemon.db.models import Enterprise, OutboxRow, PaymentRequest
from daemon.payments.bank_import import import_coda_file
from daemon.payments.matching import match_payments
from tests.events.test_schemas import validate
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import fetch_all, poll_due


def test_coda_movement_with_the_ogm_pays_the_letter(pipeline: Pipeline) -> None:
    poll_due(pipeline)
    fetch_all(pipeline)
    with Session(pipeline.engine) as session:
        requests = session.scalars(sa.select(PaymentRequest).where(PaymentRequest.status == "open")
                                   .order_by(PaymentRequest.id)).all()
        numbers = {e.id: e.number for e in session.scalars(sa.select(Enterprise))}
        assert len(requests) >= 3
        paid, partial, by_iban = requests[0], requests[1], requests[2]
        number = numbers[paid.enterprise_id]
        booked = by_iban.due_date or dt.date.today()  # within the matching window of the IBAN-only one
        movements = [
            MovementSpec.ogm(-Decimal(paid.amount), paid.reference, counterparty_account=paid.iban,
                             counterparty_name="Administration"),
            MovementSpec.ogm(-(Decimal(partial.amount) / 2).quantize(Decimal("0.01")), partial.reference,
                             counterparty_account=partial.iban),
            MovementSpec(-Decimal(by_iban.amount), communication="betaling", counterparty_account=by_iban.iban),
            MovementSpec.ogm(Decimal("-12.34"), make_ogm(9_999_999_999).digits),  # pays nothing of ours
        ]
        ids = {"paid": paid.id, "partial": partial.id, "by_iban": by_iban.id}
        others = {r.id for r in requests} - set(ids.values())
    data = coda_bytes([StatementSpec(date=booked, movements=movements)])
    result = import_coda_file(pipeline.engine, data, name="bank.cod")
    assert result.inserted == 4
    matched = match_payments(pipeline.engine)
    assert matched.paid_request_ids == [ids["paid"]]
    with Session(pipeline.engine) as session:
        status = dict(session.execute(sa.select(PaymentRequest.id, PaymentRequest.status)).all())
        events = session.scalars(sa.select(OutboxRow).where(OutboxRow.topic == "be.eboxd.payment.matched")).all()
    assert status[ids["paid"]] == "paid"
    assert status[ids["partial"]] == "review"
    assert status[ids["by_iban"]] == "review"
    assert all(status[other] == "open" for other in others if other not in ids.values())
    [event] = events
    validate(event.payload)
    assert event.payload["subject"] == number
    assert event.payload["data"]["payment_request_id"] == ids["paid"]
    # importing the same file again changes nothing
    assert import_coda_file(pipeline.engine, data, name="bank.cod").inserted == 0
    assert match_payments(pipeline.engine).examined == 0
