"""What a person decides after matching (``eboxd payment review / confirm / dismiss / reject``).

* :func:`review_items`: payment requests in ``review``, each with its reasons and the movements
  suggested for it or already paying part of it.
* :func:`confirm_payment`: "these movements pay this request": they are applied to it, it becomes
  ``paid`` and ``be.eboxd.payment.matched`` is queued with ``matched_by: manual``. A movement that
  is then fully used is no longer suggested for other requests. Confirming again is a no-op.
* :func:`dismiss_match`: "this movement does not pay this request": the suggestion (or a wrong
  partial payment) is dropped; a movement left with no candidate becomes ``unmatched``, a request
  left with no reason is ``open`` again. Dismissing again is a no-op.
* :func:`reject_request`: "this request will not be paid through the bank" (not a debt, cancelled,
  paid another way): status ``rejected``, out of matching and review, its suggestions dropped.

All refusals are :class:`PaymentRefused` / :class:`PaymentNotFound` naming what was wrong.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from daemon.db.models import BankTransaction, Enterprise, PaymentMatch, PaymentRequest
from daemon.payments.manage import PaymentNotFound, PaymentRefused, find_payment_request
from daemon.payments.matching import PAYMENT_REVIEW_CODES, drop_reviews, matched_event
from daemon.payments.requests import REVIEWS_KEY

__all__ = ["Decided", "ReviewItem", "ReviewMovement", "confirm_payment", "dismiss_match", "reject_request",
           "review_items"]

ACTIVE_MATCH_STATES = ("suggested", "applied")


@dataclass(frozen=True)
class ReviewMovement:
    transaction_id: int
    match: str  # suggested (to confirm) or applied (already counted as paid)
    share: str  # the part of the movement for this request
    amount: str  # the movement's amount, positive for a payment we made
    booking_date: str | None
    counterparty_name: str | None
    counterparty_iban: str | None
    reference: str | None
    communication: str | None
    confidence: float
    matched_by: str


@dataclass(frozen=True)
class ReviewItem:
    document_id: int | None
    payment_request_id: int
    enterprise_number: str
    status: str
    amount: str | None
    paid: str
    reference: str | None
    iban: str | None
    beneficiary: str | None
    due_date: str | None
    reasons: list[dict[str, Any]]
    movements: list[ReviewMovement]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def review_items(session: Session, *, enterprise_number: str | None = None) -> list[ReviewItem]:
    """The payment requests in review, oldest due date first."""
    query = (select(PaymentRequest, Enterprise.number).join(Enterprise, Enterprise.id == PaymentRequest.enterprise_id)
             .where(PaymentRequest.status == "review"))
    if enterprise_number is not None:
        query = query.where(Enterprise.number == enterprise_number)
    requests = session.execute(query.order_by(PaymentRequest.due_date, PaymentRequest.id)).all()
    movements: dict[int, list[ReviewMovement]] = {request.id: [] for request, _ in requests}
    paid: dict[int, Decimal] = {}
    if movements:
        rows = session.execute(
            select(PaymentMatch, BankTransaction)
            .join(BankTransaction, BankTransaction.id == PaymentMatch.bank_transaction_id)
            .where(PaymentMatch.payment_request_id.in_(list(movements)), PaymentMatch.state.in_(ACTIVE_MATCH_STATES))
            .order_by(PaymentMatch.state, BankTransaction.booking_date, BankTransaction.id)).all()
        for match, tx in rows:
            if match.state == "applied":
                paid[match.payment_request_id] = paid.get(match.payment_request_id, Decimal(0)) + match.amount
            movements[match.payment_request_id].append(ReviewMovement(
                tx.id, match.state, f"{match.amount:.2f}", f"{-tx.amount:.2f}",
                tx.booking_date.isoformat() if tx.booking_date else None, tx.counterparty_name, tx.counterparty_iban,
                tx.structured_reference, tx.communication, round(match.confidence, 3), match.matched_by))
    def reasons(request: PaymentRequest) -> list[dict[str, Any]]:
        found = (request.field_sources or {}).get(REVIEWS_KEY) or []
        return [r if isinstance(r, dict) else {"message": str(r)} for r in found]

    return [ReviewItem(
        request.document_id, request.id, number, request.status, _money(request.amount),
        f"{paid.get(request.id, Decimal(0)):.2f}", request.reference, request.iban, request.beneficiary_name,
        request.due_date.isoformat() if request.due_date else None,
        reasons(request),
        movements[request.id]) for request, number in requests]


@dataclass(frozen=True)
class Decided:
    request_id: int
    status: str
    changed: bool  # False: it was already so (a repeated command)
    message: str


def _movement(session: Session, movement_id: int) -> BankTransaction:
    tx = session.get(BankTransaction, movement_id, with_for_update=True)
    if tx is None:
        raise PaymentNotFound(f"no bank movement with id {movement_id}: `eboxd payment review` lists the suggested "
                              "ones")
    return tx


def _matches(session: Session, **where: int) -> list[PaymentMatch]:
    query = select(PaymentMatch).filter_by(**where).order_by(PaymentMatch.id)
    return list(session.scalars(query))


def _unsuggest(session: Session, match: PaymentMatch) -> None:
    """Dismiss a suggestion and its review reason; a request left without reasons is open again."""
    match.state = "dismissed"
    request = session.get(PaymentRequest, match.payment_request_id)
    movement_id = match.bank_transaction_id
    if request is not None:
        drop_reviews(request, lambda r: not (isinstance(r, dict) and r.get("transaction_id") == movement_id))


def _refresh_movement(session: Session, tx: BankTransaction, why: str) -> None:
    """A movement's state after a person's decision, from its remaining matches."""
    session.flush()
    active = [m for m in _matches(session, bank_transaction_id=tx.id) if m.state in ACTIVE_MATCH_STATES]
    applied = [m for m in active if m.state == "applied"]
    tx.matched_payment_request_id = applied[0].payment_request_id if applied else None
    if applied:
        tx.match_state = "matched"
    elif active:
        tx.match_state = "suggested"
    else:
        tx.match_state, tx.match_note = "unmatched", why


def confirm_payment(engine: Engine, document_id: int, movement_ids: Sequence[int]) -> Decided:
    """Mark the payment request of ``document_id`` paid by the given bank movements."""
    if not movement_ids:
        raise PaymentRefused("give the paying movement(s) with --movement ID (`eboxd payment review` lists them)")
    with Session(engine) as session, session.begin():
        request = find_payment_request(session, document_id, lock=True)
        mine = {m.bank_transaction_id: m for m in _matches(session, payment_request_id=request.id)}
        txs = [_movement(session, movement_id) for movement_id in dict.fromkeys(movement_ids)]
        if request.status == "paid":
            if all(tx.id in mine and mine[tx.id].state == "applied" for tx in txs):
                return Decided(request.id, "paid", False, f"payment request {request.id} is already paid by "
                               f"movement(s) {', '.join(str(tx.id) for tx in txs)}")
            payers = ", ".join(str(i) for i, m in mine.items() if m.state == "applied") or "a person"
            raise PaymentRefused(f"payment request {request.id} (document {document_id}) is already paid, by "
                                 f"movement(s) {payers}")
        if request.status == "rejected":
            raise PaymentRefused(f"payment request {request.id} (document {document_id}) was rejected; it is not "
                                 "paid through the bank")
        shares = [(tx, _share(session, request, tx, mine.get(tx.id))) for tx in txs]
        for tx, share in shares:
            match = mine.get(tx.id)
            if match is None:
                match = PaymentMatch(payment_request_id=request.id, bank_transaction_id=tx.id, amount=share)
                session.add(match)
            match.state, match.amount, match.confidence, match.matched_by = "applied", share, 1.0, "manual"
            match.note = "confirmed by a person"
        for match in mine.values():  # other suggestions for this request are settled too
            if match.state == "suggested" and match.bank_transaction_id not in {tx.id for tx, _ in shares}:
                _unsuggest(session, match)
                _refresh_movement(session, _movement(session, match.bank_transaction_id),
                                  f"payment request {request.id} was paid by other movements")
        session.flush()
        paid = session.scalar(select(func.sum(PaymentMatch.amount)).where(
            PaymentMatch.payment_request_id == request.id, PaymentMatch.state == "applied")) or Decimal(0)
        request.status = "paid"
        drop_reviews(request, lambda r: not (isinstance(r, dict) and r.get("code") in PAYMENT_REVIEW_CODES))
        for tx, _ in shares:
            _release_used(session, tx, request.id)
            _refresh_movement(session, tx, "")
            tx.match_note = f"confirmed by a person for payment request {request.id}"
        first = shares[0][0]
        matched_event(session, request, transaction_id=first.id, source=first.source,
                      reference=first.structured_reference, paid=paid, matched_by="manual")
        short = "" if request.amount is None or paid >= request.amount else \
            f" (the movements add up to {paid:.2f} of {request.amount:.2f})"
        return Decided(request.id, "paid", True, f"payment request {request.id} marked paid by movement(s) "
                       f"{', '.join(str(tx.id) for tx, _ in shares)}{short}")


def _share(session: Session, request: PaymentRequest, tx: BankTransaction, match: PaymentMatch | None) -> Decimal:
    """The part of ``tx`` still free for ``request``; refuses credits and movements used up elsewhere."""
    if tx.amount >= 0:
        raise PaymentRefused(f"bank movement {tx.id} is a credit of {tx.amount:.2f} {tx.currency}, not a payment")
    if match is not None and match.state == "applied":
        return match.amount
    used = session.scalar(select(func.sum(PaymentMatch.amount)).where(
        PaymentMatch.bank_transaction_id == tx.id, PaymentMatch.state == "applied",
        PaymentMatch.payment_request_id != request.id)) or Decimal(0)
    free = -tx.amount - used
    if free <= 0:
        others = [m.payment_request_id for m in _matches(session, bank_transaction_id=tx.id) if m.state == "applied"]
        raise PaymentRefused(f"bank movement {tx.id} already pays payment request(s) "
                             f"{', '.join(map(str, others))} in full")
    if match is not None and match.amount < free:
        return match.amount  # the share suggested (one movement for several requests)
    if request.amount is not None:  # a larger movement may pay other requests too: take what is due
        applied = session.scalar(select(func.sum(PaymentMatch.amount)).where(
            PaymentMatch.payment_request_id == request.id, PaymentMatch.state == "applied",
            PaymentMatch.bank_transaction_id != tx.id)) or Decimal(0)
        due = request.amount - applied
        if 0 < due < free:
            return due
    return free


def _release_used(session: Session, tx: BankTransaction, request_id: int) -> None:
    """Once a movement is fully applied, drop its suggestions for other requests."""
    session.flush()
    matches = _matches(session, bank_transaction_id=tx.id)
    used = sum((m.amount for m in matches if m.state == "applied"), Decimal(0))
    if used < -tx.amount:
        return
    for match in matches:
        if match.state == "suggested" and match.payment_request_id != request_id:
            _unsuggest(session, match)


def dismiss_match(engine: Engine, document_id: int, movement_id: int) -> Decided:
    """Say that bank movement ``movement_id`` does not pay the payment request of ``document_id``."""
    with Session(engine) as session, session.begin():
        request = find_payment_request(session, document_id, lock=True)
        tx = _movement(session, movement_id)
        found = _matches(session, payment_request_id=request.id, bank_transaction_id=tx.id)
        if not found:
            raise PaymentRefused(f"bank movement {movement_id} is not matched to payment request {request.id} "
                                 f"(document {document_id}); `eboxd payment review` lists the suggestions")
        match = found[0]
        if match.state == "dismissed":
            return Decided(request.id, request.status, False,
                           f"bank movement {movement_id} was already dismissed for payment request {request.id}")
        if request.status == "paid":
            raise PaymentRefused(f"payment request {request.id} (document {document_id}) is paid; a payment is final")
        _unsuggest(session, match)
        _refresh_movement(session, tx, f"dismissed by a person for payment request {request.id}")
        return Decided(request.id, request.status, True,
                       f"bank movement {movement_id} dismissed for payment request {request.id}; now {request.status}")


def reject_request(engine: Engine, document_id: int, reason: str, *, now: dt.datetime | None = None) -> Decided:
    """Take the payment request of ``document_id`` out of matching: it will not be paid by the bank."""
    reason = " ".join(reason.split())
    if not reason:
        raise PaymentRefused("--reason is empty: say why this request is not to be paid (kept with it)")
    with Session(engine) as session, session.begin():
        request = find_payment_request(session, document_id, lock=True)
        if request.status == "rejected":
            return Decided(request.id, "rejected", False, f"payment request {request.id} was already rejected")
        if request.status == "paid":
            raise PaymentRefused(f"payment request {request.id} (document {document_id}) is paid; it cannot be "
                                 "rejected")
        suggested = [m for m in _matches(session, payment_request_id=request.id) if m.state == "suggested"]
        for match in suggested:
            _unsuggest(session, match)
        drop_reviews(request, lambda r: not (isinstance(r, dict) and r.get("code") in PAYMENT_REVIEW_CODES))
        sources = dict(request.field_sources or {})
        sources["rejected"] = {"reason": reason,
                               "at": (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")}
        request.field_sources = sources
        request.status = "rejected"
        for match in suggested:
            _refresh_movement(session, _movement(session, match.bank_transaction_id),
                              f"payment request {request.id} was rejected")
        return Decided(request.id, "rejected", True, f"payment request {request.id} rejected: {reason}")
