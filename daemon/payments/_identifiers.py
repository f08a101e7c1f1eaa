"""Candidate accounts, BICs, references and beneficiaries in a document (see :mod:`._reader`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from daemon.banking import (
    BankingError,
    IbanCandidate,
    InvalidBIC,
    PaymentReference,
    ReferenceKind,
    parse_bic,
    parse_reference,
)
from daemon.payments._labels import Kind, find_labels, has_label
from daemon.payments._reader import Candidate, Document
from daemon.payments._text import Line

__all__ = [
    "AccountCandidate",
    "BicCandidate",
    "RefCandidate",
    "account_candidates",
    "beneficiary_candidates",
    "bic_candidates",
    "letterhead",
    "reference_candidates",
]

_BIC_TOKEN = re.compile(r"[\s:/\-]*(?:swift[\s:/\-]*)?([A-Za-z0-9]{6,12})(?![A-Za-z0-9])", re.IGNORECASE)
_NAME_STOP = re.compile(r"\b(?:IBAN|BIC|SWIFT|Compte|Rekening|Konto|Account)\b|\s{2,}", re.IGNORECASE)
_LETTERHEAD_LINES = 6
_NAME_MAX = 70


def _label_weight(doc: Document, line: Line, position: int, kinds: tuple[Kind, ...]) -> int:
    """Weight of the heaviest label of ``kinds`` before ``position`` on the line, or ending the previous line."""
    weights = [hit.weight for kind in kinds for hit in find_labels(line.folded[:position], kind)]
    previous = doc.previous(line)
    if previous is not None:
        for kind in kinds:
            weights += [hit.weight for hit in find_labels(previous.folded, kind)
                        if not previous.text[hit.end :].strip(" :.-\t")]
    return max(weights, default=0)


@dataclass(frozen=True, slots=True)
class AccountCandidate:
    """An IBAN-shaped string; ``own`` when the letter calls it the addressee's account."""

    found: IbanCandidate
    line: int
    evidence: str
    own: bool
    weight: int


def account_candidates(doc: Document) -> list[AccountCandidate]:
    """Every IBAN-shaped string, with what its line says about it."""
    out: list[AccountCandidate] = []
    for line in doc.lines:
        for found in doc.ibans.get(line.index, []):
            own = has_label(line.folded[: found.start], Kind.OWN_ACCOUNT)
            weight = _label_weight(doc, line, found.start, (Kind.IBAN, Kind.BENEFICIARY))
            out.append(AccountCandidate(found, line.index, line.text.strip(), own, weight))
    return out


@dataclass(frozen=True, slots=True)
class BicCandidate:
    """What follows a "BIC" label: a valid BIC (``bic``) or not (``error``)."""

    bic: str | None
    error: InvalidBIC | None
    line: int
    evidence: str


def bic_candidates(doc: Document) -> list[BicCandidate]:
    """The token after every "BIC"/"SWIFT" label, checked."""
    out: list[BicCandidate] = []
    for line in doc.lines:
        for hit in find_labels(line.folded, Kind.BIC):
            match = _BIC_TOKEN.match(line.text, hit.end)
            if match is None or not any(char.isupper() for char in match.group(1)):
                continue
            try:
                out.append(BicCandidate(parse_bic(match.group(1)), None, line.index, line.text.strip()))
            except InvalidBIC as exc:
                out.append(BicCandidate(None, exc, line.index, line.text.strip()))
    return out


@dataclass(frozen=True, slots=True)
class RefCandidate:
    """A payment reference found in the text, checked (``reference``) or failing (``error``)."""

    reference: PaymentReference | None
    error: BankingError | None
    raw: str
    weight: int
    line: int
    evidence: str


def _structured(doc: Document, line: Line) -> list[RefCandidate]:
    out: list[RefCandidate] = []
    evidence = line.text.strip()
    for ogm in doc.ogms.get(line.index, []):
        weight = _label_weight(doc, line, ogm.start, (Kind.REFERENCE,))
        distinctive = ogm.form == "wrapped" or (ogm.form == "grouped" and "/" in ogm.raw)
        if not distinctive and weight == 0:
            continue
        reference = None if ogm.ogm is None else PaymentReference.ogm(ogm.ogm)
        out.append(RefCandidate(reference, ogm.error, ogm.raw, weight, line.index, evidence))
    for rf in doc.rfs.get(line.index, []):
        weight = _label_weight(doc, line, rf.start, (Kind.REFERENCE,))
        reference = None if rf.reference is None else PaymentReference.rf(rf.reference)
        out.append(RefCandidate(reference, rf.error, rf.raw, weight, line.index, evidence))
    return out


def _free_text(line: Line) -> list[RefCandidate]:
    out: list[RefCandidate] = []
    for hit in find_labels(line.folded, Kind.REFERENCE):
        rest = line.text[hit.end :]
        if hit.weight != 2 or not rest.lstrip().startswith(":"):
            continue
        value = _NAME_STOP.split(rest.lstrip()[1:].strip(), maxsplit=1)[0].strip()
        if len(value) < 2 or not any(char.isalnum() for char in value):
            continue
        try:
            reference = parse_reference(value, ReferenceKind.FREE)
        except BankingError:
            continue
        out.append(RefCandidate(reference, None, value, hit.weight, line.index, line.text.strip()))
    return out


def reference_candidates(doc: Document) -> tuple[list[RefCandidate], list[RefCandidate]]:
    """(structured OGM/RF candidates, labelled free-text candidates)."""
    structured: list[RefCandidate] = []
    free: list[RefCandidate] = []
    for line in doc.lines:
        if line.text.strip():
            structured += _structured(doc, line)
            free += _free_text(line)
    return structured, free


def _clean_name(text: str) -> str:
    name = _NAME_STOP.split(text.strip().lstrip(":-").strip(), maxsplit=1)[0]
    return name.strip(" ,;:-.").strip()


def _looks_like_a_name(name: str) -> bool:
    letters = sum(char.isalpha() for char in name)
    return letters >= 2 and letters >= 0.6 * len(name.replace(" ", "")) and len(name) <= _NAME_MAX


def beneficiary_candidates(doc: Document) -> list[Candidate[str]]:
    """Names after "Bénéficiaire", "Begunstigde", "Empfänger", "au nom de"… (or on the next line)."""
    out: list[Candidate[str]] = []
    for line in doc.lines:
        for hit in find_labels(line.folded, Kind.BENEFICIARY):
            where, name = line, _clean_name(line.text[hit.end :])
            following = doc.following(line, 1)
            if not line.text[hit.end :].strip(" :.-\t") and following:
                where, name = following[0], _clean_name(following[0].text)
            if _looks_like_a_name(name):
                out.append(Candidate(name, hit.weight, where.index, where.text.strip()))
    return out


def letterhead(doc: Document) -> Candidate[str] | None:
    """The sender's name as the letter's first line prints it, when that line looks like a name."""
    for line in [other for other in doc.lines if other.text.strip()][:_LETTERHEAD_LINES]:
        text = line.text.strip()
        letters = sum(char.isalpha() for char in text)
        if doc.dates.get(line.index) or doc.amounts.get(line.index) or "page" in line.folded:
            continue
        if letters >= 3 and letters >= 0.6 * len(text.replace(" ", "")) and len(text) <= _NAME_MAX:
            return Candidate(text, 0, line.index, text)
    return None
