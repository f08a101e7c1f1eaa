"""Reading what must be paid: amount, currency, IBAN, BIC, OGM/RF reference, due date, beneficiary.

From a message's e-Box ``paymentData`` when present and, far more often, from the text of its
PDF. Every field carries its :class:`Source` and a confidence; anything ambiguous, invalid or
contradictory sets ``needs_review`` with the reasons, and nothing is guessed silently::

    from daemon import payments

    info = payments.extract_payment(payment_data=message_json.get("paymentData"), pdf=pdf_bytes)
    if info.is_payment and not info.needs_review:
        print(info.amount.value, info.iban.value, info.reference.value.display)

Pure functions, no I/O beyond reading the bytes given.
"""

from __future__ import annotations

from daemon.payments.amounts import AmountError, Money, find_amounts, parse_amount
from daemon.payments.dates import DateError, DateMatch, find_dates, parse_date
from daemon.payments.extract import extract_from_payment_data, extract_from_pdf, extract_from_text, extract_payment
from daemon.payments.merge import merge
from daemon.payments.model import FIELD_NAMES, Field, PaymentInfo, Review, Source
from daemon.payments.pdf import UnreadableDocument, pdf_text

__all__ = [
    "FIELD_NAMES",
    "AmountError",
    "DateError",
    "DateMatch",
    "Field",
    "Money",
    "PaymentInfo",
    "Review",
    "Source",
    "UnreadableDocument",
    "extract_from_payment_data",
    "extract_from_pdf",
    "extract_from_text",
    "extract_payment",
    "find_amounts",
    "find_dates",
    "merge",
    "parse_amount",
    "parse_date",
    "pdf_text",
]
