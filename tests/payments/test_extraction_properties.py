"""Property tests: generated letters in FR, NL and DE, in many notations and orders, are read exactly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.banking import make_ogm
from daemon.payments import extract_from_text

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BANKS = {"001": "GEBABEBB", "363": "BBRUBEBB", "734": "KREDBEBB", "096": "GKCCBEBB", "979": "ARSPBE22"}
MONTHS = {
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"],
    "nl": ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
           "november", "december"],
    "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
           "November", "Dezember"],
}
WORDS = {
    "fr": {
        "amount": ["Montant à payer", "Solde à payer", "Total à payer", "Reste à payer", "Montant total à payer"],
        "due": ["Échéance :", "À payer avant le", "Date d'échéance :", "Au plus tard le", "Date limite de paiement :"],
        "iban": ["Compte IBAN :", "IBAN :", "À verser sur le compte", "Numéro de compte :"],
        "ogm": ["Communication structurée :", "Communication :"],
        "name": "Bénéficiaire :",
        "noise": ["Montant de l'impôt", "Déjà payé", "Montant dû", "Versements anticipés"],
        "place": "Bruxelles, le {}",
    },
    "nl": {
        "amount": ["Te betalen bedrag", "Totaal te betalen", "Saldo te betalen", "Bedrag te betalen"],
        "due": ["Vervaldag:", "Te betalen vóór", "Uiterlijk op", "Vervaldatum:"],
        "iban": ["Rekening IBAN:", "IBAN:", "Rekeningnummer:", "Te storten op rekening"],
        "ogm": ["Gestructureerde mededeling:", "Mededeling:"],
        "name": "Begunstigde:",
        "noise": ["Reeds betaald", "Aangegeven bijdragen", "Openstaand saldo", "Voorafbetalingen"],
        "place": "Brussel, {}",
    },
    "de": {
        "amount": ["Zu zahlender Betrag", "Zahlbetrag", "Zu zahlender Gesamtbetrag", "Betrag zu zahlen"],
        "due": ["Fälligkeit:", "Zahlbar bis", "Zahlbar bis zum", "Spätestens am", "Fälligkeitsdatum:"],
        "iban": ["Konto IBAN:", "IBAN:", "Kontonummer:", "Auf das Konto"],
        "ogm": ["Strukturierte Mitteilung:", "Mitteilung:"],
        "name": "Empfänger:",
        "noise": ["Bereits gezahlt", "Steuerbetrag", "Offener Betrag", "Vorauszahlungen"],
        "place": "Eupen, den {}",
    },
}
NAMES = ["SPF Finances", "Rijksdienst voor Sociale Zekerheid", "Provinz Lüttich", "Ville de Namur - Recette",
         "Stad Gent", "ONSS Perception"]


NARROW_NBSP = "\u202f"


def grouped(amount: Decimal, thousands: str, decimal: str) -> str:
    whole, cents = f"{amount:.2f}".split(".")
    parts = []
    while whole:
        parts.insert(0, whole[-3:])
        whole = whole[:-3]
    return f"{thousands.join(parts)}{decimal}{cents}"


def amount_text(amount: Decimal, style: int) -> str:
    return [
        f"{grouped(amount, '.', ',')} EUR",
        f"€ {grouped(amount, ' ', ',')}",
        f"EUR {grouped(amount, '.', ',')}",
        f"{amount:.2f} EUR",
        f"{grouped(amount, '.', ',')} €",
        f"€{grouped(amount, '.', ',')}",
        grouped(amount, NARROW_NBSP, ",") + "\u00a0€",
    ][style]


def date_text(day: date, language: str, style: int) -> str:
    if style < 3:
        separator = "/-."[style]
        return f"{day.day:02d}{separator}{day.month:02d}{separator}{day.year}"
    dot = "." if language == "de" else ""
    return f"{day.day}{dot} {MONTHS[language][day.month - 1]} {day.year}"


def belgian_iban(bank: str, account: int) -> str:
    stem = f"{bank}{account:07d}"
    rest = int(stem) % 97
    bban = f"{stem}{97 if rest == 0 else rest:02d}"
    return f"BE{98 - int(bban + '111400') % 97:02d}{bban}"


@dataclass
class Letter:
    text: str
    amount: Decimal
    iban: str
    bic: str
    ogm: str
    due: date
    name: str | None


@st.composite
def letters(draw: st.DrawFn) -> Letter:
    language = draw(st.sampled_from(["fr", "nl", "de"]))
    words = WORDS[language]
    amount = Decimal(draw(st.integers(min_value=1, max_value=99_999_999_99))) / 100
    due = date(2025, 1, 1) + timedelta(days=draw(st.integers(min_value=0, max_value=1500)))
    bank = draw(st.sampled_from(sorted(BANKS)))
    iban = belgian_iban(bank, draw(st.integers(min_value=0, max_value=9_999_999)))
    ogm = make_ogm(draw(st.integers(min_value=0, max_value=10**10 - 1)))
    separator = draw(st.sampled_from([" : ", ": ", "   ", " "]))
    shown_iban = iban if draw(st.booleans()) else " ".join(iban[i : i + 4] for i in range(0, 16, 4))
    shown_ogm = ogm.display if draw(st.booleans()) else ogm.display.replace("+", "*")
    block = [
        f"{draw(st.sampled_from(words['amount']))}{separator}{amount_text(amount, draw(st.integers(0, 6)))}",
        f"{draw(st.sampled_from(words['iban']))} {shown_iban}"
        + (f"   BIC: {BANKS[bank]}" if draw(st.booleans()) else ""),
        f"{draw(st.sampled_from(words['ogm']))} {shown_ogm}",
        f"{draw(st.sampled_from(words['due']))} {date_text(due, language, draw(st.integers(0, 3)))}",
    ]
    name = draw(st.sampled_from([None, *NAMES]))
    if name is not None:
        block.append(f"{words['name']} {name}")
    noise = [
        words["place"].format(date_text(due - timedelta(days=30), language, draw(st.integers(0, 3)))),
        f"{draw(st.sampled_from(words['noise']))}: {amount_text(amount + 17, draw(st.integers(0, 6)))}",
        "Numéro d'entreprise / Ondernemingsnummer : 0403.170.701",
        f"Article {draw(st.integers(10**6, 10**7))} - {due.year}",
    ]
    body = draw(st.permutations(block + noise))
    return Letter("\n".join(["Administration générale", *body]), amount, iban, BANKS[bank], ogm.digits, due, name)


@SETTINGS
@given(letters())
def test_generated_letters_are_read_exactly(letter):
    info = extract_from_text(letter.text)
    assert info.is_payment
    assert not info.needs_review, (info.review_reasons, letter.text)
    assert info.amount is not None
    assert info.amount.value == letter.amount
    assert info.currency is not None
    assert info.currency.value == "EUR"
    assert info.iban is not None
    assert info.iban.value == letter.iban
    assert info.bic is not None
    assert info.bic.value == letter.bic
    assert info.reference is not None
    assert info.reference.value.value == letter.ogm
    assert info.due_date is not None
    assert info.due_date.value == letter.due
    if letter.name is not None:
        assert info.beneficiary is not None
        assert info.beneficiary.value == letter.name


INFO_SENTENCES = [
    "Votre chiffre d'affaires déclaré s'élève à {amount}.",
    "Het aangegeven bedrag van {amount} werd correct verwerkt.",
    "Der gemeldete Umsatz beträgt {amount}.",
    "Uw dossier is volledig; er is niets te doen.",
    "Nous vous remercions pour votre déclaration du {date}.",
    "Montant à rembourser : {amount}",
    "Terug te betalen aan u: {amount}",
    "Zu Ihren Gunsten: {amount}",
]


@SETTINGS
@given(st.lists(st.sampled_from(INFO_SENTENCES), min_size=1, max_size=6),
       st.integers(min_value=1, max_value=10**8), st.integers(0, 6), st.booleans())
def test_letters_without_a_payment_request_give_no_payment(sentences, cents, style, footer):
    amount = amount_text(Decimal(cents) / 100, style)
    lines = ["Service public fédéral Économie", *(s.format(amount=amount, date="12/02/2026") for s in sentences)]
    if footer:
        lines.append("SPF Économie - rue du Progrès 50 - 1210 Bruxelles - BE71 0961 2345 6769")
    info = extract_from_text("\n".join(lines))
    assert not info.is_payment
    assert not info.needs_review, info.review_reasons


FRAGMENTS = st.sampled_from([
    "Montant à payer", "Te betalen", "zahlbar bis", "IBAN", "BIC", "+++", "***", "RF18", "BE68", "€", "EUR", ":",
    "/", "1.234,56", "15 mars 2026", "12/03/2026", "\n", "   ", "|", "Bénéficiaire", "à rembourser", "0,00",
])


@SETTINGS
@given(st.lists(st.one_of(FRAGMENTS, st.text(max_size=12)), max_size=40))
def test_any_text_gives_a_result_never_an_exception(parts):
    info = extract_from_text(" ".join(parts))
    assert isinstance(info.as_dict(), dict)
    for name in ("amount", "iban", "reference", "due_date"):
        field = info.get(name)
        assert field is None or 0.0 <= field.confidence <= 1.0
