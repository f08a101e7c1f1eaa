"""Reference data (message types, sender organizations and applications) and its in-memory cache.

Messages carry IDs only; these resolve them. The data changes rarely, so entries are cached per
Message Registry for a day, or for the response's ``Cache-Control: max-age`` when shorter
(ebox.md §7). The cache is thread-safe and may be shared by many clients.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._models import TranslatedString
from ._parsing import Fields

__all__ = ["Image", "MessageType", "ReferenceCache", "SenderApplication", "SenderOrganization", "ValidityPeriod"]

DAY = 24 * 3600.0
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ValidityPeriod:
    number: int
    unit: str  # day | month | year

    @classmethod
    def from_json(cls, data: Any, path: str = "ValidityPeriod") -> ValidityPeriod:
        f = Fields(data, path)
        return cls(number=f.integer("validityPeriodNumber"), unit=f.text("validityPeriodUnit"))


@dataclass(frozen=True, slots=True)
class Image:
    image_id: str
    size_kb: float
    media_type: str
    content_href: str
    language: str | None = None

    @classmethod
    def from_json(cls, data: Any, path: str = "Image") -> Image:
        f = Fields(data, path)
        return cls(
            image_id=f.text("imageId"),
            size_kb=f.number("size"),
            media_type=f.text("mediaType"),
            content_href=f.text("contentHref"),
            language=f.text("language", required=False),
        )


@dataclass(frozen=True, slots=True)
class MessageType:
    message_type_id: str
    name: TranslatedString
    description: TranslatedString | None = None
    validity_period: ValidityPeriod | None = None
    sender_organization_ids: tuple[str, ...] = ()
    sender_application_ids: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Any, path: str = "MessageType") -> MessageType:
        f = Fields(data, path)
        return cls(
            message_type_id=f.text("messageTypeId"),
            name=f.child("messageTypeName", TranslatedString.from_json),
            description=f.obj("messageTypeDescription", TranslatedString.from_json),
            validity_period=f.obj("validityPeriod", ValidityPeriod.from_json),
            sender_organization_ids=f.texts("senderOrganizationIds"),
            sender_application_ids=f.texts("senderApplicationIds"),
        )


@dataclass(frozen=True, slots=True)
class SenderOrganization:
    organization_id: str
    short_name: TranslatedString
    long_name: TranslatedString | None = None
    logos: tuple[Image, ...] = ()
    url: TranslatedString | None = None
    sender_application_ids: tuple[str, ...] = ()
    message_type_ids: tuple[str, ...] = ()
    contact_business: str | None = None
    contact_technical: str | None = None

    @classmethod
    def from_json(cls, data: Any, path: str = "SenderOrganization") -> SenderOrganization:
        f = Fields(data, path)
        return cls(
            organization_id=f.text("organizationId"),
            short_name=f.child("organizationShortName", TranslatedString.from_json),
            long_name=f.obj("organizationLongName", TranslatedString.from_json),
            logos=f.array("organizationLogos", Image.from_json),
            url=f.obj("organizationUrl", TranslatedString.from_json),
            sender_application_ids=f.texts("senderApplicationIds"),
            message_type_ids=f.texts("messageTypeIds"),
            contact_business=f.text("contactBusiness", required=False),
            contact_technical=f.text("contactTechnical", required=False),
        )


@dataclass(frozen=True, slots=True)
class SenderApplication:
    application_id: str
    name: TranslatedString
    description: TranslatedString | None = None
    logos: tuple[Image, ...] = ()
    url: TranslatedString | None = None
    sender_organization_ids: tuple[str, ...] = ()
    message_type_ids: tuple[str, ...] = ()
    contact_business: str | None = None
    contact_technical: str | None = None

    @classmethod
    def from_json(cls, data: Any, path: str = "SenderApplication") -> SenderApplication:
        f = Fields(data, path)
        return cls(
            application_id=f.text("applicationId"),
            name=f.child("applicationName", TranslatedString.from_json),
            description=f.obj("applicationDescription", TranslatedString.from_json),
            logos=f.array("applicationLogos", Image.from_json),
            url=f.obj("applicationUrl", TranslatedString.from_json),
            sender_organization_ids=f.texts("senderOrganizationIds"),
            message_type_ids=f.texts("messageTypeIds"),
            contact_business=f.text("contactBusiness", required=False),
            contact_technical=f.text("contactTechnical", required=False),
        )


def max_age_from(cache_control: str | None) -> float | None:
    if not cache_control:
        return None
    found = _MAX_AGE.search(cache_control)
    return float(found.group(1)) if found else None


class ReferenceCache:
    """A small TTL map keyed by ``(registry URL, kind, id)``; ``ttl`` caps every entry (a day)."""

    def __init__(self, *, ttl: float = DAY, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            if self._clock() >= expires:
                del self._entries[key]
                return None
            return value

    def put(self, key: tuple[str, ...], value: Any, *, max_age: float | None = None) -> None:
        ttl = self.ttl if max_age is None else min(self.ttl, max_age)
        if ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() + ttl, value)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
