"""Building what an exporter receives (``ExportDocument``) from the database rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from daemon.db.models import Document, Enterprise, Message, PaymentRequest
from daemon.plugins.exporters import ExportDocument, PaymentSummary
from daemon.store import DocumentStore

__all__ = ["export_document_of", "export_documents"]


def _query() -> Select[tuple[Document, Message, Enterprise, PaymentRequest | None]]:
    return (select(Document, Message, Enterprise, PaymentRequest)
            .join(Message, Message.id == Document.message_id)
            .join(Enterprise, Enterprise.id == Message.enterprise_id)
            .outerjoin(PaymentRequest, PaymentRequest.message_id == Message.id)
            .where(Document.storage_key.is_not(None)))


def _build(store: DocumentStore, document: Document, message: Message, enterprise: Enterprise,
           request: PaymentRequest | None) -> ExportDocument:
    key = document.storage_key
    assert key is not None
    payment = None
    if request is not None:
        payment = PaymentSummary(request.amount, request.currency, request.reference, request.due_date,
                                 request.iban, request.status)
    return ExportDocument(
        document_id=document.id, enterprise_number=enterprise.number, enterprise_name=enterprise.name,
        message_id=message.ebox_message_id, sender=message.sender, subject=message.subject,
        published_at=message.published_at, received_at=message.received_at, file_name=document.file_name,
        media_type=document.media_type, size=document.size, sha256=document.sha256 or key.partition(":")[2],
        language=document.language, payment=payment, opener=lambda: store.open(key))


def export_document_of(session: Session, store: DocumentStore, document_id: int) -> ExportDocument | None:
    row = session.execute(_query().where(Document.id == document_id)).first()
    return None if row is None else _build(store, *row)


def export_documents(session: Session, store: DocumentStore, enterprise_id: int, *,
                     since: dt.date | None = None, until: dt.date | None = None,
                     ids: Sequence[int] = (), batch: int = 500) -> Iterator[ExportDocument]:
    """An enterprise's stored documents, by publication date of their message (``until`` inclusive)."""
    query = _query().where(Enterprise.id == enterprise_id).order_by(Document.id)
    if since is not None:
        query = query.where(Message.published_at >= dt.datetime.combine(since, dt.time(), dt.UTC))
    if until is not None:
        query = query.where(Message.published_at < dt.datetime.combine(until + dt.timedelta(days=1), dt.time(),
                                                                       dt.UTC))
    if ids:
        query = query.where(Document.id.in_(list(ids)))
    for row in session.execute(query.execution_options(yield_per=batch)):
        yield _build(store, *row)
