"""An Exact Online sandbox: OAuth2 and the REST/OData API over real HTTP, with Exact's limits.

``eboxd sandbox --with exact`` serves it next to the e-Box sandbox; tests start it on a free
loopback port with :func:`serve_exact_sandbox`. What it does (accounting spec §5, "Exact"):

- OAuth2 (``sandbox_oauth``): ``/api/oauth2/auth`` redirects at once with a code, ``/api/oauth2/token``
  with 600 s access tokens and single-use rotating refresh tokens, ``TooEarlyToRefreshTokens``.
- ``/api/v1/current/Me``; per division ``hrm/Divisions``, ``documents/DocumentTypes``,
  ``documents/Documents``, ``documents/DocumentAttachments``, ``crm/Accounts`` (18-character
  right-aligned ``Code``, VAT numbers as typed), ``financial/Journals``,
  ``purchaseentry/PurchaseEntries`` (creates an empty Document when none is given).
- OData: ``d.results``, ``$filter`` (``odata``), ``$select``, ``$top``, 60 rows a page with an
  absolute ``__next`` (``$skiptoken``); lists without ``$select`` refused like Exact does.
- Limits per (app, division): 60 calls a minute and 5,000 a day with Exact's six headers (resets
  in epoch ms; only the minutely ones once the minute is spent), 429 when spent; more than 10
  4xx answers per (app, division, endpoint, hour) block that endpoint for the hour; bodies over
  10 MB refused; errors in Exact's body ``{"error":{"code","message":{"lang","value"}}}``.
- Fault knobs (``fail_next``): an HTTP status, a 429 with calls left, a slow answer, a connection
  dropped *after* the entity was stored. Time comes from an injectable clock, ``advance()`` moves it.

Control, for tests and demos: the :class:`ExactSandbox` methods or ``/_sandbox`` endpoints
(``GET /_sandbox``, ``GET /_sandbox/{documents,attachments,purchase-entries}``,
``POST /_sandbox/{clock,faults,limits}``).
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from daemon.sandbox.httpkit import Request, Response, RunningServer, json_response, start_server
from eboxd_exact.odata import FilterError
from eboxd_exact.sandbox_entities import DOCUMENT_TYPES, ApiError, Entities, public
from eboxd_exact.sandbox_oauth import App, OAuthServer

__all__ = ["DOCUMENT_TYPES", "ExactSandbox", "ExactSandboxServer", "serve_exact_sandbox"]

MAX_BODY = 10 * 1024 * 1024
ERROR_BLOCK = 10  # more than this many 4xx per endpoint and hour: blocked for the hour
# Well-known Belgian suppliers of e-Box letters, as an accountant would have typed them in.
SUPPLIERS = [("FOD Financiën", "BE0308357159", "0308357159"), ("RSZ", "0206.731.645", "0206731645"),
             ("Acme Supplies BV", "BE0123456749", "0123456749")]


@dataclass
class _Knob:
    kind: str  # status, throttle, slow, reset_after_store
    entity: str | None
    method: str | None
    count: int
    status: int = 500
    seconds: float = 0.0


@dataclass
class _Limits:
    minutely: int = 60
    daily: int = 5000
    minute: int = -1
    minute_calls: int = 0
    day: dt.date | None = None
    day_calls: int = 0


@dataclass
class ApiStats:
    calls: list[tuple[str, str, int]] = field(default_factory=list)  # method, entity, status
    errors_4xx: dict[tuple[str, int, str, int], int] = field(default_factory=dict)  # app, division, entity, hour
    blocked: int = 0


def _error(status: int, message: str) -> Response:
    return json_response(status, {"error": {"code": "", "message": {"lang": "", "value": message}}})


class ExactSandbox(Entities):
    """State and HTTP app (``__call__``); thread-safe."""

    def __init__(self, *, seed: int = 0, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self._base_clock = clock
        self.offset = dt.timedelta()
        self._lock = threading.RLock()
        self._rng = random.Random(seed)  # noqa: S311 - deterministic fixtures, not secrets
        self.user_id = self._id()
        self.users = {self.user_id: "sandbox@example.be"}  # Exact users: an accountant's office has several
        self.oauth = OAuthServer(self.clock, self.user_id)
        self.divisions = {124132: "Acme NV", 124133: "Beta BV"}
        self.current_division = 124132
        self.accounts: dict[int, list[dict[str, Any]]] = {d: self._seed_accounts() for d in self.divisions}
        self.journals = [{"Code": "60", "Description": "Aankopen", "Type": 22},
                         {"Code": "70", "Description": "Verkopen", "Type": 20}]
        self.documents: list[dict[str, Any]] = []
        self.attachments: list[dict[str, Any]] = []
        self.purchase_entries: list[dict[str, Any]] = []
        self.limits: dict[tuple[str, int], _Limits] = {}
        self.default_limits = (60, 5000)
        self.stats = ApiStats()
        self._knobs: list[_Knob] = []
        # The first app's credentials follow the seed: a demo set-up can keep them between runs.
        self.app = self.oauth.add_app(client_id=self._id(), client_secret=self._id().replace("-", ""))

    # -- clock and fixtures ---------------------------------------------------------------------

    def clock(self) -> dt.datetime:
        return self._base_clock() + self.offset

    def advance(self, seconds: float) -> dt.datetime:
        """Move the sandbox's time forward (token expiry, the next minute, the next day)."""
        with self._lock:
            self.offset += dt.timedelta(seconds=seconds)
            return self.clock()

    def _id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _seed_accounts(self) -> list[dict[str, Any]]:
        rows = []
        for index in range(130):  # more than two pages
            name, vat, coc = (SUPPLIERS[index] if index < len(SUPPLIERS)
                              else (f"Relatie {index:03d}", f"BE0{self._rng.randrange(10**8, 10**9)}", None))
            rows.append({"ID": self._id(), "Code": f"{index + 1:>18}", "Name": name, "VATNumber": vat,
                         "ChamberOfCommerce": coc, "IsSupplier": index % 2 == 0 or index < len(SUPPLIERS)})
        return rows

    def add_user(self, name: str) -> str:
        """Another Exact user (with access to every division); its ID."""
        with self._lock:
            user_id = self._id()
            self.users[user_id] = name
            return user_id

    def login_as(self, user_id: str) -> None:
        """Consents from now on are this user's (who is logged in to Exact in the browser)."""
        with self._lock:
            if user_id not in self.users:
                raise ValueError(f"no sandbox user {user_id}")
            self.oauth.user_id = user_id

    def add_app(self, redirect_uris: list[str]) -> App:
        with self._lock:
            return self.oauth.add_app(redirect_uris)

    def set_limits(self, *, minutely: int | None = None, daily: int | None = None) -> None:
        """Limits of every (app, division) from now on (counters kept)."""
        with self._lock:
            self.default_limits = (minutely or self.default_limits[0], daily or self.default_limits[1])
            for limits in self.limits.values():
                limits.minutely, limits.daily = self.default_limits

    def fail_next(self, kind: str, *, entity: str | None = None, method: str | None = None, count: int = 1,
                  status: int = 500, seconds: float = 0.0) -> None:
        """The next ``count`` API calls (to ``entity``, e.g. ``Documents``, with ``method``) fail:
        ``status`` (an error answer), ``throttle`` (429 with calls left), ``slow`` (``seconds`` late),
        ``reset_after_store`` (stored, then the connection dropped before the answer)."""
        if kind not in ("status", "throttle", "slow", "reset_after_store"):
            raise ValueError(f"unknown fault kind {kind!r}")
        with self._lock:
            self._knobs.append(_Knob(kind, entity, method, count, status, seconds))

    def _take_knob(self, entity: str, method: str) -> _Knob | None:
        for knob in self._knobs:
            if knob.entity in (None, entity) and knob.method in (None, method):
                knob.count -= 1
                if knob.count <= 0:
                    self._knobs.remove(knob)
                return knob
        return None

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {"clientId": self.app.client_id, "redirectUris": self.app.redirect_uris,
                    "divisions": self.divisions, "currentDivision": self.current_division,
                    "now": self.clock().isoformat(), "oauth": self.oauth.describe(),
                    "documents": len(self.documents), "attachments": len(self.attachments),
                    "purchaseEntries": len(self.purchase_entries), "blocked": self.stats.blocked,
                    "calls": len(self.stats.calls)}

    # -- HTTP -----------------------------------------------------------------------------------

    def __call__(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        if path.startswith("/_sandbox"):
            return self._control(request, path)
        if path == "/api/oauth2/auth" and request.method == "GET":
            return self.oauth.authorize(request)
        if path == "/api/oauth2/token" and request.method == "POST":
            return self.oauth.token(request)
        if path.startswith("/api/v1/"):
            return self._api(request, path[len("/api/v1/"):].split("/"))
        return _error(404, "Not found")

    def _api(self, request: Request, parts: list[str]) -> Response:
        if len(request.body) > MAX_BODY:
            return _error(413, f"Request body too large: {len(request.body)} bytes, at most {MAX_BODY}")
        if parts == ["current", "Me"]:
            division, entity = self.current_division, "Me"
        elif len(parts) == 3 and parts[0].isdigit():
            division, entity = int(parts[0]), parts[2]
        else:
            return _error(404, "Not found")
        token = (request.header("Authorization") or "").removeprefix("Bearer ").strip()
        chain = self.oauth.chain_of_access_token(token)
        if chain is None:
            with self._lock:
                self.stats.calls.append((request.method, entity, 401))
            return _error(401, "Unauthorized: the access token is unknown, expired or revoked")
        with self._lock:
            throttled = self._count(chain.client_id, division)
            if throttled is not None:
                self.stats.calls.append((request.method, entity, 429))
                return throttled
            headers = self._limit_headers(chain.client_id, division)
            hour = int(self.clock().timestamp() // 3600)
            block_key = (chain.client_id, division, entity, hour)
            if self.stats.errors_4xx.get(block_key, 0) > ERROR_BLOCK:
                self.stats.blocked += 1
                return _error(403, "Forbidden - this API key is blocked for an hour after too many errors")
            knob = self._take_knob(entity, request.method)
            response = self._answer(request, knob, division, entity, parts, chain.user_id)
            response.headers.update(headers)
            if 400 <= response.status < 500 and response.status != 429:
                self.stats.errors_4xx[block_key] = self.stats.errors_4xx.get(block_key, 0) + 1
            self.stats.calls.append((request.method, entity, response.status))
            return response

    def _answer(self, request: Request, knob: _Knob | None, division: int, entity: str,
                parts: list[str], user_id: str) -> Response:
        if knob is not None and knob.kind == "status":
            return _error(knob.status, f"Sandbox fault: HTTP {knob.status}")
        if knob is not None and knob.kind == "throttle":
            return _error(429, "Too many requests")
        if entity != "Me" and division not in self.divisions:
            return _error(403, "Forbidden - WrongDivision")
        try:
            response = self._operate(request, division, parts, entity, user_id)
        except ApiError as exc:
            return _error(exc.status, exc.message)
        except FilterError as exc:
            return _error(400, str(exc))
        if knob is not None and knob.kind == "slow":
            response.delay = knob.seconds
        if knob is not None and knob.kind == "reset_after_store":
            response.truncate_to = 0  # stored; the client never hears about it
        return response

    def _count(self, client_id: str, division: int) -> Response | None:
        limits = self.limits.setdefault((client_id, division), _Limits(*self.default_limits))
        now = self.clock()
        minute = int(now.timestamp() // 60)
        if limits.minute != minute:
            limits.minute, limits.minute_calls = minute, 0
        if limits.day != now.date():
            limits.day, limits.day_calls = now.date(), 0
        if limits.day_calls >= limits.daily:
            response = _error(429, "Too many requests: the daily limit is reached")
            response.headers.update(self._limit_headers(client_id, division))
            return response
        if limits.minute_calls >= limits.minutely:
            response = _error(429, "Too many requests: the minutely limit is reached")
            response.headers.update(self._limit_headers(client_id, division, minutely_only=True))
            return response
        limits.minute_calls += 1
        limits.day_calls += 1
        return None

    def _limit_headers(self, client_id: str, division: int, *, minutely_only: bool = False) -> dict[str, str]:
        limits = self.limits[(client_id, division)]
        assert limits.day is not None
        next_day = dt.datetime.combine(limits.day + dt.timedelta(days=1), dt.time(), dt.UTC)
        headers = {"X-RateLimit-Minutely-Limit": str(limits.minutely),
                   "X-RateLimit-Minutely-Remaining": str(max(limits.minutely - limits.minute_calls, 0)),
                   "X-RateLimit-Minutely-Reset": str((limits.minute + 1) * 60_000)}
        if not minutely_only:
            headers.update({"X-RateLimit-Limit": str(limits.daily),
                            "X-RateLimit-Remaining": str(max(limits.daily - limits.day_calls, 0)),
                            "X-RateLimit-Reset": str(int(next_day.timestamp() * 1000))})
        return headers

    # -- control API ----------------------------------------------------------------------------

    def _control(self, request: Request, path: str) -> Response:  # noqa: PLR0911 - a small router
        route = (request.method, path)
        try:
            body = request.json() if request.body else {}
            with self._lock:
                if route == ("GET", "/_sandbox"):
                    return json_response(200, self.describe())
                if route == ("GET", "/_sandbox/documents"):
                    return json_response(200, [public(d) for d in self.documents])
                if route == ("GET", "/_sandbox/attachments"):
                    return json_response(200, [public(a) for a in self.attachments])
                if route == ("GET", "/_sandbox/purchase-entries"):
                    return json_response(200, [public(e) for e in self.purchase_entries])
                if route == ("POST", "/_sandbox/clock"):
                    return json_response(200, {"now": self.advance(float(body["advance"])).isoformat()})
                if route == ("POST", "/_sandbox/faults"):
                    self.fail_next(str(body["kind"]), entity=body.get("entity"), method=body.get("method"),
                                   count=int(body.get("count", 1)), status=int(body.get("status", 500)),
                                   seconds=float(body.get("seconds", 0)))
                    return json_response(201, {"ok": True})
                if route == ("POST", "/_sandbox/limits"):
                    self.set_limits(minutely=body.get("minutely"), daily=body.get("daily"))
                    return json_response(200, {"ok": True})
        except (KeyError, ValueError, TypeError) as exc:
            return json_response(400, {"error": f"bad control request: {exc}"})
        return json_response(404, {"error": "no such control endpoint"})


class ExactSandboxServer:
    """A running Exact sandbox: ``url`` (the host, as ``https://start.exactonline.be``), ``state``."""

    def __init__(self, state: ExactSandbox, server: RunningServer) -> None:
        self.state = state
        self.server = server
        self.url = server.url

    def summary(self) -> str:
        app = self.state.app
        return (f"Exact Online sandbox on {self.url} (/api/oauth2, /api/v1); client id {app.client_id}, "
                f"client secret {app.client_secret}, redirect URI {app.redirect_uris[0]}; "
                f"divisions {', '.join(f'{c} {n}' for c, n in self.state.divisions.items())}")

    def shutdown(self) -> None:
        self.server.shutdown()

    def wait(self) -> None:
        self.server.wait()

    def __enter__(self) -> ExactSandboxServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.shutdown()


def serve_exact_sandbox(host: str = "127.0.0.1", port: int = 0, *, seed: int = 0,
                        clock: Callable[[], dt.datetime] | None = None) -> ExactSandboxServer:
    """Start the sandbox on ``host:port`` (0 = a free port) in a background thread."""
    state = ExactSandbox(seed=seed, **({"clock": clock} if clock else {}))
    return ExactSandboxServer(state, start_server(state, host, port))
