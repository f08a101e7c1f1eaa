"""Mutable state of the e-Box sandbox: clients, tokens, mailboxes, fault rules, request log.

One :class:`SandboxState` per running sandbox; every handler takes its ``lock`` for mutations.
The clock is ``real time + offset`` so tests can jump forward (token and message expiry).
"""

from __future__ import annotations

import random
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from daemon.sandbox.ebox.reference import PROVIDERS, ProviderInfo
from daemon.sandbox.ebox.seed import Catalogue, SeedLetter, build_catalogue

__all__ = [
    "DOC_CONSUMER_SCOPE",
    "LEGACY_SCOPES",
    "REGISTRY_SCOPE",
    "Client",
    "FaultRule",
    "IssuedToken",
    "MessageRecord",
    "SandboxState",
    "Settings",
]

DOC_CONSUMER_SCOPE = "scope:document:management:consult:ws-eboxrestentreprise:documentconsumer"
REGISTRY_SCOPE = "scope:documentmanagement:ebox:enterprise:federation-rest:registry"
_LEGACY = "scope:document:management:consult:ws-eboxrestentreprise:"
LEGACY_SCOPES = {
    "summary": _LEGACY + "summaryownebox",
    "messages": _LEGACY + "messagesfull",
    "reference": _LEGACY + "referencedata",
}
DEFAULT_SCOPES = (DOC_CONSUMER_SCOPE, REGISTRY_SCOPE)


@dataclass
class Client:
    """An OAuth client as ChaMan would register it."""

    client_id: str
    enterprise_number: str
    certificate: x509.Certificate
    scopes: frozenset[str]
    activated: bool = True
    """False = the DocConsumer terms were not accepted (e-Box not activated for consultation)."""
    mandates: frozenset[str] = frozenset()
    """Enterprises this client may consult via ``On-Behalf-Of-Enterprise-Number`` (inferred, §3.5)."""
    registered_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def public_key(self) -> RSAPublicKey:
        key = self.certificate.public_key()
        if not isinstance(key, RSAPublicKey):  # checked at registration
            raise TypeError("not an RSA certificate")
        return key

    def summary(self) -> dict[str, Any]:
        """JSON form for the admin API (no key material beyond the subject)."""
        return {
            "clientId": self.client_id,
            "enterpriseNumber": self.enterprise_number,
            "scopes": sorted(self.scopes),
            "activated": self.activated,
            "mandates": sorted(self.mandates),
            "certificateSubject": self.certificate.subject.rfc4514_string(),
            "certificateNotAfter": self.certificate.not_valid_after_utc.isoformat(),
        }


@dataclass
class IssuedToken:
    """An opaque bearer token."""

    value: str
    client_id: str
    scopes: frozenset[str]
    expires_at: datetime
    revoked: bool = False


@dataclass
class MessageRecord:
    """A letter in one e-Box at one provider, with its mutable flags."""

    letter: SeedLetter
    read: bool = False
    visible: bool = True


@dataclass
class FaultRule:
    """An injected fault, of a kind listed in :mod:`daemon.sandbox.ebox.faults`. ``rate`` 1.0 fires every
    time; ``count`` limits how often it fires."""

    rule_id: int
    kind: str
    rate: float = 1.0
    status: int = 503
    retry_after: int | None = None
    delay: float = 0.0
    path: str = ""
    """Only requests whose path contains this string (empty = every non-admin request)."""
    count: int | None = None
    field: str = ""
    """``missing_field``: the field removed."""
    size: int = 0
    """``huge_attachment``: bytes of each download."""
    fired: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON form for the admin API."""
        return {
            "id": self.rule_id, "kind": self.kind, "rate": self.rate, "status": self.status,
            "retryAfter": self.retry_after, "delay": self.delay, "path": self.path,
            "count": self.count, "field": self.field, "size": self.size, "fired": self.fired,
        }


@dataclass
class Settings:
    """Tunables of the token server and the registry."""

    token_lifetime: int = 600
    max_assertion_lifetime: int = 300
    clock_skew: int = 30
    environment: str = "simulation"
    audience: str | None = None
    """Expected ``aud``; ``None`` = the token URL as the client addresses it (Host header)."""


class SandboxState:
    """All mutable state, guarded by ``lock``."""

    def __init__(self, seed: int = 0, *, anchor: date | None = None, enterprises: int = 3,
                 settings: Settings | None = None, letters: int | None = None, pdf_size: int | None = None) -> None:
        self.lock = threading.RLock()
        self.settings = settings or Settings()
        self.seed = seed
        self._anchor = anchor
        self._enterprise_count = enterprises
        self.clock_offset = timedelta(0)
        self.clients: dict[str, Client] = {}
        self.providers: dict[str, ProviderInfo] = {p.provider_id: p for p in PROVIDERS}
        self.pdf_size = pdf_size
        """Published letters' PDFs are padded to this size too (see :func:`build_catalogue`)."""
        self.catalogue: Catalogue = build_catalogue(seed, anchor=anchor, enterprises=enterprises, letters=letters,
                                                    pdf_size=pdf_size)
        self.reset()

    def reset(self, *, clients: bool = False) -> None:
        """Back to the seeded content: mailboxes, flags, tokens, faults, log, clock, maintenance."""
        with self.lock:
            self.mailboxes: dict[tuple[str, str], dict[str, MessageRecord]] = {}
            for letter in self.catalogue.letters:
                self.add_letter(letter)
            self.published: list[SeedLetter] = []
            self.tokens: dict[str, IssuedToken] = {}
            self.used_jti: OrderedDict[str, datetime] = OrderedDict()  # oldest first: see token._remember_jti
            self.faults: list[FaultRule] = []
            self._next_fault_id = 1
            self.fault_rng = random.Random(self.seed)  # noqa: S311 - reproducible fault draws
            self.publish_rng = random.Random(self.seed + 1)  # noqa: S311 - reproducible fake letters
            self.requests: deque[dict[str, Any]] = deque(maxlen=5000)
            self.request_counter = 0
            self.maintenance: dict[str, tuple[datetime, datetime]] = {}
            self.last_consultation: dict[tuple[str, str], datetime] = {}
            self.clock_offset = timedelta(0)
            if clients:
                self.clients.clear()

    def now(self) -> datetime:
        """The sandbox clock (UTC, aware)."""
        return datetime.now(UTC) + self.clock_offset

    def add_letter(self, letter: SeedLetter) -> MessageRecord:
        """Put a letter into its recipient's e-Box at its provider."""
        with self.lock:
            box = self.mailboxes.setdefault((letter.provider_id, letter.enterprise_number), {})
            record = MessageRecord(letter)
            box[letter.message_id] = record
            return record

    def mailbox(self, provider_id: str, enterprise: str) -> list[MessageRecord]:
        """Non-expired messages of one e-Box at one provider, newest first."""
        now = self.now()
        with self.lock:
            box = list(self.mailboxes.get((provider_id, enterprise), {}).values())
        live = [r for r in box if r.letter.expiration > now and r.letter.receipt <= now]
        live.sort(key=lambda r: (r.letter.receipt, r.letter.message_id), reverse=True)
        return live

    def maintenance_window(self, provider_id: str) -> tuple[datetime, datetime] | None:
        """The provider's current maintenance window, if one covers now."""
        window = self.maintenance.get(provider_id)
        if window is not None and window[0] <= self.now() < window[1]:
            return window
        return None

    def add_fault(self, kind: str, **options: Any) -> FaultRule:
        """Install a fault rule (see :class:`FaultRule`)."""
        with self.lock:
            rule = FaultRule(self._next_fault_id, kind, **options)
            self._next_fault_id += 1
            self.faults.append(rule)
            return rule

    def log_request(self, entry: dict[str, Any]) -> None:
        """Append to the request log (bounded)."""
        with self.lock:
            self.request_counter += 1
            entry["seq"] = self.request_counter
            self.requests.append(entry)
