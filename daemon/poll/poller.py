"""Polling one enterprise's e-Box: list what is new on every active provider, store it once.

The listing starts ``overlap_days`` before the newest receipt date seen (the e-Box filter has day
precision) and never later than ``refresh_days`` ago, so the read/visible state of recent messages
is refreshed on the way. New messages are inserted with their ``message.received`` event and a
``fetch_message`` task in one transaction; a message already known is never inserted twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import structlog
from sqlalchemy import Connection, Engine, Row, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from daemon import ebox
from daemon.config import Config
from daemon.db.models import Enterprise, Message, PollWatermark, utcnow
from daemon.errors import EboxdError
from daemon.outbox import add_event, add_task
from daemon.poll.access import EboxAccess
from daemon.poll.schedule import finish_poll
from daemon.poll.writer import READ_ONLY, write_transaction
from daemon.workers.tasks import FETCH_MESSAGE

__all__ = ["PollOutcome", "poll_enterprise"]

log = structlog.get_logger(__name__)

_StoredRows: TypeAlias = "dict[str, Row[int, str, bool, bool]]"  # stored rows by e-Box message ID
_INSERT_MESSAGE = {
    name: insert(Message).on_conflict_do_nothing(index_elements=["enterprise_id", "provider_id", "ebox_message_id"])
    .returning(Message.id)
    for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}
_KNOWN = select(Message.id, Message.ebox_message_id, Message.read, Message.visible).where(
    Message.enterprise_id == bindparam("e_id"), Message.provider_id == bindparam("provider"),
    Message.ebox_message_id.in_(bindparam("ids", expanding=True)))


@dataclass
class PollOutcome:
    new_messages: int = 0
    refreshed: int = 0
    listed: int = 0
    skipped_providers: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class _Listing:
    provider_id: str
    messages: Sequence[ebox.Message]
    watermark: dt.datetime | None  # as stored before this poll


def poll_enterprise(engine: Engine, access: EboxAccess, config: Config, enterprise_id: int, run: str) -> PollOutcome:
    """Poll, store, and release the lease ``run`` with the outcome (errors schedule a backoff)."""
    outcome = PollOutcome()
    try:
        number, listings = _list_everything(engine, access, config, enterprise_id, outcome)
    except EboxdError as exc:  # e-Box refusals and failures, an enterprise not connected yet
        outcome.error = f"{type(exc).__name__}: {exc}"
        log.warning("poll.failed", enterprise_id=enterprise_id, error=outcome.error)
        with write_transaction(engine) as tx:
            finish_poll(tx, enterprise_id, run, config.poll, error=outcome.error)
        return outcome
    # What is stored already is read first, outside the write transaction: SQLite has one writer
    # at a time, so a poll with nothing new holds it for one statement. Under our lease no other
    # poll of this enterprise inserts meanwhile, and inserts ignore duplicates anyway.
    with engine.connect().execution_options(**READ_ONLY) as conn:
        known = [_known(conn, enterprise_id, listing) for listing in listings]
    with write_transaction(engine) as tx:
        if number is not None:
            for listing, rows in zip(listings, known, strict=True):
                _store_listing(tx, enterprise_id, number, listing, rows, outcome)
        finish_poll(tx, enterprise_id, run, config.poll)
    if outcome.new_messages:
        log.info("poll.new_messages", enterprise=number, new=outcome.new_messages, listed=outcome.listed)
    return outcome


def _list_everything(engine: Engine, access: EboxAccess, config: Config, enterprise_id: int,
                     outcome: PollOutcome) -> tuple[str | None, list[_Listing]]:
    with Session(engine) as session:
        session.connection(execution_options=READ_ONLY)
        enterprise = session.get(Enterprise, enterprise_id)
        if enterprise is None or not enterprise.enabled:
            return None, []
        number = enterprise.number
        marks: dict[str, dt.datetime] = dict(session.execute(  # type: ignore[arg-type]
            select(PollWatermark.provider_id, PollWatermark.received_until)
            .where(PollWatermark.enterprise_id == enterprise_id)).all())
        client = access.client_by_id(session.connection(), enterprise_id)
    listings = []
    with client:
        selection = ebox.select_providers(access.providers(client))
        outcome.skipped_providers += [s.provider.provider_id for s in selection.skipped]
        for provider in selection.usable:
            query = ebox.MessageQuery(received_after=_listing_start(marks.get(provider.provider_id), config))
            try:
                messages = list(client.for_provider(provider).iter_messages(query, page_size=config.poll.page_size))
            except (ebox.ServerError, ebox.RateLimited) as exc:
                if exc.retry_after is None:
                    raise
                # A provider announcing a long unavailability is skipped this round, not the others.
                log.warning("poll.provider_unavailable", provider=provider.provider_id, retry_after=exc.retry_after)
                outcome.skipped_providers.append(provider.provider_id)
                continue
            listings.append(_Listing(provider.provider_id, messages, marks.get(provider.provider_id)))
    return number, listings


def _listing_start(watermark: dt.datetime | None, config: Config) -> dt.date | None:
    if watermark is None:
        return None  # first poll: everything the e-Box keeps
    overlap = watermark.date() - dt.timedelta(days=config.poll.overlap_days)
    refresh = utcnow().date() - dt.timedelta(days=config.poll.refresh_days)
    return min(overlap, refresh)


def _known(conn: Connection, enterprise_id: int, listing: _Listing) -> _StoredRows:
    """The stored rows of the listed messages, by e-Box message ID."""
    if not listing.messages:
        return {}
    return {row.ebox_message_id: row for row in conn.execute(_KNOWN, {
        "e_id": enterprise_id, "provider": listing.provider_id, "ids": [m.message_id for m in listing.messages]})}


def _store_listing(tx: Connection, enterprise_id: int, number: str, listing: _Listing, known: _StoredRows,
                   outcome: PollOutcome) -> None:
    outcome.listed += len(listing.messages)
    if not listing.messages:
        return
    for message in listing.messages:
        row = known.get(message.message_id)
        if row is None:
            outcome.new_messages += _insert_new(tx, enterprise_id, number, listing.provider_id, message)
        elif (row.read, row.visible) != (message.read_status, message.visible):
            tx.execute(update(Message).where(Message.id == row.id)
                       .values(read=message.read_status, visible=message.visible))
            outcome.refreshed += 1
    newest = max(m.receipt_date for m in listing.messages)
    if listing.watermark is None or newest > listing.watermark:  # a nothing-new poll writes nothing here
        _advance_watermark(tx, enterprise_id, listing.provider_id, newest)


def _message_row(enterprise_id: int, provider_id: str, message: ebox.Message) -> dict[str, object]:
    return {
        "enterprise_id": enterprise_id, "provider_id": provider_id, "ebox_message_id": message.message_id,
        "subject": message.subject.best("fr", "nl", "de", "en"), "sender": message.sender_organization_id,
        "message_type": message.message_type_id, "published_at": message.receipt_date,
        "registered_mail": message.registered_mail, "read": message.read_status, "visible": message.visible,
        "fetch_state": "pending", "received_at": utcnow(),
        "raw": {"expirationDate": message.expiration_date.isoformat(), "bodyMainContent": message.body_main_content,
                "attachments": len(message.attachments), "hasPaymentData": message.payment_data is not None},
    }


def _insert_new(tx: Connection, enterprise_id: int, number: str, provider_id: str, message: ebox.Message) -> int:
    row_id = tx.execute(_INSERT_MESSAGE[tx.dialect.name], _message_row(enterprise_id, provider_id, message)).scalar()
    if row_id is None:
        return 0  # a concurrent poll stored it first
    key = f"{number}:{provider_id}:{message.message_id}"
    add_event(tx, "be.eboxd.message.received", subject=number, idempotency_key=f"message.received:{key}", data={
        "enterprise_number": number, "provider_id": provider_id, "message_id": message.message_id,
        "subject": message.subject.best("fr", "nl", "de", "en"), "sender": message.sender_organization_id,
        "message_type": message.message_type_id, "published_at": message.receipt_date.isoformat(),
        "registered_mail": message.registered_mail,
    })
    add_task(tx, FETCH_MESSAGE, {"message_id": row_id}, idempotency_key=f"fetch:{row_id}", subject=number)
    return 1


def _advance_watermark(tx: Connection, enterprise_id: int, provider_id: str, newest: dt.datetime) -> None:
    insert = postgresql.insert if tx.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(PollWatermark).values(enterprise_id=enterprise_id, provider_id=provider_id, received_until=newest,
                                        updated_at=utcnow())
    tx.execute(stmt.on_conflict_do_update(
        index_elements=["enterprise_id", "provider_id"],
        set_={"received_until": newest, "updated_at": utcnow()},
        where=PollWatermark.received_until < newest,
    ))
