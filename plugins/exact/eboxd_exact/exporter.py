"""The Exact Online exporter: each stored document into an Exact division, once.

What one export does (accounting spec §1.9–1.12, §3):

1. A Document (``documents/Documents``): ``Subject`` = the e-Box subject plus ``[eboxd exp-…]``,
   a marker stable for the e-Box message and document; ``Type`` from the division's
   ``DocumentTypes`` (documents with an amount: purchase invoice 20, else miscellaneous 55).
2. Its attachment (``documents/DocumentAttachments``, base64; bodies over Exact's 10 MB refused).
3. Optionally (``journal`` + ``gl_account`` set, the document has an amount, its sender is mapped
   in ``suppliers`` and that supplier is found by VAT/CBE number in ``crm/Accounts``) a purchase
   entry on our Document; never a supplier created.

Not twice: Exact has no idempotency key. The ledger makes a redelivered, recorded export a no-op;
an attempt after an earlier one that began (``previous_attempts``) first looks the marker up and
completes what is missing (the attachment, the purchase entry) instead of creating a second
Document.

Tokens are not settings: they rotate every ten minutes, so they live in ``daemon.credentials``
(``eboxd exact connect`` stores them) as one row per Exact *connection* — host, app and Exact
user — shared by every enterprise connected with that user, because Exact keeps one refresh-token
chain per user and app. Each enterprise's settings name the connection and keep their own
division. Settings: ``client_id``, ``client_secret`` (secret), ``connection``, ``division``,
``region`` or ``url``, and the purchase-entry ones.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog

from daemon.credentials import CallErrorLog, NeedsReconnect, TokenStore
from daemon.plugins import ExportDocument, PermanentExportError, Setting, SettingsError, service_url
from eboxd_exact.client import REGIONS, ExactClient, TokenSource, base_url_of
from eboxd_exact.errors import NotConnected
from eboxd_exact.limits import governor_for
from eboxd_exact.oauth import EARLIEST_REFRESH, PROVIDER, REFRESH_BEFORE, OAuthApp, host_of, refresh_pair
from eboxd_exact.odata import quote

__all__ = ["INVOICE_TYPE", "LETTER_TYPE", "MAX_BODY", "ExactExporter", "connection_tokens", "marker_of",
           "parse_suppliers"]

log = structlog.get_logger(__name__)

MAX_BODY = 10 * 1024 * 1024  # Exact's request body cap
INVOICE_TYPE, LETTER_TYPE, FALLBACK_TYPE = 20, 55, 183
SUBJECT_LIMIT = 200


def marker_of(document: ExportDocument) -> str:
    """Stable for the e-Box message and the document: the same export always carries the same one."""
    seed = f"{document.enterprise_number}:{document.message_id}:{document.sha256}"
    return "exp-" + hashlib.sha256(seed.encode()).hexdigest()[:12]


def subject_of(document: ExportDocument, marker: str) -> str:
    tag = f" [eboxd {marker}]"
    text = " ".join((document.subject or document.file_name or "e-Box document").split())
    return text[: SUBJECT_LIMIT - len(tag)] + tag


def body_size(raw_bytes: int, file_name: str) -> int:
    """The JSON body of the attachment call: base64 (a third more) plus the envelope."""
    return 4 * ((raw_bytes + 2) // 3) + len(file_name.encode()) + 200


def parse_suppliers(text: str) -> dict[str, str]:
    """``SENDER=VAT;SENDER=VAT`` → {sender (lower case): 10-digit number}."""
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in str(text).split(";"))):
        sender, sep, number = item.rpartition("=")
        digits = "".join(ch for ch in number if ch.isdigit())
        if not sep or not sender.strip() or len(digits) not in (9, 10):
            raise SettingsError(f"exact: suppliers takes SENDER=VAT-or-CBE-number pairs separated by ';', got {item!r}")
        out[sender.strip().lower()] = digits.zfill(10)
    return out


def connection_tokens(store: TokenStore, app: OAuthApp, subject: str, *, reconnect_hint: str,
                      clock: Callable[[], Any] | None = None,
                      transport: httpx.BaseTransport | None = None) -> TokenSource:
    """The bearer of the Exact connection ``subject``, refreshed (by one worker of all that use the
    connection, whatever their enterprise) when due."""
    refresh_options: dict[str, Any] = {"transport": transport, **({"clock": clock} if clock else {})}

    def source(stale_version: int | None = None) -> tuple[str, int]:
        try:
            stored = store.fresh(PROVIDER, subject, lambda token: refresh_pair(app, token, **refresh_options),
                                 refresh_before=REFRESH_BEFORE, stale_version=stale_version,
                                 earliest_refresh=EARLIEST_REFRESH)
        except NeedsReconnect as exc:
            raise NotConnected(f"{exc}; every enterprise using this connection waits for it",
                               hint=reconnect_hint) from None
        if stored.details.get("base_url", app.base_url) != app.base_url:
            raise NotConnected(f"exact connection {stored.label} is on {stored.details.get('base_url')}, "
                               f"not {app.base_url}", hint=reconnect_hint)
        return stored.pair.access_token, stored.version

    return source


def _default_store() -> TokenStore:
    from daemon.workers.context import worker_context  # noqa: PLC0415 - the worker's engine and master key

    context = worker_context()
    return TokenStore(context.engine, context.secrets)


class ExactExporter:
    name = "exact"
    description = "Exact Online (REST): documents, attachments and optional purchase entries in a division"
    settings = (
        Setting("client_id", "client ID of the Exact App Center registration", required=True),
        Setting("client_secret", "client secret of that registration", required=True, secret=True),
        Setting("connection", "the Exact connection (host/app/user) whose tokens this enterprise shares with the "
                "others connected by that user; `eboxd exact connect` sets it", required=True),
        Setting("division", "Exact division (company) code; `eboxd exact connect` picks it", required=True),
        Setting("region", f"Exact host country: {', '.join(REGIONS)}", default="be"),
        Setting("url", "another Exact host (e.g. the sandbox: http://127.0.0.1:8792)"),
        Setting("journal", "purchase journal code: when set, documents with an amount get a purchase entry"),
        Setting("gl_account", "GUID of the general-ledger account for purchase entry lines (with journal)"),
        Setting("vat_code", "VAT code for purchase entry lines (default: Exact's default)"),
        Setting("suppliers", "e-Box sender to supplier VAT/CBE number: FOD Financiën=0308357159;RSZ=0206731645"),
        Setting("timeout", "seconds to wait for Exact", default="30"),
    )

    def __init__(self, *, tokens: TokenStore | Callable[[], TokenStore] | None = None,
                 clock: Callable[[], Any] | None = None, sleep: Callable[[float], None] = time.sleep,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._tokens_given = tokens
        self._store: TokenStore | None = tokens if isinstance(tokens, TokenStore) else None
        self._clock = clock
        self._sleep = sleep
        self._transport = transport
        self._clients: dict[tuple[str, ...], ExactClient] = {}
        self._types: dict[tuple[str, int], dict[int, str]] = {}
        self._lock = threading.Lock()

    # -- settings -------------------------------------------------------------------------------

    def validate(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        region = str(settings.get("region", "be")).strip().lower()
        if region not in REGIONS:
            raise SettingsError(f"exact: region must be one of {', '.join(REGIONS)}, got {region!r}")
        division = str(settings["division"]).strip()
        if not division.isdigit():
            raise SettingsError(f"exact: division must be a division code (digits), got {division!r}")
        try:
            timeout = float(settings.get("timeout", 30))
        except ValueError:
            raise SettingsError(f"exact: timeout must be a number of seconds, got {settings['timeout']!r}") from None
        if not 1 <= timeout <= 120:
            raise SettingsError("exact: timeout must be between 1 and 120 seconds")
        values: dict[str, Any] = {"client_id": str(settings["client_id"]).strip(),
                                  "client_secret": str(settings["client_secret"]).strip(),
                                  "division": division, "region": region, "timeout": str(timeout)}
        if settings.get("url"):
            values["url"] = service_url(str(settings["url"]).strip(), exporter="exact", carrying="tokens only travel")
        # A connection's tokens work on its host for its app only: a setting naming another's is refused.
        connection = str(settings["connection"]).strip()
        host, _, rest = connection.partition("/")
        client_id, _, user = rest.partition("/")
        if host != host_of(self.base_url(values)) or client_id != values["client_id"] or not user:
            raise SettingsError(f"exact: connection {connection!r} is not one of app {values['client_id']} on "
                                f"{host_of(self.base_url(values))} (host/client id/user)")
        values["connection"] = connection
        if settings.get("journal"):
            if not settings.get("gl_account"):
                raise SettingsError("exact: journal needs gl_account (the GUID of the account to book on)")
            values["journal"] = str(settings["journal"]).strip()
        for name in ("gl_account", "vat_code"):
            if settings.get(name):
                values[name] = str(settings[name]).strip()
        if settings.get("suppliers"):
            values["suppliers"] = ";".join(f"{k}={v}" for k, v in parse_suppliers(settings["suppliers"]).items())
        return values

    def target(self, settings: Mapping[str, Any]) -> str:
        host = urlsplit(self.base_url(settings)).netloc
        return f"exact:{host}:{settings['division']}"

    @staticmethod
    def base_url(settings: Mapping[str, Any]) -> str:
        return str(settings.get("url") or base_url_of(settings.get("region", "be")))

    # -- clients --------------------------------------------------------------------------------

    def token_store(self) -> TokenStore:
        with self._lock:
            if self._store is None:
                given = self._tokens_given
                self._store = given() if callable(given) else _default_store()
            return self._store

    def app(self, settings: Mapping[str, Any]) -> OAuthApp:
        return OAuthApp(self.base_url(settings), settings["client_id"], settings["client_secret"])

    def token_source(self, enterprise_number: str, settings: Mapping[str, Any]) -> TokenSource:
        return connection_tokens(self.token_store(), self.app(settings), str(settings["connection"]),
                                 reconnect_hint=f"run `eboxd exact connect --enterprise {enterprise_number}` "
                                                "(one consent reconnects every enterprise of the connection)",
                                 clock=self._clock, transport=self._transport)

    def client(self, enterprise_number: str, settings: Mapping[str, Any]) -> ExactClient:
        base_url = self.base_url(settings)
        client_key = (enterprise_number, base_url, str(settings["division"]), settings["client_id"],
                      str(settings["connection"]), str(settings.get("timeout", 30)))
        with self._lock:
            client = self._clients.get(client_key)
        if client is not None:
            return client
        # Exact counts its limits per app and division (company), 60 a minute and 5,000 a day, not
        # per user: enterprises sharing a connection each have their division's own budget. The
        # error circuit breaker counts per division too, over every user and endpoint — stricter
        # than Exact's block (per user, division, endpoint), so it always opens first.
        key = f"{base_url}|{settings['client_id']}|{settings['division']}"
        engine = self.token_store().engine
        governor = governor_for(key, **({"clock": self._clock} if self._clock else {}), sleep=self._sleep,
                                errors=lambda: CallErrorLog(engine, PROVIDER, key))
        client = ExactClient(base_url, int(settings["division"]), self.token_source(enterprise_number, settings),
                             governor, timeout=float(settings.get("timeout", 30)), transport=self._transport)
        with self._lock:
            return self._clients.setdefault(client_key, client)

    def document_type(self, client: ExactClient, document: ExportDocument) -> int:
        key = (client.base_url, int(client.division or 0))
        types = self._types.get(key)
        if types is None:
            types = self._types[key] = client.document_types()
        has_amount = document.payment is not None and document.payment.amount is not None
        for wanted in ((INVOICE_TYPE,) if has_amount else ()) + (LETTER_TYPE, FALLBACK_TYPE):
            if wanted in types:
                return wanted
        raise PermanentExportError(f"exact: division {client.division} offers none of the document types "
                                   f"{INVOICE_TYPE}, {LETTER_TYPE}, {FALLBACK_TYPE}")

    # -- export ---------------------------------------------------------------------------------

    def export(self, document: ExportDocument, settings: Mapping[str, Any]) -> dict[str, Any]:
        client = self.client(document.enterprise_number, settings)
        marker = marker_of(document)
        file_name = document.file_name or f"{marker}.pdf"
        if document.size is not None and body_size(document.size, file_name) > MAX_BODY:
            raise PermanentExportError(f"exact: {document.size} bytes is over Exact's 10 MB request limit once "
                                       "base64-encoded; export it with the zip exporter")
        with document.open() as source:
            data = source.read(MAX_BODY)
        if body_size(len(data), file_name) > MAX_BODY:
            raise PermanentExportError("exact: the document is over Exact's 10 MB request limit once base64-encoded")
        receipt: dict[str, Any] = {"division": int(settings["division"]), "marker": marker}
        client.governor.ensure_daily(self.calls_needed(client, document, settings))
        found = self._find(client, marker) if document.previous_attempts > 0 else None
        if found is not None:
            exact_id = str(found["ID"])
            receipt["reconciled"] = True
            attachments = client.attachments_of(exact_id)
            log.info("exact.document_found", document_id=document.document_id, exact_document=exact_id,
                     attachments=len(attachments))
        else:
            payment = document.payment
            date = (document.published_at or document.received_at)
            created = client.create_document(
                subject=subject_of(document, marker), type_id=self.document_type(client, document),
                date=date.date().isoformat() if date else None,
                amount=str(payment.amount) if payment and payment.amount is not None else None,
                currency=payment.currency if payment and payment.amount is not None else None)
            exact_id = str(created["ID"])
            attachments = []
        receipt["document"] = exact_id
        if attachments:
            receipt["attachment"] = str(attachments[0]["ID"])
        else:
            receipt["attachment"] = str(client.create_attachment(exact_id, file_name, data)["ID"])
        if settings.get("journal"):
            receipt.update(self._purchase_entry(client, document, settings, exact_id, marker,
                                                check_existing=found is not None))
        return receipt

    def calls_needed(self, client: ExactClient, document: ExportDocument, settings: Mapping[str, Any]) -> int:
        """At most how many calls this export makes: it starts only if today has them left."""
        calls = 2 + (document.previous_attempts > 0) * 2  # document, attachment; a lookup of each
        calls += (client.base_url, int(client.division or 0)) not in self._types
        if settings.get("journal") and document.payment is not None and document.payment.amount:
            calls += 2 + (document.previous_attempts > 0)  # supplier, entry; a lookup
        return calls

    @staticmethod
    def _find(client: ExactClient, marker: str) -> dict[str, Any] | None:
        for row in client.documents_with(marker):
            if marker in str(row.get("Subject") or ""):
                return row
        return None

    def _purchase_entry(self, client: ExactClient, document: ExportDocument, settings: Mapping[str, Any],
                        exact_id: str, marker: str, *, check_existing: bool) -> dict[str, Any]:
        payment = document.payment
        if payment is None or payment.amount is None or payment.amount == Decimal(0):
            return {}
        if check_existing:
            existing = client.purchase_entries_where(f"Document eq guid'{exact_id}'")
            if existing:
                return {"purchase_entry": str(existing[0]["EntryID"])}
        number = parse_suppliers(settings.get("suppliers", "")).get((document.sender or "").strip().lower())
        if number is None:
            return {"purchase_entry": None,
                    "purchase_entry_skipped": f"no supplier mapped for sender {document.sender!r}"}
        supplier = self.find_supplier(client, number)
        if supplier is None:
            return {"purchase_entry": None, "purchase_entry_skipped": f"no supplier with VAT/CBE number {number}"}
        date = document.published_at or document.received_at
        line: dict[str, Any] = {"GLAccount": settings["gl_account"], "AmountFC": str(payment.amount),
                                "Description": (document.subject or "")[:60]}
        if settings.get("vat_code"):
            line["VATCode"] = settings["vat_code"]
        entry = client.create_purchase_entry({
            "Journal": settings["journal"], "Supplier": supplier, "Document": exact_id,
            "EntryDate": date.date().isoformat() if date else None, "Currency": payment.currency,
            "YourRef": (payment.reference or marker)[:30], "Description": (document.subject or marker)[:60],
            "PurchaseEntryLines": [line]})
        return {"purchase_entry": str(entry["EntryID"]), "supplier": supplier}

    @staticmethod
    def find_supplier(client: ExactClient, number: str) -> str | None:
        """A supplier's account ID by VAT number as typed (BE0…, 0…, dotted) or CBE number; one call."""
        dotted = f"{number[:4]}.{number[4:7]}.{number[7:]}"
        candidates = [f"VATNumber eq {quote(v)}" for v in (f"BE{number}", number, dotted, f"BE {dotted}")]
        rows = client.accounts_where(" or ".join([*candidates, f"ChamberOfCommerce eq {quote(number)}"]))
        suppliers = [row for row in rows if row.get("IsSupplier")]
        return str(suppliers[0]["ID"]) if len(suppliers) == 1 else None
