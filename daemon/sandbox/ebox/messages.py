"""Message Registry v2.1 JSON shapes and the ``GET /ebox/messages`` query rules.

Field names are the contract's (MR21). Optional fields are omitted, never ``null``; lists are
``{"items": [...], "totalItems": n}``. Date-times are ``yyyy-MM-dd'T'HH:mm:ssXXX`` in Brussels time.
"""

from __future__ import annotations

import base64
import hashlib
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from daemon.sandbox.ebox.errors import ApiError
from daemon.sandbox.ebox.reference import MESSAGE_TYPES, SENDER_APPLICATIONS, SENDER_ORGANIZATIONS
from daemon.sandbox.ebox.seed import BRUSSELS, SeedAttachment, SeedLetter
from daemon.sandbox.ebox.state import MessageRecord

__all__ = [
    "MessageQuery",
    "attachment_json",
    "digest_value",
    "fmt_datetime",
    "message_json",
    "paged",
    "parse_page",
    "parse_query",
    "payment_data_json",
    "size_kb",
]

QLANGS = ("fr", "nl", "de")


def fmt_datetime(moment: datetime) -> str:
    """``2026-01-15T09:26:00+01:00``."""
    return moment.astimezone(BRUSSELS).isoformat(timespec="seconds")


def digest_value(content: bytes) -> str:
    """SHA-256, base64url (RFC 4648 §5) without ``=`` padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(content).digest()).decode("ascii").rstrip("=")


def size_kb(content: bytes) -> float:
    """Size in kilobytes (1 kB = 1024 B), as the contract's ``size`` and ``eboxSize``."""
    return round(len(content) / 1024, 3)


def attachment_json(letter: SeedLetter, attachment: SeedAttachment, base: str) -> dict[str, Any]:
    """An ``Attachment``; ``base`` is the provider's absolute base URL."""
    return {
        "attachmentId": attachment.attachment_id,
        "attachmentTitle": dict(attachment.title),
        "fileName": attachment.file_name,
        "mainContent": attachment.main_content,
        "mediaType": attachment.media_type,
        "size": size_kb(attachment.content),
        "digest": {"digestMethod": "sha_256", "digestValue": digest_value(attachment.content)},
        "attachmentSigned": False,
        "contentHref": f"{base}/ebox/messages/{letter.message_id}/attachments/{attachment.attachment_id}/content",
    }


def payment_data_json(letter: SeedLetter) -> dict[str, Any] | None:
    """A ``PaymentData`` when the DP published one (``reference`` layout is inferred)."""
    payment = letter.payment
    if payment is None or not letter.payment_data:
        return None
    return {
        "paymentDataId": f"pd-{letter.message_id}",
        "amount": float(payment.amount),
        "vatAmount": 0.0,
        "currency": payment.currency,
        "dueDate": fmt_datetime(datetime.combine(payment.due_date, time(0, 0), BRUSSELS)),
        "iban": payment.iban,
        "bic": payment.bic,
        "reference": {"type": "OGM", "value": payment.ogm},
    }


def message_json(record: MessageRecord, base: str) -> dict[str, Any]:
    """A ``Message`` with its embedded attachments, payment data and business data."""
    letter = record.letter
    items = [attachment_json(letter, a, base) for a in letter.attachments]
    out: dict[str, Any] = {
        "messageId": letter.message_id,
        "subject": dict(letter.subject),
        "receiptDate": fmt_datetime(letter.receipt),
        "expirationDate": fmt_datetime(letter.expiration),
        "readStatus": record.read,
        "visible": record.visible,
        "registeredMail": letter.registered_mail,
        "messageTypeId": letter.message_type_id,
        "senderOrganizationId": letter.sender_organization_id,
        "senderApplicationId": letter.sender_application_id,
        "attachments": {"items": items, "totalItems": len(items)},
        "bodyMainContent": letter.body_main_content,
        "replyAuthorized": False,
    }
    if letter.for_the_attention_of:
        out["forTheAttentionOf"] = dict(letter.for_the_attention_of)
    payment = payment_data_json(letter)
    if payment is not None:
        out["paymentData"] = payment
    if letter.business_data:
        out["businessDataList"] = {"items": [dict(b) for b in letter.business_data],
                                   "totalItems": len(letter.business_data)}
    return out


def _one(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise ApiError(400, "INVALID_INPUT", f"query parameter {name} given more than once")
    return values[0]


def _int(query: Mapping[str, list[str]], name: str, default: int, low: int, high: int | None) -> int:
    raw = _one(query, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "INVALID_INPUT", f"{name} must be an integer, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        limit = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ApiError(400, "INVALID_INPUT", f"{name} must be {limit}, got {value}")
    return value


def parse_page(query: Mapping[str, list[str]]) -> tuple[int, int]:
    """``page`` (default 1, ≥ 1) and ``pageSize`` (default 25, 1-100)."""
    return _int(query, "page", 1, 1, None), _int(query, "pageSize", 25, 1, 100)


def paged(items: list[Any], page: int, page_size: int) -> dict[str, Any]:
    """A page of a list in the contract's ``{items, totalItems}`` form."""
    start = (page - 1) * page_size
    return {"items": items[start : start + page_size], "totalItems": len(items)}


def _bool(query: Mapping[str, list[str]], name: str) -> bool | None:
    raw = _one(query, name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise ApiError(400, "INVALID_INPUT", f"{name} must be true or false, got {raw!r}")
    return raw == "true"


def _date(query: Mapping[str, list[str]], name: str) -> date | None:
    raw = _one(query, name)
    if raw is None:
        return None
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, "INVALID_INPUT", f"{name} must be a date YYYY-MM-DD, got {raw!r}") from None


def fold(text: str) -> str:
    """Case- and accent-insensitive form for ``q``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


@dataclass(frozen=True)
class MessageQuery:
    """Validated ``GET /ebox/messages`` parameters; every criterion is ANDed."""

    page: int
    page_size: int
    checks: tuple[Callable[[MessageRecord], bool], ...]

    def select(self, records: list[MessageRecord]) -> list[MessageRecord]:
        """Keep the records matching every criterion (order preserved)."""
        return [r for r in records if all(check(r) for check in self.checks)]


def _local(moment: datetime) -> date:
    return moment.astimezone(BRUSSELS).date()


def _searchable(letter: SeedLetter, provider_id: str, lang: str) -> list[str]:
    texts = [letter.subject.get(lang, "")]
    for business in letter.business_data:
        texts.append(business["name"].get(lang, ""))
        texts += [value.get(lang, "") for value in business["values"]]
    if letter.for_the_attention_of:
        texts += [letter.for_the_attention_of.get("id", ""), letter.for_the_attention_of.get("name", "")]
    references = (
        (SENDER_ORGANIZATIONS, letter.sender_organization_id, ("organizationShortName", "organizationLongName")),
        (SENDER_APPLICATIONS, letter.sender_application_id, ("applicationName", "applicationDescription")),
        (MESSAGE_TYPES, letter.message_type_id, ("messageTypeName", "messageTypeDescription")),
    )
    for table, key, fields in references:
        entry = table.get(provider_id, {}).get(key, {})
        texts += [entry.get(name, {}).get(lang, "") for name in fields]
    return texts


def _date_check(attribute: str, limit: date, *, after: bool) -> Callable[[MessageRecord], bool]:
    def check(record: MessageRecord) -> bool:
        day = _local(getattr(record.letter, attribute))
        return day > limit if after else day < limit

    return check


def _letter_attribute(attribute: str) -> Callable[[MessageRecord], object]:
    return lambda record: getattr(record.letter, attribute)


def _equals(getter: Callable[[MessageRecord], object], wanted: object) -> Callable[[MessageRecord], bool]:
    return lambda record: getter(record) == wanted


def parse_query(query: Mapping[str, list[str]], provider_id: str) -> MessageQuery:
    """Validate the query string (400 for syntax errors and ``q`` without ``qlang``)."""
    page, page_size = parse_page(query)
    checks: list[Callable[[MessageRecord], bool]] = []
    dates = (("receivedBefore", "receipt", False), ("receivedAfter", "receipt", True),
             ("expiredBefore", "expiration", False), ("expiredAfter", "expiration", True))
    for name, attribute, after in dates:
        limit = _date(query, name)
        if limit is not None:  # strict comparison on Brussels calendar dates (inferred)
            checks.append(_date_check(attribute, limit, after=after))
    flags: dict[str, Callable[[MessageRecord], bool]] = {
        "readStatus": lambda r: r.read, "visible": lambda r: r.visible,
        "registeredMail": lambda r: r.letter.registered_mail,
    }
    for name, getter in flags.items():
        wanted = _bool(query, name)
        if wanted is not None:
            checks.append(_equals(getter, wanted))
    ids = {"messageTypeId": "message_type_id", "senderOrganizationId": "sender_organization_id",
           "senderApplicationId": "sender_application_id"}
    for name, attribute in ids.items():
        value = _one(query, name)
        if value is not None:
            checks.append(_equals(_letter_attribute(attribute), value))
    q, qlang = _one(query, "q"), _one(query, "qlang")
    if q is not None and qlang is None:
        raise ApiError(400, "INVALID_INPUT", "qlang is required when q is given")
    if qlang is not None and qlang not in QLANGS:
        raise ApiError(400, "INVALID_INPUT", f"qlang must be one of fr, nl, de; got {qlang!r}")
    if q is not None and qlang is not None:
        needle = fold(q)
        checks.append(lambda r: any(needle in fold(t) for t in _searchable(r.letter, provider_id, qlang)))
    return MessageQuery(page, page_size, tuple(checks))
