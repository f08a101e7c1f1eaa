"""Reading a payment request from a document's text, deciding between candidates.

The rules, in short: an amount counts only when a "to pay" label announces it (or, failing
that, when the letter carries a structured reference and shows exactly one amount, which is
then flagged); different values under equally strong labels, check digits that fail, and
accounts or BICs that do not fit together are flagged for review with the candidates kept as
alternatives. A letter with no amount to pay and no structured reference, or whose only amounts
are refunds, is not a payment request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import TypeVar

from daemon.banking import PaymentReference, bic_for_iban, format_iban
from daemon.payments._identifiers import (
    AccountCandidate,
    RefCandidate,
    account_candidates,
    beneficiary_candidates,
    bic_candidates,
    letterhead,
    reference_candidates,
)
from daemon.payments._labels import Kind
from daemon.payments._reader import Candidate, Document, analyse, labelled_amounts, labelled_dates
from daemon.payments.amounts import Money
from daemon.payments.model import Field, PaymentInfo, Review, Source

__all__ = ["read_text"]

T = TypeVar("T")

_EPC_MAX_AMOUNT = Decimal("999999999.99")  # the largest SEPA transfer (EPC069-12), as in payments.manage
_LABEL_CONFIDENCE = {3: 0.95, 2: 0.9, 1: 0.75, 0: 0.5}
_REFERENCE_CONFIDENCE = {3: 0.97, 2: 0.95, 1: 0.9, 0: 0.85}
_AMBIGUOUS = 0.3
_LISTED = 5  # candidates quoted in a review message


def _money_text(value: Decimal, currency: str | None = None) -> str:
    whole, cents = f"{abs(value):.2f}".split(".")
    grouped = f"{int(whole):,}".replace(",", ".")
    return f"{'-' if value < 0 else ''}{grouped},{cents}{' ' + currency if currency else ''}"


def _distinct(values: Sequence[T]) -> list[T]:
    out: list[T] = []
    for value in values:
        if value not in out:
            out.append(value)
    return out


def _heaviest(candidates: Sequence[Candidate[T]]) -> list[Candidate[T]]:
    top = max(candidate.weight for candidate in candidates)
    return [candidate for candidate in candidates if candidate.weight == top]


def _pick(candidates: Sequence[Candidate[T]], name: str, what: str, confidence: float,
          reviews: list[Review], *, fmt: Callable[[T], str] = str) -> Field[T]:
    """The value of the heaviest labels; several different ones are kept as alternatives and flagged."""
    tops = _heaviest(candidates)
    values = _distinct([candidate.value for candidate in tops])
    first = tops[0]
    if len(values) == 1:
        bonus = 0.03 if len(tops) > 1 else 0.0
        return Field(values[0], Source.PDF, min(0.99, confidence + bonus), first.evidence)
    listing = "; ".join(f"{fmt(value)} ({next(c.evidence for c in tops if c.value == value)!r})"
                        for value in values[:_LISTED])
    if len(values) > _LISTED:
        listing += f"; and {len(values) - _LISTED} more"
    reviews.append(Review(name, "ambiguous", f"{len(values)} different {what}: {listing}"))
    return Field(values[0], Source.PDF, _AMBIGUOUS, first.evidence, tuple(values[1:]))


def _verdict(doc: Document, pay: list[Candidate[Money]], refund: list[Candidate[Money]],
             structured: list[RefCandidate], accounts: list[AccountCandidate]) -> PaymentInfo | None:
    """A "no payment" result, or None when the letter asks for a payment."""
    if any(c.value.amount > 0 for c in pay):
        return None
    credits = [c for c in refund if c.value.amount != 0] + [c for c in pay if c.value.amount < 0]
    if credits:
        shown = _money_text(abs(credits[0].value.amount), credits[0].value.currency)
        return PaymentInfo(False, notes=(f"credit or refund of {shown} to the addressee: not a payment request",))
    if any(c.value.amount == 0 for c in pay):
        return PaymentInfo(False, notes=("the amount to pay is 0,00: nothing to pay",))
    if doc.has(Kind.PAID):
        return PaymentInfo(False, notes=("the letter acknowledges a payment already made",))
    some_amount = any(m.currency for found in doc.amounts.values() for m in found)
    if structured and (accounts or some_amount):
        return None
    return PaymentInfo(False, notes=("no amount to pay and no structured reference: not a payment request",))


def _amount(doc: Document, pay: list[Candidate[Money]], reviews: list[Review]) -> Field[Money] | None:
    too_large = [c.value for c in pay if c.value.amount > _EPC_MAX_AMOUNT]
    if too_large:  # a misread (digits run together), never a payable amount: say so, take none of it
        reviews.append(Review("amount", "too_large", f"{_money_text(too_large[0].amount, too_large[0].currency)} "
                              "is labelled as to pay but exceeds what a SEPA transfer carries "
                              f"({_money_text(_EPC_MAX_AMOUNT)}): not taken"))
    positive = [c for c in pay if 0 < c.value.amount <= _EPC_MAX_AMOUNT]
    if positive:
        top = _heaviest(positive)[0]
        confidence = _LABEL_CONFIDENCE[top.weight] - (0.05 if top.value.currency is None else 0.0)
        confidence -= 0.0 if top.value.certain else 0.15
        first_of: dict[Decimal, Money] = {}
        for candidate in positive:
            first_of.setdefault(candidate.value.amount, candidate.value)
        amounts = [Candidate(c.value.amount, c.weight, c.line, c.evidence) for c in positive]
        picked = _pick(amounts, "amount", "amounts are labelled as to pay", confidence, reviews, fmt=_money_text)
        return Field(first_of[picked.value], Source.PDF, picked.confidence, picked.evidence,
                     tuple(first_of[value] for value in picked.alternatives))
    shown = [m for found in doc.amounts.values() for m in found if m.currency and 0 < m.amount <= _EPC_MAX_AMOUNT]
    values = _distinct([m.amount for m in shown])
    if len(values) == 1:
        reviews.append(Review("amount", "unlabelled", f"no amount is labelled as to pay; the only amount in the "
                              f"letter, {_money_text(values[0], shown[0].currency)}, was taken"))
        return Field(shown[0], Source.PDF, _LABEL_CONFIDENCE[0], shown[0].raw)
    if values:
        listing = ", ".join(_money_text(value) for value in values)
        reviews.append(Review("amount", "ambiguous", f"no amount is labelled as to pay and the letter shows several: "
                              f"{listing}"))
    else:
        reviews.append(Review("amount", "missing", "no amount to pay found"))
    return None


def _currency(doc: Document, amount: Field[Money] | None) -> Field[str]:
    if amount is not None and amount.value.currency:
        return Field(amount.value.currency, Source.PDF, amount.confidence, amount.evidence)
    written = _distinct([m.currency for found in doc.amounts.values() for m in found if m.currency])
    if len(written) == 1:
        return Field(written[0], Source.PDF, 0.8, "the only currency the letter writes")
    return Field("EUR", Source.PDF, 0.6, "no currency written; Belgian letters are in EUR")


def _due_date(doc: Document, reviews: list[Review], notes: list[str]) -> Field[date] | None:
    candidates = labelled_dates(doc, Kind.DUE)
    if not candidates:
        notes.append("no due date found")
        return None
    confidence = 0.95 if _heaviest(candidates)[0].weight >= 3 else 0.7
    return _pick(candidates, "due_date", "due dates", confidence, reviews)


def _iban(doc: Document, reviews: list[Review], notes: list[str]) -> Field[str] | None:
    everything = account_candidates(doc)
    if any(a.own for a in everything):
        notes.append("an account the letter calls the addressee's own was ignored")
    accounts = [a for a in everything if not a.own]
    for bad in (a for a in accounts if a.found.error is not None):
        message = f"the letter prints an account that fails its checks: {bad.found.error}"
        reviews.append(Review("iban", "invalid", message))
    valid = [Candidate(a.found.iban, a.weight, a.line, a.evidence) for a in accounts if a.found.iban]
    if not valid:
        if not any(a.found.error for a in accounts):
            reviews.append(Review("iban", "missing", "no IBAN to pay to found"))
        return None
    weight = _heaviest(valid)[0].weight
    field = _pick(valid, "iban", "accounts to pay to", 0.95 if weight >= 2 else 0.8, reviews)
    if len(_distinct([c.value for c in valid])) > len(_distinct([field.value, *field.alternatives])):
        notes.append("other accounts printed without a payment label were ignored")
    return Field(str(field.value), field.source, field.confidence, field.evidence,
                 tuple(str(value) for value in field.alternatives))


def _bic(doc: Document, iban: Field[str] | None, reviews: list[Review]) -> Field[str] | None:
    found = bic_candidates(doc)
    for bad in (b for b in found if b.error is not None):
        reviews.append(Review("bic", "invalid", f"the letter prints a BIC that is not valid: {bad.error}"))
    expected = None if iban is None else bic_for_iban(iban.value)
    valid = _distinct([b.bic for b in found if b.bic])
    if not valid:
        if expected is None:
            return None
        return Field(expected, Source.DERIVED, 0.8, f"bank code of {format_iban(iban.value)}" if iban else "")
    matching = [bic for bic in valid if expected and bic[:6] == expected[:6]]
    evidence = next(b.evidence for b in found if b.bic == (matching or valid)[0])
    if len(valid) == 1 and (expected is None or matching):
        return Field(valid[0], Source.PDF, 0.95, evidence)
    if len(matching) == 1:
        return Field(matching[0], Source.PDF, 0.8, evidence, tuple(b for b in valid if b != matching[0]))
    if len(valid) == 1 and iban is not None:
        reviews.append(Review("bic", "mismatch", f"BIC {valid[0]} does not belong to the bank of "
                              f"{format_iban(iban.value)} (its bank code gives {expected})"))
        return Field(valid[0], Source.PDF, 0.5, evidence, (expected,) if expected else ())
    reviews.append(Review("bic", "ambiguous", f"{len(valid)} different BICs: {', '.join(valid)}"))
    return Field(valid[0], Source.PDF, _AMBIGUOUS, evidence, tuple(valid[1:]))


def _reference(structured: list[RefCandidate], free: list[RefCandidate],
               reviews: list[Review]) -> Field[PaymentReference] | None:
    for bad in (r for r in structured if r.error is not None):
        reviews.append(Review("reference", "check_digits", f"the letter prints a reference that fails its checks: "
                              f"{bad.error}"))
    valid = [Candidate(r.reference, r.weight, r.line, r.evidence) for r in structured if r.reference]
    if valid:
        weight = _heaviest(valid)[0].weight
        picked = _pick(valid, "reference", "payment references", _REFERENCE_CONFIDENCE[weight], reviews)
        assert picked.value is not None
        return Field(picked.value, picked.source, picked.confidence, picked.evidence,
                     tuple(alt for alt in picked.alternatives if alt is not None))
    if free and free[0].reference is not None:
        return Field(free[0].reference, Source.PDF, 0.6, free[0].evidence)
    if not structured:
        reviews.append(Review("reference", "missing", "no payment reference (structured communication, RF "
                              "reference or labelled text) found"))
    return None


def _beneficiary(doc: Document, notes: list[str]) -> Field[str] | None:
    labelled = beneficiary_candidates(doc)
    if labelled:
        tops = _heaviest(labelled)
        names = _distinct([c.value for c in tops])
        confidence = (0.9 if tops[0].weight >= 3 else 0.8) if len(names) == 1 else 0.7
        return Field(names[0], Source.PDF, confidence, tops[0].evidence, tuple(names[1:]))
    head = letterhead(doc)
    if head is not None:
        notes.append("beneficiary taken from the letterhead (no beneficiary label)")
        return Field(head.value, Source.PDF, 0.5, head.evidence)
    notes.append("no beneficiary name found")
    return None


def read_text(text: str) -> PaymentInfo:
    """The payment request in a document's text (see the module docstring for the rules)."""
    doc = analyse(text)
    if doc.empty:
        return PaymentInfo(False, reviews=(Review("document", "no_text", "the document has no readable text (a "
                                                  "scan without a text layer?): cannot tell whether it asks for a "
                                                  "payment"),))
    pay, refund = labelled_amounts(doc, Kind.PAY), labelled_amounts(doc, Kind.REFUND)
    structured, free = reference_candidates(doc)
    verdict = _verdict(doc, pay, refund, structured, [a for a in account_candidates(doc) if not a.own])
    if verdict is not None:
        return verdict
    reviews: list[Review] = []
    notes: list[str] = []
    if any(c.value.amount != 0 for c in refund):
        reviews.append(Review("amount", "conflict", "the letter labels both an amount to pay and an amount to "
                              "refund"))
    money = _amount(doc, pay, reviews)
    iban = _iban(doc, reviews, notes)
    amount = None if money is None else Field(money.value.amount, money.source, money.confidence, money.evidence,
                                              tuple(m.amount for m in money.alternatives))
    return PaymentInfo(
        True, amount=amount, currency=_currency(doc, money), iban=iban, bic=_bic(doc, iban, reviews),
        reference=_reference(structured, free, reviews), due_date=_due_date(doc, reviews, notes),
        beneficiary=_beneficiary(doc, notes), reviews=tuple(reviews), notes=tuple(notes),
    )
