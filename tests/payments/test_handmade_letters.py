"""Hand-made letter texts: realistic layouts of Belgian administrations, and the traps in them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from daemon.banking import ReferenceKind
from daemon.payments import PaymentInfo, Source, extract_from_pdf, extract_from_text
from daemon.sandbox.pdf import Line, render_pdf

OGM = "+++123/4567/89002+++"
OGM_DIGITS = "123456789002"
KBC = "BE76 7349 3357 5495"  # bank code 734: KREDBEBB
BELFIUS = "BE71 0961 2345 6769"  # bank code 096: GKCCBEBB


def codes(info: PaymentInfo) -> list[tuple[str, str]]:
    return [(review.field, review.code) for review in info.reviews]


def assert_clean_payment(info: PaymentInfo, amount: str, iban: str, due: date | None) -> None:
    assert info.is_payment
    assert not info.needs_review, info.review_reasons
    assert info.amount is not None
    assert info.amount.value == Decimal(amount)
    assert info.iban is not None
    assert info.iban.value == iban.replace(" ", "")
    if due is None:
        assert info.due_date is None
    else:
        assert info.due_date is not None
        assert info.due_date.value == due


TAX_ASSESSMENT_FR = f"""\
SPF FINANCES
Administration générale de la Fiscalité - Centre Perception
AVERTISSEMENT-EXTRAIT DE RÔLE
Impôt des personnes morales - Exercice d'imposition 2025
Numéro d'entreprise 0403.170.701          Article 1234567          Date d'envoi 12/02/2026

Détail du calcul
    Impôt de base                                  18.250,00 EUR
    Majoration pour absence de versements anticipés    456,25 EUR
    Versements anticipés                          -5.000,00 EUR
    Précompte mobilier imputable                    -706,25 EUR
    Solde                                          13.000,00 EUR

Montant à payer : 13.000,00 EUR
Veuillez payer au plus tard le 14 avril 2026 sur le compte {KBC} (BIC KREDBEBB)
Bénéficiaire : SPF Finances - Perception Impôts
Communication structurée : {OGM}

---------------------------------- Bulletin de virement ----------------------------------
Montant : 13.000,00 EUR     Compte bénéficiaire : {KBC}     Communication : {OGM}
"""


def test_tax_assessment_with_calculation_table_and_slip():
    info = extract_from_text(TAX_ASSESSMENT_FR)
    assert_clean_payment(info, "13000.00", KBC, date(2026, 4, 14))
    assert info.bic is not None
    assert info.bic.value == "KREDBEBB"
    assert info.reference is not None
    assert info.reference.value.value == OGM_DIGITS
    assert info.reference.confidence >= 0.95
    assert info.beneficiary is not None
    assert info.beneficiary.value == "SPF Finances - Perception Impôts"
    assert info.beneficiary.confidence >= 0.9
    assert info.amount is not None
    assert info.amount.confidence >= 0.95


NSSO_DEBIT_NL = f"""\
Rijksdienst voor Sociale Zekerheid
DEBETBERICHT - 4e kwartaal 2025

Werkgever: Bakkerij Peeters BV    RSZ-nummer 123-4567890-12
Aangegeven bijdragen                 24.512,80 EUR
Reeds betaalde voorschotten          20.000,00 EUR
Openstaand saldo                      4.512,80 EUR
Totaal te betalen                     4.512,80 EUR

Te storten op rekening {BELFIUS} van de RSZ
met gestructureerde mededeling {OGM}
Uiterlijk op 31 januari 2026.
"""


def test_social_security_debit_notice_nl():
    info = extract_from_text(NSSO_DEBIT_NL)
    assert_clean_payment(info, "4512.80", BELFIUS, date(2026, 1, 31))
    assert info.bic is not None
    assert (info.bic.value, info.bic.source) == ("GKCCBEBB", Source.DERIVED)
    assert info.reference_kind is ReferenceKind.OGM


VAT_DE = f"""\
Föderaler Öffentlicher Dienst Finanzen
MwSt.-Kontoauszug Nr. 2026/02

Datum        Beschreibung                         Betrag
05.01.2026   Erklärung 4. Quartal 2025          7.410,00 EUR
20.01.2026   Zahlung                           -5.000,00 EUR
31.01.2026   Verzugszinsen                         38,10 EUR

Zu zahlender Saldo: 2.448,10 EUR
Zahlbar bis zum 20. März 2026 auf das Konto {KBC}, BIC: KREDBEBB
Strukturierte Mitteilung: {OGM}
Empfänger: FÖD Finanzen – MwSt.-Einnahmen
"""


def test_vat_statement_de_with_booking_table():
    info = extract_from_text(VAT_DE)
    assert_clean_payment(info, "2448.10", KBC, date(2026, 3, 20))
    assert info.beneficiary is not None
    assert info.beneficiary.value == "FÖD Finanzen - MwSt.-Einnahmen"


PROVINCIAL_NL = """\
Provincie Antwerpen
Aanslagbiljet provinciebelasting aanslagjaar 2026
Kohierartikel 778899

Te betalen bedrag: € 1 234,56
Rekeningnummer: BE68 5390 0754 7034 t.n.v. Provincie Antwerpen
Mededeling: +++260/0123/45644+++
Te betalen vóór 15 maart 2026
"""


def test_provincial_tax_nl_with_space_thousands_and_written_date():
    info = extract_from_text(PROVINCIAL_NL)
    assert_clean_payment(info, "1234.56", "BE68539007547034", date(2026, 3, 15))
    assert info.beneficiary is not None
    assert info.beneficiary.value == "Provincie Antwerpen"
    assert info.bic is None  # bank 539 is not in the registry, and none is printed
    assert info.currency is not None
    assert info.currency.value == "EUR"


TABLE_FR = f"""\
Office national de sécurité sociale
Avis de débit

Période      Montant dû      Déjà payé      Solde à payer
T4 2025      3.200,00        1.000,00       2.200,00

Compte : {KBC}    BIC : KREDBEBB
Communication structurée : {OGM}
Date d'échéance : 05/02/2026
"""


def test_amount_read_from_its_table_column():
    info = extract_from_text(TABLE_FR)
    assert_clean_payment(info, "2200.00", KBC, date(2026, 2, 5))
    assert info.amount is not None
    assert info.amount.confidence < 0.95


LABEL_ON_ITS_OWN_LINE = f"""\
Province de Namur - Taxe provinciale 2026
Montant à payer :
1.234,56 EUR
IBAN :
{BELFIUS}
Communication :
{OGM}
À payer avant le :
15.03.2026
"""


def test_values_on_the_line_after_their_labels():
    info = extract_from_text(LABEL_ON_ITS_OWN_LINE)
    assert_clean_payment(info, "1234.56", BELFIUS, date(2026, 3, 15))


AMOUNT_BEFORE_LABEL = f"""\
Ville de Liège - taxe sur les enseignes
Solde : 1.234,56 EUR à payer avant le 15/03/2026 au compte {KBC}
Communication : {OGM}
"""


def test_amount_written_before_the_label():
    info = extract_from_text(AMOUNT_BEFORE_LABEL)
    assert_clean_payment(info, "1234.56", KBC, date(2026, 3, 15))


def test_two_different_amounts_to_pay_are_flagged():
    text = f"""\
Montant à payer avant le 15/03/2026 : 1.234,56 EUR
Montant à payer après le 15/03/2026 : 1.300,00 EUR
Compte {KBC}  Communication structurée {OGM}
"""
    info = extract_from_text(text)
    assert info.is_payment
    assert ("amount", "ambiguous") in codes(info)
    assert info.amount is not None
    assert info.amount.value == Decimal("1234.56")
    assert info.amount.alternatives == (Decimal("1300.00"),)
    assert info.amount.confidence <= 0.3
    assert "1.234,56" in info.review_reasons[0]
    assert "1.300,00" in info.review_reasons[0]


def test_the_same_amount_repeated_is_not_ambiguous_and_gains_confidence():
    once = extract_from_text(f"Montant à payer : 100,00 EUR\nIBAN {KBC}\nCommunication {OGM}\n")
    twice = extract_from_text(f"Montant à payer : 100,00 EUR\nIBAN {KBC}\nCommunication {OGM}\n"
                              "Montant à payer : 100,00 EUR\n")
    assert not twice.needs_review
    assert twice.amount is not None
    assert once.amount is not None
    assert twice.amount.confidence > once.amount.confidence


def test_only_the_amount_labelled_to_pay_counts():
    text = f"""\
Montant total de l'impôt : 12.345,67 EUR
Montant dû : 12.000,00 EUR
Déjà payé : 12.000,00 EUR
Reste à payer : 345,67 EUR
IBAN {KBC} - Communication {OGM} - Échéance 01/06/2026
"""
    info = extract_from_text(text)
    assert_clean_payment(info, "345.67", KBC, date(2026, 6, 1))


def test_credit_note_fr_is_not_a_payment_request():
    text = f"""\
SPF Finances - Avertissement-extrait de rôle - Exercice d'imposition 2025
Montant à rembourser : 1.234,56 EUR
Ce montant sera versé sur votre compte {KBC}.
Communication : {OGM}
"""
    info = extract_from_text(text)
    assert not info.is_payment
    assert not info.needs_review
    assert info.amount is None
    assert "1.234,56" in info.notes[0]


def test_credit_note_nl_is_not_a_payment_request():
    text = f"""\
FOD Financiën - Aanslagbiljet personenbelasting
Terug te betalen aan u: 845,20 EUR
Wij storten dit bedrag op uw rekening {KBC}.
"""
    info = extract_from_text(text)
    assert not info.is_payment
    assert not info.needs_review


def test_zero_to_pay_is_not_a_payment_request():
    info = extract_from_text(f"Solde à payer : 0,00 EUR\nCompte {KBC}\nCommunication {OGM}\n")
    assert not info.is_payment
    assert not info.needs_review
    assert "nothing to pay" in info.notes[0]


def test_information_letter_with_amounts_and_a_footer_account_is_not_a_payment():
    text = f"""\
Service public fédéral Économie
Votre chiffre d'affaires déclaré pour 2025 s'élève à 12.345,00 EUR.
Nous vous informons que votre dossier est complet.
Service public fédéral Économie - rue du Progrès 50 - 1210 Bruxelles - {KBC}
"""
    info = extract_from_text(text)
    assert not info.is_payment
    assert not info.needs_review


def test_payment_acknowledgement_is_not_a_payment_request():
    text = f"""\
Nous avons bien reçu votre paiement de 1.234,56 EUR effectué avec la communication {OGM}.
Le compte {KBC} ne présente plus de solde.
"""
    info = extract_from_text(text)
    assert not info.is_payment
    assert not info.needs_review


def test_bad_ogm_check_digits_are_flagged_with_the_expected_digits():
    text = f"Montant à payer : 50,00 EUR\nIBAN {KBC}\nCommunication structurée : +++123/4567/89003+++\n"
    info = extract_from_text(text)
    assert info.is_payment
    assert codes(info) == [("reference", "check_digits")]
    assert info.reference is None
    assert "expected 02, got 03" in info.review_reasons[0]


def test_iban_failing_its_checksum_is_flagged():
    text = f"Montant à payer : 50,00 EUR\nIBAN BE77 7349 3357 5495\nCommunication {OGM}\n"
    info = extract_from_text(text)
    assert codes(info) == [("iban", "invalid")]
    assert info.iban is None
    assert "expected 76, got 77" in info.review_reasons[0]


def test_two_due_dates_are_flagged():
    text = f"""\
Montant à payer : 50,00 EUR    IBAN {KBC}    Communication {OGM}
Échéance : 15/03/2026
Date limite de paiement : 31/03/2026
"""
    info = extract_from_text(text)
    assert codes(info) == [("due_date", "ambiguous")]
    assert info.due_date is not None
    assert info.due_date.alternatives == (date(2026, 3, 31),)


def test_bic_of_another_bank_is_flagged():
    text = f"Montant à payer : 50,00 EUR\nIBAN {KBC}   BIC GEBABEBB\nCommunication {OGM}\n"
    info = extract_from_text(text)
    assert codes(info) == [("bic", "mismatch")]
    assert "KREDBEBB" in info.review_reasons[0]


def test_two_accounts_to_pay_to_are_flagged():
    text = f"Montant à payer : 50,00 EUR\nIBAN {KBC} ou IBAN {BELFIUS}\nCommunication {OGM}\n"
    info = extract_from_text(text)
    assert ("iban", "ambiguous") in codes(info)


def test_rf_reference_and_english_labels():
    text = """\
ACME Software BV - Invoice 2026-0042
Amount due: EUR 1,234.56
Pay to IBAN BE68 5390 0754 7034 before 15/03/2026
Payment reference: RF18 5390 0754 7034
"""
    info = extract_from_text(text)
    assert_clean_payment(info, "1234.56", "BE68539007547034", date(2026, 3, 15))
    assert info.reference is not None
    assert info.reference.value.value == "RF18539007547034"
    assert info.reference_kind is ReferenceKind.RF


def test_free_text_reference_when_there_is_no_structured_one():
    text = f"Te betalen bedrag: 99,00 EUR\nRekening {KBC}\nMededeling: Factuur 2026/0042\n"
    info = extract_from_text(text)
    assert not info.needs_review
    assert info.reference is not None
    assert (info.reference_kind, info.reference.value.value) == (ReferenceKind.FREE, "Factuur 2026/0042")
    assert info.reference.confidence < 0.9


def test_missing_reference_is_flagged():
    info = extract_from_text(f"Te betalen bedrag: 99,00 EUR\nRekening {KBC}\n")
    assert codes(info) == [("reference", "missing")]


def test_unlabelled_amount_next_to_an_ogm_is_taken_but_flagged():
    text = f"Cotisation annuelle 2026 : 250,00 EUR\nVirement sur {KBC} avec la communication {OGM}\n"
    info = extract_from_text(text)
    assert info.is_payment
    assert codes(info) == [("amount", "unlabelled")]
    assert info.amount is not None
    assert info.amount.value == Decimal("250.00")
    assert info.amount.confidence == 0.5


def test_ogm_without_any_amount_is_a_payment_missing_its_amount():
    info = extract_from_text(f"Virement sur {KBC} avec la communication {OGM}\n")
    assert info.is_payment
    assert codes(info) == [("amount", "missing")]


def test_own_account_is_not_the_account_to_pay():
    text = f"""\
Montant à payer : 75,00 EUR à verser sur le compte {BELFIUS}.
Communication : {OGM}
Ne payez pas depuis votre compte {KBC} s'il est clôturé.
"""
    info = extract_from_text(text)
    assert info.iban is not None
    assert info.iban.value == BELFIUS.replace(" ", "")
    assert not info.needs_review


def test_empty_text_cannot_be_decided():
    info = extract_from_text("  \n\f \n")
    assert not info.is_payment
    assert codes(info) == [("document", "no_text")]


def test_noisy_pdf_text_with_odd_spacing():
    text = (f"SPF  Finances\r\nMontant   à   payer :  2\u202f500,00\u00a0€\r\nIBAN\u00a0:\u00a0{KBC}\r\n"
            f"Communication structurée : {OGM.replace('+++', '*** ')}\r\nÉchéance – 28/02/2026\r\n")
    info = extract_from_text(text.replace("*** " + OGM[3:-3] + "+++", "*** " + OGM[3:-3] + " ***"))
    assert_clean_payment(info, "2500.00", KBC, date(2026, 2, 28))


def test_a_handmade_letter_through_a_real_pdf():
    lines = [Line("Stad Gent - Belastingdienst", bold=True, size=13), Line("Aanslagbiljet 2026", gap=12),
             Line("Te betalen bedrag: 321,09 EUR", bold=True), Line(f"IBAN {BELFIUS}   BIC GKCCBEBB"),
             Line(f"Gestructureerde mededeling: {OGM}"), Line("Vervaldatum: 30-04-2026")]
    info = extract_from_pdf(render_pdf(lines, title="Aanslagbiljet"))
    assert_clean_payment(info, "321.09", BELFIUS, date(2026, 4, 30))
    assert info.beneficiary is not None
    assert info.beneficiary.value == "Stad Gent - Belastingdienst"


def test_unreadable_pdf_is_flagged_not_raised():
    info = extract_from_pdf(b"%PDF-1.4 this is not really a pdf")
    assert not info.is_payment
    assert codes(info) == [("document", "unreadable")]


def test_json_form():
    data = extract_from_text(TAX_ASSESSMENT_FR).as_dict()
    assert set(data) >= {"amount", "currency", "iban", "bic", "reference", "due_date", "beneficiary", "needs_review"}
    assert data["amount"]["value"] == "13000.00"
    assert data["amount"]["source"] == "pdf"
    assert data["due_date"]["value"] == "2026-04-14"
    assert data["reference"] | {"evidence": None} == {
        "value": OGM, "kind": "ogm", "canonical": OGM_DIGITS, "source": "pdf",
        "confidence": data["reference"]["confidence"], "evidence": None,
    }
    assert data["needs_review"] is False


PROSE = [
    f"Veuillez verser la somme de 1.234,56 EUR avant le 15/03/2026 sur le compte {KBC} en mentionnant la "
    f"communication structurée {OGM}.",
    f"Gelieve het bedrag van 1.234,56 EUR uiterlijk op 15 maart 2026 over te schrijven op rekening {KBC} met de "
    f"mededeling {OGM}.",
    f"Gelieve 1.234,56 EUR te storten op rekening {KBC} vóór 15-03-2026, met vermelding van {OGM}.",
    f"Bitte überweisen Sie den Betrag von 1.234,56 EUR bis zum 15.03.2026 auf das Konto {KBC} unter Angabe der "
    f"Mitteilung {OGM}.",
]


def test_payment_requests_written_as_prose():
    for sentence in PROSE:
        info = extract_from_text(f"Stad Eupen\n{sentence}\n")
        assert_clean_payment(info, "1234.56", KBC, date(2026, 3, 15))
        assert info.reference is not None
        assert info.reference.value.value == OGM_DIGITS
