"""Frozen dataclasses for the Message Registry v2.1 DocConsumer payloads (ebox.md §6).

Each model has ``from_json(data, path=...)``: required fields are checked, unknown fields ignored.
Sizes stay in kB as the contract gives them (``size_kb``); ``approx_size_bytes`` converts.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from ._errors import MalformedResponse
from ._parsing import Fields, parse_list_envelope

__all__ = [
    "Attachment",
    "BusinessData",
    "Digest",
    "EboxSummary",
    "ForTheAttentionOf",
    "Message",
    "Page",
    "PaymentData",
    "TranslatedString",
]

T = TypeVar("T")
LANGUAGES = ("nl", "fr", "de", "en")


@dataclass(frozen=True, slots=True)
class TranslatedString:
    """``{nl?, fr?, de?, en?}``. NSSO fills one language; ``best()`` walks a fallback chain."""

    nl: str | None = None
    fr: str | None = None
    de: str | None = None
    en: str | None = None

    @classmethod
    def from_json(cls, data: Any, path: str = "TranslatedString") -> TranslatedString:
        f = Fields(data, path)
        return cls(*(f.text(lang, required=False) for lang in LANGUAGES))

    def best(self, *preferred: str) -> str | None:
        """The first non-empty value in ``preferred`` order, then nl, fr, de, en."""
        for lang in (*preferred, *LANGUAGES):
            value = getattr(self, lang, None) if lang in LANGUAGES else None
            if value:
                return value
        return None

    def as_dict(self) -> dict[str, str]:
        return {lang: v for lang in LANGUAGES if (v := getattr(self, lang))}

    def __str__(self) -> str:
        return self.best() or ""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a ``{items, totalItems}`` list."""

    items: tuple[T, ...]
    total_items: int
    page: int
    page_size: int

    @property
    def has_next(self) -> bool:
        return bool(self.items) and self.page * self.page_size < self.total_items


@dataclass(frozen=True, slots=True)
class EboxSummary:
    """``GET /ebox``. Counters include hidden messages."""

    number_of_messages: int
    number_of_unread_messages: int | None = None
    last_receipt_date: datetime | None = None
    last_consultation_date: datetime | None = None
    ebox_size_kb: float | None = None

    @classmethod
    def from_json(cls, data: Any, path: str = "Ebox") -> EboxSummary:
        f = Fields(data, path)
        return cls(
            number_of_messages=f.integer("numberOfMessages"),
            number_of_unread_messages=f.integer("numberOfUnreadMessages", required=False),
            last_receipt_date=f.timestamp("lastReceiptDate", required=False),
            last_consultation_date=f.timestamp("lastConsultationDate", required=False),
            ebox_size_kb=f.number("eboxSize", required=False),
        )

    @classmethod
    def empty(cls) -> EboxSummary:
        return cls(number_of_messages=0, number_of_unread_messages=0)


@dataclass(frozen=True, slots=True)
class Digest:
    """SHA-256 of an attachment, ``digestValue`` in base64url (RFC 4648 §5)."""

    method: str
    value: str

    @classmethod
    def from_json(cls, data: Any, path: str = "Digest") -> Digest:
        f = Fields(data, path)
        return cls(method=f.text("digestMethod"), value=f.text("digestValue"))

    def digest_bytes(self) -> bytes:
        """Decode the base64url value, padding optional; plain base64 (``+/``) tolerated."""
        text = self.value.strip().rstrip("=")
        try:
            raw = base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise MalformedResponse("Digest.digestValue", f"not base64url: {self.value!r}") from None
        return raw


@dataclass(frozen=True, slots=True)
class Attachment:
    """Attachment metadata. ``main_content`` downloads mark the message as read (irreversible)."""

    attachment_id: str | None
    file_name: str
    main_content: bool
    media_type: str
    size_kb: float
    title: TranslatedString | None = None
    digest: Digest | None = None
    signed: bool = False
    content_href: str | None = None

    @classmethod
    def from_json(cls, data: Any, path: str = "Attachment") -> Attachment:
        f = Fields(data, path)
        return cls(
            attachment_id=f.text("attachmentId", required=False),
            file_name=f.text("fileName"),
            main_content=f.boolean("mainContent"),
            media_type=f.text("mediaType"),
            size_kb=f.number("size"),
            title=f.obj("attachmentTitle", TranslatedString.from_json),
            digest=f.obj("digest", Digest.from_json),
            signed=f.boolean("attachmentSigned", required=False, default=False),
            content_href=f.text("contentHref", required=False),
        )

    @property
    def approx_size_bytes(self) -> int:
        return round(self.size_kb * 1024)


@dataclass(frozen=True, slots=True)
class BusinessData:
    key: str
    name: TranslatedString
    values: tuple[TranslatedString, ...]
    description: TranslatedString | None = None

    @classmethod
    def from_json(cls, data: Any, path: str = "BusinessData") -> BusinessData:
        f = Fields(data, path)
        return cls(
            key=f.text("key"),
            name=f.child("name", TranslatedString.from_json),
            values=f.array("values", TranslatedString.from_json, required=True),
            description=f.obj("description", TranslatedString.from_json),
        )


@dataclass(frozen=True, slots=True)
class PaymentData:
    """Structured payment data (rare: NSSO does not publish it). ``amount`` excludes VAT."""

    payment_data_id: str
    amount: float
    vat_amount: float
    currency: str
    due_date: datetime
    iban: str
    bic: str | None = None
    reference: Any = None

    @classmethod
    def from_json(cls, data: Any, path: str = "PaymentData") -> PaymentData:
        f = Fields(data, path)
        return cls(
            payment_data_id=f.text("paymentDataId"),
            amount=f.number("amount"),
            vat_amount=f.number("vatAmount"),
            currency=f.text("currency"),
            due_date=f.timestamp("dueDate"),
            iban=f.text("iban"),
            bic=f.text("bic", required=False),
            reference=f.data.get("reference"),
        )


@dataclass(frozen=True, slots=True)
class ForTheAttentionOf:
    id: str | None = None
    type: str | None = None
    name: str | None = None

    @classmethod
    def from_json(cls, data: Any, path: str = "ForTheAttentionOf") -> ForTheAttentionOf:
        f = Fields(data, path)
        return cls(f.text("id", required=False), f.text("type", required=False), f.text("name", required=False))


@dataclass(frozen=True, slots=True)
class Message:
    """A message's metadata, with its attachments and business data as listed."""

    message_id: str
    subject: TranslatedString
    receipt_date: datetime
    expiration_date: datetime
    read_status: bool
    registered_mail: bool
    message_type_id: str
    sender_organization_id: str
    body_main_content: bool
    reply_authorized: bool
    visible: bool = True
    original_message_id: str | None = None
    sender_application_id: str | None = None
    for_the_attention_of: ForTheAttentionOf | None = None
    attachments: tuple[Attachment, ...] = ()
    payment_data: PaymentData | None = None
    business_data: tuple[BusinessData, ...] = ()
    attachment_count: int | None = None  # totalItems of the embedded list; None when the message carried none

    @property
    def all_attachments_listed(self) -> bool:
        """The embedded list holds every attachment (no need to ask ``/attachments``)."""
        return self.attachment_count is not None and self.attachment_count <= len(self.attachments)

    @classmethod
    def from_json(cls, data: Any, path: str = "Message") -> Message:
        f = Fields(data, path)
        attachments: tuple[Attachment, ...] = ()
        attachment_count: int | None = None
        if f.data.get("attachments") is not None:
            attachments, attachment_count = parse_list_envelope(
                f.data["attachments"], f"{path}.attachments", Attachment.from_json)
        business: tuple[BusinessData, ...] = ()
        if f.data.get("businessDataList") is not None:
            business, _ = parse_list_envelope(
                f.data["businessDataList"], f"{path}.businessDataList", BusinessData.from_json
            )
        return cls(
            message_id=f.text("messageId"),
            subject=f.child("subject", TranslatedString.from_json),
            receipt_date=f.timestamp("receiptDate"),
            expiration_date=f.timestamp("expirationDate"),
            read_status=f.boolean("readStatus"),
            registered_mail=f.boolean("registeredMail"),
            message_type_id=f.text("messageTypeId"),
            sender_organization_id=f.text("senderOrganizationId"),
            # Required by the contract but "present only if there is a body": tolerate absence.
            body_main_content=f.boolean("bodyMainContent", required=False, default=False),
            reply_authorized=f.boolean("replyAuthorized", required=False, default=False),
            visible=f.boolean("visible", required=False, default=True),
            original_message_id=f.text("originalMessageId", required=False),
            sender_application_id=f.text("senderApplicationId", required=False),
            for_the_attention_of=f.obj("forTheAttentionOf", ForTheAttentionOf.from_json),
            attachments=attachments,
            payment_data=f.obj("paymentData", PaymentData.from_json),
            business_data=business,
            attachment_count=attachment_count,
        )

    @property
    def main_attachment(self) -> Attachment | None:
        return next((a for a in self.attachments if a.main_content), None)
