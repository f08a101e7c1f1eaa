"""A small SOAP 1.1 client for Yuki's Archive service, on httpx.

Why not zeep: we call six operations of one service. zeep would parse Yuki's 160 kB WSDL at every
start, add a heavy dependency, hide the wire (which is what we need to see when Yuki answers a
fault as HTTP 500) and make timeouts and fault mapping indirect. Here an envelope is a few lines
(``soap.envelope``), the parameters live in one table checked against the WSDL by a test, faults
map to the exceptions the export actor understands (``errors``), and the sandbox shares the same
module, so both ends speak one dialect.

Sessions: ``Authenticate`` returns a session that lasts 24 h. It is cached per process and per
(host, access key) for 23 h and reused by every call; a call refused with ``Invalid session ID``
re-authenticates once and is retried once. The cache holds a digest of the key, never the key.
After ``Daily limit exceeded`` the (host, key) is paused until Yuki's next day: calls fail at
once with ``DailyLimitExceeded`` without spending more of the quota.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import structlog

from daemon.tls import client_context
from eboxd_yuki import soap
from eboxd_yuki.errors import (
    DailyLimitExceeded,
    InactiveDomain,
    InvalidAccessKey,
    InvalidSession,
    NoRights,
    YukiFault,
    YukiUnavailable,
)

__all__ = ["REGIONS", "Administration", "Domain", "FoundDocument", "YukiClient", "base_url_of", "clear_sessions"]

log = structlog.get_logger(__name__)

REGIONS = ("be", "nl")
SERVICE_PATH = "/ws/Archive.asmx"
SESSION_REUSE = dt.timedelta(hours=23)  # Yuki sessions last 24 h
YUKI_DAY = ZoneInfo("Europe/Amsterdam")
RESET_MARGIN = dt.timedelta(minutes=5)  # after Yuki's midnight, before trying again


def base_url_of(region: str) -> str:
    return f"https://api.yukiworks.{region}"


@dataclass(frozen=True)
class Domain:
    id: str
    name: str


@dataclass(frozen=True)
class Administration:
    id: str
    name: str
    domain_id: str | None = None


@dataclass(frozen=True)
class FoundDocument:
    id: str
    subject: str
    file_name: str
    folder: int | None
    remarks: str


@dataclass
class _Session:
    id: str
    obtained: dt.datetime
    domain: str | None = None  # set with SetCurrentDomain (None: the key's default domain)


# Process-wide: sessions and daily-limit pauses per (base URL, sha256 of the key, domain).
_CacheKey = tuple[str, str, str]
_sessions: dict[_CacheKey, _Session] = {}
_paused: dict[_CacheKey, dt.datetime] = {}
_locks: dict[_CacheKey, threading.Lock] = {}
_registry_lock = threading.Lock()


def clear_sessions() -> None:
    """Forget cached sessions and pauses (tests; a changed key)."""
    with _registry_lock:
        _sessions.clear()
        _paused.clear()


def next_yuki_day(now: dt.datetime) -> dt.datetime:
    """Midnight after ``now`` in Yuki's time zone, plus a margin, in UTC."""
    local = now.astimezone(YUKI_DAY)
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), YUKI_DAY)
    return (midnight + RESET_MARGIN).astimezone(dt.UTC)


class YukiClient:
    """One access key on one Yuki host. Thread-safe; sessions are shared between instances."""

    def __init__(self, access_key: str, *, region: str = "be", base_url: str | None = None,
                 domain: str | None = None, timeout: float = 30.0, transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        if region not in REGIONS:
            raise ValueError(f"region must be one of {', '.join(REGIONS)}")
        self._key = access_key
        self.base_url = (base_url or base_url_of(region)).rstrip("/")
        self.domain = domain
        self._clock = clock
        # One session per domain: the current domain is state of the session at Yuki.
        self._cache_key = (self.base_url, hashlib.sha256(access_key.encode()).hexdigest(), domain or "")
        with _registry_lock:
            self._lock = _locks.setdefault(self._cache_key, threading.Lock())
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), transport=transport,
                                  verify=client_context("yuki"),
                                  headers={"Content-Type": soap.CONTENT_TYPE, "User-Agent": "eboxd-yuki"})

    def __repr__(self) -> str:  # never the key
        return f"<YukiClient {self.base_url} domain={self.domain}>"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> YukiClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- sessions -------------------------------------------------------------------------------

    def _session(self, *, renew: bool = False, stale: str | None = None) -> str:
        with self._lock:
            session = _sessions.get(self._cache_key)
            fresh = session is not None and self._clock() - session.obtained < SESSION_REUSE
            if renew and session is not None and session.id == stale:
                fresh = False  # only the caller's refused session is renewed, not a peer's new one
            if session is None or not fresh:
                result = self._post("Authenticate", {"accessKey": self._key})
                session = _Session(str(result or ""), self._clock())
                if not session.id:
                    raise YukiFault("Authenticate", "", "empty session ID")
                _sessions[self._cache_key] = session
                log.info("yuki.authenticated", host=self.base_url, renewed=renew)
            if self.domain and session.domain != self.domain:
                self._post("SetCurrentDomain", {"sessionID": session.id, "domainID": self.domain})
                session.domain = self.domain
            return session.id

    def call(self, operation: str, values: dict[str, str | None]) -> str | ET.Element | None:
        """Call ``operation`` with a session; a refused session is renewed once."""
        session = self._session()
        try:
            return self._post(operation, {"sessionID": session, **values})
        except InvalidSession:
            log.info("yuki.session_refused", host=self.base_url, operation=operation)
            session = self._session(renew=True, stale=session)
            return self._post(operation, {"sessionID": session, **values})

    def _post(self, operation: str, values: dict[str, str | None]) -> str | ET.Element | None:
        paused = _paused.get(self._cache_key)
        if paused is not None:
            if self._clock() < paused:
                raise DailyLimitExceeded(operation, "soap:Client", "Daily limit exceeded",
                                         "not sent: the limit was reached earlier today", until=paused)
            _paused.pop(self._cache_key, None)
        body = soap.envelope(operation, values)
        try:
            response = self._http.post(self.base_url + SERVICE_PATH, content=body,
                                       headers={"SOAPAction": soap.soap_action(operation)})
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise YukiUnavailable(f"Yuki {operation}: cannot connect to {self.base_url}: {exc}") from None
        except httpx.HTTPError as exc:  # sent, no (complete) answer: it may have been done
            raise YukiUnavailable(f"Yuki {operation}: no answer from {self.base_url}: {type(exc).__name__}",
                                  ambiguous=True) from None
        if response.status_code == 500:
            fault = soap.parse_fault(response.content)
            if fault is not None:
                raise self._fault(operation, fault)
        if response.status_code != 200:
            raise YukiUnavailable(f"Yuki {operation}: HTTP {response.status_code} from {self.base_url}",
                                  ambiguous=response.status_code >= 500)
        try:
            return soap.parse_result(operation, response.content)
        except soap.MalformedSoap as exc:
            raise YukiUnavailable(f"Yuki {operation}: unreadable answer: {exc}", ambiguous=True) from None

    def _fault(self, operation: str, fault: soap.Fault) -> YukiFault:
        text = fault.string.lower()
        args = (operation, fault.code, fault.string, fault.detail)
        if "invalid access key" in text:
            with _registry_lock:
                _sessions.pop(self._cache_key, None)
            return InvalidAccessKey(*args)
        if "invalid session" in text:
            return InvalidSession(*args)
        if "daily limit" in text:
            until = next_yuki_day(self._clock())
            _paused[self._cache_key] = until
            log.warning("yuki.daily_limit", host=self.base_url, until=until.isoformat())
            return DailyLimitExceeded(*args, until=until)
        if "no active database" in text:
            return InactiveDomain(*args)
        if "no rights" in text:
            return NoRights(*args)
        return YukiFault(*args)

    # -- operations -----------------------------------------------------------------------------

    def authenticate(self) -> None:
        """Check the key now (a cached fresh session counts as checked)."""
        self._session()

    def domains(self) -> list[Domain]:
        found = soap.children_named(_element(self.call("Domains", {})), ["Domain"])
        return [Domain(e.get("ID", ""), _text(e, "Name")) for e in found]

    def administrations(self) -> list[Administration]:
        found = soap.children_named(_element(self.call("Administrations", {})), ["Administration"])
        return [Administration(e.get("ID", ""), _text(e, "Name"), _text(e, "DomainID") or self.domain)
                for e in found]

    def document_folders(self) -> dict[int, str]:
        found = soap.children_named(_element(self.call("DocumentFolders", {})), ["Folder"])
        return {int(e.get("ID", "0")): _text(e, "Description") for e in found}

    def upload_document_with_data(self, *, administration: str, file_name: str, data: bytes, folder: int,
                                  amount: Decimal, currency: str | None, remarks: str | None,
                                  payment_method: int = 0) -> str:
        """Upload a document; the new document's ID ("" when Yuki accepted without telling)."""
        values: dict[str, str | None] = {
            "fileName": file_name, "data": base64.b64encode(data).decode("ascii"), "folder": str(folder),
            "administrationID": administration, "currency": currency, "amount": _decimal(amount),
            "paymentMethod": str(payment_method), "remarks": remarks,
        }
        return str(self.call("UploadDocumentWithData", values) or "")

    def search_documents(self, text: str, *, folder: int = -1, limit: int = 20,
                         since: dt.date = dt.date(2000, 1, 1)) -> list[FoundDocument]:
        """Documents of the current domain whose text matches (``-1``: every folder and tab)."""
        end = (self._clock() + dt.timedelta(days=2)).date()
        values: dict[str, str | None] = {
            "searchOption": "All", "searchText": text, "folderID": str(folder), "tabID": "-1",
            "sortOrder": "CreatedDesc", "startDate": f"{since.isoformat()}T00:00:00",
            "endDate": f"{end.isoformat()}T00:00:00", "numberOfRecords": str(limit), "startRecord": "1",
        }
        found = soap.children_named(_element(self.call("SearchDocuments", values)), ["Document"])
        out = []
        for e in found:
            folder_text = _text(e, "FolderID")
            out.append(FoundDocument(e.get("ID", ""), _text(e, "Subject"), _text(e, "FileName"),
                                     int(folder_text) if folder_text.lstrip("-").isdigit() else None,
                                     _text(e, "Remarks")))
        return out


def _element(result: Any) -> ET.Element | None:
    return result if isinstance(result, ET.Element) else None


def _text(element: ET.Element, name: str) -> str:
    for child in element:
        if child.tag.rpartition("}")[2] == name:
            return (child.text or "").strip()
    return ""


def _decimal(amount: Decimal) -> str:
    """Dot-decimal, no exponent, at least two places (Yuki's ``decimal``; never a comma)."""
    exponent = amount.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) else 0
    return format(amount if places > 2 else amount.quantize(Decimal("0.01")), "f")
