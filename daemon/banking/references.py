"""Payment references of any kind: Belgian OGM, ISO 11649 RF, or free text.

:func:`parse_reference` recognises the kind from the text itself; a string that looks like an
OGM or an RF reference but fails its checks is an error, never silently demoted to free text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from daemon.banking.errors import InvalidReference
from daemon.banking.ogm import StructuredCommunication, parse_ogm
from daemon.banking.rf import CreditorReference, parse_rf

__all__ = ["FREE_TEXT_MAX", "PaymentReference", "ReferenceKind", "parse_reference"]

FREE_TEXT_MAX = 140
"""Longest unstructured remittance text a SEPA transfer (and an EPC QR code) carries."""

_OGM_LIKE = re.compile(r"^[+*]{0,3}[\s\d/.\-\u00a0]+[+*]{0,3}$")
_RF_LIKE = re.compile(r"^RF\d{2}", re.IGNORECASE)
_OGM_DIGITS = 12


class ReferenceKind(StrEnum):
    """What a payment reference is."""

    OGM = "ogm"
    RF = "rf"
    FREE = "free"


@dataclass(frozen=True, slots=True)
class PaymentReference:
    """A checked payment reference. ``value`` is canonical: 12 digits, electronic RF, or trimmed text."""

    kind: ReferenceKind
    value: str

    @classmethod
    def ogm(cls, ogm: StructuredCommunication) -> PaymentReference:
        """Wrap a structured communication."""
        return cls(ReferenceKind.OGM, ogm.digits)

    @classmethod
    def rf(cls, reference: CreditorReference) -> PaymentReference:
        """Wrap a creditor reference."""
        return cls(ReferenceKind.RF, reference.value)

    @property
    def structured(self) -> bool:
        """True for OGM and RF (they go in a transfer's structured-reference field)."""
        return self.kind is not ReferenceKind.FREE

    @property
    def display(self) -> str:
        """``+++123/4567/89012+++``, ``RF18 5390 0754 7034`` or the text itself."""
        if self.kind is ReferenceKind.OGM:
            return StructuredCommunication(self.value).display
        if self.kind is ReferenceKind.RF:
            return CreditorReference(self.value).display
        return self.value

    def __str__(self) -> str:
        return self.display


def parse_reference(text: str, kind: ReferenceKind | str | None = None) -> PaymentReference:
    """Read a reference; ``kind`` forces one, otherwise it is recognised from the text.

    Text made only of digits, separators and ``+``/``*`` that is wrapped in ``+``/``*`` or has
    11 to 13 digits is taken as an OGM (so a mistyped one is an error); text starting
    with ``RF`` and two digits is an RF reference; anything else is free text (at most
    :data:`FREE_TEXT_MAX` characters). Raises :class:`InvalidReference` (or a subclass).
    """
    wanted = None if kind is None else ReferenceKind(kind)
    stripped = " ".join(text.split())
    if wanted is ReferenceKind.OGM or (wanted is None and _looks_like_ogm(stripped)):
        return PaymentReference.ogm(parse_ogm(stripped))
    if wanted is ReferenceKind.RF or (wanted is None and _RF_LIKE.match(stripped)):
        return PaymentReference.rf(parse_rf(stripped))
    if not stripped:
        raise InvalidReference(text, "empty", "is empty")
    if len(stripped) > FREE_TEXT_MAX:
        raise InvalidReference(text, "length", f"has {len(stripped)} characters; free text is limited to "
                               f"{FREE_TEXT_MAX}", expected=str(FREE_TEXT_MAX), got=str(len(stripped)))
    return PaymentReference(ReferenceKind.FREE, stripped)


def _looks_like_ogm(text: str) -> bool:
    if not _OGM_LIKE.match(text):
        return False
    digits = sum(char.isdigit() for char in text)
    return abs(digits - _OGM_DIGITS) <= 1 or text.startswith(("+", "*"))
