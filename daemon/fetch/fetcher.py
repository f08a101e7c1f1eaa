"""Fetching one message: its attachments into the document store, its payment request.

Downloads go to the store's staging area, are checked against the e-Box digest by the client and
against their SHA-256 by the store, then become visible under their hash. The rows (documents,
payment request, events, the message's state) are written in one transaction at the end, so a
failure anywhere leaves the message pending for the next delivery, and a second delivery of a
fetched message is a no-op.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog
from sqlalchemy import Connection, Engine, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from daemon import ebox, payments
from daemon.config import Config
from daemon.db.models import Document, Enterprise, Message, utcnow
from daemon.exports import schedule_exports
from daemon.fetch.language import guess_language
from daemon.outbox import add_event
from daemon.payments.requests import record_payment_request
from daemon.poll.access import EboxAccess
from daemon.poll.writer import READ_ONLY, write_transaction
from daemon.store import DocumentStore, unavailable

__all__ = ["FetchOutcome", "fetch_message"]

log = structlog.get_logger(__name__)

# Built once per process (statement building is a good part of a small transaction's cost).
_INSERT_DOCUMENT = {
    name: insert(Document).on_conflict_do_nothing(index_elements=["message_id", "attachment_id"]).returning(Document.id)
    for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}
_MESSAGE = (select(Message.fetch_state, Message.enterprise_id, Message.ebox_message_id, Message.provider_id,
                   Enterprise.number)
            .join(Enterprise, Enterprise.id == Message.enterprise_id).where(Message.id == bindparam("m_id")))
_FETCHED = (update(Message).where(Message.id == bindparam("m_id"))
            .values(fetch_state="fetched", fetched_at=bindparam("at"), fetch_error=None))


@dataclass
class _Stored:
    attachment: ebox.Attachment
    key: str
    sha256: str
    size: int
    language: str | None = None
    pdf: bytes | None = None  # kept for PDFs: payment extraction reads the letter's
    text: str | None = None  # the PDF's text, extracted once for the language and the payment


@dataclass
class FetchOutcome:
    documents: int = 0
    bytes: int = 0
    payment_request: int | None = None
    payment_status: str | None = None  # open or review, when this fetch created the request
    skipped: list[str] = field(default_factory=list)
    already_fetched: bool = False


def fetch_message(engine: Engine, access: EboxAccess, store: DocumentStore, config: Config,
                  message_id: int) -> FetchOutcome:
    outcome = FetchOutcome()
    with engine.connect().execution_options(**READ_ONLY) as conn, conn.begin():
        message = conn.execute(_MESSAGE, {"m_id": message_id}).first()
        if message is None or message.fetch_state == "fetched":
            outcome.already_fetched = message is not None
            return outcome
        number, ebox_id, provider_id = message.number, message.ebox_message_id, message.provider_id
        client = access.client_by_id(conn, message.enterprise_id)
    with client:
        provider = next((p for p in access.providers(client) if p.provider_id == provider_id), None)
        if provider is None:
            raise ebox.EboxError(f"provider {provider_id!r} of message {ebox_id} is not in the provider registry")
        registry = client.for_provider(provider)
        # The message embeds its attachments and payment data: one request instead of two (its own
        # list of attachments is asked for only when the embedded one is cut short).
        details = registry.get_message(ebox_id)
        attachments = details.attachments if details.all_attachments_listed else registry.list_attachments(ebox_id)
        stored = _download_all(registry, store, config, ebox_id, attachments, outcome)
        payment_data = details.payment_data
        # The letter is the main content, or a PDF annex when the message body is the main content.
        pdfs = sorted((s for s in stored if s.pdf is not None), key=lambda s: not s.attachment.main_content)
        main = pdfs[0] if pdfs else None
        info = None
        if main is not None or payment_data is not None:
            info = payments.extract_payment(  # from the PDF's text, or the PDF again to flag it unreadable
                payment_data=payment_data, text=main.text if main else None,
                pdf=main.pdf if main is not None and main.text is None else None)
        for item in stored:
            item.pdf = None if item is main else item.pdf  # only the letter's bytes stay in memory
        with write_transaction(engine) as tx:
            document_ids = _record_documents(tx, message_id, number, ebox_id, stored, outcome)
            schedule_exports(tx, message.enterprise_id, document_ids.values())
            if info is not None and info.is_payment:
                outcome.payment_request = record_payment_request(
                    tx, info, enterprise_id=message.enterprise_id, number=number, message_id=message_id,
                    ebox_message_id=ebox_id, document_id=document_ids.get(main.key) if main else None)
                if outcome.payment_request is not None:
                    outcome.payment_status = "review" if info.needs_review else "open"
            tx.execute(_FETCHED, {"m_id": message_id, "at": utcnow()})
        if config.documents.hide_after_processing:
            registry.hide([ebox_id])
    return outcome


def _download_all(registry: ebox.EboxClient, store: DocumentStore, config: Config, ebox_id: str,
                  attachments: Sequence[ebox.Attachment], outcome: FetchOutcome) -> list[_Stored]:
    stored = []
    limit = config.documents.max_size_mb * 1024 * 1024
    for attachment in attachments:
        if config.documents.metadata_only and attachment.main_content:
            outcome.skipped.append(f"{attachment.file_name}: main content (metadata_only)")
            continue
        if attachment.size_kb * 1024 > limit:
            outcome.skipped.append(f"{attachment.file_name}: {attachment.size_kb:.0f} kB over the size limit")
            log.warning("fetch.attachment_too_large", message_id=ebox_id, file=attachment.file_name,
                        size_kb=attachment.size_kb, limit_mb=config.documents.max_size_mb)
            continue
        try:
            staging = store.staging() / f"{uuid.uuid4().hex}.part"
            result = registry.download_attachment(ebox_id, attachment, staging, max_bytes=limit)
            pdf = result.path.read_bytes() if attachment.media_type == "application/pdf" else None
        except OSError as exc:  # the staging area is on the store: disk full, read-only, not ours
            raise unavailable(exc, getattr(store, "root", store),
                              f"download {attachment.file_name} of message {ebox_id}") from exc
        text = _text_of(pdf, attachment) if pdf is not None else None
        key = store.put(result.path, result.sha256_hex)
        stored.append(_Stored(attachment, key, result.sha256_hex, result.size_bytes,
                              guess_language(text) if text else None, pdf, text))
        outcome.documents += 1
        outcome.bytes += result.size_bytes
    return stored


def _text_of(pdf: bytes, attachment: ebox.Attachment) -> str | None:
    try:
        return payments.pdf_text(pdf)
    except payments.UnreadableDocument as exc:
        log.warning("fetch.unreadable_pdf", file=attachment.file_name, reason=str(exc))
        return None


def _record_documents(tx: Connection, message_id: int, number: str, ebox_id: str, stored: list[_Stored],
                      outcome: FetchOutcome) -> dict[str, int]:
    ids: dict[str, int] = {}
    for item in stored:
        attachment_id = item.attachment.attachment_id or item.attachment.file_name
        row_id = tx.execute(_INSERT_DOCUMENT[tx.dialect.name], {
            "message_id": message_id, "attachment_id": attachment_id, "file_name": item.attachment.file_name,
            "media_type": item.attachment.media_type, "language": item.language, "size": item.size,
            "sha256": item.sha256, "storage_key": item.key, "stored_at": utcnow()}).scalar()
        if row_id is None:
            continue
        ids[item.key] = int(row_id)
        add_event(tx, "be.eboxd.document.stored", subject=number,
                  idempotency_key=f"document.stored:{message_id}:{attachment_id}", data={
                      "enterprise_number": number, "message_id": ebox_id, "document_id": int(row_id),
                      "attachment_id": attachment_id, "file_name": item.attachment.file_name,
                      "media_type": item.attachment.media_type, "language": item.language, "size": item.size,
                      "sha256": item.sha256})
    return ids
