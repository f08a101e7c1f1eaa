"""The token store: one encrypted token pair per enterprise and provider, refreshed under a lock."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.orm import Session

from daemon.db.models import Enterprise, OAuthToken, utcnow
from daemon.errors import EboxdError
from daemon.secrets import SecretBox

__all__ = ["NEEDS_RECONNECT", "OK", "NeedsReconnect", "RefreshRefused", "RefreshTooEarly", "StoredTokens",
           "TokenPair", "TokenStore", "rotate_token_secrets", "token_context"]

log = structlog.get_logger(__name__)

OK, NEEDS_RECONNECT = "ok", "needs_reconnect"


def token_context(enterprise_number: str, provider: str, version: int) -> str:
    """Associated data binding a token blob to its row and version: a blob copied to another
    enterprise or provider, or an older blob written back over a newer one, does not decrypt."""
    return f"oauth_tokens:{enterprise_number}:{provider}:{version}"


@dataclass(frozen=True)
class TokenPair:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: dt.datetime  # of the access token
    issued_at: dt.datetime  # when we received the pair


@dataclass(frozen=True)
class StoredTokens:
    enterprise_number: str
    provider: str
    pair: TokenPair
    version: int
    state: str
    details: dict[str, Any]


class NeedsReconnect(EboxdError):
    """The provider refused the stored refresh token (spent, expired, revoked): a person must connect
    the enterprise again; nothing is retried until then."""

    exit_code = 2

    def __init__(self, enterprise_number: str, provider: str, reason: str | None) -> None:
        super().__init__(f"{provider} needs reconnecting for enterprise {enterprise_number}"
                         + (f" ({reason})" if reason else ""))
        self.enterprise_number, self.provider, self.reason = enterprise_number, provider, reason


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


def _process_lock(engine: Engine, number: str, provider: str) -> threading.Lock:
    key = (engine.url.render_as_string(hide_password=True), number, provider)
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


class TokenStore:
    """Reads, writes and refreshes token pairs. Thread-safe and safe across processes and nodes."""

    def __init__(self, engine: Engine, secrets: SecretBox, *,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.engine = engine
        self._secrets = secrets
        self._clock = clock
        self._reader = engine.execution_options(sqlite_readonly=True)

    def __repr__(self) -> str:
        return f"<TokenStore {self.engine.url.render_as_string(hide_password=True)}>"

    # -- plain reads and writes -----------------------------------------------------------------

    def save(self, enterprise_number: str, provider: str, pair: TokenPair, *,
             details: dict[str, Any] | None = None) -> StoredTokens:
        """Store a pair from a new authorization (connect): the row back to ``ok``, version + 1."""
        with _process_lock(self.engine, enterprise_number, provider), Session(self.engine) as session, \
                session.begin():
            enterprise_id = session.scalar(select(Enterprise.id).where(Enterprise.number == enterprise_number))
            if enterprise_id is None:
                raise EboxdError(f"no enterprise {enterprise_number}")
            row = session.scalars(select(OAuthToken).where(OAuthToken.enterprise_id == enterprise_id,
                                                           OAuthToken.provider == provider).with_for_update()).first()
            if row is None:
                row = OAuthToken(enterprise_id=enterprise_id, provider=provider, version=0)
                session.add(row)
            row.version = (row.version or 0) + 1
            row.token_encrypted = self._seal(enterprise_number, provider, row.version, pair)
            row.access_expires_at, row.issued_at = pair.expires_at, pair.issued_at
            row.state, row.last_error = OK, None
            row.details = dict(details or {})
            session.flush()
            stored = StoredTokens(enterprise_number, provider, pair, row.version, OK, dict(row.details))
        log.info("credentials.saved", enterprise=enterprise_number, provider=provider, version=stored.version)
        return stored

    def load(self, enterprise_number: str, provider: str) -> StoredTokens | None:
        with self._reader.connect() as conn:
            return self._read(conn, enterprise_number, provider)

    def forget(self, enterprise_number: str, provider: str) -> bool:
        with self.engine.begin() as conn:
            row = self._row(conn, enterprise_number, provider, lock=True)
            if row is None:
                return False
            conn.execute(delete(OAuthToken).where(OAuthToken.id == row.id))
            return True

    # -- refresh --------------------------------------------------------------------------------

    def fresh(self, enterprise_number: str, provider: str, refresher: Refresher, *,
              refresh_before: dt.timedelta, stale_version: int | None = None,
              earliest_refresh: dt.timedelta = dt.timedelta()) -> StoredTokens:
        """The stored pair, refreshed first when its access token expires within ``refresh_before``
        (or when ``stale_version`` is still the stored version — the provider refused that access
        token — and the pair is at least ``earliest_refresh`` old: the provider refuses earlier
        refreshes). At most one refresh happens for a pair, whoever asks and however many at once."""
        with _process_lock(self.engine, enterprise_number, provider):
            stored = self.load(enterprise_number, provider)
            if stored is None:
                raise NeedsReconnect(enterprise_number, provider, "not connected")
            if stored.state != OK:
                raise NeedsReconnect(enterprise_number, provider, stored.details.get("reason"))
            due = _Due(refresh_before, stale_version, earliest_refresh)
            if not self._due(stored, due):
                return stored  # the common case: no database lock, no write
            return self._refresh_locked(enterprise_number, provider, refresher, due)

    def _due(self, stored: StoredTokens, due: _Due) -> bool:
        now = self._clock()
        if due.stale_version is not None and stored.version == due.stale_version:
            return now >= stored.pair.issued_at + due.earliest_refresh
        return now >= stored.pair.expires_at - due.refresh_before

    def _refresh_locked(self, number: str, provider: str, refresher: Refresher, due: _Due) -> StoredTokens:
        refused: str | None = None
        with self.engine.begin() as conn:  # BEGIN IMMEDIATE on SQLite: the database's write lock
            row = self._row(conn, number, provider, lock=True)  # FOR UPDATE on PostgreSQL; re-read
            if row is None:
                raise NeedsReconnect(number, provider, "not connected")
            row_id, stored = row.id, self._decode(row, number, provider)
            if stored.state != OK:
                raise NeedsReconnect(number, provider, stored.details.get("reason"))
            if not self._due(stored, due):
                log.debug("credentials.refreshed_by_peer", enterprise=number, provider=provider)
                return stored
            try:
                pair = refresher(stored.pair.refresh_token)
            except RefreshTooEarly:
                log.info("credentials.refresh_too_early", enterprise=number, provider=provider,
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
                             .values(token_encrypted=self._seal(number, provider, version, pair), version=version,
                                     access_expires_at=pair.expires_at, issued_at=pair.issued_at,
                                     last_error=None, updated_at=utcnow()))
                fresh = StoredTokens(number, provider, pair, version, OK, stored.details)
        if refused is not None:
            log.error("credentials.needs_reconnect", enterprise=number, provider=provider, reason=refused)
            raise NeedsReconnect(number, provider, refused)
        log.info("credentials.refreshed", enterprise=number, provider=provider, version=fresh.version)
        return fresh

    # -- rows -----------------------------------------------------------------------------------

    def _row(self, conn: Connection, number: str, provider: str, *, lock: bool) -> Any:
        query = (select(OAuthToken.id, OAuthToken.token_encrypted, OAuthToken.access_expires_at,
                        OAuthToken.issued_at, OAuthToken.version, OAuthToken.state, OAuthToken.details)
                 .join(Enterprise, Enterprise.id == OAuthToken.enterprise_id)
                 .where(Enterprise.number == number, OAuthToken.provider == provider))
        if lock:
            query = query.with_for_update(of=OAuthToken)
        return conn.execute(query).first()

    def _read(self, conn: Connection, number: str, provider: str) -> StoredTokens | None:
        row = self._row(conn, number, provider, lock=False)
        return None if row is None else self._decode(row, number, provider)

    def _decode(self, row: Any, number: str, provider: str) -> StoredTokens:
        plain = json.loads(self._secrets.decrypt(row.token_encrypted,
                                                 context=token_context(number, provider, row.version)))
        pair = TokenPair(plain["access_token"], plain["refresh_token"], row.access_expires_at, row.issued_at)
        return StoredTokens(number, provider, pair, row.version, row.state, dict(row.details or {}))

    def _seal(self, number: str, provider: str, version: int, pair: TokenPair) -> bytes:
        plain = json.dumps({"access_token": pair.access_token, "refresh_token": pair.refresh_token}).encode()
        return self._secrets.encrypt(plain, context=token_context(number, provider, version))


def rotate_token_secrets(session: Session, secrets: SecretBox) -> tuple[int, int]:
    """Re-encrypt every stored token pair under the current master key (``eboxd keys rotate``);
    (re-encrypted, already current)."""
    rotated = kept = 0
    rows = session.execute(select(OAuthToken, Enterprise.number)
                           .join(Enterprise, Enterprise.id == OAuthToken.enterprise_id).with_for_update()).all()
    for row, number in rows:
        if secrets.is_current(row.token_encrypted):
            kept += 1
            continue
        context = token_context(number, row.provider, row.version)
        row.token_encrypted = secrets.encrypt(secrets.decrypt(row.token_encrypted, context=context), context=context)
        rotated += 1
    session.flush()
    return rotated, kept
