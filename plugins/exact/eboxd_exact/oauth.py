"""Exact Online's OAuth2 authorization-code flow and refresh grant (accounting spec §1.2–1.4).

Tokens last 600 s; a refresh is accepted from 570 s after the previous issue, so the pair is
refreshed when less than ``REFRESH_BEFORE`` (25 s) is left: at 575 s, never earlier. Each
refresh returns a new refresh token and spends the old one; ``daemon.credentials`` makes sure
only one worker refreshes a pair. Secrets (client secret, tokens) never appear in logs or errors.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import httpx
import structlog

from daemon.credentials import RefreshRefused, RefreshTooEarly, TokenPair, oauth_error_text
from daemon.tls import client_context, describe_http_error
from eboxd_exact.errors import ExactApiError, ExactUnavailable

__all__ = ["AUTHORIZE_PATH", "EARLIEST_REFRESH", "PROVIDER", "REFRESH_BEFORE", "TOKEN_PATH", "OAuthApp",
           "authorize_url", "connection_subject", "exchange_code", "host_of", "refresh_pair"]

log = structlog.get_logger(__name__)

PROVIDER = "exact"
AUTHORIZE_PATH = "/api/oauth2/auth"
TOKEN_PATH = "/api/oauth2/token"
REFRESH_BEFORE = dt.timedelta(seconds=25)  # refresh at 575 s of 600: Exact refuses before 570 s
EARLIEST_REFRESH = dt.timedelta(seconds=570)  # after an API 401: refresh only from then on
# A refresh holds the token row's lock — on SQLite the database's write lock, which other writers
# wait for up to their busy timeout (10 s by default) — so it gives up sooner than other calls;
# the 25 s margin leaves room for a second try before the access token expires.
REFRESH_TIMEOUT = 8.0


@dataclass(frozen=True)
class OAuthApp:
    """An app registered in Exact's App Center, on one Exact host."""

    base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str = ""


def host_of(base_url: str) -> str:
    return urlsplit(base_url).netloc.lower()


def connection_subject(base_url: str, client_id: str, user_id: str) -> str:
    """The token row of an Exact connection: ``<host>/<client id>/<user id>``. Exact keeps one
    refresh-token chain per user and app, and tokens only work on their own host, so these three
    name a chain; every enterprise connected with that user and app shares it."""
    return f"{host_of(base_url)}/{client_id.strip()}/{user_id.strip().lower()}"


def authorize_url(app: OAuthApp, state: str) -> str:
    query = {"client_id": app.client_id, "redirect_uri": app.redirect_uri, "response_type": "code", "state": state}
    return f"{app.base_url}{AUTHORIZE_PATH}?{urlencode(query)}"


def _post_token(app: OAuthApp, form: dict[str, str], clock: Callable[[], dt.datetime],
                transport: httpx.BaseTransport | None) -> tuple[httpx.Response, dt.datetime]:
    data = {**form, "client_id": app.client_id, "client_secret": app.client_secret}
    try:
        with httpx.Client(timeout=httpx.Timeout(REFRESH_TIMEOUT, connect=5.0), transport=transport,
                          verify=client_context("exact token")) as http:
            response = http.post(app.base_url + TOKEN_PATH, data=data, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise ExactUnavailable(f"Exact token endpoint {app.base_url}: {describe_http_error(exc)}",
                               ambiguous=True) from None
    return response, clock()


def _pair(response: httpx.Response, received: dt.datetime) -> TokenPair:
    body = response.json()
    seconds = int(str(body.get("expires_in", "600")))  # Exact sends it as a string
    return TokenPair(str(body["access_token"]), str(body["refresh_token"]),
                     received + dt.timedelta(seconds=seconds), received)


def exchange_code(app: OAuthApp, code: str, *, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                  transport: httpx.BaseTransport | None = None) -> TokenPair:
    response, received = _post_token(app, {"grant_type": "authorization_code", "code": code,
                                           "redirect_uri": app.redirect_uri}, clock, transport)
    if response.status_code != 200:
        raise ExactApiError("POST", TOKEN_PATH, response.status_code, oauth_error_text(response))
    return _pair(response, received)


def refresh_pair(app: OAuthApp, refresh_token: str, *,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 transport: httpx.BaseTransport | None = None) -> TokenPair:
    """One refresh grant. ``RefreshTooEarly`` (keep the pair), ``RefreshRefused`` (the chain is
    dead: reconnect), ``ExactUnavailable``/``ExactApiError`` (try again later)."""
    response, received = _post_token(app, {"grant_type": "refresh_token", "refresh_token": refresh_token},
                                     clock, transport)
    if response.status_code == 200 or (response.status_code == 429 and "refresh_token" in response.text):
        return _pair(response, received)  # a 429 that still carries a new pair: keep it (pq-559)
    error = oauth_error_text(response)
    reason = response.headers.get("Reason", "")
    log.warning("exact.refresh_refused", status=response.status_code, error=error, reason=reason)
    if "TooEarlyToRefreshTokens" in reason or "not expired" in error:
        raise RefreshTooEarly(error)
    if response.status_code in (400, 401) and any(word in error for word in (
            "Old refresh token", "expired", "invalid_grant", "unauthorized_client", "invalid_request")):
        raise RefreshRefused(error)
    if response.status_code >= 500:
        raise ExactUnavailable(f"Exact token endpoint: HTTP {response.status_code}")
    raise ExactApiError("POST", TOKEN_PATH, response.status_code, error)
