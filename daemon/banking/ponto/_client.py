"""The Ponto Connect API client: one enterprise's connection (its token row), over mTLS.

Access tokens come from :class:`~daemon.credentials.TokenStore` (refreshed by one worker at a
time, the rotating refresh token never presented twice). A 429 waits for ``Retry-After`` (or
``x-ratelimit-reset``); a 5xx or a network error backs off exponentially; both give up after
``max_attempts`` with :class:`PontoUnavailable`. A 401 refreshes the pair once (a peer may have
rotated it) and retries.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog

from daemon import metrics
from daemon.banking.ponto._errors import PontoApiError, PontoError, PontoUnavailable
from daemon.banking.ponto._oauth import refresh_pair
from daemon.banking.ponto._settings import PROVIDER, PontoSettings
from daemon.credentials import StoredTokens, TokenStore
from daemon.tls import certificate_problem, describe_http_error

__all__ = ["REFRESH_BEFORE", "PontoClient"]

log = structlog.get_logger(__name__)

REFRESH_BEFORE = dt.timedelta(seconds=120)
MAX_WAIT_SECONDS = 60.0  # a longer Retry-After is not waited for here: the task is retried later


class PontoClient:
    """Calls for one connection (``subject``: the enterprise number). Not thread-safe; cheap to make."""

    def __init__(self, settings: PontoSettings, store: TokenStore, subject: str, *, max_attempts: int = 5,
                 backoff: float = 0.5, sleep: Callable[[float], None] = time.sleep,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.settings, self.store, self.subject = settings, store, subject
        self.max_attempts, self.backoff, self._sleep = max_attempts, backoff, sleep
        self._transport = transport
        self._http = httpx.Client(verify=settings.ssl_context(), timeout=settings.timeout_seconds, transport=transport,
                                  headers={"Accept": "application/vnd.api+json"})
        self._tokens: StoredTokens | None = None

    def __enter__(self) -> PontoClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- tokens ---------------------------------------------------------------------------------

    def _refresher(self, refresh_token: str) -> Any:
        return refresh_pair(self.settings, refresh_token, clock=self.store._clock, transport=self._transport)

    def tokens(self, *, stale: StoredTokens | None = None) -> StoredTokens:
        self._tokens = self.store.fresh(PROVIDER, self.subject, self._refresher, refresh_before=REFRESH_BEFORE,
                                        stale_version=stale.version if stale else None)
        return self._tokens

    # -- transport ------------------------------------------------------------------------------

    def _url(self, path_or_url: str) -> str:
        if path_or_url.startswith("https://"):
            base, other = urlsplit(self.settings.api_url), urlsplit(path_or_url)
            if (other.scheme, other.netloc) != (base.scheme, base.netloc):  # never send our token elsewhere
                raise PontoError(f"Ponto link to another origin refused: {other.netloc}")
            return path_or_url
        return self.settings.api_url + path_or_url

    def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        """One API call with retries; the decoded JSON body."""
        tokens = self._tokens or self.tokens()
        refreshed = False
        url = self._url(path)
        endpoint = urlsplit(url).path
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self._http.request(method, url, json=json, params=params,
                                              headers={"Authorization": f"Bearer {tokens.pair.access_token}"})
            except httpx.HTTPError as exc:
                if certificate_problem(exc) is not None:  # not transient: say so at once
                    raise PontoUnavailable(f"Ponto {method} {endpoint}: {describe_http_error(exc)}") from None
                wait, why = self.backoff * 2 ** (attempt - 1), type(exc).__name__
            else:
                if response.status_code == 401 and not refreshed:
                    tokens, refreshed = self.tokens(stale=tokens), True
                    continue
                if response.status_code < 400:
                    return response.json() if response.content else None
                if response.status_code == 429:
                    wait, why = self._retry_after(response, attempt), "429"
                elif response.status_code >= 500:
                    wait, why = self.backoff * 2 ** (attempt - 1), str(response.status_code)
                else:
                    raise PontoApiError(method, endpoint, response.status_code, _detail(response),
                                        response.headers.get("ibanity-request-id"))
            metrics.PONTO_RETRIES.labels(reason="429" if why == "429" else "5xx" if why.isdigit() else "network").inc()
            if attempt == self.max_attempts or wait > MAX_WAIT_SECONDS:
                break
            log.info("ponto.retrying", method=method, endpoint=endpoint, reason=why, attempt=attempt,
                     wait_seconds=round(wait, 2))
            self._sleep(wait)
        raise PontoUnavailable(f"Ponto {method} {endpoint}: {why} after {attempt} attempts")

    def _retry_after(self, response: httpx.Response, attempt: int) -> float:
        for header in ("Retry-After", "x-ratelimit-reset"):
            value = response.headers.get(header)
            if value and value.strip().isdigit():
                return float(value)
        return self.backoff * 2 ** (attempt - 1)

    # -- resources ------------------------------------------------------------------------------

    def pages(self, path: str, *, limit: int | None = None) -> Iterator[list[dict[str, Any]]]:
        """Follow ``links.next`` from ``path`` (``page[limit]`` per page)."""
        next_url: str | None = path
        params: dict[str, Any] | None = {"page[limit]": limit or self.settings.page_limit}
        while next_url:
            body = self.request("GET", next_url, params=params)
            yield list(body.get("data") or [])
            next_url, params = (body.get("links") or {}).get("next"), None

    def accounts(self) -> list[dict[str, Any]]:
        return [item for page in self.pages("/accounts") for item in page]

    def transactions(self, account_id: str, *, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """The account's transactions, newest first, page by page."""
        for page in self.pages(f"/accounts/{account_id}/transactions", limit=limit):
            yield from page

    def updated_transactions(self, synchronization_id: str) -> Iterator[dict[str, Any]]:
        for page in self.pages(f"/synchronizations/{synchronization_id}/updated-transactions"):
            yield from page

    def create_synchronization(self, account_id: str, subtype: str = "accountTransactions") -> str:
        body = self.request("POST", "/synchronizations", json={"data": {"type": "synchronization", "attributes": {
            "resourceType": "account", "resourceId": account_id, "subtype": subtype}}})
        return str(body["data"]["id"])

    def synchronization(self, synchronization_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/synchronizations/{synchronization_id}")["data"])

    def wait_synchronization(self, synchronization_id: str, *, timeout: float | None = None,
                             interval: float = 0.5) -> str:
        """Poll until ``success`` or ``error``; the final status (``timeout`` if still running)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.settings.sync_timeout_seconds)
        while True:
            status = str(self.synchronization(synchronization_id)["attributes"]["status"])
            if status in ("success", "error") or time.monotonic() >= deadline:
                return status if status in ("success", "error") else "timeout"
            self._sleep(interval)


def _detail(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
        return "; ".join(str(e.get("detail") or e.get("code")) for e in errors) or response.reason_phrase
    except (ValueError, AttributeError):
        return response.reason_phrase
