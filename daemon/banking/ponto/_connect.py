"""Connecting an enterprise to Ponto: the consent (authorization code + PKCE), the token pair
saved encrypted in the token store (connection ``ponto`` / enterprise number), and its accounts
recorded as ``ponto_accounts`` rows, due for a first sync at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from daemon.banking.ponto._client import PontoClient
from daemon.banking.ponto._errors import PontoError
from daemon.banking.ponto._oauth import Pkce, exchange_code
from daemon.banking.ponto._settings import PROVIDER, PontoSettings
from daemon.credentials import TokenStore
from daemon.db.models import Enterprise, PontoAccount, utcnow

__all__ = ["complete_connect", "link_accounts", "parse_pasted", "wait_for_callback"]


def parse_pasted(text: str, pkce: Pkce) -> str:
    """The code from what a person pasted: the redirected URL (state checked) or the bare code."""
    text = text.strip()
    if "code=" not in text:
        return text
    query = parse_qs(urlsplit(text).query or text)
    if query.get("state", [""])[-1] != pkce.state:
        raise PontoError("the pasted URL belongs to another connect attempt (state differs)")
    return query["code"][-1]


def wait_for_callback(redirect_uri: str, pkce: Pkce, *, timeout: float = 300.0,
                      ready: Callable[[], None] | None = None) -> str:
    """Listen on the loopback ``redirect_uri`` until the browser brings the code back."""
    parts = urlsplit(redirect_uri)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise PontoError(f"redirect_uri {redirect_uri} is not on loopback: paste the code instead")
    result: dict[str, str] = {}
    done = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if url.path != (parts.path or "/") or query.get("state", [""])[-1] != pkce.state:
                self.send_response(400)
                self.end_headers()
                return
            if "code" in query:
                result["code"] = query["code"][-1]
            else:
                result["error"] = query.get("error", ["no code"])[-1]
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(b"eboxd: Ponto connected, you can close this window.\n")
            done.set()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = HTTPServer((parts.hostname or "127.0.0.1", parts.port or 80), Handler)
    server.timeout = 0.2
    try:
        if ready is not None:
            ready()
        end = threading.Event()
        timer = threading.Timer(timeout, end.set)
        timer.start()
        try:
            while not done.is_set() and not end.is_set():
                server.handle_request()
        finally:
            timer.cancel()
    finally:
        server.server_close()
    if "code" not in result:
        raise PontoError(f"no authorization code received ({result.get('error', 'timed out')})")
    return result["code"]


def link_accounts(engine: Engine, client: PontoClient, enterprise_id: int) -> list[dict[str, Any]]:
    """Record the connection's accounts for the enterprise (again: idempotent); due for a sync now."""
    accounts = client.accounts()
    with engine.begin() as conn:
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        for item in accounts:
            attributes = item.get("attributes") or {}
            values = {"iban": (attributes.get("reference") or "").replace(" ", "").upper() or None,
                      "description": (attributes.get("description") or None)}
            conn.execute(insert(PontoAccount).values(enterprise_id=enterprise_id, account_id=str(item["id"]),
                                                     enabled=True, next_sync_at=utcnow(), created_at=utcnow(),
                                                     **values)
                         .on_conflict_do_nothing(index_elements=["account_id"]))
            conn.execute(update(PontoAccount).where(PontoAccount.account_id == str(item["id"]))
                         .values(enabled=True, **values))
    return accounts


def complete_connect(engine: Engine, store: TokenStore, settings: PontoSettings, enterprise_number: str,
                     code: str, pkce: Pkce, **client_options: Any) -> list[dict[str, Any]]:
    """Exchange the code, save the pair for the enterprise, link its accounts."""
    with engine.connect() as conn:
        enterprise_id = conn.scalar(select(Enterprise.id).where(Enterprise.number == enterprise_number))
    if enterprise_id is None:
        raise PontoError(f"no enterprise {enterprise_number}: `eboxd enterprise list` shows them")
    pair = exchange_code(settings, code, pkce)
    store.save(PROVIDER, enterprise_number, pair, details={"label": f"Ponto {enterprise_number}"})
    with PontoClient(settings, store, enterprise_number, **client_options) as client:
        return link_accounts(engine, client, int(enterprise_id))
