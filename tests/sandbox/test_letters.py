"""Seeded letters: real PDFs whose text pypdf extracts, with the expected payment fields in
French, Dutch and German; valid Belgian identifiers; deterministic from the seed."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pypdf
import pytest
from schwifty import IBAN

from daemon.sandbox.belgian import cbe_is_valid, format_amount, format_date, format_iban, ogm_is_valid
from daemon.sandbox.ebox import build_catalogue, serve_sandbox
from daemon.sandbox.pdf import Line, render_pdf

CATALOGUE = build_catalogue(7, anchor=date(2026, 3, 15), enterprises=4)

LABELS = {
    "fr": ("Montant à payer", "Communication structurée", "à payer avant le"),
    "nl": ("Te betalen bedrag", "Gestructureerde mededeling", "te betalen vóór"),
    "de": ("Zu zahlender Betrag", "Strukturierte Mitteilung", "zahlbar bis"),
}


def _text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf), strict=True)
    return "\n".join(page.extract_text() for page in reader.pages)


def test_pdf_writer_round_trips_accents() -> None:
    lines = ["Société générale à Liège", "Financiën België", "Straße, Grüße, Müller, Ölmühle", "(parens) \\ €",
             *[f"ligne {n}" for n in range(90)]]
    pdf = render_pdf([Line(lines[0], bold=True), *lines[1:]], title="Relevé")
    reader = pypdf.PdfReader(io.BytesIO(pdf), strict=True)
    assert len(reader.pages) == 3  # 94 lines at ~15 pt leading
    text = _text(pdf)
    for line in lines[:4]:
        assert line in text
    assert "ligne 89" in text
    assert reader.metadata.title == "Relevé"


@pytest.mark.parametrize("letter", [x for x in CATALOGUE.letters if x.payment], ids=lambda x: f"{x.kind}-{x.language}")
def test_payment_letters_print_the_expected_fields(letter) -> None:
    payment = letter.payment
    amount_label, ogm_label, due_label = LABELS[letter.language]
    text = _text(letter.main_pdf)
    assert f"{amount_label}" in text
    assert payment.amount_text in text
    assert format_iban(payment.iban) in text
    assert payment.bic in text
    assert f"{ogm_label}" in text
    assert payment.ogm in text
    assert f"{due_label} {format_date(payment.due_date, letter.language)}" in text
    assert ogm_is_valid(payment.ogm)
    iban = IBAN(payment.iban)  # raises when the checksum is wrong
    assert iban.country_code == "BE"
    assert iban.bic == payment.bic
    assert payment.amount_text == format_amount(payment.amount)


def test_letters_without_payment_say_nothing_about_paying() -> None:
    quiet = [x for x in CATALOGUE.letters if x.payment is None]
    assert {x.kind for x in quiet} == {"attestation", "information_request"}
    for letter in quiet:
        text = _text(letter.main_pdf)
        assert not any(label in text for labels in LABELS.values() for label in labels)


def test_catalogue_covers_languages_kinds_and_flags() -> None:
    assert {x.language for x in CATALOGUE.letters} == {"fr", "nl", "de"}
    for language in ("fr", "nl", "de"):
        kinds = {x.kind for x in CATALOGUE.letters if x.language == language and x.payment}
        assert kinds == {"contributions", "reminder", "tax_assessment", "vat_statement"}
    assert any(x.registered_mail for x in CATALOGUE.letters)
    assert any(x.payment_data for x in CATALOGUE.letters)
    assert any(x.payment and not x.payment_data for x in CATALOGUE.letters)  # NSSO: PDF only
    assert all(cbe_is_valid(e.number) for e in CATALOGUE.enterprises)
    assert len({e.number for e in CATALOGUE.enterprises}) == 4
    assert any(x.payment and x.payment.amount >= Decimal(1000) and "." in x.payment.amount_text
               for x in CATALOGUE.letters)
    german = next(x for x in CATALOGUE.letters if x.language == "de" and x.kind == "tax_assessment")
    assert "Föderaler Öffentlicher Dienst Finanzen" in _text(german.main_pdf)


def test_catalogue_is_deterministic() -> None:
    again = build_catalogue(7, anchor=date(2026, 3, 15), enterprises=4)
    assert [x.message_id for x in again.letters] == [x.message_id for x in CATALOGUE.letters]
    assert [x.main_pdf for x in again.letters] == [x.main_pdf for x in CATALOGUE.letters]
    other = build_catalogue(8, anchor=date(2026, 3, 15), enterprises=4)
    assert other.letters[0].message_id != CATALOGUE.letters[0].message_id


def test_served_pdfs_match_the_catalogue(sandbox, make_caller) -> None:
    for index, enterprise in enumerate(sandbox.catalogue.enterprises):
        caller = make_caller(index)
        for provider in ("nsso", "fedfin"):
            for message in caller.messages(provider, pageSize=100)["items"]:
                letter = sandbox.catalogue.letter(message["messageId"])
                pdf = next(a for a in message["attachments"]["items"] if a["mediaType"] == "application/pdf")
                served = caller.http.get(pdf["contentHref"], headers=caller.headers).content
                assert served == letter.main_pdf
                assert enterprise.name in _text(served)


def test_padded_pdf_keeps_its_text_and_is_deterministic() -> None:
    lines = ["Société générale à Liège", "Montant à payer : 1.234,56 EUR"]
    plain = render_pdf(lines, title="Relevé")
    padded = render_pdf(lines, title="Relevé", pad_to=100 * 1024)
    assert 100 * 1024 <= len(padded) < 100 * 1024 + 16
    assert _text(padded) == _text(plain)
    assert padded == render_pdf(lines, title="Relevé", pad_to=100 * 1024)
    assert render_pdf(lines, title="Relevé", pad_to=10) == plain  # already larger: unchanged


def test_load_test_seeding_keeps_the_newest_letters_and_pads_them() -> None:
    light = build_catalogue(7, anchor=date(2026, 3, 15), enterprises=5, letters=2, pdf_size=50_000)
    assert len(light.enterprises) == 5
    assert len(light.letters) == 10
    for enterprise in light.enterprises:
        mine = [x for x in light.letters if x.enterprise_number == enterprise.number]
        assert [x.kind for x in mine] == ["vat_statement", "tax_assessment"]  # 20 and 6 days before the anchor
        assert all(len(x.main_pdf) >= 50_000 for x in mine)
        assert enterprise.name in _text(mine[1].main_pdf)
    assert not build_catalogue(7, enterprises=3, letters=0).letters


def test_published_letters_are_padded_like_the_seed() -> None:
    sandbox = serve_sandbox("127.0.0.1", 0, seed=3, enterprises=1, letters=1, pdf_size=20_000)
    try:
        assert len(sandbox.catalogue.letters) == 1
        letter = sandbox.publish(sandbox.catalogue.enterprises[0].number, kind="reminder")
        assert len(letter.main_pdf) >= 20_000
        assert letter.payment is not None
        assert letter.payment.ogm in _text(letter.main_pdf)
    finally:
        sandbox.shutdown()
