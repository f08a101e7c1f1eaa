"""What extraction produces: a :class:`PaymentInfo` whose every field carries its source and confidence."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any, Generic, TypeVar

from daemon.banking import PaymentReference, ReferenceKind

__all__ = ["FIELD_NAMES", "Field", "PaymentInfo", "Review", "Source"]

T = TypeVar("T")

FIELD_NAMES = ("amount", "currency", "iban", "bic", "reference", "due_date", "beneficiary")
"""The payment fields of :class:`PaymentInfo`, in display order."""


class Source(StrEnum):
    """Where a field's value comes from."""

    EBOX = "ebox"
    """The message's ``paymentData`` in the e-Box API."""
    PDF = "pdf"
    """Read from the document's text."""
    DERIVED = "derived"
    """Computed from another field (the BIC from the IBAN's bank code)."""
    MANUAL = "manual"
    """Entered or corrected by a person."""


@dataclass(frozen=True, slots=True)
class Field(Generic[T]):
    """One extracted value.

    ``confidence`` is in [0, 1]; ``evidence`` is the text (or JSON key) it was read from;
    ``alternatives`` are other values seen for the same field (set when they disagree).

    Rough scale: 0.95–0.99 announced by an explicit label (or given by ``paymentData``) and
    checked, higher when two sources or two places agree; 0.75–0.9 a weaker label or a
    distinctive unlabelled form (``+++…+++``); 0.6 free-text reference, default currency;
    0.5 a guess kept for convenience (the letterhead as beneficiary, the only amount in an
    unlabelled letter); 0.3 or less: ambiguous, always with a review.
    """

    value: T
    source: Source
    confidence: float
    evidence: str = ""
    alternatives: tuple[T, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be within [0, 1], got {self.confidence}")


@dataclass(frozen=True, slots=True)
class Review:
    """Why a person must look: ``field`` is a name from :data:`FIELD_NAMES` or ``document``."""

    field: str
    code: str
    message: str


@dataclass(frozen=True)
class PaymentInfo:
    """Payment facts of one document.

    ``is_payment`` is False for documents that ask for no payment (information letters, credit
    notes); with ``needs_review`` also set it means "could not tell" (no text layer, say).
    """

    is_payment: bool
    amount: Field[Decimal] | None = None
    currency: Field[str] | None = None
    iban: Field[str] | None = None
    bic: Field[str] | None = None
    reference: Field[PaymentReference] | None = None
    due_date: Field[date] | None = None
    beneficiary: Field[str] | None = None
    reviews: tuple[Review, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def needs_review(self) -> bool:
        """True when something is ambiguous, invalid, missing or contradictory."""
        return bool(self.reviews)

    @property
    def review_reasons(self) -> tuple[str, ...]:
        """The review messages, for people."""
        return tuple(review.message for review in self.reviews)

    @property
    def reference_kind(self) -> ReferenceKind | None:
        """``ogm``, ``rf`` or ``free`` when there is a reference."""
        return None if self.reference is None else self.reference.value.kind

    def get(self, name: str) -> Field[Any] | None:
        """The field called ``name`` (one of :data:`FIELD_NAMES`)."""
        if name not in FIELD_NAMES:
            raise KeyError(name)
        value: Field[Any] | None = getattr(self, name)
        return value

    def with_fields(self, **changes: Any) -> PaymentInfo:
        """A copy with some attributes replaced."""
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: one object per field (``value``, ``source``, ``confidence``) or null."""
        out: dict[str, Any] = {"is_payment": self.is_payment}
        for name in FIELD_NAMES:
            out[name] = _field_json(self.get(name))
        out["needs_review"] = self.needs_review
        out["review_reasons"] = [{"field": r.field, "code": r.code, "message": r.message} for r in self.reviews]
        out["notes"] = list(self.notes)
        return out


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, PaymentReference):
        return value.display
    return value


def _field_json(item: Field[Any] | None) -> dict[str, Any] | None:
    if item is None:
        return None
    out: dict[str, Any] = {
        "value": _json_value(item.value), "source": str(item.source), "confidence": round(item.confidence, 2),
    }
    if isinstance(item.value, PaymentReference):
        out["kind"] = str(item.value.kind)
        out["canonical"] = item.value.value
    if item.evidence:
        out["evidence"] = item.evidence
    if item.alternatives:
        out["alternatives"] = [_json_value(alternative) for alternative in item.alternatives]
    return out

