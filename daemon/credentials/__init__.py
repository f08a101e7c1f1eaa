"""OAuth2 tokens of provider connections (Exact Online; Ponto later): stored encrypted,
refreshed by one process at a time, only when due.

A connection is the provider-side identity that owns a refresh-token chain (``provider`` +
``subject``; for Exact the host, app and user), shared by every enterprise linked to it: Exact
keeps one chain per user and app, so an accountant connecting 300 client enterprises with one
Exact user has one row here, and each enterprise's exporter configuration names it.

Providers that rotate refresh tokens (each is single-use) punish two workers refreshing with the
same one: the loser presents a spent token and the provider kills the whole chain. So
:meth:`TokenStore.fresh` refreshes under a per-process lock and a database lock on the token row
(``SELECT … FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), re-reads the row inside
the lock (a peer — for any enterprise of the connection — may have refreshed meanwhile) and calls
the provider only when the access token is about to expire. A refused refresh token puts the row
in ``needs_reconnect``: calls for every enterprise of the connection fail at once with
:class:`NeedsReconnect` until a person connects again.

:class:`CallErrorLog` keeps providers' error answers in the database, so that every worker process
counts them together against a provider's hourly error block.
"""

from __future__ import annotations

from daemon.credentials.call_errors import CallErrorLog
from daemon.credentials.tokens import (
    NEEDS_RECONNECT,
    OK,
    NeedsReconnect,
    RefreshRefused,
    RefreshTooEarly,
    StoredTokens,
    TokenPair,
    TokenStore,
    oauth_error_text,
    rotate_token_secrets,
    token_context,
)

__all__ = [
    "NEEDS_RECONNECT",
    "OK",
    "CallErrorLog",
    "NeedsReconnect",
    "RefreshRefused",
    "RefreshTooEarly",
    "StoredTokens",
    "TokenPair",
    "TokenStore",
    "oauth_error_text",
    "rotate_token_secrets",
    "token_context",
]
