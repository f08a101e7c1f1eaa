"""The seed catalogue: enterprises and their letters, deterministic from a seed and an anchor date.

Tests (and later the payment-extraction pipeline) read the *expected* payment fields of every
letter from here: :attr:`SeedLetter.payment` is what the PDF prints, and, when
:attr:`SeedLetter.payment_data` is true, what ``/paymentData`` returns too.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from daemon.sandbox.belgian import format_amount, make_cbe, make_iban, make_ogm
from daemon.sandbox.ebox import letters
from daemon.sandbox.ebox.reference import KIND_INFO, MESSAGE_TYPES, SENDER_OF_PROVIDER
from daemon.sandbox.pdf import Line, render_pdf

__all__ = [
    "BRUSSELS",
    "Catalogue",
    "Enterprise",
    "ExpectedPayment",
    "SeedAttachment",
    "SeedLetter",
    "build_catalogue",
    "make_letter",
]

BRUSSELS = ZoneInfo("Europe/Brussels")

_NAMES = {
    "nl": [("Brouwerij De Klaproos BV", "Kerkstraat 12, 9000 Gent"),
           ("Bakkerij Peeters & Zonen BV", "Markt 3, 2000 Antwerpen")],
    "fr": [("Boulangerie Dupont SRL", "Rue de la Station 8, 5000 Namur"),
           ("Garage Lemaître & Fils SA", "Chaussée de Liège 140, 4000 Liège")],
    "de": [("Schreinerei Müller & Söhne PGmbH", "Klosterstraße 7, 4700 Eupen"),
           ("Bäckerei Weiß AG", "Hauptstraße 21, 4780 Sankt Vith")],
}

# (kind, days before the anchor) for every enterprise; quarters derive from the dates.
_SCHEDULE: tuple[tuple[str, int], ...] = (
    ("contributions", 330), ("contributions", 240), ("attestation", 200), ("tax_assessment", 170),
    ("contributions", 150), ("vat_statement", 120), ("reminder", 95), ("information_request", 80),
    ("contributions", 60), ("attestation", 35), ("vat_statement", 20), ("tax_assessment", 6),
)

_AMOUNT_RANGE = {  # cents
    "contributions": (100_000, 4_800_000),
    "reminder": (10_000, 99_999),
    "tax_assessment": (100_000, 9_000_000),
    "vat_statement": (20_000, 900_000),
}
_DUE_DAYS = {"contributions": 35, "reminder": 15, "tax_assessment": 60, "vat_statement": 20}


@dataclass(frozen=True)
class Enterprise:
    """A sandbox enterprise with an e-Box."""

    number: str
    name: str
    address: str
    language: str


@dataclass(frozen=True)
class ExpectedPayment:
    """The payment facts a letter states (and that an extractor should find)."""

    amount: Decimal
    currency: str
    iban: str
    bic: str
    ogm: str
    due_date: date
    amount_text: str

    def as_dict(self) -> dict[str, str]:
        """JSON-friendly form (decimal and date as strings)."""
        return {
            "amount": str(self.amount), "currency": self.currency, "iban": self.iban, "bic": self.bic,
            "ogm": self.ogm, "dueDate": self.due_date.isoformat(), "amountText": self.amount_text,
        }


@dataclass(frozen=True)
class SeedAttachment:
    """One document of a letter."""

    attachment_id: str
    file_name: str
    media_type: str
    main_content: bool
    content: bytes
    title: dict[str, str]


@dataclass(frozen=True)
class SeedLetter:
    """One message as published by a DP, plus what tests expect from it."""

    message_id: str
    provider_id: str
    enterprise_number: str
    language: str
    kind: str
    message_type_id: str
    sender_organization_id: str
    sender_application_id: str
    subject: dict[str, str]
    receipt: datetime
    expiration: datetime
    registered_mail: bool
    payment: ExpectedPayment | None
    payment_data: bool
    attachments: tuple[SeedAttachment, ...]
    body: dict[str, str] | None = None
    body_main_content: bool = False
    business_data: tuple[dict[str, Any], ...] = ()
    for_the_attention_of: dict[str, str] | None = None

    @property
    def main_pdf(self) -> bytes:
        """The PDF that carries the letter (main content, or the annex when the body is main)."""
        return next(a.content for a in self.attachments if a.media_type == "application/pdf")


@dataclass
class Catalogue:
    """Everything the sandbox starts with."""

    seed: int
    anchor: date
    enterprises: list[Enterprise]
    letters: list[SeedLetter] = field(default_factory=list)

    def letter(self, message_id: str) -> SeedLetter:
        """Find a letter by message id."""
        return next(letter for letter in self.letters if letter.message_id == message_id)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _nrn(rng: random.Random) -> str:
    base = rng.randrange(10**8, 10**9)
    return f"{base:09d}{97 - base % 97:02d}"


def _payment(rng: random.Random, kind: str, issued: date) -> ExpectedPayment | None:
    if kind not in _AMOUNT_RANGE:
        return None
    low, high = _AMOUNT_RANGE[kind]
    amount = Decimal(rng.randrange(low, high)) / 100
    iban, bic = make_iban(rng)
    return ExpectedPayment(amount, "EUR", iban, bic, make_ogm(rng),
                           issued + timedelta(days=_DUE_DAYS[kind]), format_amount(amount))


def _csv_annex(letter_subject: str, payment: ExpectedPayment) -> bytes:
    rows = ["date;description;amount", f"{payment.due_date.isoformat()};{letter_subject};{payment.amount}"]
    return ("\n".join(rows) + "\n").encode("utf-8")


def make_letter(
    rng: random.Random, enterprise: Enterprise, kind: str, receipt: datetime, *, language: str | None = None,
    pdf_size: int | None = None,
) -> SeedLetter:
    """Compose one letter of ``kind`` for ``enterprise`` received at ``receipt`` (aware datetime);
    its PDF padded to ``pdf_size`` bytes when given."""
    provider_id, type_id, app_id = KIND_INFO[kind]
    lang = language or enterprise.language
    issued = receipt.astimezone(BRUSSELS).date()
    previous_quarter_end = date(issued.year, 3 * ((issued.month - 1) // 3) + 1, 1) - timedelta(days=1)
    payment = _payment(rng, kind, issued)
    ctx = letters.LetterContext(
        kind=kind, language=lang, provider_id=provider_id, enterprise_name=enterprise.name,
        enterprise_address=enterprise.address, enterprise_number=enterprise.number, issued=issued,
        year=previous_quarter_end.year if kind in ("contributions", "reminder") else issued.year,
        quarter=(previous_quarter_end.month - 1) // 3 + 1, article=f"{rng.randrange(10**6, 10**7)}",
        payment=None if payment is None else letters.PaymentText(
            payment.amount_text, payment.iban, payment.bic, payment.ogm, payment.due_date),
        registered=kind in ("reminder", "information_request"),
    )
    multilingual = provider_id != "nsso"
    subject = {code: letters.subject(ctx, code) for code in (letters.LANGUAGES if multilingual else (lang,))}
    lines: list[Line] = letters.layout(ctx)
    pdf = render_pdf(lines, title=subject[lang], author=lines[0].text, pad_to=pdf_size)
    stem = f"{kind}_{issued.isoformat()}_{enterprise.number}"
    attachments = [SeedAttachment(_uuid(rng), f"{stem}.pdf", "application/pdf", kind != "information_request",
                                  pdf, {lang: f"{stem}.pdf"})]
    body: dict[str, str] | None = None
    if kind == "vat_statement" and payment is not None:
        attachments.append(SeedAttachment(_uuid(rng), f"{stem}.csv", "text/csv", False,
                                          _csv_annex(subject[lang], payment), {lang: f"{stem}.csv"}))
    if kind == "information_request":
        body = {code: letters.subject(ctx, code) for code in subject}
    validity = MESSAGE_TYPES[provider_id][type_id]["validityPeriod"]["validityPeriodNumber"]
    business: tuple[dict[str, Any], ...] = ()
    if kind in ("contributions", "reminder"):
        names = {"fr": "Trimestre", "nl": "Kwartaal", "de": "Quartal"}
        business = ({"key": "quarter", "name": {lang: names[lang]},
                     "values": [{lang: f"{ctx.year}/{ctx.quarter}"}]},)
    attention = None
    if kind == "reminder":
        attention = {"id": _nrn(rng), "type": "person", "name": "Service du personnel / Personeelsdienst"}
    return SeedLetter(
        message_id=_uuid(rng), provider_id=provider_id, enterprise_number=enterprise.number, language=lang,
        kind=kind, message_type_id=type_id, sender_organization_id=SENDER_OF_PROVIDER[provider_id],
        sender_application_id=app_id, subject=subject, receipt=receipt,
        expiration=receipt + timedelta(days=30 * validity), registered_mail=ctx.registered, payment=payment,
        payment_data=payment is not None and provider_id == "fedfin", attachments=tuple(attachments),
        body=body, body_main_content=body is not None, business_data=business, for_the_attention_of=attention,
    )


def build_catalogue(seed: int = 0, *, anchor: date | None = None, enterprises: int = 3, letters: int | None = None,
                    pdf_size: int | None = None) -> Catalogue:
    """The initial sandbox content: ``enterprises`` e-Boxes (languages nl, fr, de, nl, …) with 12 letters each.

    ``anchor`` (default: today in Brussels) is the day of the most recent letters; same seed and
    anchor give the same catalogue, byte for byte. For load tests: ``letters`` keeps only that many
    of the most recent letters per e-Box (0: empty e-Boxes; seeding 10,000 e-Boxes in full takes
    over a minute), ``pdf_size`` pads every letter's PDF to that many bytes.
    """
    day = anchor or datetime.now(BRUSSELS).date()
    rng = random.Random(seed)  # noqa: S311 - reproducible fake data, not security
    catalogue = Catalogue(seed, day, [])
    used: set[str] = set()
    for index in range(enterprises):
        lang = ("nl", "fr", "de")[index % 3]
        name, address = _NAMES[lang][(index // 3) % 2]
        number = make_cbe(rng)
        while number in used:
            number = make_cbe(rng)
        used.add(number)
        catalogue.enterprises.append(Enterprise(number, name, address, lang))
    schedule = _SCHEDULE if letters is None else _SCHEDULE[len(_SCHEDULE) - min(letters, len(_SCHEDULE)):]
    for enterprise in catalogue.enterprises:
        for kind, days_before in schedule:
            at = time(8 + rng.randrange(0, 9), rng.randrange(0, 60), rng.randrange(0, 60))
            receipt = datetime.combine(day - timedelta(days=days_before), at, BRUSSELS)
            catalogue.letters.append(make_letter(rng, enterprise, kind, receipt, pdf_size=pdf_size))
    return catalogue
