"""OAuth 2.0 ``client_credentials`` tokens with a ``private_key_jwt`` assertion, cached per credential.

One :class:`TokenProvider` can serve many credentials (an accounting firm's thousands of clients) and
many worker threads: tokens are cached per (client ID, key, scope) until ``refresh_margin`` seconds
before they expire, and a per-entry lock makes concurrent callers wait for a single refresh.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog

from daemon import metrics
from daemon.tls import client_context

from ._assertion import ASSERTION_LIFETIME, CLIENT_ASSERTION_TYPE, build_client_assertion
from ._credentials import Credential
from ._environments import Environment
from ._errors import (
    InvalidClientAssertion,
    InvalidScope,
    TokenEndpointError,
    TokenError,
    TransportError,
    UnauthorizedClient,
    UnknownClient,
)
from ._transport import RetryPolicy, send_with_retry

__all__ = ["DOCCONSUMER_SCOPE", "REGISTRY_SCOPE", "AccessToken", "TokenProvider"]

log = structlog.get_logger(__name__)

DOCCONSUMER_SCOPE = "scope:document:management:consult:ws-eboxrestentreprise:documentconsumer"
REGISTRY_SCOPE = "scope:documentmanagement:ebox:enterprise:federation-rest:registry"
DEFAULT_EXPIRES_IN = 300
TOKEN_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
_UNKNOWN_CLIENT_HINTS = ("unknown", "not found", "not registered", "no such", "does not exist", "revoked")


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A bearer token. ``repr()`` never shows ``value``."""

    value: str = field(repr=False)
    expires_at: float
    refresh_at: float
    token_type: str = "Bearer"
    scope: str | None = None

    def is_fresh(self, now: float) -> bool:
        return now < self.refresh_at

    @property
    def authorization(self) -> str:
        return f"Bearer {self.value}"


_CacheKey = tuple[str, str, str | None]


class TokenProvider:
    """Obtains and caches access tokens for one environment's token endpoint.

    ``scope`` ``None`` (the recommended default) omits the parameter, granting every scope the client
    has. ``clock`` returns epoch seconds; ``sleep`` is used between retries (inject for tests).
    """

    def __init__(
        self,
        environment: Environment,
        *,
        http_client: httpx.Client | None = None,
        scope: str | None = None,
        retry: RetryPolicy | None = None,
        refresh_margin: float = 60.0,
        assertion_lifetime: int = ASSERTION_LIFETIME,
        timeout: httpx.Timeout | float = TOKEN_TIMEOUT,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.environment = environment
        self.scope = scope
        self.retry = retry or RetryPolicy()
        self.refresh_margin = refresh_margin
        self.assertion_lifetime = assertion_lifetime
        self._owns_client = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout, verify=client_context("ebox token"))
        self._clock = clock
        self._sleep = sleep
        self._cache: dict[_CacheKey, AccessToken] = {}
        self._locks: dict[_CacheKey, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self.refresh_count = 0  # tokens fetched from the server (observability and tests)

    def __repr__(self) -> str:
        return f"TokenProvider(environment={self.environment.name!r}, cached={len(self._cache)})"

    # --- public API ------------------------------------------------------------------------------

    def get_token(self, credential: Credential, *, scope: str | None = None) -> AccessToken:
        """A fresh token for ``credential``: from the cache, or from the server (one refresh at a time)."""
        key = self._key(credential, scope)
        cached = self._cache.get(key)
        if cached is not None and cached.is_fresh(self._clock()):
            return cached
        with self._lock_for(key):
            cached = self._cache.get(key)
            if cached is not None and cached.is_fresh(self._clock()):
                return cached
            try:
                token = self._request_token(credential, scope or self.scope)
            except (TokenError, TransportError) as exc:
                metrics.EBOX_TOKEN_FAILURES.labels(reason=_failure_reason(exc)).inc()
                raise
            self._cache[key] = token
            return token

    def invalidate(self, credential: Credential, token: AccessToken | None = None, *, scope: str | None = None) -> None:
        """Drop the cached token (after a 401). With ``token``, only if it is still the cached one,
        so a token another thread just refreshed is not thrown away."""
        key = self._key(credential, scope)
        with self._lock_for(key):
            current = self._cache.get(key)
            if current is not None and (token is None or current.value == token.value):
                del self._cache[key]
                log.info("ebox.token.invalidated", client_id=credential.client_id)

    def clear(self) -> None:
        self._cache.clear()

    def close(self) -> None:
        if self._owns_client:
            self._http.close()

    def __enter__(self) -> TokenProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- internals -------------------------------------------------------------------------------

    def _key(self, credential: Credential, scope: str | None) -> _CacheKey:
        return (credential.client_id, credential.fingerprint, scope or self.scope)

    def _lock_for(self, key: _CacheKey) -> threading.Lock:
        with self._locks_guard:
            lock = self._locks.get(key)
            if lock is None:
                lock = self._locks[key] = threading.Lock()
            return lock

    def _request_token(self, credential: Credential, scope: str | None) -> AccessToken:
        url = self.environment.token_url

        def send() -> httpx.Response:
            # A new assertion (new jti) for every attempt: the server rejects replays.
            assertion = build_client_assertion(
                credential,
                self.environment.assertion_audience,
                lifetime=self.assertion_lifetime,
                now=lambda: datetime.fromtimestamp(self._clock(), UTC),
            )
            form = {
                "grant_type": "client_credentials",
                "client_assertion_type": CLIENT_ASSERTION_TYPE,
                "client_assertion": assertion,
            }
            if scope:
                form["scope"] = scope
            return self._http.post(url, data=form, headers={"Accept": "application/json"})

        started = self._clock()
        try:
            response = send_with_retry(send, policy=self.retry, method="POST", url=url, sleep=self._sleep)
        except TransportError as exc:
            log.warning("ebox.token.unreachable", client_id=credential.client_id, error=str(exc))
            raise
        response.read()
        if response.status_code != 200:
            raise _token_error(response, credential.client_id)
        token = self._parse_token(response, credential.client_id, scope, started)
        self.refresh_count += 1
        log.info(
            "ebox.token.issued",
            client_id=credential.client_id,
            expires_in=round(token.expires_at - started),
            scope=token.scope,
        )
        return token

    def _parse_token(self, response: httpx.Response, client_id: str, scope: str | None, issued: float) -> AccessToken:
        data = _json_or_none(response)
        if not isinstance(data, dict):
            raise TokenEndpointError(
                "the token endpoint returned a non-JSON success body",
                client_id=client_id,
                status_code=response.status_code,
            )
        value = data.get("access_token")
        if not isinstance(value, str) or not value:
            raise TokenEndpointError("token response: access_token is missing", client_id=client_id, status_code=200)
        token_type = data.get("token_type", "Bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise TokenEndpointError(
                f"token response: unsupported token_type {token_type!r}", client_id=client_id, status_code=200
            )
        expires_in = data.get("expires_in", DEFAULT_EXPIRES_IN)
        if isinstance(expires_in, str) and expires_in.isdigit():
            expires_in = int(expires_in)
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0:
            raise TokenEndpointError(
                f"token response: invalid expires_in {expires_in!r}", client_id=client_id, status_code=200
            )
        margin = min(self.refresh_margin, expires_in / 2)
        granted = data.get("scope")
        return AccessToken(
            value=value,
            expires_at=issued + expires_in,
            refresh_at=issued + expires_in - margin,
            token_type="Bearer",
            scope=granted if isinstance(granted, str) else scope,
        )


def _failure_reason(exc: Exception) -> str:
    """A bounded label for ``eboxd_ebox_token_failures_total``."""
    reasons: dict[type[Exception], str] = {
        TransportError: "unreachable", UnknownClient: "unknown_client", InvalidClientAssertion: "invalid_client",
        InvalidScope: "invalid_scope", UnauthorizedClient: "unauthorized_client",
    }
    return next((reason for kind, reason in reasons.items() if isinstance(exc, kind)), "endpoint_error")


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _token_error(response: httpx.Response, client_id: str) -> TokenError:
    """Map an RFC 6749 §5.2 error response to the precise exception."""
    data = _json_or_none(response)
    status = response.status_code
    error = data.get("error") if isinstance(data, dict) else None
    description = data.get("error_description") if isinstance(data, dict) else None
    error = error if isinstance(error, str) else None
    description = description if isinstance(description, str) else None
    suffix = f": {description}" if description else ""
    kwargs: dict[str, Any] = {
        "client_id": client_id,
        "status_code": status,
        "error": error,
        "description": description,
    }
    log.warning("ebox.token.refused", client_id=client_id, status=status, error=error, description=description)
    if error == "invalid_client":
        lowered = (description or "").lower()
        if any(hint in lowered for hint in _UNKNOWN_CLIENT_HINTS):
            return UnknownClient(f"client {client_id!r} is unknown to the OAuth server{suffix}", **kwargs)
        return InvalidClientAssertion(f"client {client_id!r}: client assertion rejected{suffix}", **kwargs)
    if error == "invalid_scope":
        return InvalidScope(f"client {client_id!r}: scope refused{suffix}", **kwargs)
    if error == "unauthorized_client":
        return UnauthorizedClient(f"client {client_id!r} is not authorized for this grant{suffix}", **kwargs)
    if error:
        return TokenEndpointError(f"token endpoint refused ({error}){suffix}", **kwargs)
    return TokenEndpointError(f"token endpoint returned HTTP {status}", **kwargs)
