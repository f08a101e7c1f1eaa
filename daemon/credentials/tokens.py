"""The token store: one encrypted token pair per provider connection, refreshed under a lock.

A row is a connection (``provider`` + ``subject``, e.g. Exact's host, app and user), not an
enterprise: a provider that keeps one refresh-token chain per user and app (Exact) kills the
earlier chain when the same user consents again, so every enterprise connected with that user must
share the one row — and its lock, its refresh and its ``needs_reconnect``.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.orm import Session

from daemon.db.models import OAuthToken, utcnow
from daemon.errors import EboxdError
from daemon.secrets import SecretBox

if TYPE_CHECKING:
    import httpx

__all__ = ["NEEDS_RECONNECT", "OK", "NeedsReconnect", "RefreshRefused", "RefreshTooEarly", "StoredTokens",
           "TokenPair", "TokenStore", "oauth_error_text", "rotate_token_secrets", "token_context"]

log = structlog.get_logger(__name__)

OK, NEEDS_RECONNECT = "ok", "needs_reconnect"


def token_context(row_id: int, provider: str, subject: str, version: int) -> str:
    """Associated data binding a token blob to its connection row and version: a blob copied to
    another connection (or to a row deleted and created again), or an older blob written back over
    a newer one, does not decrypt."""
    return f"oauth_tokens:{row_id}:{provider}:{subject}:{version}"


@dataclass(frozen=True)
class TokenPair:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: dt.datetime  # of the access token
    issued_at: dt.datetime  # when we received the pair


@dataclass(frozen=True)
class StoredTokens:
    provider: str
    subject: str
    pair: TokenPair
    version: int
    state: str
    details: dict[str, Any]

    @property
    def label(self) -> str:
        """How people know the connection (``details["label"]``, e.g. user and host), else its subject."""
        return str(self.details.get("label") or self.subject)


class NeedsReconnect(EboxdError):
    """The provider refused the connection's refresh token (spent, expired, revoked): a person must
    connect again — once, for any enterprise using the connection; nothing is retried until then."""

    exit_code = 2

    def __init__(self, provider: str, subject: str, reason: str | None, *, label: str | None = None) -> None:
        super().__init__(f"{provider} connection {label or subject} needs reconnecting"
                         + (f" ({reason})" if reason else ""))
        self.provider, self.subject, self.reason, self.label = provider, subject, reason, label or subject


class RefreshRefused(Exception):
    """Raised by a refresher: the provider says this refresh token will never work again."""


class RefreshTooEarly(Exception):
    """Raised by a refresher: the provider refuses to refresh yet; the stored pair stays in use."""


Refresher = Callable[[str], TokenPair]


@dataclass(frozen=True)
class _Due:
    refresh_before: dt.timedelta
    stale_version: int | None
    earliest_refresh: dt.timedelta

_locks: dict[tuple[str, str, str], threading.Lock] = {}
_locks_guard = threading.Lock()


def _process_lock(engine: Engine, provider: str, subject: str) -> threading.Lock:
    key = (engine.url.render_as_string(hide_password=True), provider, subject)
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


class TokenStore:
    """Reads, writes and refreshes connections' token pairs. Thread-safe and safe across processes
    and nodes."""

    def __init__(self, engine: Engine, secrets: SecretBox, *,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.engine = engine
        self._secrets = secrets
        self._clock = clock
        self._reader = engine.execution_options(sqlite_readonly=True)

    def __repr__(self) -> str:
        return f"<TokenStore {self.engine.url.render_as_string(hide_password=True)}>"

    # -- plain reads and writes -----------------------------------------------------------------

    def save(self, provider: str, subject: str, pair: TokenPair, *,
             details: dict[str, Any] | None = None) -> StoredTokens:
        """Store a pair from a new authorization (connect): the connection's row, created or
        replaced, back to ``ok``, version + 1. Under the refresh lock, so a peer mid-refresh either
        finishes first (and this overwrites its pair) or re-reads this one."""
        with _process_lock(self.engine, provider, subject), Session(self.engine) as session, session.begin():
            row = session.scalars(select(OAuthToken).where(OAuthToken.provider == provider,
                                                           OAuthToken.subject == subject).with_for_update()).first()
            if row is None:
                row = OAuthToken(provider=provider, subject=subject, version=0, token_encrypted=b"",
                                 access_expires_at=pair.expires_at, issued_at=pair.issued_at)
                session.add(row)
                session.flush()  # the id, which the blob is bound to
            row.version = (row.version or 0) + 1
            row.token_encrypted = self._seal(row.id, provider, subject, row.version, pair)
            row.access_expires_at, row.issued_at = pair.expires_at, pair.issued_at
            row.state, row.last_error = OK, None
            row.details = dict(details or {})
            session.flush()
            stored = StoredTokens(provider, subject, pair, row.version, OK, dict(row.details))
        log.info("credentials.saved", provider=provider, connection=stored.label, version=stored.version)
        return stored

    def load(self, provider: str, subject: str) -> StoredTokens | None:
        with self._reader.connect() as conn:
            row = self._row(conn, provider, subject, lock=False)
            return None if row is None else self._decode(row, provider, subject)

    def describe(self, provider: str, subject: str) -> StoredTokens | None:
        """Like :meth:`load` without the pair (state, version, details, expiry): no decryption."""
        with self._reader.connect() as conn:
            row = self._row(conn, provider, subject, lock=False)
        if row is None:
            return None
        return StoredTokens(provider, subject, TokenPair("", "", row.access_expires_at, row.issued_at), row.version,
                            row.state, dict(row.details or {}))

    def forget(self, provider: str, subject: str) -> bool:
        with self.engine.begin() as conn:
            row = self._row(conn, provider, subject, lock=True)
            if row is None:
                return False
            conn.execute(delete(OAuthToken).where(OAuthToken.id == row.id))
            return True

    # -- refresh --------------------------------------------------------------------------------

    def fresh(self, provider: str, subject: str, refresher: Refresher, *,
              refresh_before: dt.timedelta, stale_version: int | None = None,
              earliest_refresh: dt.timedelta = dt.timedelta()) -> StoredTokens:
        """The connection's pair, refreshed first when its access token expires within
        ``refresh_before`` (or when ``stale_version`` is still the stored version — the provider
        refused that access token — and the pair is at least ``earliest_refresh`` old: the provider
        refuses earlier refreshes). At most one refresh happens for a pair, whoever asks (any
        enterprise of the connection) and however many at once."""
        with _process_lock(self.engine, provider, subject):
            stored = self.load(provider, subject)
            if stored is None:
                raise NeedsReconnect(provider, subject, "not connected")
            if stored.state != OK:
                raise NeedsReconnect(provider, subject, stored.details.get("reason"), label=stored.label)
            due = _Due(refresh_before, stale_version, earliest_refresh)
            if not self._due(stored, due):
                return stored  # the common case: no database lock, no write
            return self._refresh_locked(provider, subject, refresher, due)

    def _due(self, stored: StoredTokens, due: _Due) -> bool:
        now = self._clock()
        if due.stale_version is not None and stored.version == due.stale_version:
            return now >= stored.pair.issued_at + due.earliest_refresh
        return now >= stored.pair.expires_at - due.refresh_before

    def _refresh_locked(self, provider: str, subject: str, refresher: Refresher, due: _Due) -> StoredTokens:
        refused: str | None = None
        with self.engine.begin() as conn:  # BEGIN IMMEDIATE on SQLite: the database's write lock
            row = self._row(conn, provider, subject, lock=True)  # FOR UPDATE on PostgreSQL; re-read
            if row is None:
                raise NeedsReconnect(provider, subject, "not connected")
            row_id, stored = row.id, self._decode(row, provider, subject)
            if stored.state != OK:
                raise NeedsReconnect(provider, subject, stored.details.get("reason"), label=stored.label)
            if not self._due(stored, due):
                log.debug("credentials.refreshed_by_peer", provider=provider, connection=stored.label)
                return stored
            try:
                pair = refresher(stored.pair.refresh_token)
            except RefreshTooEarly:
                log.info("credentials.refresh_too_early", provider=provider, connection=stored.label,
                         version=stored.version)
                return stored
            except RefreshRefused as exc:
                refused = str(exc) or "refresh token refused"
                conn.execute(update(OAuthToken).where(OAuthToken.id == row_id)
                             .values(state=NEEDS_RECONNECT, last_error=refused,
                                     details={**stored.details, "reason": refused}, updated_at=utcnow()))
            else:
                version = stored.version + 1
                conn.execute(update(OAuthToken).where(OAuthToken.id == row_id)
                             .values(token_encrypted=self._seal(row_id, provider, subject, version, pair),
                                     version=version, access_expires_at=pair.expires_at, issued_at=pair.issued_at,
                                     last_error=None, updated_at=utcnow()))
                fresh = StoredTokens(provider, subject, pair, version, OK, stored.details)
        if refused is not None:
            log.error("credentials.needs_reconnect", provider=provider, connection=stored.label, reason=refused)
            raise NeedsReconnect(provider, subject, refused, label=stored.label)
        log.info("credentials.refreshed", provider=provider, connection=stored.label, version=fresh.version)
        return fresh

    # -- rows -----------------------------------------------------------------------------------

    def _row(self, conn: Connection, provider: str, subject: str, *, lock: bool) -> Any:
        query = (select(OAuthToken.id, OAuthToken.token_encrypted, OAuthToken.access_expires_at,
                        OAuthToken.issued_at, OAuthToken.version, OAuthToken.state, OAuthToken.details)
                 .where(OAuthToken.provider == provider, OAuthToken.subject == subject))
        if lock:
            query = query.with_for_update()
        return conn.execute(query).first()

    def _decode(self, row: Any, provider: str, subject: str) -> StoredTokens:
        plain = json.loads(self._secrets.decrypt(row.token_encrypted,
                                                 context=token_context(row.id, provider, subject, row.version)))
        pair = TokenPair(plain["access_token"], plain["refresh_token"], row.access_expires_at, row.issued_at)
        return StoredTokens(provider, subject, pair, row.version, row.state, dict(row.details or {}))

    def _seal(self, row_id: int, provider: str, subject: str, version: int, pair: TokenPair) -> bytes:
        plain = json.dumps({"access_token": pair.access_token, "refresh_token": pair.refresh_token}).encode()
        return self._secrets.encrypt(plain, context=token_context(row_id, provider, subject, version))


def rotate_token_secrets(session: Session, secrets: SecretBox) -> tuple[int, int]:
    """Re-encrypt every stored token pair under the current master key (``eboxd keys rotate``);
    (re-encrypted, already current). Rows are locked, so no refresh interleaves."""
    rotated = kept = 0
    for row in session.scalars(select(OAuthToken).order_by(OAuthToken.id).with_for_update()).all():
        if secrets.is_current(row.token_encrypted):
            kept += 1
            continue
        context = token_context(row.id, row.provider, row.subject, row.version)
        row.token_encrypted = secrets.encrypt(secrets.decrypt(row.token_encrypted, context=context), context=context)
        rotated += 1
    session.flush()
    return rotated, kept


def oauth_error_text(response: httpx.Response) -> str:
    """What an OAuth2 token endpoint said was wrong (RFC 6749 §5.2 ``error: error_description``),
    or the HTTP status when the body is not JSON."""
    try:
        body = response.json()
        return f"{body.get('error', '')}: {body.get('error_description', '')}".strip(": ")
    except ValueError:
        return f"HTTP {response.status_code}"
