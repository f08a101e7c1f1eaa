"""A Yuki Archive sandbox: SOAP 1.1 over real HTTP, sessions, a per-domain daily limit, faults.

``eboxd sandbox --with yuki`` serves it next to the e-Box sandbox; tests start it on a free
loopback port with :func:`serve_yuki_sandbox`. It answers the operations eboxd calls
(``soap.OPERATIONS``) with real envelopes, and SOAP faults as HTTP 500 the way Yuki does:

- ``Authenticate``: a known key of this region → a GUID session (24 h); else ``Invalid access key``.
- A stale, unknown or missing session (also what mis-cased or out-of-order children amount to)
  → ``Invalid session ID``. Parameters the WSDL requires must be present and well formed (``.``
  decimals, no empty integers), else ``Server was unable to read request``.
- Every call counts against the domain's daily limit (1,000 by default), ``Authenticate`` too,
  → ``Daily limit exceeded`` (``soap:Client``) until midnight, Amsterdam time.
- Uploads go to the session's current domain, into an administration and folder of that
  domain; each is recorded (``uploads``, ``GET /_sandbox/uploads``) and gets a GUID.

Control, for tests and demos: methods on :class:`YukiSandbox` or the ``/_sandbox/`` endpoints
(``GET /_sandbox``, ``GET /_sandbox/uploads``, ``POST /_sandbox/keys``, ``/_sandbox/faults``,
``/_sandbox/expire-sessions``, ``/_sandbox/limit``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import random
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from daemon.sandbox.httpkit import Request, Response, RunningServer, json_response, start_server
from eboxd_yuki.soap import (
    CONTENT_TYPE,
    OPERATIONS,
    Fault,
    MalformedSoap,
    fault_envelope,
    parse_request,
    result_envelope,
)

__all__ = ["FOLDERS", "YukiSandbox", "YukiSandboxServer", "serve_yuki_sandbox"]

PATH = "/ws/Archive.asmx"
YUKI_DAY = ZoneInfo("Europe/Amsterdam")
SESSION_LIFETIME = dt.timedelta(hours=24)
FOLDERS = {1: "Purchase", 2: "Sales", 3: "Bank", 4: "Personnel", 5: "Tax", 7: "To be handled by Yuki",
           8: "Other financial"}
INVALID_KEY = "Invalid access key"
INVALID_SESSION = "Invalid session ID"
DAILY_LIMIT = "Daily limit exceeded"
UNREADABLE = "Server was unable to read request. ---> Input string was not in a correct format."


@dataclass
class Domain:
    id: str
    name: str
    administrations: dict[str, str]  # ID → name
    daily_limit: int = 1000
    calls: int = 0
    day: dt.date | None = None
    active: bool = True


@dataclass
class Key:
    access_key: str
    region: str
    domains: list[str]  # domain IDs, the first is current after Authenticate


@dataclass
class Session:
    key: str
    domain: str
    expires: dt.datetime


@dataclass
class Upload:
    id: str
    domain: str
    administration: str
    folder: int
    file_name: str
    size: int
    sha256: str
    currency: str | None
    amount: str
    payment_method: int
    remarks: str | None
    created_at: str
    data: bytes = field(repr=False, default=b"")

    def public(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("data")
        return out


@dataclass
class _Knob:
    string: str
    code: str = "soap:Server"
    operation: str | None = None
    count: int = 1
    kind: str = "fault"  # fault, bare500, reset_after_store


class YukiSandbox:
    """The sandbox's state and its HTTP app (``__call__``); thread-safe."""

    def __init__(self, *, seed: int = 0, region: str = "be",
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.region = region
        self.clock = clock
        self._lock = threading.RLock()
        self._rng = random.Random(seed)  # noqa: S311 - deterministic fixtures, not secrets
        self.domains: dict[str, Domain] = {}
        self.keys: dict[str, Key] = {}
        self.sessions: dict[str, Session] = {}
        self.uploads: list[Upload] = []
        self.calls: list[str] = []  # operation names, in order: what a test can count
        self._knobs: list[_Knob] = []
        self.add_key(administrations=["Acme NV", "Beta BV"], domain_name="Demo accountants")

    # -- control --------------------------------------------------------------------------------

    def _id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def add_key(self, *, administrations: list[str], domain_name: str = "Domain", region: str | None = None,
                daily_limit: int = 1000, extra_domains: int = 0) -> dict[str, Any]:
        """A new access key with a domain holding ``administrations`` (and ``extra_domains`` more)."""
        with self._lock:
            key = Key(access_key=self._id().replace("-", ""), region=region or self.region, domains=[])
            for index in range(1 + extra_domains):
                domain = Domain(self._id(), domain_name if index == 0 else f"{domain_name} {index + 1}",
                                {self._id(): name for name in administrations}, daily_limit=daily_limit)
                self.domains[domain.id] = domain
                key.domains.append(domain.id)
            self.keys[key.access_key] = key
            return self._describe_key(key)

    def _describe_key(self, key: Key) -> dict[str, Any]:
        return {"accessKey": key.access_key, "region": key.region, "domains": [
            {"id": d, "name": self.domains[d].name, "administrations": [
                {"id": a, "name": n} for a, n in self.domains[d].administrations.items()]} for d in key.domains]}

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {"region": self.region, "keys": [self._describe_key(k) for k in self.keys.values()],
                    "uploads": len(self.uploads)}

    def fail_next(self, string: str, *, code: str = "soap:Server", operation: str | None = None, count: int = 1,
                  kind: str = "fault") -> None:
        """The next ``count`` calls (of ``operation``, or any) fail: a SOAP fault with ``string``, a
        bare HTTP 500 (``kind="bare500"``), or a stored upload whose response is cut off
        (``kind="reset_after_store"``)."""
        with self._lock:
            self._knobs.append(_Knob(string, code, operation, count, kind))

    def expire_sessions(self) -> int:
        with self._lock:
            count = len(self.sessions)
            self.sessions.clear()
            return count

    def set_daily_limit(self, domain_id: str, limit: int) -> None:
        with self._lock:
            self.domains[domain_id].daily_limit = limit

    def uploads_of(self, administration: str) -> list[Upload]:
        with self._lock:
            return [u for u in self.uploads if u.administration == administration]

    # -- HTTP -----------------------------------------------------------------------------------

    def __call__(self, request: Request) -> Response:  # noqa: PLR0911 - one return per outcome
        if request.path.startswith("/_sandbox"):
            return self._control(request)
        if request.path != PATH:
            return Response(404, b"Not found", {"Content-Type": "text/plain"})
        if request.method == "GET":
            return Response(200, b"Yuki Archive sandbox: POST SOAP 1.1 here", {"Content-Type": "text/plain"})
        if request.method != "POST":
            return Response(405, b"", {"Allow": "GET, POST"})
        try:
            operation, children = parse_request(request.body)
        except MalformedSoap as exc:
            return _fault(Fault("soap:Client", f"Server was unable to read request. ---> {exc}"))
        action = (request.header("SOAPAction") or "").strip('"')
        if action != f"http://www.theyukicompany.com/{operation}":
            return _fault(Fault("soap:Client", f"Server did not recognize the value of HTTP Header SOAPAction: "
                                               f"{action}."))
        if operation not in OPERATIONS:
            return _fault(Fault("soap:Client", f"Unknown operation {operation}"))
        with self._lock:
            self.calls.append(operation)
            knob = self._take_knob(operation)
            if knob is not None and knob.kind == "bare500":
                return Response(500, b"Internal Server Error", {"Content-Type": "text/html"})
            if knob is not None and knob.kind == "fault":
                return _fault(Fault(knob.code, knob.string))
            try:
                response = self._operate(operation, children)
            except _SoapError as exc:
                return _fault(exc.fault)
            if knob is not None and knob.kind == "reset_after_store":
                response.truncate_to = 0  # the upload is stored, the client never hears about it
            return response

    def _take_knob(self, operation: str) -> _Knob | None:
        for knob in self._knobs:
            if knob.operation in (None, operation):
                knob.count -= 1
                if knob.count <= 0:
                    self._knobs.remove(knob)
                return knob
        return None

    def _operate(self, operation: str, children: list[tuple[str, str]]) -> Response:
        args = _arguments(operation, children)
        if operation == "Authenticate":
            return self._authenticate(args.get("accessKey", ""))
        session = self._session(args.get("sessionID"))
        domain = self.domains[session.domain]
        self._count(domain)
        if not domain.active:
            raise _SoapError(Fault("soap:Server", "Domain has no active database"))
        handler = getattr(self, f"_op_{operation}")
        return Response(200, result_envelope(operation, handler(session, domain, args)),
                        {"Content-Type": CONTENT_TYPE})

    def _authenticate(self, access_key: str) -> Response:
        key = self.keys.get(access_key)
        if key is None or key.region != self.region:
            raise _SoapError(Fault("soap:Server", INVALID_KEY))
        domain = self.domains[key.domains[0]]
        self._count(domain)
        session_id = self._id()
        self.sessions[session_id] = Session(access_key, domain.id, self.clock() + SESSION_LIFETIME)
        return Response(200, result_envelope("Authenticate", session_id), {"Content-Type": CONTENT_TYPE})

    def _session(self, session_id: str | None) -> Session:
        session = self.sessions.get(session_id or "")
        if session is None or session.expires <= self.clock() or session.key not in self.keys:
            self.sessions.pop(session_id or "", None)
            raise _SoapError(Fault("soap:Server", INVALID_SESSION))
        return session

    def _count(self, domain: Domain) -> None:
        today = self.clock().astimezone(YUKI_DAY).date()
        if domain.day != today:
            domain.day, domain.calls = today, 0
        if domain.calls >= domain.daily_limit:
            raise _SoapError(Fault("soap:Client", DAILY_LIMIT,
                                   f"Every domain has {domain.daily_limit} free webservice calls a day."))
        domain.calls += 1

    # -- operations -----------------------------------------------------------------------------

    def _op_Domains(self, session: Session, _domain: Domain, _args: dict[str, str]) -> ET.Element:  # noqa: N802
        root = ET.Element("Domains")
        for domain_id in self.keys[session.key].domains:
            item = ET.SubElement(root, "Domain", ID=domain_id)
            ET.SubElement(item, "Name").text = self.domains[domain_id].name
        return root

    def _op_SetCurrentDomain(self, session: Session, _domain: Domain, args: dict[str, str]) -> None:  # noqa: N802
        if args.get("domainID") not in self.keys[session.key].domains:
            raise _SoapError(Fault("soap:Server", "Domain not found or no access"))
        session.domain = args["domainID"]

    def _op_Administrations(self, _session: Session, domain: Domain, _args: dict[str, str]) -> ET.Element:  # noqa: N802
        root = ET.Element("Administrations")
        for admin_id, name in domain.administrations.items():
            item = ET.SubElement(root, "Administration", ID=admin_id)
            ET.SubElement(item, "Name").text = name
            ET.SubElement(item, "DomainID").text = domain.id
        return root

    def _op_DocumentFolders(self, _session: Session, _domain: Domain, _args: dict[str, str]) -> ET.Element:  # noqa: N802
        root = ET.Element("DocumentFolders")
        for folder_id, name in FOLDERS.items():
            item = ET.SubElement(root, "Folder", ID=str(folder_id))
            ET.SubElement(item, "Description").text = name
        return root

    def _op_UploadDocumentWithData(self, _session: Session, domain: Domain, args: dict[str, str]) -> str:  # noqa: N802
        folder = _integer(args["folder"])
        amount = _decimal(args["amount"])
        payment_method = _integer(args["paymentMethod"])
        if folder not in FOLDERS:
            raise _SoapError(Fault("soap:Server", f"Folder {folder} does not exist"))
        administration = args.get("administrationID", "")
        if administration not in domain.administrations:
            raise _SoapError(Fault("soap:Server", "Administration not found in the current domain"))
        try:
            data = base64.b64decode(args.get("data", ""), validate=True)
        except (binascii.Error, ValueError):
            raise _SoapError(Fault("soap:Client", UNREADABLE)) from None
        if not data or not args.get("fileName"):
            raise _SoapError(Fault("soap:Server", "No file"))
        upload = Upload(id=self._id(), domain=domain.id, administration=administration, folder=folder,
                        file_name=args["fileName"], size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                        currency=args.get("currency"), amount=str(amount), payment_method=payment_method,
                        remarks=args.get("remarks"), created_at=self.clock().isoformat(), data=data)
        self.uploads.append(upload)
        return upload.id

    def _op_SearchDocuments(self, _session: Session, domain: Domain, args: dict[str, str]) -> ET.Element:  # noqa: N802
        folder = _integer(args["folderID"])
        text = (args.get("searchText") or "").lower()
        limit = _integer(args["numberOfRecords"])
        if args["searchOption"] not in ("All", "Subject"):
            raise _SoapError(Fault("soap:Server", "Search option not supported by the sandbox"))
        root = ET.Element("Documents")
        found = [u for u in reversed(self.uploads) if u.domain == domain.id and folder in (-1, u.folder)
                 and (not text or text in u.file_name.lower() or text in (u.remarks or "").lower())]
        for upload in found[: limit if limit > 0 else None]:
            item = ET.SubElement(root, "Document", ID=upload.id)
            ET.SubElement(item, "Subject").text = upload.file_name
            ET.SubElement(item, "FileName").text = upload.file_name
            ET.SubElement(item, "FolderID").text = str(upload.folder)
            ET.SubElement(item, "AdministrationID").text = upload.administration
            ET.SubElement(item, "Remarks").text = upload.remarks or ""
        return root

    # -- control API ----------------------------------------------------------------------------

    def _control(self, request: Request) -> Response:  # noqa: PLR0911 - a small router
        route = (request.method, request.path.rstrip("/"))
        try:
            body = request.json() if request.body else {}
            if route == ("GET", "/_sandbox"):
                return json_response(200, self.describe())
            if route == ("GET", "/_sandbox/uploads"):
                with self._lock:
                    return json_response(200, [u.public() for u in self.uploads])
            if route == ("POST", "/_sandbox/keys"):
                return json_response(201, self.add_key(administrations=list(body.get("administrations", ["Acme"])),
                                                       region=body.get("region"),
                                                       daily_limit=int(body.get("dailyLimit", 1000))))
            if route == ("POST", "/_sandbox/faults"):
                self.fail_next(str(body["string"]), code=str(body.get("code", "soap:Server")),
                               operation=body.get("operation"), count=int(body.get("count", 1)),
                               kind=str(body.get("kind", "fault")))
                return json_response(201, {"ok": True})
            if route == ("POST", "/_sandbox/expire-sessions"):
                return json_response(200, {"expired": self.expire_sessions()})
            if route == ("POST", "/_sandbox/limit"):
                self.set_daily_limit(str(body["domain"]), int(body["limit"]))
                return json_response(200, {"ok": True})
        except (KeyError, ValueError, TypeError) as exc:
            return json_response(400, {"error": f"bad control request: {exc}"})
        return json_response(404, {"error": "no such control endpoint"})


class _SoapError(Exception):
    def __init__(self, fault: Fault) -> None:
        super().__init__(fault.string)
        self.fault = fault


def _fault(fault: Fault) -> Response:
    return Response(500, fault_envelope(fault), {"Content-Type": CONTENT_TYPE})


def _arguments(operation: str, children: list[tuple[str, str]]) -> dict[str, str]:
    """Children must be known names, in WSDL order; a miss reads as a missing session, as at Yuki."""
    order = [p.name for p in OPERATIONS[operation]]
    position = -1
    args: dict[str, str] = {}
    for name, value in children:
        if name not in order or order.index(name) <= position:
            raise _SoapError(Fault("soap:Server", INVALID_SESSION if operation != "Authenticate" else INVALID_KEY))
        position = order.index(name)
        args[name] = value
    for param in OPERATIONS[operation]:
        if param.required and not args.get(param.name, "").strip():
            raise _SoapError(Fault("soap:Client", UNREADABLE))
    return args


def _integer(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise _SoapError(Fault("soap:Client", UNREADABLE)) from None


def _decimal(text: str) -> Decimal:
    if "," in text:
        raise _SoapError(Fault("soap:Client", UNREADABLE))
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        raise _SoapError(Fault("soap:Client", UNREADABLE)) from None


class YukiSandboxServer:
    """A running Yuki sandbox: ``url`` (base, without ``/ws/…``), ``state``, ``shutdown()``."""

    def __init__(self, state: YukiSandbox, server: RunningServer) -> None:
        self.state = state
        self.server = server
        self.url = server.url

    def summary(self) -> str:
        key = next(iter(self.state.keys.values()))
        domain = self.state.domains[key.domains[0]]
        admins = ", ".join(f"{name} ({admin})" for admin, name in domain.administrations.items())
        return f"Yuki sandbox on {self.url}{PATH}; access key {key.access_key}; administrations: {admins}"

    def uploads(self) -> list[dict[str, Any]]:
        return json.loads(json.dumps([u.public() for u in self.state.uploads]))

    def shutdown(self) -> None:
        self.server.shutdown()

    def wait(self) -> None:
        self.server.wait()

    def __enter__(self) -> YukiSandboxServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.shutdown()


def serve_yuki_sandbox(host: str = "127.0.0.1", port: int = 0, *, seed: int = 0, region: str = "be",
                       clock: Callable[[], dt.datetime] | None = None) -> YukiSandboxServer:
    """Start the sandbox on ``host:port`` (0 = a free port) in a background thread."""
    state = YukiSandbox(seed=seed, region=region, **({"clock": clock} if clock else {}))
    return YukiSandboxServer(state, start_server(state, host, port))
