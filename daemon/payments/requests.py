"""Turning extracted payment information into a payment request row and its event."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from daemon.db.models import PaymentRequest
from daemon.outbox import add_event
from daemon.payments.model import FIELD_NAMES, PaymentInfo

__all__ = ["REVIEWS_KEY", "event_data", "record_payment_request"]

# Built once per dialect: building the statement cost more than running it.
_INSERT_REQUEST = {
    name: dialect.insert(PaymentRequest).on_conflict_do_nothing(index_elements=["message_id"])
    .returning(PaymentRequest.id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}

REVIEWS_KEY = "review_reasons"  # in field_sources beside the fields: why a person must look


def _sources(info: PaymentInfo) -> dict[str, Any]:
    sources: dict[str, Any] = {}
    for name in FIELD_NAMES:
        item = info.get(name)
        if item is not None:
            sources[name] = {"source": str(item.source), "confidence": round(item.confidence, 2)}
    if info.reviews:
        sources[REVIEWS_KEY] = [{"field": r.field, "code": r.code, "message": r.message} for r in info.reviews]
    return sources


def _value(info: PaymentInfo, name: str) -> Any:
    item = info.get(name)
    return None if item is None else item.value


def event_data(request: dict[str, Any], number: str, ebox_message_id: str) -> dict[str, Any]:
    """The ``be.eboxd.payment.requested`` payload of a payment request row's values."""
    amount = request.get("amount")
    due = request.get("due_date")
    return {
        "enterprise_number": number, "payment_request_id": request["id"], "message_id": ebox_message_id,
        "document_id": request.get("document_id"), "amount": f"{amount:.2f}" if amount is not None else None,
        "currency": request.get("currency") or "EUR", "iban": request.get("iban"), "bic": request.get("bic"),
        "reference": request.get("reference"), "reference_kind": request.get("reference_kind"),
        "due_date": due.isoformat() if due else None, "beneficiary_name": request.get("beneficiary_name"),
        "needs_review": request.get("status") == "review",
        "sources": {k: v for k, v in (request.get("field_sources") or {}).items() if k != REVIEWS_KEY},
    }


def record_payment_request(tx: Connection, info: PaymentInfo, *, enterprise_id: int, number: str, message_id: int,
                           ebox_message_id: str, document_id: int | None) -> int | None:
    """Insert the payment request of a message once (a redelivered fetch is a no-op) and queue
    ``be.eboxd.payment.requested``. Returns the new row's id, or None if it existed."""
    reference = _value(info, "reference")
    values: dict[str, Any] = {
        "enterprise_id": enterprise_id, "message_id": message_id, "document_id": document_id,
        "amount": _value(info, "amount"), "currency": _value(info, "currency") or "EUR",
        "iban": _value(info, "iban"), "bic": _value(info, "bic"),
        "reference": reference.value if reference is not None else None,
        "reference_kind": str(reference.kind) if reference is not None else None,
        "due_date": _value(info, "due_date"), "beneficiary_name": _value(info, "beneficiary"),
        "field_sources": _sources(info), "status": "review" if info.needs_review else "open",
    }
    row_id = tx.execute(_INSERT_REQUEST[tx.dialect.name], values).scalar()
    if row_id is None:
        return None
    add_event(tx, "be.eboxd.payment.requested", subject=number, idempotency_key=f"payment.requested:{row_id}:1",
              data=event_data({**values, "id": row_id}, number, ebox_message_id))
    return int(row_id)
