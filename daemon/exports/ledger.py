"""The export ledger: one row per document × exporter × target, so a redelivered export is a no-op.

``schedule_exports`` runs inside the fetch transaction and queues one ``export_document`` task per
stored document and enabled exporter. ``run_export`` is what the actor does: claim the ledger row
(``completed`` → nothing to do), call the exporter outside any transaction, then record the
outcome and its event in one transaction. A failure is re-raised for dramatiq to retry; on the
last attempt, or for a ``PermanentExportError``, the row becomes ``failed`` with the reason and a
``be.eboxd.export.failed`` event. An ``ExportDeferred`` (a target's daily quota) makes the row
``deferred`` and queues the task again, delayed in the outbox until the target accepts work.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from daemon import metrics
from daemon.db.models import Document, Enterprise, Export, ExporterConfig, Message, utcnow
from daemon.exports.configs import decrypt_settings
from daemon.exports.documents import export_document_of
from daemon.outbox import add_event, add_task
from daemon.plugins.exporters import ExportDeferred, ExportError, PermanentExportError
from daemon.plugins.manager import PluginManager
from daemon.secrets import SecretBox
from daemon.store import DocumentStore
from daemon.workers.tasks import EXPORT_DOCUMENT

__all__ = [
    "COMPLETED", "DEFAULT_LEASE_SECONDS", "DEFERRED", "FAILED", "IN_PROGRESS", "ExportOutcome", "export_task_key",
    "retry_exports", "run_export", "schedule_exports",
]

log = structlog.get_logger(__name__)

PENDING, EXPORTING, RETRYING, COMPLETED, FAILED = "pending", "exporting", "retrying", "completed", "failed"
DEFERRED = "deferred"
IN_PROGRESS = "in_progress"  # an outcome, not a ledger state: another delivery is exporting it
DEFAULT_LEASE_SECONDS = 600.0  # [worker] time_limit_seconds' default


def export_task_key(document_id: int, exporter: str, target: str) -> str:
    return f"export:{document_id}:{exporter}:{target}"


def schedule_exports(tx: Connection | Session, enterprise_id: int, document_ids: Iterable[int]) -> int:
    """Queue an export task per document × enabled exporter of the enterprise, in the caller's
    transaction; how many were queued."""
    ids = list(document_ids)
    if not ids:
        return 0
    configs = tx.execute(select(ExporterConfig.exporter, ExporterConfig.target).where(
        ExporterConfig.enterprise_id == enterprise_id, ExporterConfig.enabled.is_(True))).all()
    queued = 0
    for document_id in ids:
        for exporter, target in configs:
            queued += add_task(tx, EXPORT_DOCUMENT, {"document_id": document_id, "exporter": exporter,
                                                     "target": target},
                               idempotency_key=export_task_key(document_id, exporter, target))
    return queued


@dataclass
class ExportOutcome:
    status: str  # completed, failed, deferred or in_progress (a retryable failure raises instead)
    receipt: dict[str, Any] | None = None
    error: str | None = None
    already_done: bool = False


def _claim(session: Session, document_id: int, exporter: str, target: str) -> Export:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(Export).values(
        document_id=document_id, exporter=exporter, target=target, status=PENDING, attempts=0,
        created_at=utcnow(), updated_at=utcnow()).on_conflict_do_nothing(
        index_elements=["document_id", "exporter", "target"]))
    return session.scalars(select(Export).where(Export.document_id == document_id, Export.exporter == exporter,
                                                Export.target == target).with_for_update()).one()


def run_export(engine: Engine, store: DocumentStore, secrets: SecretBox, manager: PluginManager,
               document_id: int, exporter_name: str, target: str, *, last_attempt: bool,
               lease_seconds: float = DEFAULT_LEASE_SECONDS) -> ExportOutcome:
    """Export one document to one target once. ``lease_seconds``: how long a claimed export may still
    be running in another delivery of the task (the actor's time limit); meanwhile a second delivery
    does not export, it looks again once that time has passed."""
    with Session(engine) as session, session.begin():
        if session.get(Document, document_id) is None:
            return ExportOutcome(FAILED, error="document deleted", already_done=True)
        row = _claim(session, document_id, exporter_name, target)
        if row.status == COMPLETED:
            return ExportOutcome(COMPLETED, receipt=row.receipt, already_done=True)
        busy_until = row.updated_at + dt.timedelta(seconds=lease_seconds)
        if row.status == EXPORTING and busy_until > utcnow():
            # The broker delivers a task again when the consumer's connection dropped, while the first
            # delivery may still be exporting: two at once could both miss the exporter's marker and send
            # twice. The first finishes, or is killed, by then: look again, without spending a retry.
            add_task(session, EXPORT_DOCUMENT, {"document_id": document_id, "exporter": exporter_name,
                                                "target": target},
                     idempotency_key=f"{export_task_key(document_id, exporter_name, target)}:busy:{row.attempts}",
                     delay=busy_until - utcnow())
            log.info("export.in_progress_elsewhere", document_id=document_id, exporter=exporter_name, target=target,
                     until=busy_until.isoformat())
            return ExportOutcome(IN_PROGRESS, already_done=True)
        row.attempts += 1
        row.status = EXPORTING
        row_id, attempts = row.id, row.attempts
        number, config = _config_of(session, document_id, exporter_name, target)
        document = export_document_of(session, store, document_id)
        if document is not None:
            document = dataclasses.replace(document, previous_attempts=attempts - 1)
    try:
        if config is None or not config.enabled:
            raise PermanentExportError(f"exporter {exporter_name!r} to {target!r} is not enabled for {number}")
        exporter = manager.exporter(exporter_name)
        if exporter is None:
            raise ExportError(f"no exporter {exporter_name!r} is installed (or its plugin failed to load)")
        if document is None:
            raise PermanentExportError(f"document {document_id} has no stored content")
        receipt = exporter.export(document, decrypt_settings(secrets, number, config))
    except ExportDeferred as exc:
        error = f"{type(exc).__name__}: {exc}"
        _defer(engine, document_id, exporter_name, target, error, attempts, exc.until)
        return ExportOutcome(DEFERRED, error=error)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        final = last_attempt or isinstance(exc, PermanentExportError)
        _record_failure(engine, document_id, exporter_name, target, number, error, attempts, final=final)
        if final:
            manager.export_finished(document_id=document_id, exporter=exporter_name, target=target,
                                    status=FAILED, receipt=None, error=error)
            return ExportOutcome(FAILED, error=error)
        raise
    receipt = dict(receipt or {})
    with engine.begin() as tx:
        tx.execute(update(Export).where(Export.id == row_id).values(
            status=COMPLETED, receipt=receipt, last_error=None, updated_at=utcnow()))
        add_event(tx, "be.eboxd.export.completed", subject=number,
                  idempotency_key=f"export.completed:{document_id}:{exporter_name}:{target}", data={
                      "enterprise_number": number, "document_id": document_id, "exporter": exporter_name,
                      "target": target, "receipt": receipt})
    metrics.EXPORTS.labels(exporter=exporter_name, outcome=COMPLETED).inc()
    manager.export_finished(document_id=document_id, exporter=exporter_name, target=target, status=COMPLETED,
                            receipt=receipt, error=None)
    return ExportOutcome(COMPLETED, receipt=receipt)


def _config_of(session: Session, document_id: int, exporter: str, target: str) -> tuple[str, ExporterConfig | None]:
    enterprise = session.execute(select(Enterprise).join(Message, Message.enterprise_id == Enterprise.id)
                                 .join(Document, Document.message_id == Message.id)
                                 .where(Document.id == document_id)).scalar_one()
    config = session.scalars(select(ExporterConfig).where(
        ExporterConfig.enterprise_id == enterprise.id, ExporterConfig.exporter == exporter,
        ExporterConfig.target == target)).first()
    if config is not None:
        session.expunge(config)
    return enterprise.number, config


def _record_failure(engine: Engine, document_id: int, exporter: str, target: str, number: str, error: str,
                    attempts: int, *, final: bool) -> None:
    with engine.begin() as tx:
        tx.execute(update(Export).where(Export.document_id == document_id, Export.exporter == exporter,
                                        Export.target == target)
                   .values(status=FAILED if final else RETRYING, last_error=error, updated_at=utcnow()))
        if final:
            add_event(tx, "be.eboxd.export.failed", subject=number,
                      idempotency_key=f"export.failed:{document_id}:{exporter}:{target}:{attempts}", data={
                          "enterprise_number": number, "document_id": document_id, "exporter": exporter,
                          "target": target, "error": error[:2000], "attempts": attempts})
    metrics.EXPORTS.labels(exporter=exporter, outcome=FAILED if final else "retried").inc()
    log.warning("export.failed" if final else "export.retrying", document_id=document_id, exporter=exporter,
                target=target, attempts=attempts, error=error)


def _defer(engine: Engine, document_id: int, exporter: str, target: str, error: str, attempts: int,
           until: dt.datetime) -> None:
    delay = max(until - dt.datetime.now(dt.UTC), dt.timedelta())
    with engine.begin() as tx:
        tx.execute(update(Export).where(Export.document_id == document_id, Export.exporter == exporter,
                                        Export.target == target)
                   .values(status=DEFERRED, last_error=error, updated_at=utcnow()))
        add_task(tx, EXPORT_DOCUMENT, {"document_id": document_id, "exporter": exporter, "target": target},
                 idempotency_key=f"{export_task_key(document_id, exporter, target)}:deferred:{attempts}", delay=delay)
    metrics.EXPORTS.labels(exporter=exporter, outcome=DEFERRED).inc()
    log.warning("export.deferred", document_id=document_id, exporter=exporter, target=target, attempts=attempts,
                until=until.isoformat(), error=error)


def retry_exports(session: Session, ids: Sequence[int] = ()) -> list[Export]:
    """Queue failed exports again (those ``ids``, or every failed one); the rows go back to pending."""
    query = select(Export).where(Export.status == FAILED).order_by(Export.id)
    if ids:
        query = query.where(Export.id.in_(list(ids)))
    rows = list(session.scalars(query))
    for row in rows:
        row.status = PENDING
        add_task(session, EXPORT_DOCUMENT, {"document_id": row.document_id, "exporter": row.exporter,
                                            "target": row.target},
                 idempotency_key=f"{export_task_key(row.document_id, row.exporter, row.target)}:retry:{row.attempts}")
    session.flush()
    return rows
