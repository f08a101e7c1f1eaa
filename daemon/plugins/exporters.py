"""What an exporter is: the protocol a plugin's exporter implements and what it is given.

An exporter receives one stored document at a time (``ExportDocument``: metadata, payment request
and a way to read the bytes) with the enterprise's validated settings, delivers it, and returns a
JSON-able receipt that the export ledger keeps. It must be idempotent for the same document and
target: a redelivered task calls it again after a crash between delivery and ledger commit.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, BinaryIO, Protocol, runtime_checkable
from urllib.parse import urlsplit

from daemon.errors import EboxdError

__all__ = [
    "EXPORTER_NAME",
    "ExportDeferred",
    "ExportDocument",
    "ExportError",
    "Exporter",
    "PaymentSummary",
    "PermanentExportError",
    "Setting",
    "SettingsError",
    "iter_settings_help",
    "service_url",
    "validate_settings",
]

EXPORTER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
"""Exporter names: lower case, short, usable in metrics labels, CLI arguments and ledger keys."""


class SettingsError(EboxdError):
    """An exporter's settings are missing, unknown or invalid; the message names the setting."""

    exit_code = 2


class ExportError(EboxdError):
    """An export failed; dramatiq retries it with backoff."""


class PermanentExportError(ExportError):
    """An export that cannot succeed by retrying (refused by the target): marked failed at once."""


class ExportDeferred(ExportError):
    """The target refuses work until ``until`` (a daily quota): the export is queued again for
    then (a delayed outbox task), neither retried sooner nor marked failed."""

    def __init__(self, message: str, *, until: dt.datetime) -> None:
        super().__init__(message)
        self.until = until


@dataclass(frozen=True)
class Setting:
    """One setting of an exporter, as the CLI asks for it (``--<name>`` / ``--set name=value``)."""

    name: str
    help: str
    required: bool = False
    secret: bool = False  # stored encrypted, never printed
    default: str | None = None


@dataclass(frozen=True)
class PaymentSummary:
    amount: Decimal | None
    currency: str
    reference: str | None
    due_date: dt.date | None
    iban: str | None
    status: str


def _no_content() -> AbstractContextManager[BinaryIO]:
    raise ExportError("this document has no stored content")


@dataclass(frozen=True)
class ExportDocument:
    """One stored document with what an accountant needs to file it."""

    document_id: int
    enterprise_number: str
    enterprise_name: str
    message_id: str  # the e-Box message id
    sender: str | None
    subject: str | None
    published_at: dt.datetime | None
    received_at: dt.datetime | None
    file_name: str | None
    media_type: str | None
    size: int | None
    sha256: str
    language: str | None
    payment: PaymentSummary | None = None
    message_type: str | None = None  # the e-Box messageTypeId (e.g. FIN-TAX-ASSESSMENT)
    previous_attempts: int = 0  # earlier attempts of this export that began: > 0 → one may have delivered
    opener: Callable[[], AbstractContextManager[BinaryIO]] = field(repr=False, compare=False,
                                                                   default=_no_content)

    def open(self) -> AbstractContextManager[BinaryIO]:
        """The document's bytes, streamed from the document store (a context manager)."""
        return self.opener()


@runtime_checkable
class Exporter(Protocol):
    """An exporter a plugin registers through ``eboxd_register_exporters``.

    ``check(settings)`` is optional: when present, ``eboxd exporter enable`` calls it to try the
    target (reachable, writable, credentials valid) before saving the configuration.
    """

    name: str
    description: str
    settings: tuple[Setting, ...]

    def target(self, settings: Mapping[str, Any]) -> str:
        """The identity of where documents go (a directory, a division): part of the ledger key."""
        ...

    def validate(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Normalized settings, or ``SettingsError`` naming what is wrong."""
        ...

    def export(self, document: ExportDocument, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Deliver ``document``; return a JSON-able receipt (where it went, remote ids)."""
        ...


def validate_settings(exporter: Exporter, given: Mapping[str, Any]) -> dict[str, Any]:
    """The generic part of validation: unknown and missing settings, defaults; then the exporter's own."""
    known = {setting.name: setting for setting in exporter.settings}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise SettingsError(f"exporter {exporter.name!r} has no setting {unknown[0]!r} "
                            f"(settings: {', '.join(known) or 'none'})")
    values: dict[str, Any] = {}
    for name, setting in known.items():
        value = given.get(name, setting.default)
        if value is None or value == "":
            if setting.required:
                raise SettingsError(f"exporter {exporter.name!r} needs the setting {name!r}: {setting.help}")
            continue
        values[name] = value
    return exporter.validate(values)


def iter_settings_help(exporter: Exporter) -> Iterator[str]:
    for setting in exporter.settings:
        flags = ", ".join(f for f, on in (("required", setting.required), ("secret", setting.secret)) if on)
        yield f"{setting.name}{f' ({flags})' if flags else ''}: {setting.help}"


def service_url(url: str, *, exporter: str, carrying: str) -> str:
    """``url`` without its trailing slash, refused unless https or plain http to a loopback sandbox:
    the exporter's secrets go there (``carrying`` says which, e.g. "tokens only travel")."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{exporter}: url must be an http(s) URL, got {url!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise SettingsError(f"{exporter}: {carrying} over https (http only to a loopback sandbox)")
    return url.rstrip("/")


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
