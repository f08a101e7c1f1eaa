"""Reading the e-Box ``paymentData`` of a message (specs/ebox.md §6 and §8).

``PaymentData``: ``amount`` (excluding VAT), ``vatAmount``, ``currency``, ``dueDate``
(date-time), ``iban``, ``bic``, and ``reference``, an untyped object. The amount to pay is
``amount + vatAmount``. Accepts the JSON object or a :class:`daemon.ebox.PaymentData`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from daemon.banking import (
    BankingError,
    InvalidReference,
    PaymentReference,
    ReferenceKind,
    parse_bic,
    parse_iban,
    parse_reference,
)
from daemon.payments.model import Field, PaymentInfo, Review, Source

__all__ = ["read_payment_data"]

BRUSSELS = ZoneInfo("Europe/Brussels")
_CONFIDENCE = 0.95
_ATTRIBUTES = {"vatAmount": "vat_amount", "dueDate": "due_date", "paymentDataId": "payment_data_id"}
_VALUE_KEYS = ("value", "reference", "structuredReference", "ogm", "rf", "creditorReference", "text",
               "communication", "number")
_KIND_KEYS = ("type", "kind", "referenceType", "scheme", "format")
_NAME_KEYS = ("beneficiary", "beneficiaryName", "creditorName", "creditor", "name")


def _get(data: Any, key: str) -> Any:
    if isinstance(data, Mapping):
        return data.get(key)
    return getattr(data, _ATTRIBUTES.get(key, key), None)


def _decimal(raw: Any) -> Decimal | None:
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        return None
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) if value.is_finite() else None


def _amount(data: Any, reviews: list[Review]) -> Field[Decimal] | None:
    amount, vat = _decimal(_get(data, "amount")), _decimal(_get(data, "vatAmount"))
    if amount is None:
        raw = _get(data, "amount")
        if raw is None:
            reviews.append(Review("amount", "missing", "paymentData.amount is missing"))
        else:
            reviews.append(Review("amount", "invalid", f"paymentData.amount is not a number: {raw!r}"))
        return None
    if vat is None or vat == 0:
        return Field(amount, Source.EBOX, _CONFIDENCE, "paymentData.amount")
    return Field(amount + vat, Source.EBOX, 0.9, f"paymentData.amount {amount} + vatAmount {vat}")


def _due_date(data: Any, reviews: list[Review]) -> Field[date] | None:
    raw = _get(data, "dueDate")
    if raw is None:
        return None
    moment: date | None = raw if isinstance(raw, date) else None
    if isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw.strip())
        except ValueError:
            moment = None
    if moment is None:
        reviews.append(Review("due_date", "invalid", f"paymentData.dueDate is not a date: {raw!r}"))
        return None
    if isinstance(moment, datetime):
        moment = moment.astimezone(BRUSSELS).date() if moment.tzinfo else moment.date()
    return Field(moment, Source.EBOX, _CONFIDENCE, "paymentData.dueDate")


def _checked(data: Any, key: str, name: str, parse: Any, reviews: list[Review]) -> Field[str] | None:
    raw = _get(data, key)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        return Field(parse(str(raw)), Source.EBOX, _CONFIDENCE, f"paymentData.{key}")
    except BankingError as exc:
        reviews.append(Review(name, "invalid", f"paymentData.{key}: {exc}"))
        return None


def _kind_hint(obj: Mapping[str, Any]) -> ReferenceKind | None:
    hint = next((str(obj[key]).upper() for key in _KIND_KEYS if obj.get(key)), "")
    if any(word in hint for word in ("OGM", "VCS", "BBA", "STRUCT", "BELGIAN")):
        return ReferenceKind.OGM
    if any(word in hint for word in ("RF", "ISO", "SCOR", "11649", "CREDITOR")):
        return ReferenceKind.RF
    if any(word in hint for word in ("FREE", "UNSTRUCT", "TEXT")):
        return ReferenceKind.FREE
    return None


def _reference(data: Any, reviews: list[Review]) -> Field[PaymentReference] | None:
    raw = _get(data, "reference")
    if raw is None or raw in ("", {}):
        return None
    kind: ReferenceKind | None = None
    text: Any = raw
    if isinstance(raw, Mapping):
        kind = _kind_hint(raw)
        text = next((raw[key] for key in _VALUE_KEYS if raw.get(key) not in (None, "")), None)
    if not isinstance(text, str | int):
        reviews.append(Review("reference", "unrecognised", f"paymentData.reference has no readable value: {raw!r}"))
        return None
    try:
        reference = parse_reference(str(text), kind)
    except InvalidReference as exc:
        reviews.append(Review("reference", "check_digits" if exc.problem == "check_digits" else "invalid",
                              f"paymentData.reference: {exc}"))
        return None
    return Field(reference, Source.EBOX, _CONFIDENCE, "paymentData.reference")


def _beneficiary(data: Any) -> Field[str] | None:
    for key in _NAME_KEYS:
        value = _get(data, key)
        if isinstance(value, str) and value.strip():
            return Field(" ".join(value.split()), Source.EBOX, _CONFIDENCE, f"paymentData.{key}")
    return None


def read_payment_data(data: Mapping[str, Any] | Any) -> PaymentInfo:
    """The payment request a message's ``paymentData`` describes (JSON object or ``ebox.PaymentData``)."""
    reviews: list[Review] = []
    amount = _amount(data, reviews)
    if amount is not None and amount.value <= 0:
        what = "nothing to pay" if amount.value == 0 else "a credit to the addressee"
        return PaymentInfo(False, notes=(f"paymentData.amount is {amount.value}: {what}",))
    currency_raw = _get(data, "currency")
    currency = None
    if isinstance(currency_raw, str) and currency_raw.strip():
        currency = Field(currency_raw.strip().upper(), Source.EBOX, _CONFIDENCE, "paymentData.currency")
    return PaymentInfo(
        True, amount=amount, currency=currency, iban=_checked(data, "iban", "iban", parse_iban, reviews),
        bic=_checked(data, "bic", "bic", parse_bic, reviews), reference=_reference(data, reviews),
        due_date=_due_date(data, reviews), beneficiary=_beneficiary(data), reviews=tuple(reviews),
    )
