"""Ponto Connect (Ibanity): bank transactions by API, over mTLS, with a thin httpx client.

::

    settings = PontoSettings.from_config(config)
    pkce = Pkce.new(); print(authorization_url(settings, pkce))
    complete_connect(engine, store, settings, "0403170701", code, pkce)   # tokens + accounts
    with PontoClient(settings, store, "0403170701") as client:
        sync_account(engine, client, account_pk, overlap_days=7)

Tokens live in :class:`daemon.credentials.TokenStore` (provider ``ponto``, subject = enterprise
number): encrypted, refreshed by one worker at a time, each rotating refresh token used once.
"""

from __future__ import annotations

from daemon.banking.ponto._client import REFRESH_BEFORE, PontoClient
from daemon.banking.ponto._connect import complete_connect, link_accounts, parse_pasted, wait_for_callback
from daemon.banking.ponto._errors import PontoApiError, PontoError, PontoUnavailable, WebhookRefused
from daemon.banking.ponto._oauth import Pkce, authorization_url, exchange_code, refresh_pair
from daemon.banking.ponto._schedule import queue_due_syncs, queue_webhook_sync
from daemon.banking.ponto._settings import PROVIDER, PontoSettings
from daemon.banking.ponto._sync import SyncResult, store_transactions, sync_account, transaction_row
from daemon.banking.ponto._webhooks import WebhookEvent, WebhookVerifier, webhook_route

__all__ = [
    "PROVIDER",
    "REFRESH_BEFORE",
    "Pkce",
    "PontoApiError",
    "PontoClient",
    "PontoError",
    "PontoSettings",
    "PontoUnavailable",
    "SyncResult",
    "WebhookEvent",
    "WebhookRefused",
    "WebhookVerifier",
    "authorization_url",
    "complete_connect",
    "exchange_code",
    "link_accounts",
    "parse_pasted",
    "queue_due_syncs",
    "queue_webhook_sync",
    "refresh_pair",
    "store_transactions",
    "sync_account",
    "transaction_row",
    "wait_for_callback",
    "webhook_route",
]
