"""Ponto's OAuth2: authorization code with PKCE (S256) and the refresh grant, which returns a new
refresh token and spends the old one (``daemon.credentials`` makes sure one worker refreshes).

Token calls are form-encoded with HTTP Basic client authentication, over mTLS like every call.
Secrets (client secret, tokens, verifier) never appear in logs or errors.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

import httpx
import structlog

from daemon.banking.ponto._errors import PontoApiError, PontoUnavailable
from daemon.banking.ponto._settings import PontoSettings
from daemon.credentials import RefreshRefused, TokenPair, oauth_error_text
from daemon.tls import describe_http_error

__all__ = ["Pkce", "authorization_url", "exchange_code", "refresh_pair", "token_url"]

log = structlog.get_logger(__name__)

Clock = Callable[[], dt.datetime]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Pkce:
    """One authorization attempt: the verifier stays here, the challenge goes in the URL."""

    verifier: str = field(repr=False)
    state: str

    @classmethod
    def new(cls) -> Pkce:
        return cls(secrets.token_urlsafe(48), secrets.token_urlsafe(16))

    @property
    def challenge(self) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(self.verifier.encode()).digest()).rstrip(b"=").decode()


def token_url(settings: PontoSettings) -> str:
    return f"{settings.api_url}/oauth2/token"


def authorization_url(settings: PontoSettings, pkce: Pkce) -> str:
    query = {"client_id": settings.client_id, "redirect_uri": settings.redirect_uri, "response_type": "code",
             "scope": settings.scope, "state": pkce.state, "code_challenge": pkce.challenge,
             "code_challenge_method": "S256"}
    return f"{settings.authorize_url}?{urlencode(query)}"


def _post(settings: PontoSettings, form: dict[str, str], transport: httpx.BaseTransport | None,
          clock: Clock) -> tuple[httpx.Response, dt.datetime]:
    try:
        with httpx.Client(verify=settings.ssl_context(), timeout=settings.timeout_seconds,
                          transport=transport) as http:
            response = http.post(token_url(settings), data=form, auth=(settings.client_id, settings.client_secret),
                                 headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise PontoUnavailable(f"Ponto token endpoint: {describe_http_error(exc)}") from None
    return response, clock()


def _pair(response: httpx.Response, received: dt.datetime, previous_refresh: str = "") -> TokenPair:
    body = response.json()
    return TokenPair(str(body["access_token"]), str(body.get("refresh_token") or previous_refresh),
                     received + dt.timedelta(seconds=int(body.get("expires_in", 1800))), received)


def exchange_code(settings: PontoSettings, code: str, pkce: Pkce, *, clock: Clock = _now,
                  transport: httpx.BaseTransport | None = None) -> TokenPair:
    """The token pair of a consent (the code the redirect brought back, and our verifier)."""
    response, received = _post(settings, {"grant_type": "authorization_code", "code": code,
                                          "code_verifier": pkce.verifier, "redirect_uri": settings.redirect_uri},
                               transport, clock)
    if response.status_code != 200:
        raise PontoApiError("POST", "/oauth2/token", response.status_code, oauth_error_text(response))
    pair = _pair(response, received)
    if not pair.refresh_token:
        raise PontoApiError("POST", "/oauth2/token", 200, "no refresh token: is offline_access in [ponto] scope?")
    return pair


def refresh_pair(settings: PontoSettings, refresh_token: str, *, clock: Clock = _now,
                 transport: httpx.BaseTransport | None = None) -> TokenPair:
    """One refresh grant: a new pair (the old refresh token is spent), ``RefreshRefused`` when
    Ponto will never accept this refresh token (reconnect), ``PontoUnavailable`` to retry later."""
    response, received = _post(settings, {"grant_type": "refresh_token", "refresh_token": refresh_token},
                               transport, clock)
    if response.status_code == 200:
        return _pair(response, received, refresh_token)
    error = oauth_error_text(response)
    log.warning("ponto.refresh_refused", status=response.status_code, error=error)
    if response.status_code in (400, 401) and "invalid_grant" in error:
        raise RefreshRefused(error)
    if response.status_code >= 500 or response.status_code == 429:
        raise PontoUnavailable(f"Ponto token endpoint: HTTP {response.status_code}")
    raise PontoApiError("POST", "/oauth2/token", response.status_code, error)
