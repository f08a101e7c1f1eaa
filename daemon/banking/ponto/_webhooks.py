"""Verifying Ponto's signed webhooks (``specs/banking.md`` §2.4).

The ``Signature`` header is a compact JWT, RS512, whose ``kid`` names a key of the webhook keys
endpoint (cached; fetched again on an unknown ``kid``, at most once a minute). It must be issued
by ``[ponto] webhook_issuer`` for our application (``aud`` = client id), be fresh (``iat`` within
``webhook_max_age_seconds``, ``exp`` not past), carry a ``digest`` equal to base64(SHA-512) of the
raw body, and its ``jti`` must not have been accepted before (kept in the database, so a replay
to another node is refused too).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import structlog
from sqlalchemy import Engine, delete
from sqlalchemy.dialects import postgresql, sqlite

from daemon import metrics
from daemon.banking.ponto._errors import WebhookRefused
from daemon.banking.ponto._settings import PontoSettings
from daemon.db.models import PontoWebhookSeen
from daemon.tls import describe_http_error

__all__ = ["SYNC_EVENTS", "WebhookEvent", "WebhookVerifier", "webhook_route"]

log = structlog.get_logger(__name__)

KEYS_REFETCH_SECONDS = 60.0
SEEN_KEPT = dt.timedelta(days=1)


@dataclass(frozen=True)
class WebhookEvent:
    type: str  # e.g. pontoConnect.account.transactionsCreated
    id: str
    account_id: str | None
    synchronization_id: str | None
    jti: str


class WebhookVerifier:
    """Thread-safe; one per ``eboxd serve``."""

    def __init__(self, settings: PontoSettings, engine: Engine, *,
                 fetch_keys: Callable[[], dict[str, Any]] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings, self.engine, self._clock = settings, engine, clock
        self._fetch = fetch_keys or self._fetch_keys
        self._keys: dict[str, Any] = {}
        self._fetched_at = -KEYS_REFETCH_SECONDS
        self._lock = threading.Lock()
        self.key_fetches = 0

    def _fetch_keys(self) -> dict[str, Any]:
        with httpx.Client(verify=self.settings.ssl_context(), timeout=self.settings.timeout_seconds) as http:
            response = http.get(self.settings.webhook_keys_url)
            response.raise_for_status()
            return dict(response.json())

    def _key(self, kid: str) -> Any:
        with self._lock:
            if kid not in self._keys and time.monotonic() - self._fetched_at >= KEYS_REFETCH_SECONDS:
                self._fetched_at = time.monotonic()
                self.key_fetches += 1
                try:
                    jwks = self._fetch()
                except (httpx.HTTPError, ValueError) as exc:
                    detail = describe_http_error(exc) if isinstance(exc, httpx.HTTPError) else type(exc).__name__
                    raise WebhookRefused("keys_unavailable", detail) from None
                self._keys = {k["kid"]: jwt.PyJWK(k, algorithm="RS512").key for k in jwks.get("keys", [])
                              if k.get("kid")}
            found = self._keys.get(kid)
        if found is None:
            raise WebhookRefused("unknown_key", kid[:80])
        return found

    def verify(self, body: bytes, signature: str | None) -> WebhookEvent:
        """The event, or :class:`WebhookRefused` (with a stable ``reason``)."""
        if not signature:
            raise WebhookRefused("malformed", "no Signature header")
        try:
            header = jwt.get_unverified_header(signature)
        except jwt.PyJWTError:
            raise WebhookRefused("malformed", "Signature is not a JWT") from None
        if header.get("alg") != "RS512":
            raise WebhookRefused("bad_signature", f"alg {header.get('alg')!r}")
        key = self._key(str(header.get("kid") or ""))
        try:
            claims = jwt.decode(signature, key, algorithms=["RS512"], audience=self.settings.client_id,
                                issuer=self.settings.webhook_issuer, leeway=5,
                                options={"require": ["iat", "exp", "jti", "digest", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise WebhookRefused("stale", "expired") from None
        except jwt.InvalidSignatureError:
            raise WebhookRefused("bad_signature") from None
        except jwt.PyJWTError as exc:
            raise WebhookRefused("bad_claims", type(exc).__name__) from None
        age = self._clock() - float(claims["iat"])
        if not -5 <= age <= self.settings.webhook_max_age_seconds:
            raise WebhookRefused("stale", f"issued {age:.0f} s ago")
        digest = base64.b64encode(hashlib.sha512(body).digest()).decode()
        if not hmac.compare_digest(digest, str(claims["digest"])):
            raise WebhookRefused("digest_mismatch")
        event = _event(body, str(claims["jti"]))
        self._remember(event.jti)
        return event

    def _remember(self, jti: str) -> None:
        now = dt.datetime.now(dt.UTC)
        with self.engine.begin() as conn:
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            new = conn.execute(insert(PontoWebhookSeen).values(jti=jti[:100], seen_at=now)
                               .on_conflict_do_nothing(index_elements=["jti"])
                               .returning(PontoWebhookSeen.jti)).scalar()
            conn.execute(delete(PontoWebhookSeen).where(PontoWebhookSeen.seen_at < now - SEEN_KEPT))
        if new is None:
            raise WebhookRefused("replayed", jti[:80])


def _event(body: bytes, jti: str) -> WebhookEvent:
    try:
        data = json.loads(body)["data"]
        relationships = data.get("relationships") or {}
        account = ((relationships.get("account") or {}).get("data") or {}).get("id") \
            or (data.get("attributes") or {}).get("accountId")
        sync = ((relationships.get("synchronization") or {}).get("data") or {}).get("id") \
            or (data.get("attributes") or {}).get("synchronizationId")
        return WebhookEvent(str(data["type"]), str(data.get("id", "")), account and str(account),
                            sync and str(sync), jti)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise WebhookRefused("malformed", "body is not a Ponto event") from None


SYNC_EVENTS = frozenset({"pontoConnect.account.transactionsCreated", "pontoConnect.account.transactionsUpdated",
                         "pontoConnect.account.reauthorized"})


def webhook_route(verifier: WebhookVerifier) -> Callable[[Mapping[str, str], bytes], tuple[int, bytes]]:
    """The POST handler for ``eboxd serve``: 202 for a verified event (a sync queued when it names
    one of our accounts' new transactions), 400/401/409 for a refused one — logged, counted."""
    from daemon.banking.ponto._schedule import queue_webhook_sync  # noqa: PLC0415 - avoids an import cycle

    def route(headers: Mapping[str, str], body: bytes) -> tuple[int, bytes]:
        signature = next((v for k, v in headers.items() if k.lower() == "signature"), None)
        try:
            event = verifier.verify(body, signature)
        except WebhookRefused as exc:
            metrics.PONTO_WEBHOOKS.labels(outcome=exc.reason).inc()
            log.warning("ponto.webhook_refused", reason=exc.reason, error=str(exc))
            status = {"replayed": 409, "malformed": 400, "keys_unavailable": 503}.get(exc.reason, 401)
            return status, json.dumps({"error": exc.reason}).encode()
        queued = False
        if event.type in SYNC_EVENTS and event.account_id:
            with verifier.engine.begin() as tx:
                queued = queue_webhook_sync(tx, event.account_id, event.id or event.jti, dt.datetime.now(dt.UTC))
        metrics.PONTO_WEBHOOKS.labels(outcome="accepted").inc()
        log.info("ponto.webhook_accepted", type=event.type, account=event.account_id, sync_queued=queued)
        return 202, json.dumps({"accepted": True, "syncQueued": queued}).encode()

    return route
