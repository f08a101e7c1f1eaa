"""The relational model. Every change here goes with an alembic migration in ``migrations/versions``.

Unique constraints carry the idempotency of the pipeline: a redelivered message finds its row
already there instead of creating a second one.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "BankTransaction",
    "Base",
    "Credential",
    "Document",
    "DocumentBlob",
    "Enterprise",
    "Export",
    "ExporterConfig",
    "Message",
    "OAuthToken",
    "OutboxRow",
    "PaymentMatch",
    "PaymentRequest",
    "PollState",
    "PollWatermark",
    "ProviderCallError",
    "ScheduledJob",
    "UTCDateTime",
    "utcnow",
]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: eboxd stores aware UTC datetimes only")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# Stable constraint names so migrations can refer to them on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BigInteger ids on PostgreSQL, but INTEGER on SQLite where only that aliases the rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: dict[Any, Any] = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Enterprise(Base):
    __tablename__ = "enterprises"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(10), unique=True)  # CBE number, 10 digits
    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Service-provider mode: read this e-Box with the credential of another enterprise.
    access_via_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Credential(Base):
    """What an enterprise authenticates with: its ChaMan client and the key it signs assertions with."""

    __tablename__ = "credentials"
    __table_args__ = (UniqueConstraint("enterprise_id", "kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32), default="ebox")
    environment: Mapped[str] = mapped_column(String(32))
    client_id: Mapped[str | None] = mapped_column(String(200))
    certificate_pem: Mapped[str | None] = mapped_column(Text)
    certificate_not_after: Mapped[dt.datetime | None]
    private_key_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)  # never plaintext
    key_fingerprint: Mapped[str | None] = mapped_column(String(64))  # SHA-256 of the public key
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    rotated_at: Mapped[dt.datetime | None]
    connected_at: Mapped[dt.datetime | None]  # last successful token + GET /ebox


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("enterprise_id", "provider_id", "ebox_message_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id", ondelete="CASCADE"), index=True)
    provider_id: Mapped[str] = mapped_column(String(100))
    ebox_message_id: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(Text)
    sender: Mapped[str | None] = mapped_column(String(200))
    message_type: Mapped[str | None] = mapped_column(String(100))
    published_at: Mapped[dt.datetime | None]
    registered_mail: Mapped[bool] = mapped_column(Boolean, default=False)
    read: Mapped[bool] = mapped_column(Boolean, default=False)
    visible: Mapped[bool] = mapped_column(Boolean, default=True)
    fetch_state: Mapped[str] = mapped_column(String(20), default="pending")  # pending, fetched, failed
    fetched_at: Mapped[dt.datetime | None]
    fetch_error: Mapped[str | None] = mapped_column(Text)
    fetch_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # failed ones
    fetch_failed_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    raw: Mapped[dict[str, Any] | None]
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("message_id", "attachment_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    attachment_id: Mapped[str] = mapped_column(String(200))
    file_name: Mapped[str | None] = mapped_column(String(500))
    media_type: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(8))
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    storage_key: Mapped[str | None] = mapped_column(String(500))
    stored_at: Mapped[dt.datetime | None]


class PaymentRequest(Base):
    __tablename__ = "payment_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id", ondelete="SET NULL"))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    iban: Mapped[str | None] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    reference: Mapped[str | None] = mapped_column(String(35))
    reference_kind: Mapped[str | None] = mapped_column(String(10))  # ogm, rf, free
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    beneficiary_name: Mapped[str | None] = mapped_column(String(140))
    field_sources: Mapped[dict[str, Any] | None]  # field → {"source": ebox|pdf|manual, "confidence": …}
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    # Bumped by each manual edit; ``payment.requested:<id>:<version>`` keys its event.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BankTransaction(Base):
    __tablename__ = "bank_transactions"
    # The same movement from another source (CODA vs Ponto) is looked up by these (bank_import.same_movement).
    __table_args__ = (Index("ix_bank_transactions_movement", "account_iban", "booking_date", "amount"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(10))  # coda, ponto
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    account_iban: Mapped[str | None] = mapped_column(String(34))
    booking_date: Mapped[dt.date | None] = mapped_column(Date)
    value_date: Mapped[dt.date | None] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    counterparty_name: Mapped[str | None] = mapped_column(String(140))
    counterparty_iban: Mapped[str | None] = mapped_column(String(34))
    counterparty_bic: Mapped[str | None] = mapped_column(String(11))
    communication: Mapped[str | None] = mapped_column(Text)
    structured_reference: Mapped[str | None] = mapped_column(String(35), index=True)
    matched_payment_request_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment_requests.id", ondelete="SET NULL")
    )
    raw: Mapped[dict[str, Any] | None]
    # None: not examined yet; "matched", "suggested" (a person must confirm) or "unmatched".
    match_state: Mapped[str | None] = mapped_column(String(20), index=True)
    match_note: Mapped[str | None] = mapped_column(Text)
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PaymentMatch(Base):
    """A bank movement paying (part of) a payment request, or suggested to: one row per pair, so one
    movement can pay several requests and several movements one request."""

    __tablename__ = "payment_matches"
    __table_args__ = (UniqueConstraint("payment_request_id", "bank_transaction_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    payment_request_id: Mapped[int] = mapped_column(ForeignKey("payment_requests.id", ondelete="CASCADE"),
                                                    index=True)
    bank_transaction_id: Mapped[int] = mapped_column(ForeignKey("bank_transactions.id", ondelete="CASCADE"),
                                                     index=True)
    # "applied": counts as paid; "suggested": a person must confirm; "dismissed": a person said no.
    state: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))  # the part of the movement for this request
    confidence: Mapped[float] = mapped_column(Float)
    matched_by: Mapped[str] = mapped_column(String(20))  # reference, amount_and_iban, manual
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Export(Base):
    """The export ledger: one row per document × exporter × target makes redelivery a no-op."""

    __tablename__ = "exports"
    __table_args__ = (UniqueConstraint("document_id", "exporter", "target"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    exporter: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    receipt: Mapped[dict[str, Any] | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OutboxRow(Base):
    """An event or task written in the same transaction as the change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "sent_at", "available_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)  # CloudEvents id / dramatiq message id
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # "event" (integrators) or "task" (our actors)
    topic: Mapped[str] = mapped_column(String(200))  # event type or actor name
    queue_name: Mapped[str | None] = mapped_column(String(100))
    subject: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    available_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class PollState(Base):
    """When an enterprise is polled next, and who polls it now (a lease, so never twice at once)."""

    __tablename__ = "poll_state"
    __table_args__ = (Index("ix_poll_state_due", "next_poll_at"),)

    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id", ondelete="CASCADE"), primary_key=True)
    next_poll_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lease_token: Mapped[str | None] = mapped_column(String(36))
    leased_until: Mapped[dt.datetime | None]
    last_attempt_at: Mapped[dt.datetime | None]
    last_success_at: Mapped[dt.datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class PollWatermark(Base):
    """The most recent receipt date seen per enterprise and provider: the next listing starts there."""

    __tablename__ = "poll_watermarks"

    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id", ondelete="CASCADE"), primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    received_until: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DocumentBlob(Base):
    """Document contents for the database-backed store (several nodes without a shared disk)."""

    __tablename__ = "document_blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ScheduledJob(Base):
    """Periodic jobs of ``eboxd serve``; the schedule lives here, not in broker delays."""

    __tablename__ = "scheduled_jobs"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    next_run_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_run_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class ExporterConfig(Base):
    """An exporter enabled for one enterprise: which plugin, where to (``target``) and its settings.

    Secret settings are stored encrypted (``daemon.secrets``), bound to this enterprise, exporter
    and target; ``daemon.exports.configs`` reads and writes them.
    """

    __tablename__ = "exporter_configs"
    __table_args__ = (UniqueConstraint("enterprise_id", "exporter", "target"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id", ondelete="CASCADE"), index=True)
    exporter: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(300))
    settings: Mapped[dict[str, Any]]
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OAuthToken(Base):
    """A connection's OAuth2 token pair at a provider (Exact Online, later Ponto), encrypted.

    A row is a *connection*, not an enterprise: ``subject`` names the provider-side identity that
    owns the token chain (Exact: host, app and user — Exact keeps one chain per user and app, so
    every enterprise an accountant connects with the same Exact user shares this row). Which
    enterprises use it is the exporter's configuration (its ``connection`` setting).

    ``token_encrypted`` holds the access and refresh tokens as one AES-GCM blob bound to this
    row's id, provider, subject and ``version`` (``daemon.credentials``): a blob copied to another
    row, or an older blob written back, does not decrypt. ``version`` goes up with every stored
    pair; ``state`` is ``ok`` or ``needs_reconnect`` (the provider refused the refresh token).
    """

    __tablename__ = "oauth_tokens"
    # The id is in the blob's associated data: SQLite must not hand a deleted row's id to a new one.
    __table_args__ = (UniqueConstraint("provider", "subject"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider: Mapped[str] = mapped_column(String(50))
    subject: Mapped[str] = mapped_column(String(300))  # e.g. exact: host/client id/user id
    token_encrypted: Mapped[bytes] = mapped_column(LargeBinary)  # never plaintext
    access_expires_at: Mapped[dt.datetime]
    issued_at: Mapped[dt.datetime]  # local receipt time of the pair
    version: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(20), default="ok")
    details: Mapped[dict[str, Any] | None]  # non-secret: host, app, user name
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ProviderCallError(Base):
    """An error answer of a provider's API (Exact Online), kept an hour or two: every worker process
    counts them per key before calling, so together they stay under the provider's hourly block."""

    __tablename__ = "provider_call_errors"
    __table_args__ = (Index("ix_provider_call_errors_key", "provider", "key", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider: Mapped[str] = mapped_column(String(50))
    key: Mapped[str] = mapped_column(String(300))  # e.g. host|client id|division (Exact's limits)
    endpoint: Mapped[str] = mapped_column(String(200))
    status: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[dt.datetime]


class PontoAccount(Base):
    """A bank account of an enterprise linked through Ponto Connect (``eboxd bank ponto connect``).
    Its token pair is the ``oauth_tokens`` row (``ponto``, enterprise number); ``sync_ponto`` reads
    its transactions from ``newest_execution_date`` minus ``[ponto] overlap_days`` on."""

    __tablename__ = "ponto_accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[str] = mapped_column(String(64), unique=True)  # Ponto's UUID
    iban: Mapped[str | None] = mapped_column(String(34))
    description: Mapped[str | None] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    newest_execution_date: Mapped[dt.date | None] = mapped_column(Date)  # the sync cursor
    last_synced_at: Mapped[dt.datetime | None]
    last_sync_status: Mapped[str | None] = mapped_column(String(20))  # success, error, timeout, failed
    last_error: Mapped[str | None] = mapped_column(Text)
    next_sync_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PontoWebhookSeen(Base):
    """The ``jti`` of every accepted Ponto webhook (kept a day): a replay, to any node, is refused."""

    __tablename__ = "ponto_webhooks_seen"

    jti: Mapped[str] = mapped_column(String(100), primary_key=True)
    seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
