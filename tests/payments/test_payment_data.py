"""The e-Box paymentData, alone and checked against the PDF."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from daemon.banking import ReferenceKind
from daemon.ebox import PaymentData
from daemon.payments import Source, extract_from_payment_data, extract_payment

OGM = "+++123/4567/89002+++"
KBC = "BE76734933575495"

SANDBOX_SHAPED = {
    "paymentDataId": "pd-1",
    "amount": 4605.37,
    "vatAmount": 0.0,
    "currency": "EUR",
    "dueDate": "2025-11-11T00:00:00+01:00",
    "iban": KBC,
    "bic": "KREDBEBB",
    "reference": {"type": "OGM", "value": OGM},
}

LETTER = f"""\
Federale Overheidsdienst Financiën
Te betalen bedrag: 4.605,37 EUR
Rekening IBAN: BE76 7349 3357 5495   BIC: KREDBEBB
Gestructureerde mededeling: {OGM}
Vervaldag: te betalen vóór 11-11-2025
"""


def codes(info):
    return [(review.field, review.code) for review in info.reviews]


def test_sandbox_shaped_payment_data():
    info = extract_from_payment_data(SANDBOX_SHAPED)
    assert info.is_payment
    assert not info.needs_review
    assert info.amount is not None
    assert info.amount.value == Decimal("4605.37")
    assert info.amount.source is Source.EBOX
    assert info.currency is not None
    assert info.currency.value == "EUR"
    assert info.iban is not None
    assert info.iban.value == KBC
    assert info.bic is not None
    assert info.bic.value == "KREDBEBB"
    assert info.reference is not None
    assert info.reference.value.display == OGM
    assert info.due_date is not None
    assert info.due_date.value == date(2025, 11, 11)
    assert info.beneficiary is None


def test_client_model_is_accepted_too():
    model = PaymentData.from_json(SANDBOX_SHAPED)
    assert extract_from_payment_data(model) == extract_from_payment_data(SANDBOX_SHAPED)


def test_vat_is_added_to_the_amount():
    info = extract_from_payment_data(SANDBOX_SHAPED | {"amount": 1000, "vatAmount": 210.0})
    assert info.amount is not None
    assert info.amount.value == Decimal("1210.00")
    assert "vatAmount" in info.amount.evidence


def test_due_date_is_the_brussels_day():
    info = extract_from_payment_data(SANDBOX_SHAPED | {"dueDate": "2026-03-14T23:30:00Z"})
    assert info.due_date is not None
    assert info.due_date.value == date(2026, 3, 15)
    model = PaymentData.from_json(SANDBOX_SHAPED | {"dueDate": "2026-03-14T23:30:00Z"})
    assert model.due_date == datetime(2026, 3, 14, 23, 30, tzinfo=UTC)
    assert extract_from_payment_data(model).due_date == info.due_date


@pytest.mark.parametrize(
    ("reference", "kind", "value"),
    [
        (OGM, ReferenceKind.OGM, "123456789002"),
        ("123456789002", ReferenceKind.OGM, "123456789002"),
        ({"type": "BBA", "value": "123456789002"}, ReferenceKind.OGM, "123456789002"),
        ("RF18 5390 0754 7034", ReferenceKind.RF, "RF18539007547034"),
        ({"type": "ISO", "reference": "RF18539007547034"}, ReferenceKind.RF, "RF18539007547034"),
        ({"type": "FREE", "value": "Facture 42"}, ReferenceKind.FREE, "Facture 42"),
        ({"structuredReference": OGM}, ReferenceKind.OGM, "123456789002"),
    ],
)
def test_reference_layouts(reference, kind, value):
    info = extract_from_payment_data(SANDBOX_SHAPED | {"reference": reference})
    assert info.reference is not None
    assert (info.reference.value.kind, info.reference.value.value) == (kind, value)


def test_invalid_values_are_flagged_with_the_reason():
    info = extract_from_payment_data(SANDBOX_SHAPED | {"iban": "BE77734933575495", "bic": "KRED",
                                                        "reference": "+++123/4567/89003+++", "dueDate": "soon",
                                                        "amount": "n/a"})
    assert sorted(codes(info)) == [("amount", "invalid"), ("bic", "invalid"), ("due_date", "invalid"),
                                   ("iban", "invalid"), ("reference", "check_digits")]
    assert any("expected 76, got 77" in reason for reason in info.review_reasons)
    assert (info.iban, info.bic, info.reference, info.due_date, info.amount) == (None, None, None, None, None)


def test_unreadable_reference_object():
    info = extract_from_payment_data(SANDBOX_SHAPED | {"reference": {"foo": ["bar"]}})
    assert codes(info) == [("reference", "unrecognised")]


def test_zero_amount_is_no_payment():
    info = extract_from_payment_data(SANDBOX_SHAPED | {"amount": 0, "vatAmount": 0})
    assert not info.is_payment
    assert not info.needs_review


def test_agreement_raises_confidence():
    info = extract_payment(payment_data=SANDBOX_SHAPED, text=LETTER)
    assert not info.needs_review, info.review_reasons
    assert info.amount is not None
    assert info.amount.source is Source.EBOX
    assert info.amount.confidence == 0.99
    assert info.beneficiary is not None
    assert info.beneficiary.source is Source.PDF


def test_disagreement_keeps_the_ebox_value_and_flags_it():
    info = extract_payment(payment_data=SANDBOX_SHAPED | {"amount": 4650.37}, text=LETTER)
    assert codes(info) == [("amount", "disagreement")]
    assert info.amount is not None
    assert info.amount.value == Decimal("4650.37")
    assert info.amount.source is Source.EBOX
    assert info.amount.alternatives == (Decimal("4605.37"),)
    assert info.amount.confidence <= 0.6
    assert "4650.37" in info.review_reasons[0]
    assert "4605.37" in info.review_reasons[0]


def test_disagreeing_reference_is_flagged():
    other = "+++260/0123/45644+++"
    info = extract_payment(payment_data=SANDBOX_SHAPED | {"reference": other}, text=LETTER)
    assert codes(info) == [("reference", "disagreement")]
    assert OGM in info.review_reasons[0]
    assert other in info.review_reasons[0]


def test_ebox_resolves_an_ambiguous_pdf():
    text = LETTER + "Te betalen bedrag: 4.700,00 EUR\n"
    assert ("amount", "ambiguous") in codes(extract_payment(text=text))
    info = extract_payment(payment_data=SANDBOX_SHAPED, text=text)
    assert not info.needs_review


def test_invalid_pdf_value_is_still_reported_when_ebox_has_one():
    text = LETTER.replace("BE76 7349 3357 5495", "BE77 7349 3357 5495")
    info = extract_payment(payment_data=SANDBOX_SHAPED, text=text)
    assert codes(info) == [("iban", "invalid")]
    assert info.review_reasons[0].startswith("PDF: ")
    assert info.iban is not None
    assert info.iban.value == KBC


def test_pdf_fills_what_ebox_lacks_and_ebox_fills_an_empty_pdf():
    partial = {key: value for key, value in SANDBOX_SHAPED.items() if key not in ("bic", "reference")}
    info = extract_payment(payment_data=partial, text=LETTER)
    assert info.bic is not None
    assert info.bic.source is Source.PDF
    assert info.reference is not None
    assert info.reference.source is Source.PDF
    scanned = extract_payment(payment_data=SANDBOX_SHAPED, pdf=b"not a pdf")
    assert scanned.is_payment
    assert not scanned.needs_review
    assert any("paymentData was used" in note for note in scanned.notes)


def test_ebox_payment_against_a_pdf_credit_note_is_flagged():
    credit = "SPF Finances\nMontant à rembourser : 4.605,37 EUR\n"
    info = extract_payment(payment_data=SANDBOX_SHAPED, text=credit)
    assert ("document", "disagreement") in codes(info)


def test_nothing_to_read():
    with pytest.raises(ValueError, match="needs payment_data, pdf or text"):
        extract_payment()
