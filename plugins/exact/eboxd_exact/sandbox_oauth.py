"""The sandbox's OAuth2 server, Exact's rules (accounting spec §1.2–1.3): authorization codes
(single-use, 180 s, exact ``redirect_uri``), 600 s access tokens (``expires_in`` a string),
single-use rotating refresh tokens with a 570 s floor (``TooEarlyToRefreshTokens``), "Old refresh
token used." for a spent one, 30-day idle expiry, and one chain per user and app (the user is whoever
is logged in to the browser when consenting: ``user_id``)."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from daemon.sandbox.httpkit import Request, Response, json_response

__all__ = ["ACCESS_LIFETIME", "REFRESH_FLOOR", "App", "OAuthServer"]

ACCESS_LIFETIME = dt.timedelta(seconds=600)
REFRESH_FLOOR = dt.timedelta(seconds=570)
CODE_LIFETIME = dt.timedelta(seconds=180)
REFRESH_IDLE = dt.timedelta(days=30)


@dataclass
class App:
    client_id: str
    client_secret: str
    redirect_uris: list[str]


@dataclass
class Chain:
    """One user's consent for one app: the current token pair and what was spent."""

    client_id: str
    user_id: str
    access_token: str
    refresh_token: str
    issued_at: dt.datetime
    alive: bool = True
    spent: set[str] = field(default_factory=set)


@dataclass
class OAuthStats:
    codes_issued: int = 0
    refreshes: int = 0  # successful refresh grants
    refused: list[str] = field(default_factory=list)  # the reason of each refused token request


class OAuthServer:
    def __init__(self, clock: Callable[[], dt.datetime], user_id: str) -> None:
        self.clock = clock
        self.user_id = user_id  # who is logged in to the browser: the user a consent is for
        self.apps: dict[str, App] = {}
        self.chains: list[Chain] = []
        self.stats = OAuthStats()
        self._codes: dict[str, tuple[str, str, dt.datetime, str]] = {}  # code → client, redirect_uri, expiry, user
        self._lock = threading.RLock()
        self.refresh_delay = 0.0  # seconds a refresh grant takes (widens races in tests)

    def add_app(self, redirect_uris: list[str] | None = None, *, client_id: str | None = None,
                client_secret: str | None = None) -> App:
        app = App(client_id or secrets.token_hex(8) + "-" + secrets.token_hex(4),
                  client_secret or secrets.token_urlsafe(24), redirect_uris or ["http://127.0.0.1:8795/callback"])
        self.apps[app.client_id] = app
        return app

    # -- checks used by the API -------------------------------------------------------------------

    def chain_of_access_token(self, token: str) -> Chain | None:
        """The live chain whose current, unexpired access token this is."""
        with self._lock:
            for chain in self.chains:
                if chain.alive and chain.access_token == token and self.clock() < chain.issued_at + ACCESS_LIFETIME:
                    return chain
            return None

    # -- endpoints --------------------------------------------------------------------------------

    def authorize(self, request: Request) -> Response:
        """Consent is given at once (a sandbox has no user to ask): redirect with a code."""
        query = {k: v[-1] for k, v in request.query.items()}
        app = self.apps.get(query.get("client_id", ""))
        if app is None or query.get("response_type") != "code":
            return _oauth_error(400, "invalid_request", "unknown client_id or response_type")
        if query.get("redirect_uri") not in app.redirect_uris:
            return _oauth_error(400, "invalid_request", "redirect_uri does not match the registration")
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = (app.client_id, query["redirect_uri"], self.clock() + CODE_LIFETIME, self.user_id)
            self.stats.codes_issued += 1
        target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", "")})
        return Response(302, b"", {"Location": target})

    def token(self, request: Request) -> Response:
        form = request.form()
        app = self.apps.get(form.get("client_id", ""))
        if app is None or not secrets.compare_digest(form.get("client_secret", ""), app.client_secret):
            return self._refuse(400, "invalid_client", "client authentication failed")
        if form.get("grant_type") == "authorization_code":
            return self._code_grant(app, form)
        if form.get("grant_type") == "refresh_token":
            return self._refresh_grant(app, form.get("refresh_token", ""))
        return self._refuse(400, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")

    def _code_grant(self, app: App, form: dict[str, str]) -> Response:
        with self._lock:
            entry = self._codes.pop(form.get("code", ""), None)  # single use, even when refused below
            if entry is None or entry[0] != app.client_id or self.clock() > entry[2]:
                return self._refuse(400, "invalid_grant", "the authorization code is unknown, used or expired")
            if entry[1] != form.get("redirect_uri"):
                return self._refuse(400, "invalid_grant", "redirect_uri differs from the authorization request")
            user_id = entry[3]
            for chain in self.chains:  # one chain per user and app: re-authorizing kills the earlier one
                if chain.client_id == app.client_id and chain.user_id == user_id:
                    chain.alive = False
            chain = Chain(app.client_id, user_id, secrets.token_urlsafe(32), secrets.token_urlsafe(32), self.clock())
            self.chains.append(chain)
            return _token_response(chain)

    def _refresh_grant(self, app: App, refresh_token: str) -> Response:
        if self.refresh_delay:
            threading.Event().wait(self.refresh_delay)
        with self._lock:
            for chain in self.chains:
                if chain.client_id != app.client_id:
                    continue
                if refresh_token in chain.spent or (refresh_token == chain.refresh_token and not chain.alive):
                    chain.alive = False  # the chain is dead: the user must consent again
                    return self._refuse(401, "unauthorized_client", "Old refresh token used.")
                if refresh_token != chain.refresh_token:
                    continue
                now = self.clock()
                if now > chain.issued_at + REFRESH_IDLE:
                    chain.alive = False
                    return self._refuse(400, "invalid_request",
                                        f"The refresh token expired at {(chain.issued_at + REFRESH_IDLE).isoformat()}")
                if now < chain.issued_at + REFRESH_FLOOR:
                    return self._refuse(400, "access_denied", "Rate limit exceeded: access_token not expired",
                                        reason="TooEarlyToRefreshTokens: the access token is still valid")
                chain.spent.add(chain.refresh_token)
                chain.access_token, chain.refresh_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
                chain.issued_at = now
                self.stats.refreshes += 1
                return _token_response(chain)
            return self._refuse(400, "invalid_grant", "unknown refresh token")

    def _refuse(self, status: int, error: str, description: str, *, reason: str | None = None) -> Response:
        with self._lock:
            self.stats.refused.append(description)
        response = _oauth_error(status, error, description)
        if reason:
            response.headers["Reason"] = reason
        return response

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {"codesIssued": self.stats.codes_issued, "refreshes": self.stats.refreshes,
                    "refused": list(self.stats.refused), "liveChains": sum(c.alive for c in self.chains),
                    "liveUsers": sorted({c.user_id for c in self.chains if c.alive})}


def _token_response(chain: Chain) -> Response:
    return json_response(200, {"access_token": chain.access_token, "token_type": "bearer",
                               "expires_in": str(int(ACCESS_LIFETIME.total_seconds())),
                               "refresh_token": chain.refresh_token})


def _oauth_error(status: int, error: str, description: str) -> Response:
    return json_response(status, {"error": error, "error_description": description})
