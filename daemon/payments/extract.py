"""Entry points: what must be paid, from ``paymentData``, a PDF, or text already extracted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from daemon.payments.from_ebox import read_payment_data
from daemon.payments.from_text import read_text
from daemon.payments.merge import merge
from daemon.payments.model import PaymentInfo, Review
from daemon.payments.pdf import DEFAULT_MAX_PAGES, UnreadableDocument, pdf_text

__all__ = ["extract_from_payment_data", "extract_from_pdf", "extract_from_text", "extract_payment"]


def extract_from_text(text: str) -> PaymentInfo:
    """The payment request in a document's text (every field with source ``pdf``)."""
    return read_text(text)


def extract_from_pdf(pdf: bytes, *, max_pages: int = DEFAULT_MAX_PAGES) -> PaymentInfo:
    """The payment request in a PDF; an unreadable PDF gives "no payment" flagged for review."""
    try:
        text = pdf_text(pdf, max_pages=max_pages)
    except UnreadableDocument as exc:
        return PaymentInfo(False, reviews=(Review("document", "unreadable", str(exc)),))
    return read_text(text)


def extract_from_payment_data(payment_data: Mapping[str, Any] | Any) -> PaymentInfo:
    """The payment request a message's ``paymentData`` describes (every field with source ``ebox``)."""
    return read_payment_data(payment_data)


def extract_payment(
    *, payment_data: Mapping[str, Any] | Any | None = None, pdf: bytes | None = None, text: str | None = None
) -> PaymentInfo:
    """Everything known about one document: ``paymentData`` when present, checked against the PDF.

    Give the PDF bytes or, when already extracted, its ``text`` (``text`` wins when both are
    given). ``paymentData`` wins field by field; disagreements are flagged for review.
    """
    if payment_data is None and pdf is None and text is None:
        raise ValueError("extract_payment needs payment_data, pdf or text")
    document: PaymentInfo | None = None
    if text is not None:
        document = read_text(text)
    elif pdf is not None:
        document = extract_from_pdf(pdf)
    if payment_data is None:
        assert document is not None
        return document
    ebox = read_payment_data(payment_data)
    return ebox if document is None else merge(ebox, document)
