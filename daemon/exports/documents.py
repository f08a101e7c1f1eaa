"""Building what an exporter receives (``ExportDocument``) from the database rows."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.orm import Session

from daemon.db.models import Document, Enterprise, Message, PaymentRequest
from daemon.plugins.exporters import ExportDocument, PaymentSummary
from daemon.store import DocumentStore

__all__ = ["DocumentSelection", "export_document_of", "export_documents"]


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
        language=document.language, payment=payment, message_type=message.message_type,
        opener=lambda: store.open(key))


# The same rows as plain columns, for streaming many documents: no ORM instances or identity map
# per row. ``Message.raw`` (the e-Box listing entry) is left out: no exporter reads it.
_PARTS = (("document", Document), ("message", Message), ("enterprise", Enterprise), ("request", PaymentRequest))
_SKIPPED = {("message", "raw")}


def _columns_query() -> Select[Any]:
    columns = [column.label(f"{part}__{column.key}") for part, model in _PARTS
               for column in model.__table__.columns if (part, column.key) not in _SKIPPED]
    return (select(*columns).select_from(Document)
            .join(Message, Message.id == Document.message_id)
            .join(Enterprise, Enterprise.id == Message.enterprise_id)
            .outerjoin(PaymentRequest, PaymentRequest.message_id == Message.id)
            .where(Document.storage_key.is_not(None)))


def _build_from_columns(store: DocumentStore, row: Any) -> ExportDocument:
    parts: dict[str, dict[str, Any]] = {part: {} for part, _ in _PARTS}
    for label, value in row._mapping.items():
        part, _, name = label.partition("__")
        parts[part][name] = value
    request = SimpleNamespace(**parts["request"]) if parts["request"]["id"] is not None else None
    return _build(store, SimpleNamespace(**parts["document"]), SimpleNamespace(**parts["message"]),  # type: ignore[arg-type]
                  SimpleNamespace(**parts["enterprise"]), request)  # type: ignore[arg-type]


def export_document_of(session: Session, store: DocumentStore, document_id: int) -> ExportDocument | None:
    row = session.execute(_query().where(Document.id == document_id)).first()
    return None if row is None else _build(store, *row)


def _selected(query: Select[Any], enterprise_id: int, since: dt.date | None, until: dt.date | None,
              ids: Sequence[int]) -> Select[Any]:
    """``query`` narrowed to an enterprise's stored documents by publication day (``until`` inclusive) and ids."""
    query = query.where(Message.enterprise_id == enterprise_id, Document.storage_key.is_not(None))
    if since is not None:
        query = query.where(Message.published_at >= dt.datetime.combine(since, dt.time(), dt.UTC))
    if until is not None:
        query = query.where(Message.published_at < dt.datetime.combine(until + dt.timedelta(days=1), dt.time(),
                                                                       dt.UTC))
    if ids:
        query = query.where(Document.id.in_(list(ids)))
    return query


def export_documents(session: Session, store: DocumentStore, enterprise_id: int, *,
                     since: dt.date | None = None, until: dt.date | None = None,
                     ids: Sequence[int] = (), batch: int = 500) -> Iterator[ExportDocument]:
    """An enterprise's stored documents, by publication date of their message (``until`` inclusive)."""
    query = _selected(_query(), enterprise_id, since, until, ids).order_by(Document.id)
    for row in session.execute(query.execution_options(yield_per=batch)):
        yield _build(store, *row)


class DocumentSelection:
    """An enterprise's stored documents matching the filters, to iterate as often as needed.

    Each iteration queries again and streams (``yield_per``), so nothing is held per document; it
    sees the same documents in the same order (publication time, SHA-256, id) every time, because
    documents stored after the selection was made (a running daemon) are left out.
    """

    def __init__(self, session: Session, store: DocumentStore, enterprise_id: int, *,
                 since: dt.date | None = None, until: dt.date | None = None, ids: Sequence[int] = (),
                 batch: int = 50) -> None:
        self._session, self._store, self._batch = session, store, batch
        self._filters = (enterprise_id, since, until, tuple(ids))
        self._upto = session.scalar(select(func.max(Document.id))) or 0
        self._window: tuple[int, int] | None = None

    def window(self, start: int, stop: int) -> DocumentSelection:
        """Documents ``start`` to ``stop`` (exclusive) of this selection's order, read with OFFSET
        and LIMIT: a bundle written in parts does not read every document for every part."""
        part = copy.copy(self)
        part._window = (start, stop)
        return part

    def _narrowed(self, query: Select[Any]) -> Select[Any]:
        return _selected(query.join(Message, Message.id == Document.message_id), *self._filters).where(
            Document.id <= self._upto)

    def count(self) -> int:
        """How many documents an iteration gives (what a progress bar counts to)."""
        return self._session.scalar(self._narrowed(select(func.count()).select_from(Document))) or 0

    def __iter__(self) -> Iterator[ExportDocument]:
        query = (_selected(_columns_query(), *self._filters).where(Document.id <= self._upto)
                 .order_by(func.coalesce(Message.published_at, Message.received_at), Document.sha256, Document.id))
        if self._window is not None:
            query = query.offset(self._window[0]).limit(self._window[1] - self._window[0])
        with _lean_page_cache(self._session):
            for row in self._session.execute(query.execution_options(yield_per=self._batch)):
                yield _build_from_columns(self._store, row)


@contextmanager
def _lean_page_cache(session: Session) -> Iterator[None]:
    """SQLite keeps up to 2 MiB of pages per connection; a stream that reads each row once gains
    nothing from them, so it runs with a small cache (the connection's own is put back after)."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    before = int(session.execute(text("PRAGMA cache_size")).scalar_one())
    session.execute(text("PRAGMA cache_size = -128"))
    try:
        yield
    finally:
        session.execute(text(f"PRAGMA cache_size = {before}"))
