"""Wording of the sandbox letters in French, Dutch and German, and their page layout.

Each *kind* of letter has a subject and paragraphs per language; payment letters share one
payment block worded the way Belgian administrations word it ("Montant à payer",
"Te betalen bedrag", "Zu zahlender Betrag", the structured communication, the due date).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import date

from daemon.sandbox.belgian import format_cbe, format_date, format_iban
from daemon.sandbox.pdf import Line

__all__ = ["KINDS", "LANGUAGES", "LetterContext", "PaymentText", "layout", "subject"]

LANGUAGES = ("fr", "nl", "de")

_COMMON: dict[str, dict[str, str]] = {
    "fr": {
        "cbe": "Numéro d'entreprise : {cbe}",
        "place": "Bruxelles, le {date}",
        "subject": "Objet : {subject}",
        "salutation": "Madame, Monsieur,",
        "amount": "Montant à payer : {amount}",
        "account": "Compte IBAN : {iban}   BIC : {bic}",
        "ogm": "Communication structurée : {ogm}",
        "due": "Échéance : à payer avant le {due}",
        "registered": "Envoi recommandé électronique",
        "closing": "Veuillez agréer, Madame, Monsieur, l'expression de nos salutations distinguées.",
    },
    "nl": {
        "cbe": "Ondernemingsnummer: {cbe}",
        "place": "Brussel, {date}",
        "subject": "Betreft: {subject}",
        "salutation": "Geachte mevrouw, geachte heer,",
        "amount": "Te betalen bedrag: {amount}",
        "account": "Rekening IBAN: {iban}   BIC: {bic}",
        "ogm": "Gestructureerde mededeling: {ogm}",
        "due": "Vervaldag: te betalen vóór {due}",
        "registered": "Elektronisch aangetekende zending",
        "closing": "Met de meeste hoogachting,",
    },
    "de": {
        "cbe": "Unternehmensnummer: {cbe}",
        "place": "Brüssel, den {date}",
        "subject": "Betreff: {subject}",
        "salutation": "Sehr geehrte Damen und Herren,",
        "amount": "Zu zahlender Betrag: {amount}",
        "account": "Konto IBAN: {iban}   BIC: {bic}",
        "ogm": "Strukturierte Mitteilung: {ogm}",
        "due": "Fälligkeit: zahlbar bis {due}",
        "registered": "Elektronisches Einschreiben",
        "closing": "Mit freundlichen Grüßen",
    },
}

_SENDERS: dict[str, dict[str, tuple[str, str, str, str]]] = {
    # name, department, address, signature
    "nsso": {
        "fr": ("Office national de sécurité sociale", "Direction générale Perception et Recouvrement",
               "Place Victor Horta 11, 1060 Bruxelles", "Le Directeur général Perception"),
        "nl": ("Rijksdienst voor Sociale Zekerheid", "Algemene Directie Inning en Invordering",
               "Victor Hortaplein 11, 1060 Brussel", "De Directeur-generaal Inning"),
        "de": ("Landesamt für soziale Sicherheit", "Generaldirektion Erhebung und Beitreibung",
               "Victor-Horta-Platz 11, 1060 Brüssel", "Der Generaldirektor Erhebung"),
    },
    "fedfin": {
        "fr": ("Service public fédéral Finances", "Administration générale de la Fiscalité",
               "North Galaxy, Boulevard du Roi Albert II 33, 1030 Bruxelles", "Le Conseiller général"),
        "nl": ("Federale Overheidsdienst Financiën", "Algemene Administratie van de Fiscaliteit",
               "North Galaxy, Koning Albert II-laan 33, 1030 Brussel", "De Adviseur-generaal"),
        "de": ("Föderaler Öffentlicher Dienst Finanzen", "Generalverwaltung Steuerwesen",
               "North Galaxy, König-Albert-II-Boulevard 33, 1030 Brüssel", "Der Generalberater"),
    },
}

# kind -> language -> (subject template, paragraph templates)
_KINDS: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "contributions": {
        "fr": ("Avis de paiement des cotisations sociales - {quarter_fr} trimestre {year}", (
            "Le décompte de vos cotisations de sécurité sociale pour le {quarter_fr} trimestre {year} "
            "présente un solde débiteur.",
            "Nous vous prions de bien vouloir verser le montant ci-dessous sur notre compte.")),
        "nl": ("Betalingsbericht socialezekerheidsbijdragen - {quarter_nl} kwartaal {year}", (
            "De afrekening van uw socialezekerheidsbijdragen voor het {quarter_nl} kwartaal {year} "
            "vertoont een debetsaldo.",
            "Wij verzoeken u het onderstaande bedrag over te schrijven op onze rekening.")),
        "de": ("Zahlungsaufforderung Sozialversicherungsbeiträge - {quarter_de} Quartal {year}", (
            "Die Abrechnung Ihrer Sozialversicherungsbeiträge für das {quarter_de} Quartal {year} "
            "weist einen Sollsaldo auf.",
            "Wir bitten Sie, den nachstehenden Betrag auf unser Konto zu überweisen.")),
    },
    "reminder": {
        "fr": ("Rappel - cotisations impayées du {quarter_fr} trimestre {year}", (
            "Sauf erreur de notre part, le montant ci-dessous reste impayé à ce jour.",
            "Des majorations et des intérêts de retard sont dus depuis l'échéance.")),
        "nl": ("Herinnering - onbetaalde bijdragen {quarter_nl} kwartaal {year}", (
            "Behoudens vergissing onzerzijds blijft het onderstaande bedrag tot op heden onbetaald.",
            "Bijdrageopslagen en verwijlintresten zijn verschuldigd sinds de vervaldag.")),
        "de": ("Erinnerung - unbezahlte Beiträge {quarter_de} Quartal {year}", (
            "Sofern kein Irrtum unsererseits vorliegt, ist der nachstehende Betrag bis heute unbezahlt.",
            "Seit dem Fälligkeitsdatum sind Beitragszuschläge und Verzugszinsen geschuldet.")),
    },
    "attestation": {
        "fr": ("Attestation de situation - cotisations de sécurité sociale", (
            "Nous certifions que l'entreprise précitée est en règle de paiement des cotisations "
            "de sécurité sociale au {issued}.",
            "Cette attestation est délivrée à la demande de l'entreprise.")),
        "nl": ("Attest van toestand - socialezekerheidsbijdragen", (
            "Wij bevestigen dat bovenvermelde onderneming op {issued} in orde is met de betaling "
            "van de socialezekerheidsbijdragen.",
            "Dit attest wordt op verzoek van de onderneming afgeleverd.")),
        "de": ("Bescheinigung - Sozialversicherungsbeiträge", (
            "Wir bestätigen, dass das oben genannte Unternehmen am {issued} mit der Zahlung der "
            "Sozialversicherungsbeiträge in Ordnung ist.",
            "Diese Bescheinigung wird auf Antrag des Unternehmens ausgestellt.")),
    },
    "tax_assessment": {
        "fr": ("Avertissement-extrait de rôle - impôt des sociétés - exercice d'imposition {year}", (
            "Article {article}. Le montant de l'impôt des sociétés enrôlé à votre charge s'élève à :",
            "Utilisez toujours la communication structurée lors de votre paiement.")),
        "nl": ("Aanslagbiljet - vennootschapsbelasting - aanslagjaar {year}", (
            "Artikel {article}. Het bedrag van de ten uwen laste ingekohierde vennootschapsbelasting bedraagt:",
            "Gebruik bij uw betaling altijd de gestructureerde mededeling.")),
        "de": ("Steuerbescheid - Gesellschaftssteuer - Steuerjahr {year}", (
            "Artikel {article}. Der Betrag der zu Ihren Lasten eingetragenen Gesellschaftssteuer beläuft sich auf:",
            "Verwenden Sie bei Ihrer Zahlung immer die strukturierte Mitteilung.")),
    },
    "vat_statement": {
        "fr": ("Relevé de compte courant TVA - {month:02d}/{year}", (
            "Le solde de votre compte courant TVA au {issued} est débiteur.",
            "Le détail des opérations figure dans l'annexe.")),
        "nl": ("Rekeninguittreksel btw-rekening-courant - {month:02d}/{year}", (
            "Het saldo van uw btw-rekening-courant op {issued} is debet.",
            "Het detail van de verrichtingen vindt u in de bijlage.")),
        "de": ("Kontoauszug MwSt.-Kontokorrent - {month:02d}/{year}", (
            "Der Saldo Ihres MwSt.-Kontokorrents am {issued} ist ein Sollsaldo.",
            "Die Einzelheiten der Buchungen finden Sie in der Anlage.")),
    },
    "information_request": {
        "fr": ("Demande de renseignements - impôt des sociétés {year}", (
            "Demande de renseignements (article 316 du Code des impôts sur les revenus 1992).",
            "Nous vous prions de répondre dans un délai d'un mois à compter de ce jour.")),
        "nl": ("Vraag om inlichtingen - vennootschapsbelasting {year}", (
            "Vraag om inlichtingen (artikel 316 van het Wetboek van de inkomstenbelastingen 1992).",
            "Gelieve binnen een termijn van één maand vanaf vandaag te antwoorden.")),
        "de": ("Auskunftsersuchen - Gesellschaftssteuer {year}", (
            "Auskunftsersuchen (Artikel 316 des Einkommensteuergesetzbuches 1992).",
            "Bitte antworten Sie innerhalb eines Monats ab heute.")),
    },
}
KINDS = tuple(_KINDS)


@dataclass(frozen=True)
class PaymentText:
    """What a payment block prints (already validated values)."""

    amount_text: str
    iban: str
    bic: str
    ogm: str
    due_date: date


@dataclass(frozen=True)
class LetterContext:
    """Everything a letter's wording needs."""

    kind: str
    language: str
    provider_id: str
    enterprise_name: str
    enterprise_address: str
    enterprise_number: str
    issued: date
    year: int
    quarter: int
    article: str
    payment: PaymentText | None
    registered: bool


def _ordinal(quarter: int) -> dict[str, str]:
    return {
        "quarter_fr": "1er" if quarter == 1 else f"{quarter}e",
        "quarter_nl": f"{quarter}e",
        "quarter_de": f"{quarter}.",
    }


def _values(ctx: LetterContext, language: str) -> dict[str, object]:
    return {
        "year": ctx.year,
        "month": ctx.issued.month,
        "issued": format_date(ctx.issued, language),
        "article": ctx.article,
        **_ordinal(ctx.quarter),
    }


def subject(ctx: LetterContext, language: str | None = None) -> str:
    """The subject line of the letter in ``language`` (default: the letter's)."""
    lang = language or ctx.language
    return _KINDS[ctx.kind][lang][0].format(**_values(ctx, lang))


def payment_lines(payment: PaymentText, language: str) -> list[Line]:
    """The payment block, one fact per line (amount, account, OGM, due date)."""
    words = _COMMON[language]
    return [
        Line(words["amount"].format(amount=payment.amount_text), bold=True, gap=6),
        Line(words["account"].format(iban=format_iban(payment.iban), bic=payment.bic)),
        Line(words["ogm"].format(ogm=payment.ogm)),
        Line(words["due"].format(due=format_date(payment.due_date, language)), bold=True),
    ]


def layout(ctx: LetterContext) -> list[Line]:
    """The full letter, top to bottom, ready for :func:`daemon.sandbox.pdf.render_pdf`."""
    lang = ctx.language
    words = _COMMON[lang]
    name, department, address, signature = _SENDERS[ctx.provider_id][lang]
    lines = [Line(name, bold=True, size=13), Line(department), Line(address)]
    if ctx.registered:
        lines.append(Line(words["registered"], bold=True, gap=4))
    lines += [
        Line(ctx.enterprise_name, gap=18),
        Line(ctx.enterprise_address),
        Line(words["cbe"].format(cbe=format_cbe(ctx.enterprise_number))),
        Line(words["place"].format(date=format_date(ctx.issued, lang)), gap=18),
        Line(words["subject"].format(subject=subject(ctx)), bold=True, gap=12),
        Line(words["salutation"], gap=12),
    ]
    paragraphs = _KINDS[ctx.kind][lang][1]
    for text in paragraphs:
        wrapped = textwrap.wrap(text.format(**_values(ctx, lang)), width=88)
        lines += [Line(part, gap=4 if index == 0 else 0) for index, part in enumerate(wrapped)]
    if ctx.payment is not None:
        lines += payment_lines(ctx.payment, lang)
    lines += [Line(words["closing"], gap=12), Line(signature, gap=18)]
    return lines

