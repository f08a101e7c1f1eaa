"""The Yuki exporter: each stored document into a Yuki administration's archive, once.

Settings (``eboxd yuki connect`` fills them after checking the key and the administration):
``access_key`` (secret: stored encrypted), ``administration`` (its ID), ``domain`` (when the key
sees several), ``region`` (``be``/``nl``), ``url`` (another host, e.g. the sandbox), ``folder``
(default folder, 7 "To be handled by Yuki") and ``folders`` (per e-Box message type,
``FIN-TAX-ASSESSMENT=purchase,NSSO-CONTRIBUTIONS=1``).

Not twice: Yuki has no idempotency key. The export ledger makes a redelivered task a no-op once
an export is recorded; for the gap between an upload and that record (a worker killed, a
response lost) every upload carries a marker of the document and its e-Box message in
``remarks`` and in the file name, and an export that is not its first attempt first asks Yuki
(``SearchDocuments``) whether that marker is already there.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import structlog

from daemon.plugins import ExportDocument, PermanentExportError, Setting, SettingsError, service_url
from eboxd_yuki.client import REGIONS, YukiClient, base_url_of
from eboxd_yuki.errors import InvalidAccessKey, YukiError

__all__ = ["FOLDER_NAMES", "MAX_BYTES", "YukiExporter", "file_name_of", "marker_of", "parse_folders"]

log = structlog.get_logger(__name__)

FOLDER_NAMES = {"purchase": 1, "sales": 2, "to-be-handled": 7, "other": 8}
DEFAULT_FOLDER = 7
MAX_BYTES = 7 * 1024 * 1024  # Yuki's cap is undocumented; base64 adds a third (accounting spec §2.3)


def _folder(value: str) -> int:
    text = str(value).strip().lower()
    if text in FOLDER_NAMES:
        return FOLDER_NAMES[text]
    if not text.isdigit():
        raise SettingsError(f"yuki: folder {value!r} is not a folder ID or one of {', '.join(FOLDER_NAMES)}")
    return int(text)


def parse_folders(text: str) -> dict[str, int]:
    """``TYPE=FOLDER,TYPE=FOLDER`` → ``{TYPE: folder id}`` (types as the e-Box names them)."""
    folders: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in str(text).split(","))):
        message_type, sep, folder = item.partition("=")
        if not sep or not message_type.strip():
            raise SettingsError(f"yuki: folders takes MESSAGE-TYPE=FOLDER pairs, got {item!r}")
        folders[message_type.strip().upper()] = _folder(folder)
    return folders


def marker_of(document: ExportDocument) -> str:
    """Stable per document content: the same document exported again carries the same marker."""
    return f"exp-{document.sha256[:12]}"


def _slug(text: str | None, limit: int) -> str:
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:limit].strip("-") or "unknown"


def file_name_of(document: ExportDocument) -> str:
    """``<date>_<sender>_<subject>_<8 hex>.<ext>``: readable in Yuki, unique, searchable."""
    when = document.published_at or document.received_at
    day = when.date().isoformat() if when else "undated"
    suffix = (document.file_name or "").rpartition(".")[2].lower() if "." in (document.file_name or "") else ""
    ext = suffix if re.fullmatch(r"[a-z0-9]{1,5}", suffix) else "pdf"
    return f"{day}_{_slug(document.sender, 40)}_{_slug(document.subject, 40)}_{document.sha256[:8]}.{ext}"


def remarks_of(document: ExportDocument, marker: str) -> str:
    subject = (document.subject or "").replace("\n", " ")[:200]
    return f"e-Box {document.message_id}: {subject} [eboxd {marker}]"


class YukiExporter:
    name = "yuki"
    description = "Yuki (SOAP Archive service): documents into an administration's folders"
    settings = (
        Setting("access_key", "Yuki web-service access key (Yuki: Settings → Web service)", required=True,
                secret=True),
        Setting("administration", "ID of the Yuki administration (`eboxd yuki connect` lists them)",
                required=True),
        Setting("domain", "ID of the Yuki domain holding the administration, when the key sees several"),
        Setting("region", "be or nl: the country of the Yuki account", default="be"),
        Setting("url", "another Yuki host (e.g. the sandbox: http://127.0.0.1:8791)"),
        Setting("folder", "default folder: an ID or purchase, to-be-handled (7), other", default=str(DEFAULT_FOLDER)),
        Setting("folders", "per e-Box message type: FIN-TAX-ASSESSMENT=purchase,NSSO-CONTRIBUTIONS=1"),
        Setting("timeout", "seconds to wait for Yuki", default="30"),
    )

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str, str, float], YukiClient] = {}
        self._lock = threading.Lock()

    # -- settings -------------------------------------------------------------------------------

    def validate(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        region = str(settings.get("region", "be")).strip().lower()
        if region not in REGIONS:
            raise SettingsError(f"yuki: region must be one of {', '.join(REGIONS)}, got {region!r}")
        administration = str(settings["administration"]).strip()
        if not administration:
            raise SettingsError("yuki: administration is empty")
        try:
            timeout = float(settings.get("timeout", 30))
        except ValueError:
            raise SettingsError(f"yuki: timeout must be a number of seconds, got {settings['timeout']!r}") from None
        if not 1 <= timeout <= 300:
            raise SettingsError("yuki: timeout must be between 1 and 300 seconds")
        values: dict[str, Any] = {
            "access_key": str(settings["access_key"]).strip(), "administration": administration, "region": region,
            "folder": str(_folder(settings.get("folder", DEFAULT_FOLDER))), "timeout": str(timeout),
        }
        if settings.get("folders"):
            values["folders"] = ",".join(f"{k}={v}" for k, v in parse_folders(settings["folders"]).items())
        if settings.get("domain"):
            values["domain"] = str(settings["domain"]).strip()
        if settings.get("url"):
            values["url"] = service_url(str(settings["url"]).strip(), exporter="yuki",
                                        carrying="the access key only travels")
        return values

    def target(self, settings: Mapping[str, Any]) -> str:
        return f"yuki:{settings.get('region', 'be')}:{settings['administration']}"

    def client(self, settings: Mapping[str, Any], *, keep: bool = True) -> YukiClient:
        """A client for these settings, kept for reuse unless ``keep=False`` (connection pool; the
        session cache is process-wide anyway)."""
        url = settings.get("url") or base_url_of(settings.get("region", "be"))
        key = (url, settings["access_key"], settings.get("domain") or "", float(settings.get("timeout", 30)))
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = YukiClient(settings["access_key"], region=settings.get("region", "be"), base_url=url,
                                    domain=settings.get("domain") or None, timeout=key[3])
                if keep:
                    self._clients[key] = client
            return client

    def folders_of(self, settings: Mapping[str, Any]) -> set[int]:
        return {int(settings.get("folder", DEFAULT_FOLDER)), *parse_folders(settings.get("folders", "")).values()}

    def check(self, settings: Mapping[str, Any]) -> None:
        """The key opens a session, the administration is one it sees, the folders exist."""
        with self.client(settings, keep=False) as client:  # a refused key leaves no client behind
            try:
                administrations = client.administrations()
                folders = client.document_folders()
            except InvalidAccessKey:
                raise SettingsError(f"yuki: the access key is refused by {client.base_url} (a key works only on "
                                    "its own country's host: check region)") from None
            except YukiError as exc:
                raise SettingsError(f"yuki: {exc}") from None
        if settings["administration"] not in {a.id for a in administrations}:
            known = ", ".join(f"{a.name} ({a.id})" for a in administrations) or "none"
            raise SettingsError(f"yuki: administration {settings['administration']} is not reachable with this key "
                                f"(administrations: {known})")
        missing = sorted(self.folders_of(settings) - set(folders))
        if missing:
            raise SettingsError(f"yuki: no folder {missing[0]} in this domain (folders: "
                                f"{', '.join(f'{k} {v}' for k, v in sorted(folders.items()))})")

    # -- export ---------------------------------------------------------------------------------

    def folder_for(self, document: ExportDocument, settings: Mapping[str, Any]) -> int:
        by_type = parse_folders(settings.get("folders", ""))
        return by_type.get((document.message_type or "").upper(), int(settings.get("folder", DEFAULT_FOLDER)))

    def export(self, document: ExportDocument, settings: Mapping[str, Any]) -> dict[str, Any]:
        client = self.client(settings)
        marker = marker_of(document)
        administration = settings["administration"]
        receipt: dict[str, Any] = {"administration": administration, "marker": marker}
        if document.previous_attempts > 0:
            # An earlier attempt may have uploaded it before its outcome was recorded.
            for found in client.search_documents(marker):
                if marker in found.remarks and document.message_id in found.remarks:
                    log.info("yuki.upload_found", document_id=document.document_id, yuki_document=found.id)
                    return {**receipt, "document": found.id, "folder": found.folder, "file_name": found.file_name,
                            "reconciled": True}
        if document.size is not None and document.size > MAX_BYTES:
            raise PermanentExportError(f"yuki: {document.size} bytes is over the {MAX_BYTES // 2**20} MB upload limit")
        with document.open() as source:
            data = source.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise PermanentExportError(f"yuki: the document is over the {MAX_BYTES // 2**20} MB upload limit")
        folder = self.folder_for(document, settings)
        file_name = file_name_of(document)
        payment = document.payment
        remote_id = client.upload_document_with_data(
            administration=administration, file_name=file_name, data=data, folder=folder,
            amount=payment.amount if payment and payment.amount is not None else Decimal(0),
            currency=payment.currency if payment else "EUR", remarks=remarks_of(document, marker))
        return {**receipt, "document": remote_id or None, "folder": folder, "file_name": file_name}
