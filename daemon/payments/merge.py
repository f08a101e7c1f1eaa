"""Combining what ``paymentData`` says with what the PDF says.

``paymentData`` wins field by field; the PDF fills the fields it lacks. When both give a value
and they differ, the e-Box value is kept, the PDF value becomes an alternative, and the
difference is flagged for review, unless the PDF value was only a guess (derived, or confidence
0.5 or less: the letterhead as beneficiary, an unlabelled amount). When they agree, confidence
rises.
"""

from __future__ import annotations

from typing import Any

from daemon.payments.model import FIELD_NAMES, Field, PaymentInfo, Review, Source

__all__ = ["merge"]

_AGREEMENT_BONUS = 0.04
_DISAGREEMENT_CONFIDENCE = 0.6
_GUESS = 0.5  # PDF values this unsure (letterhead name, unlabelled amount) are guesses, not statements


def _show(value: Any) -> str:
    return getattr(value, "display", None) or str(value)


def _merge_field(name: str, ebox: Field[Any] | None, pdf: Field[Any] | None,
                 pdf_reviews: list[Review], reviews: list[Review]) -> Field[Any] | None:
    """One field; appends to ``reviews`` whatever still needs a person."""
    if ebox is None:
        reviews += pdf_reviews
        return pdf
    if pdf is None:
        reviews += [Review(r.field, r.code, f"PDF: {r.message}") for r in pdf_reviews if r.code != "missing"]
        return ebox
    if pdf.value == ebox.value or ebox.value in pdf.alternatives:
        reviews += [r for r in pdf_reviews if r.code not in ("ambiguous", "unlabelled")]
        confidence = min(0.99, max(ebox.confidence, pdf.confidence) + _AGREEMENT_BONUS)
        if pdf.value != ebox.value:
            confidence = ebox.confidence
        return Field(ebox.value, ebox.source, confidence, ebox.evidence)
    reviews += [r for r in pdf_reviews if r.code not in ("ambiguous", "unlabelled")]
    if pdf.source is Source.DERIVED or pdf.confidence <= _GUESS:
        return Field(ebox.value, ebox.source, ebox.confidence, ebox.evidence, (pdf.value,))
    reviews.append(Review(name, "disagreement", f"{name}: the e-Box paymentData says {_show(ebox.value)}, the PDF "
                          f"says {_show(pdf.value)} ({pdf.evidence!r})"))
    alternatives = (pdf.value, *(value for value in pdf.alternatives if value != ebox.value))
    return Field(ebox.value, ebox.source, min(ebox.confidence, _DISAGREEMENT_CONFIDENCE), ebox.evidence,
                 alternatives)


def _document_reviews(ebox: PaymentInfo, pdf: PaymentInfo) -> tuple[list[Review], list[str]]:
    reviews = [r for r in ebox.reviews if r.field == "document"]
    notes = list(ebox.notes)
    if not pdf.is_payment:
        if any("credit or refund" in note for note in pdf.notes):
            reviews.append(Review("document", "disagreement", "the e-Box paymentData asks for a payment but the PDF "
                                  "reads as a credit or refund"))
        else:
            notes.append("the PDF text did not read as a payment request; paymentData was used")
    return reviews, notes


def merge(ebox: PaymentInfo, pdf: PaymentInfo) -> PaymentInfo:
    """``ebox`` (from paymentData) completed and cross-checked by ``pdf`` (from the document text)."""
    if not ebox.is_payment and not ebox.reviews:
        if pdf.is_payment:
            return pdf.with_fields(reviews=(*pdf.reviews, Review("document", "disagreement", "the PDF asks for a "
                                   "payment but the e-Box paymentData does not")), notes=(*ebox.notes, *pdf.notes))
        return pdf.with_fields(notes=(*ebox.notes, *pdf.notes))
    reviews, notes = _document_reviews(ebox, pdf)
    fields: dict[str, Field[Any] | None] = {}
    for name in FIELD_NAMES:
        own = [r for r in ebox.reviews if r.field == name]
        theirs = [r for r in pdf.reviews if r.field == name] if pdf.is_payment else []
        reviews += own
        fields[name] = _merge_field(name, ebox.get(name), pdf.get(name) if pdf.is_payment else None, theirs, reviews)
    notes += [note for note in pdf.notes if note not in notes]
    return PaymentInfo(True, **fields, reviews=tuple(reviews), notes=tuple(notes))
