"""Query parameters of ``GET /ebox/messages`` (ebox.md §5.1), validated before anything is sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from ._parsing import BRUSSELS

__all__ = ["MAX_PAGE_SIZE", "MessageQuery", "page_params"]

MAX_PAGE_SIZE = 100
QLANGS = ("fr", "nl", "de")


def _day(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        # Filters are calendar days in Belgium.
        value = value.astimezone(BRUSSELS).date() if value.tzinfo else value.date()
    return value.isoformat()


def _flag(value: bool | None) -> str | None:
    return None if value is None else ("true" if value else "false")


def page_params(page: int, page_size: int) -> dict[str, str]:
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise ValueError(f"page must be an integer >= 1, got {page!r}")
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be an integer between 1 and {MAX_PAGE_SIZE}, got {page_size!r}")
    return {"page": str(page), "pageSize": str(page_size)}


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """Filters for listing messages; all are ANDed, ``None`` means "don't filter"."""

    received_after: date | datetime | None = None
    received_before: date | datetime | None = None
    expired_after: date | datetime | None = None
    expired_before: date | datetime | None = None
    read_status: bool | None = None
    visible: bool | None = None
    registered_mail: bool | None = None
    message_type_id: str | None = None
    sender_organization_id: str | None = None
    sender_application_id: str | None = None
    q: str | None = None
    qlang: str | None = None

    def __post_init__(self) -> None:
        if self.q is not None and not self.qlang:
            raise ValueError("q needs qlang (one of fr, nl, de)")
        if self.qlang is not None and self.qlang not in QLANGS:
            raise ValueError(f"qlang must be one of {', '.join(QLANGS)}, got {self.qlang!r}")

    def to_params(self) -> dict[str, str]:
        raw = {
            "receivedAfter": _day(self.received_after),
            "receivedBefore": _day(self.received_before),
            "expiredAfter": _day(self.expired_after),
            "expiredBefore": _day(self.expired_before),
            "readStatus": _flag(self.read_status),
            "visible": _flag(self.visible),
            "registeredMail": _flag(self.registered_mail),
            "messageTypeId": self.message_type_id,
            "senderOrganizationId": self.sender_organization_id,
            "senderApplicationId": self.sender_application_id,
            "q": self.q,
            "qlang": self.qlang,
        }
        return {k: v for k, v in raw.items() if v is not None}
