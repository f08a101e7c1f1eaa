"""The words Belgian payment letters use, in French, Dutch, German (and English).

Patterns match *folded* text (lower case, accents removed, one character for one; see
:func:`daemon.payments._text.fold`). A weight orders labels of one kind: "Solde à payer" (3)
beats a bare "à payer" (2), which beats "montant dû" (1). A space in a pattern matches any run
of white space.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Kind", "LabelHit", "find_labels", "has_label"]


class Kind(StrEnum):
    """What a label announces."""

    PAY = "pay"  # the amount to pay
    REFUND = "refund"  # an amount paid back to the addressee (credit note)
    PAID = "paid"  # a payment already received
    DUE = "due"  # the due date
    REFERENCE = "reference"  # the payment reference
    BENEFICIARY = "beneficiary"
    IBAN = "iban"  # the account to pay to
    OWN_ACCOUNT = "own_account"  # the addressee's own account
    BIC = "bic"


_PATTERNS: dict[Kind, tuple[tuple[int, str], ...]] = {
    Kind.PAY: (
        (3, r"\b(?:montant|solde|total|reste|somme|net)(?: total| global| restant| final)?(?: \w+)? a "
            r"(?:payer|verser|virer|regler)\b"),
        (3, r"\b(?<!terug\s)te betalen (?:bedrag|saldo|totaal|som)\b"),
        (3, r"\b(?:bedrag|saldo|totaal|totaalbedrag|eindsaldo|som)(?: nog)? te betalen\b"),
        (3, r"\bzu zahlende[rns]? (?:betrag|gesamtbetrag|saldo|summe)\b"),
        (3, r"\b(?:zahlbetrag|zahlungsbetrag)\b"),
        (3, r"\b(?:betrag|saldo|gesamtbetrag|restbetrag|summe) zu zahlen\b(?! bis)"),
        (3, r"\b(?:amount (?:due|to (?:be )?paid|to pay|payable)|total (?:amount )?due|balance due)\b"),
        (2, r"(?<![\w'])a payer\b"),
        (2, r"\b(?:veuillez|merci de|nous vous prions de) (?:nous )?(?:verser|payer|virer|regler)"
            r"(?: (?:la somme|le montant|un montant))?(?: de)?\b"),
        (2, r"\bgelieve (?:het|een) (?:bedrag|saldo|som) van\b"),
        (2, r"\b(?:te storten|over te schrijven|te vereffenen)\b"),
        (2, r"\b(?:bitte (?:uberweisen|zahlen|begleichen) sie|(?:uberweisen|zahlen) sie bitte)"
            r"(?: (?:den|einen) (?:betrag|gesamtbetrag|saldo)(?: von| in hohe von)?)?\b"),
        (2, r"\b(?<!terug\s)te betalen\b"),
        (2, r"\bzu (?:be)?zahlen\b(?! bis| vor| innerhalb| an | auf )"),
        (1, r"\b(?:montant|solde|total) (?:du|exigible|restant du|debiteur)\b"),
        (1, r"\b(?:verschuldigd(?:e)? bedrag|openstaand(?:e)? (?:saldo|bedrag)|totaal verschuldigd|debetsaldo)\b"),
        (1, r"\b(?:geschuldete[rn]? betrag|offene[rn]? (?:betrag|saldo)|restbetrag|sollsaldo|falliger betrag)\b"),
    ),
    Kind.REFUND: (
        (2, r"\b(?:a rembourser|a restituer|remboursement|nous vous rembourserons|en votre faveur|solde crediteur"
            r"|note de credit|a votre credit)\b"),
        (2, r"\b(?:terug te (?:betalen|geven|storten)|terugbetaling|in uw voordeel|te uwen gunste|creditsaldo"
            r"|creditnota|wij storten)\b"),
        (2, r"\b(?:zu erstatten|erstattung|ruckerstattung|ruckzahlung|zu ihren gunsten|guthaben|gutschrift)\b"),
        (2, r"\b(?:refund|credit note|in your favou?r)\b"),
    ),
    Kind.PAID: (
        (2, r"\b(?:(?:avons|a) (?:bien )?recu votre paiement|deja paye|a ete paye|est paye|paiement recu)\b"),
        (2, r"\b(?:betaling (?:goed )?ontvangen|reeds betaald|werd betaald|is betaald)\b"),
        (2, r"\b(?:zahlung (?:ist )?(?:erhalten|eingegangen)|bereits (?:be)?zahlt|wurde bezahlt)\b"),
        (2, r"\b(?:payment received|already paid)\b"),
    ),
    Kind.DUE: (
        (3, r"\b(?:a payer|payable|a verser|a regler) (?:avant|pour|au plus tard)(?: le)?\b"),
        (3, r"\b(?:au plus tard(?: le| pour le)?|date (?:d'|de )?echeance|echeance|date limite(?: de paiement)?)"),
        (3, r"\b(?:te betalen|te storten|betaalbaar) (?:v(?:o|oo)r|tegen|uiterlijk(?: op)?)\b"),
        (3, r"\b(?:uiterlijk(?: op| tegen)?|vervaldag|vervaldatum|betaaltermijn|uiterste betaaldatum)\b"),
        (3, r"\b(?:zahlbar|zu zahlen|zu uberweisen) (?:bis|vor|spatestens)(?: zum| am)?\b"),
        (3, r"\b(?:falligkeit(?:sdatum)?|fallig (?:am|bis)|spatestens(?: am| bis(?: zum)?)?|zahlungsfrist)"),
        (3, r"\b(?:due date|due (?:on|by)|pay(?:able)? (?:before|by))\b"),
        (1, r"\b(?:avant le|vo(?:o)?r|bis zum|before)\b"),
    ),
    Kind.REFERENCE: (
        (3, r"\b(?:communication structuree|gestructureerde mededeling|strukturierte mitteilung"
            r"|structured communication|(?:reference|communication) (?:de paiement|a mentionner))\b"),
        (2, r"\b(?:communication|mededeling|mitteilung|verwendungszweck|zahlungsreferenz|betalingsreferentie"
            r"|betaalreferentie|payment reference|remittance)\b"),
        (1, r"\b(?:reference|referentie|referenz|te vermelden|a mentionner|anzugeben)\b"),
    ),
    Kind.BENEFICIARY: (
        (3, r"(?<!compte\s)(?<!rekening\s)\b(?:beneficiaire|begunstigde|(?:zahlungs)?empfanger|beneficiary|payee"
            r"|kontoinhaber|rekeninghouder|titulaire(?: du compte)?)\b"),
        (2, r"(?:\bau nom de|\ba l'ordre de|\bten name van|\bt\.n\.v\.|\bin favou?r of|\bzugunsten von)"),
    ),
    Kind.IBAN: (
        (3, r"\b(?:iban|compte|rekening(?:nummer)?|konto(?:nummer)?|account|numero de compte)\b"),
        (2, r"\b(?:verser|virer|storten|overschrijven|uberweisen|betalen op|payer sur|pay to)\b"),
    ),
    Kind.OWN_ACCOUNT: (
        (3, r"\b(?:votre compte|vos comptes|uw rekening|ihr(?:es|em)? konto|your account|domiciliation"
            r"|domiciliering|lastschrift)\b"),
    ),
    Kind.BIC: ((3, r"\b(?:bic|swift)\b"),),
}

_COMPILED: dict[Kind, tuple[tuple[int, re.Pattern[str]], ...]] = {
    kind: tuple((weight, re.compile(pattern.replace(" ", r"\s+"))) for weight, pattern in patterns)
    for kind, patterns in _PATTERNS.items()
}
# One alternation per kind: most lines hold no label of a kind, and one scan says so where each
# pattern would scan the line again.
_ANY: dict[Kind, re.Pattern[str]] = {
    kind: re.compile("|".join(f"(?:{pattern.pattern})" for _, pattern in compiled))
    for kind, compiled in _COMPILED.items()
}


@dataclass(frozen=True, slots=True)
class LabelHit:
    """A label found in a folded line."""

    kind: Kind
    weight: int
    start: int
    end: int


def find_labels(folded: str, kind: Kind) -> list[LabelHit]:
    """Labels of ``kind`` in ``folded`` text, in order; overlapping hits keep the heaviest."""
    if _ANY[kind].search(folded) is None:
        return []
    hits = [LabelHit(kind, weight, m.start(), m.end())
            for weight, pattern in _COMPILED[kind] for m in pattern.finditer(folded)]
    hits.sort(key=lambda hit: (-hit.weight, hit.start))
    kept: list[LabelHit] = []
    for hit in hits:
        if not any(hit.start < other.end and other.start < hit.end for other in kept):
            kept.append(hit)
    return sorted(kept, key=lambda hit: hit.start)


def has_label(folded: str, kind: Kind) -> bool:
    """True when ``folded`` contains a label of ``kind``."""
    return _ANY[kind].search(folded) is not None
