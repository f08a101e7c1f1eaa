"""The sandbox's letters in French, Dutch and German are all read correctly.

For several seeds, every letter's PDF goes through pypdf and the extractor, and every field is
compared with the catalogue the sandbox built the letter from (``SeedLetter.payment``).
Letters without a payment (attestations, information requests) must give "no payment".
"""

from __future__ import annotations

import functools
import io
from collections import Counter
from datetime import date

import pytest
from pypdf import PdfReader

from daemon.banking import ReferenceKind, parse_ogm
from daemon.payments import PaymentInfo, Source, extract_from_pdf, extract_payment, pdf_text
from daemon.sandbox.ebox.letters import LANGUAGES
from daemon.sandbox.ebox.messages import payment_data_json
from daemon.sandbox.ebox.seed import SeedLetter, build_catalogue

SEEDS = (0, 1, 2, 7, 2026)
ANCHOR = date(2026, 3, 1)


@functools.cache
def all_letters() -> tuple[SeedLetter, ...]:
    out: list[SeedLetter] = []
    for seed in SEEDS:
        out += build_catalogue(seed, anchor=ANCHOR, enterprises=6).letters
    return tuple(out)


def _sender(letter: SeedLetter) -> str:
    return str(PdfReader(io.BytesIO(letter.main_pdf)).metadata.author)


def _mismatches(letter: SeedLetter, info: PaymentInfo) -> list[str]:
    expected = letter.payment
    if expected is None:
        return [] if not info.is_payment and not info.needs_review else [f"payment found: {info.as_dict()}"]
    if not info.is_payment:
        return [f"no payment read ({info.notes}, {info.review_reasons})"]
    got = {name: None if info.get(name) is None else info.get(name).value
           for name in ("amount", "currency", "iban", "bic", "reference", "due_date", "beneficiary")}
    want = {"amount": expected.amount, "currency": expected.currency, "iban": expected.iban, "bic": expected.bic,
            "reference": parse_ogm(expected.ogm).digits, "due_date": expected.due_date,
            "beneficiary": _sender(letter)}
    got["reference"] = None if info.reference is None else info.reference.value.value
    wrong = [f"{name}: got {got[name]!r}, want {want[name]!r}" for name in want if got[name] != want[name]]
    if info.reference_kind is not ReferenceKind.OGM:
        wrong.append(f"reference kind {info.reference_kind}")
    if info.needs_review:
        wrong.append(f"needs review: {info.review_reasons}")
    return wrong


def test_catalogue_covers_every_language_and_kind():
    combos = Counter((letter.language, letter.payment is not None) for letter in all_letters())
    for language in LANGUAGES:
        assert combos[(language, True)] >= 20
        assert combos[(language, False)] >= 10


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_sandbox_letter_is_read_correctly(language):
    letters = [letter for letter in all_letters() if letter.language == language]
    failures = {}
    for letter in letters:
        wrong = _mismatches(letter, extract_from_pdf(letter.main_pdf))
        if wrong:
            failures[f"{letter.kind} {letter.message_id}"] = wrong
    assert not failures, failures


def test_pdf_fields_carry_source_and_confidence():
    letter = next(letter for letter in all_letters() if letter.payment is not None)
    info = extract_from_pdf(letter.main_pdf)
    for name in ("amount", "currency", "iban", "bic", "reference", "due_date"):
        field = info.get(name)
        assert field is not None
        assert field.source is Source.PDF
        assert field.confidence >= 0.9
        assert field.evidence
    assert info.beneficiary is not None
    assert info.beneficiary.confidence == 0.5  # the letterhead, not a label


def test_payment_data_and_pdf_agree_for_every_letter_that_has_both():
    both = [letter for letter in all_letters() if letter.payment_data]
    assert len(both) >= 30
    for letter in both:
        info = extract_payment(payment_data=payment_data_json(letter), pdf=letter.main_pdf)
        assert not info.needs_review, info.review_reasons
        assert info.amount is not None
        assert info.amount.source is Source.EBOX
        assert info.amount.value == letter.payment.amount
        assert info.amount.confidence == 0.99  # both sources agree
        assert info.reference is not None
        assert info.reference.value.display == letter.payment.ogm
        assert info.due_date is not None
        assert info.due_date.value == letter.payment.due_date
        assert info.beneficiary is not None
        assert info.beneficiary.source is Source.PDF


def test_text_function_and_pdf_function_agree():
    for letter in all_letters()[:24]:
        from_text = extract_payment(text=pdf_text(letter.main_pdf))
        assert from_text == extract_from_pdf(letter.main_pdf)
