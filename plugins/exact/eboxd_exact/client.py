"""A small client for Exact Online's REST API (``/api/v1``), on httpx.

Each call: the rate governor first (``limits``), then a bearer from the token source (refreshed
by ``daemon.credentials`` when due), then the request. A 401 asks the token source once for a
newer token (a peer may have refreshed; ours expired in flight, or is old enough for Exact to
refresh it) and retries once with it, never with the refused one; a 429 waits
for the minute's reset (or defers for the day) and retries once. Error answers map to
``errors``; lists follow ``__next`` as Exact gives it, only on the same host (the bearer never
travels elsewhere).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import structlog

from daemon.tls import client_context, describe_http_error
from eboxd_exact.errors import ExactApiError, ExactError, ExactRefused, ExactUnavailable
from eboxd_exact.limits import RateGovernor
from eboxd_exact.odata import guid, quote

__all__ = ["REGIONS", "ExactClient", "TokenSource", "base_url_of"]

log = structlog.get_logger(__name__)

REGIONS = ("be", "nl", "de", "fr", "co.uk")
MAX_PAGES = 50


def base_url_of(region: str) -> str:
    return f"https://start.exactonline.{region}"


class TokenSource(Protocol):
    def __call__(self, stale_version: int | None = None) -> tuple[str, int]:
        """A valid access token and its version; with ``stale_version``, newer than that one."""
        ...


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Any


class ExactClient:
    """One division of one enterprise's connection. Thread-safe."""

    def __init__(self, base_url: str, division: int | None, tokens: TokenSource, governor: RateGovernor, *,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.division = division
        self._tokens = tokens
        self.governor = governor
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), transport=transport,
                                  verify=client_context("exact"),
                                  headers={"Accept": "application/json", "User-Agent": "eboxd-exact"})

    def __repr__(self) -> str:
        return f"<ExactClient {self.base_url} division={self.division}>"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ExactClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- the wire -------------------------------------------------------------------------------

    def _url(self, service_path: str) -> str:
        if service_path.startswith(("http://", "https://")):
            if not service_path.startswith(self.base_url + "/"):
                raise ExactError(f"Exact sent a next link to another host: {service_path.split('?', maxsplit=1)[0]}")
            return service_path
        if service_path.startswith("current/"):
            return f"{self.base_url}/api/v1/{service_path}"
        if self.division is None:
            raise ExactError("no division chosen for this connection")
        return f"{self.base_url}/api/v1/{self.division}/{service_path}"

    def request(self, method: str, service_path: str, *, params: dict[str, str] | None = None,
                json: dict[str, Any] | None = None) -> Any:
        url = self._url(service_path)
        path = url.split("?")[0].removeprefix(self.base_url)
        stale: int | None = None
        for attempt in (1, 2):
            self.governor.before_call()
            token, version = self._tokens(stale)
            if stale is not None and version == stale:  # a young token refused: no newer one to try
                raise ExactApiError(method, path, 401, "Exact refused an access token that should still be valid; "
                                    "if this persists, reconnect (`eboxd exact connect`)")
            headers = {"Authorization": f"Bearer {token}"}
            if json is not None:
                headers["Prefer"] = "return=representation"
            try:
                response = self._http.request(method, url, params=params, json=json, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise ExactUnavailable(f"Exact {method} {path}: cannot connect to {self.base_url}: "
                                       f"{describe_http_error(exc)}") from None
            except httpx.HTTPError as exc:  # sent, no (complete) answer: it may have been done
                raise ExactUnavailable(f"Exact {method} {path}: no answer: {type(exc).__name__}",
                                       ambiguous=method != "GET") from None
            self.governor.observe(response.headers)
            if response.status_code < 300:
                return response.json() if response.content else None
            if response.status_code == 401 and attempt == 1:
                self.governor.record_error(path, 401)
                stale = version
                log.info("exact.token_refused", path=path)
                continue
            if response.status_code == 429 and attempt == 1:
                self.governor.after_throttle(response.headers)
                continue
            raise self._error(method, path, response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _error(self, method: str, path: str, response: httpx.Response) -> ExactError:
        message = _message_of(response)
        reason = response.headers.get("Reason")
        status = response.status_code
        if status >= 500 or status == 429:
            return ExactUnavailable(f"Exact {method} {path}: HTTP {status}: {message}",
                                    ambiguous=method != "GET" and status != 429)
        self.governor.record_error(path, status)
        log.warning("exact.error_answer", method=method, path=path, status=status, message=message, reason=reason)
        if status == 401:  # twice: a young token refused, the chain may have been replaced
            return ExactApiError(method, path, status, message, reason)
        return ExactRefused(method, path, status, message, reason)

    def rows(self, service_path: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        """Every row of a list, page after page (``__next``)."""
        body = self.request("GET", service_path, params=params)
        for _ in range(MAX_PAGES):
            data = (body or {}).get("d", {})
            rows = data.get("results", data if isinstance(data, list) else [])
            yield from rows
            following = data.get("__next") if isinstance(data, dict) else None
            if not following:
                return
            body = self.request("GET", following)
        raise ExactError(f"Exact {service_path}: more than {MAX_PAGES} pages")

    def create(self, service_path: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = self.request("POST", service_path, json=payload)
        return dict((body or {}).get("d", {}))

    # -- operations -----------------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        rows = list(self.rows("current/Me", {"$select": "CurrentDivision,UserID,UserName,FullName"}))
        if not rows:
            raise ExactError("Exact current/Me returned no user")
        return rows[0]

    def divisions(self) -> dict[int, str]:
        return {int(row["Code"]): str(row.get("Description") or "")
                for row in self.rows("hrm/Divisions", {"$select": "Code,Description"})}

    def document_types(self) -> dict[int, str]:
        rows = self.rows("documents/DocumentTypes", {"$select": "ID,Description,DocumentIsCreatable,TypeCategory"})
        return {int(row["ID"]): str(row.get("Description") or "") for row in rows
                if row.get("DocumentIsCreatable", True)}

    def documents_with(self, text: str) -> list[dict[str, Any]]:
        """Documents whose subject contains ``text`` (a marker)."""
        return list(self.rows("documents/Documents", {
            "$filter": f"substringof({quote(text)},Subject) eq true", "$select": "ID,Subject,Created"}))

    def attachments_of(self, document_id: str) -> list[dict[str, Any]]:
        return list(self.rows("documents/DocumentAttachments", {
            "$filter": f"Document eq {guid(document_id)}", "$select": "ID,FileName,FileSize"}))

    def create_document(self, *, subject: str, type_id: int, date: str | None, account: str | None = None,
                        amount: str | None = None, currency: str | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"Subject": subject, "Type": type_id}
        for name, value in (("DocumentDate", date), ("Account", account), ("AmountFC", amount),
                            ("Currency", currency)):
            if value is not None:
                payload[name] = value
        return self.create("documents/Documents", payload)

    def create_attachment(self, document_id: str, file_name: str, data: bytes) -> dict[str, Any]:
        return self.create("documents/DocumentAttachments", {
            "Document": document_id, "FileName": file_name, "Attachment": base64.b64encode(data).decode("ascii")})

    def accounts_where(self, odata_filter: str) -> list[dict[str, Any]]:
        return list(self.rows("crm/Accounts", {"$filter": odata_filter, "$select": "ID,Code,Name,IsSupplier",
                                               "$top": "2"}))

    def purchase_entries_where(self, odata_filter: str) -> list[dict[str, Any]]:
        return list(self.rows("purchaseentry/PurchaseEntries", {"$filter": odata_filter,
                                                                "$select": "EntryID,Document,YourRef"}))

    def create_purchase_entry(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self.create("purchaseentry/PurchaseEntries", payload)


def _message_of(response: httpx.Response) -> str:
    """Exact's ``error.message.value`` (or the OAuth ``error_description``), else the status."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or f"HTTP {response.status_code}"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, dict):
            return str(message.get("value") or "")
        return str(message or error.get("code") or "")
    if isinstance(body, dict) and "error_description" in body:
        return str(body["error_description"])
    return response.reason_phrase or f"HTTP {response.status_code}"
