"""The Ponto Connect sandbox's behaviour: OAuth2 (authorization code + PKCE S256, refresh-token
rotation, client credentials), accounts, synchronizations that succeed after a delay,
transactions with cursor paging, webhook keys and signed webhooks, fault knobs.

State lives in memory and is guarded by one lock; tests drive it through :class:`PontoState`'s
methods (the same object the server answers from).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from daemon.sandbox.httpkit import Request, Response, Router, json_response

__all__ = ["MAX_PAGE_LIMIT", "PontoState", "build_app"]

MAX_PAGE_LIMIT = 100
WEBHOOK_ISSUER = "https://api.ibanity.com"


@dataclass
class _Account:
    id: str
    iban: str
    description: str
    currency: str = "EUR"
    transactions: list[dict[str, Any]] = field(default_factory=list)  # newest first
    staged: list[dict[str, Any]] = field(default_factory=list)  # arrive with the next synchronization
    synchronized_at: str | None = None


@dataclass
class _Sync:
    id: str
    account_id: str
    subtype: str
    created: float
    status: str = "pending"
    updated: list[str] = field(default_factory=list)


@dataclass
class _Fault:
    status: int
    remaining: int
    retry_after: int = 1


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _error(status: int, code: str, detail: str) -> Response:
    return json_response(status, {"errors": [{"code": code, "detail": detail}]},
                         {"ibanity-request-id": str(uuid.uuid4())})


class PontoState:
    """Everything the sandbox knows. Thread-safe."""

    def __init__(self, *, client_id: str = "sandbox-client", client_secret: str = "sandbox-secret",  # noqa: S107 - a sandbox
                 sync_delay: float = 0.3, access_lifetime: int = 1800, seed: int = 0) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.sync_delay, self.access_lifetime = sync_delay, access_lifetime
        self.lock = threading.RLock()
        self.accounts: dict[str, _Account] = {}
        self.syncs: dict[str, _Sync] = {}
        self.codes: dict[str, dict[str, str]] = {}
        self.access_tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self.refresh_tokens: dict[str, bool] = {}  # token -> still valid
        self.refresh_grants = 0  # successful refreshes
        self.refresh_reuses = 0  # a spent refresh token presented again
        self.faults: list[_Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.webhook_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.webhook_kid = f"sandbox-{seed}-{uuid.uuid4().hex[:8]}"
        self._seq = 0

    # -- knobs used by tests and the CLI -------------------------------------------------------

    def add_account(self, iban: str, description: str = "Current account") -> str:
        with self.lock:
            account = _Account(str(uuid.uuid4()), iban, description)
            self.accounts[account.id] = account
            return account.id

    def stage_transaction(self, account_id: str, amount: Decimal | str, *, execution_date: dt.date | None = None,
                          remittance: str = "", structured: bool = False, counterpart_iban: str | None = None,
                          counterpart_name: str | None = None, end_to_end_id: str | None = None) -> str:
        """A transaction the bank will report at the next synchronization of the account."""
        day = execution_date or dt.date.today()
        with self.lock:
            self._seq += 1
            tx_id = str(uuid.uuid4())
            attributes = {
                "amount": str(Decimal(amount)), "currency": "EUR",
                "executionDate": f"{day.isoformat()}T00:00:00.000Z", "valueDate": f"{day.isoformat()}T00:00:00.000Z",
                "remittanceInformationType": "structured" if structured else "unstructured",
                "remittanceInformation": remittance, "counterpartName": counterpart_name,
                "counterpartReference": counterpart_iban, "description": "SEPA credit transfer",
                "endToEndId": end_to_end_id, "bankTransactionCode": "PMNT-ICDT-ESCT",
                "createdAt": dt.datetime.now(dt.UTC).isoformat(), "updatedAt": dt.datetime.now(dt.UTC).isoformat(),
            }
            self.accounts[account_id].staged.append({"id": tx_id, "type": "transaction", "seq": self._seq,
                                                     "attributes": attributes})
            return tx_id

    def fail_next(self, status: int, count: int = 1, *, retry_after: int = 1) -> None:
        """The next ``count`` API calls answer ``status`` (429 with rate-limit headers, or a 5xx)."""
        with self.lock:
            self.faults.append(_Fault(status, count, retry_after))

    # -- webhooks --------------------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.webhook_key.public_key()))
        return {"keys": [{**jwk, "kid": self.webhook_kid, "alg": "RS512", "use": "sig"}]}

    def webhook(self, event_type: str, account_id: str, *, synchronization_id: str | None = None,
                signer: rsa.RSAPrivateKey | None = None, kid: str | None = None,
                now: dt.datetime | None = None) -> tuple[bytes, str]:
        """A webhook body and its ``Signature`` header (signed with ``signer`` to forge one)."""
        now = now or dt.datetime.now(dt.UTC)
        relationships: dict[str, Any] = {"account": {"data": {"type": "account", "id": account_id}}}
        if synchronization_id:
            relationships["synchronization"] = {"data": {"type": "synchronization", "id": synchronization_id}}
        body = json.dumps({"data": {"type": f"pontoConnect.{event_type}", "id": str(uuid.uuid4()),
                                    "attributes": {"createdAt": now.isoformat(), "accountId": account_id},
                                    "relationships": relationships}}).encode()
        issued = int(now.timestamp())
        claims = {"iss": WEBHOOK_ISSUER, "sub": self.client_id, "aud": self.client_id, "jti": str(uuid.uuid4()),
                  "iat": issued, "exp": issued + 30,
                  "digest": base64.b64encode(hashlib.sha512(body).digest()).decode()}
        token = jwt.encode(claims, signer or self.webhook_key, algorithm="RS512",
                           headers={"kid": kid or self.webhook_kid})
        return body, token

    # -- helpers ---------------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        header = request.header("Authorization") or ""
        token = header[7:] if header.startswith("Bearer ") else ""
        with self.lock:
            expiry = self.access_tokens.get(token)
        return expiry is not None and expiry > time.monotonic()

    def _client_ok(self, request: Request) -> bool:
        header = request.header("Authorization") or ""
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return secrets.compare_digest(user, self.client_id) and secrets.compare_digest(password, self.client_secret)

    def _pair(self, refresh: bool = True) -> dict[str, Any]:
        access = secrets.token_urlsafe(24)
        self.access_tokens[access] = time.monotonic() + self.access_lifetime
        body: dict[str, Any] = {"access_token": access, "token_type": "bearer", "expires_in": self.access_lifetime,
                                "scope": "offline_access ai name"}
        if refresh:
            token = secrets.token_urlsafe(24)
            self.refresh_tokens[token] = True
            body["refresh_token"] = token
        return body

    def _advance(self) -> None:
        """Synchronizations past their delay succeed: staged transactions become visible."""
        now = time.monotonic()
        for sync in self.syncs.values():
            if sync.status == "pending" and now >= sync.created + self.sync_delay / 2:
                sync.status = "running"
            if sync.status == "running" and now >= sync.created + self.sync_delay:
                account = self.accounts[sync.account_id]
                staged, account.staged = account.staged, []
                account.transactions[:0] = sorted(staged, key=lambda t: (t["attributes"]["executionDate"], t["seq"]),
                                                  reverse=True)
                sync.updated = [t["id"] for t in staged]
                account.synchronized_at = dt.datetime.now(dt.UTC).isoformat()
                sync.status = "success"


def _account_json(account: _Account, base: str) -> dict[str, Any]:
    return {"type": "account", "id": account.id, "links": {"self": f"{base}/accounts/{account.id}"},
            "attributes": {"reference": account.iban, "referenceType": "IBAN", "description": account.description,
                           "currency": account.currency, "synchronizedAt": account.synchronized_at,
                           "authorizationExpirationExpectedAt": None}}


def _tx_json(tx: dict[str, Any], account_id: str) -> dict[str, Any]:
    return {"type": "transaction", "id": tx["id"], "attributes": tx["attributes"],
            "relationships": {"account": {"data": {"type": "account", "id": account_id}}}}


def _page(items: list[dict[str, Any]], request: Request, url: str) -> dict[str, Any] | Response:
    try:
        limit = int(request.query.get("page[limit]", ["10"])[-1])
    except ValueError:
        return _error(400, "invalidParameter", "page[limit] must be a number")
    if not 1 <= limit <= MAX_PAGE_LIMIT:
        return _error(400, "invalidParameter", f"page[limit] must be 1..{MAX_PAGE_LIMIT}")
    after = request.query.get("page[after]", [None])[-1]
    start = 0
    if after:
        ids = [item["id"] for item in items]
        if after not in ids:
            return _error(400, "invalidParameter", "unknown page[after] cursor")
        start = ids.index(after) + 1
    chunk = items[start:start + limit]
    links: dict[str, Any] = {"first": f"{url}?{urlencode({'page[limit]': limit})}"}
    if start + limit < len(items) and chunk:
        links["next"] = f"{url}?{urlencode({'page[limit]': limit, 'page[after]': chunk[-1]['id']})}"
    return {"data": chunk, "links": links, "meta": {"paging": {"limit": limit, "after": after}}}


class _Api:
    """The sandbox's routes (``base_url()`` is its public https origin)."""

    def __init__(self, state: PontoState, base_url: Callable[[], str]) -> None:
        self.state, self.base_url = state, base_url


    def authorize(self, request: Request) -> Response:
        """The consent page, approved at once: redirects to ``redirect_uri`` with a code."""
        q = {k: v[-1] for k, v in request.query.items()}
        if q.get("client_id") != self.state.client_id or q.get("response_type") != "code":
            return _error(400, "invalid_request", "unknown client or response type")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return _error(400, "invalid_request", "PKCE with S256 is required")
        code = secrets.token_urlsafe(16)
        with self.state.lock:
            self.state.codes[code] = {"challenge": q["code_challenge"], "redirect_uri": q.get("redirect_uri", ""),
                                 "scope": q.get("scope", "")}
        target = f"{q.get('redirect_uri', '')}?{urlencode({'code': code, 'state': q.get('state', '')})}"
        return Response(302, b"", {"Location": target})

    def token(self, request: Request) -> Response:  # noqa: PLR0911 - one answer per OAuth error
        if not self.state._client_ok(request):
            return json_response(401, {"error": "invalid_client"})
        form = request.form()
        grant = form.get("grant_type")
        with self.state.lock:
            if grant == "authorization_code":
                found = self.state.codes.pop(form.get("code", ""), None)
                verifier = form.get("code_verifier", "")
                if (found is None or found["redirect_uri"] != form.get("redirect_uri")
                        or _b64(hashlib.sha256(verifier.encode()).digest()) != found["challenge"]):
                    return json_response(400, {"error": "invalid_grant", "error_description": "bad code or verifier"})
                return json_response(200, self.state._pair(refresh="offline_access" in found["scope"]))
            if grant == "refresh_token":
                presented = form.get("refresh_token", "")
                if presented not in self.state.refresh_tokens:
                    return json_response(400, {"error": "invalid_grant", "error_description": "unknown refresh token"})
                if not self.state.refresh_tokens[presented]:
                    self.state.refresh_reuses += 1
                    return json_response(400, {"error": "invalid_grant", "error_description": "refresh token reused"})
                self.state.refresh_tokens[presented] = False
                self.state.refresh_grants += 1
                return json_response(200, self.state._pair())
            if grant == "client_credentials":
                return json_response(200, self.state._pair(refresh=False))
        return json_response(400, {"error": "unsupported_grant_type"})

    def accounts(self, request: Request) -> Response:
        with self.state.lock:
            items = [_account_json(a, self.base_url()) for a in self.state.accounts.values()]
        page = _page(items, request, f"{self.base_url()}/accounts")
        return page if isinstance(page, Response) else json_response(200, page)

    def account(self, request: Request) -> Response:
        with self.state.lock:
            found = self.state.accounts.get(request.params["id"])
            if found is None:
                return _error(404, "resourceNotFound", "no such account")
            return json_response(200, {"data": _account_json(found, self.base_url())})

    def transactions(self, request: Request) -> Response:
        with self.state.lock:
            self.state._advance()
            found = self.state.accounts.get(request.params["id"])
            if found is None:
                return _error(404, "resourceNotFound", "no such account")
            items = [_tx_json(t, found.id) for t in found.transactions]
        page = _page(items, request, f"{self.base_url()}/accounts/{found.id}/transactions")
        return page if isinstance(page, Response) else json_response(200, page)

    def create_sync(self, request: Request) -> Response:
        try:
            attributes = request.json()["data"]["attributes"]
        except (ValueError, KeyError, TypeError):
            return _error(400, "invalidRequest", "not a synchronization")
        with self.state.lock:
            if attributes.get("resourceType") != "account" or attributes.get("resourceId") not in self.state.accounts:
                return _error(400, "invalidRequest", "unknown resource")
            sync = _Sync(str(uuid.uuid4()), attributes["resourceId"], attributes.get("subtype", ""), time.monotonic())
            self.state.syncs[sync.id] = sync
        return json_response(201, {"data": _sync_json(sync)})

    def get_sync(self, request: Request) -> Response:
        with self.state.lock:
            self.state._advance()
            sync = self.state.syncs.get(request.params["id"])
            if sync is None:
                return _error(404, "resourceNotFound", "no such synchronization")
            return json_response(200, {"data": _sync_json(sync)})

    def updated(self, request: Request) -> Response:
        with self.state.lock:
            self.state._advance()
            sync = self.state.syncs.get(request.params["id"])
            if sync is None:
                return _error(404, "resourceNotFound", "no such synchronization")
            wanted = set(sync.updated)
            account_txs = self.state.accounts[sync.account_id].transactions
            items = [_tx_json(t, sync.account_id) for t in account_txs if t["id"] in wanted]
        page = _page(items, request, f"{self.base_url()}/synchronizations/{sync.id}/updated-transactions")
        return page if isinstance(page, Response) else json_response(200, page)

    def keys(self, _request: Request) -> Response:
        return json_response(200, self.state.jwks())

    def root(self, _request: Request) -> Response:
        base = self.base_url()
        links = {"accounts": f"{base}/accounts", "synchronizations": f"{base}/synchronizations",
                 "oauth2": {"authorization": f"{base}/oauth2/auth", "token": f"{base}/oauth2/token"}}
        return json_response(200, {"links": links})


def build_app(state: PontoState, base_url: Callable[[], str]) -> Callable[[Request], Response]:
    """The request handler of the sandbox (``base_url()`` is its public https origin)."""
    api = _Api(state, base_url)
    router = Router()
    router.add("GET", "/", api.root)
    router.add("GET", "/oauth2/auth", api.authorize)
    router.add("POST", "/oauth2/token", api.token)
    router.add("GET", "/accounts", api.accounts)
    router.add("GET", "/accounts/{id}", api.account)
    router.add("GET", "/accounts/{id}/transactions", api.transactions)
    router.add("POST", "/synchronizations", api.create_sync)
    router.add("GET", "/synchronizations/{id}", api.get_sync)
    router.add("GET", "/synchronizations/{id}/updated-transactions", api.updated)
    router.add("GET", "/webhooks/keys", api.keys)
    open_paths = {"/", "/oauth2/auth", "/oauth2/token", "/webhooks/keys"}

    def app(request: Request) -> Response:
        with state.lock:
            state.requests.append((request.method, request.path))
            fault = next((f for f in state.faults if f.remaining > 0), None)
            if fault is not None and request.path not in open_paths:
                fault.remaining -= 1
                if fault.status == 429:
                    return Response(429, b'{"errors":[{"code":"tooManyRequests"}]}',
                                    {"Content-Type": "application/json", "Retry-After": str(fault.retry_after),
                                     "x-ratelimit-limit": "100", "x-ratelimit-remaining": "0",
                                     "x-ratelimit-reset": str(fault.retry_after)})
                return _error(fault.status, "serverError", "injected fault")
        if request.path not in open_paths and not state._authorized(request):
            return _error(401, "unauthorized", "missing or expired access token")
        return router.dispatch(request, request.path,
                               lambda status: _error(status, "notFound", "no such route"))

    return app


def _sync_json(sync: _Sync) -> dict[str, Any]:
    return {"type": "synchronization", "id": sync.id,
            "attributes": {"resourceType": "account", "resourceId": sync.account_id, "subtype": sync.subtype,
                           "status": sync.status, "errors": []}}
