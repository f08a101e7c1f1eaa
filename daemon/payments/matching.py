"""Matching bank movements to payment requests (``specs/banking.md`` §6).

For each bank transaction not examined yet:

* a **credit** is not a payment we make: ``match_state = "credit"``;
* a debit whose OGM/RF equals the reference of **exactly one** open payment request (of the same
  enterprise when the movement's is known) pays it: linked, and when the amounts paid so far
  reach the request's amount the request becomes ``paid`` and ``be.eboxd.payment.matched`` is
  queued (overpayment noted); less is a **partial** payment, linked and put in review;
* a debit with the reference of several requests, or without a matching reference but with the
  amount and counterparty IBAN of requests whose due date (else creation date) is within
  ``window_days`` of its booking date, is only **suggested**: the
  requests go to ``review`` with a reason naming the movement. Nothing ambiguous is marked paid;
* anything else is ``unmatched``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from daemon.db.models import BankTransaction, Enterprise, PaymentRequest
from daemon.outbox import add_event
from daemon.payments.requests import REVIEWS_KEY

__all__ = ["MatchResult", "match_payments"]

OPEN_STATUSES = ("open", "review")


@dataclass
class MatchResult:
    examined: int = 0
    matched: int = 0  # requests marked paid
    partial: int = 0
    suggested: int = 0
    unmatched: int = 0
    credits: int = 0
    paid_request_ids: list[int] = field(default_factory=list)


@dataclass
class _Open:
    id: int
    enterprise_id: int
    amount: Decimal | None
    iban: str | None
    reference: str | None
    start: dt.date
    end: dt.date | None
    paid: Decimal = Decimal(0)
    done: bool = False


class _Index:
    def __init__(self, session: Session, window: dt.timedelta) -> None:
        self.by_reference: dict[str, list[_Open]] = defaultdict(list)
        self.by_iban_amount: dict[tuple[str, Decimal], list[_Open]] = defaultdict(list)
        rows = session.execute(select(
            PaymentRequest.id, PaymentRequest.enterprise_id, PaymentRequest.amount, PaymentRequest.iban,
            PaymentRequest.reference, PaymentRequest.reference_kind, PaymentRequest.due_date,
            PaymentRequest.created_at).where(PaymentRequest.status.in_(OPEN_STATUSES)))
        self.requests: dict[int, _Open] = {}
        for rid, enterprise_id, amount, iban, reference, kind, due, created in rows:
            anchor = due or created.date()
            start, end = anchor - window, anchor + window
            item = _Open(rid, enterprise_id, amount, iban, reference if kind in ("ogm", "rf") else None, start, end)
            self.requests[rid] = item
            if item.reference:
                self.by_reference[item.reference].append(item)
            if iban and amount is not None:
                self.by_iban_amount[(iban, Decimal(amount))].append(item)
        paid = session.execute(select(BankTransaction.matched_payment_request_id, func.sum(BankTransaction.amount))
                               .where(BankTransaction.matched_payment_request_id.is_not(None))
                               .group_by(BankTransaction.matched_payment_request_id))
        for paid_id, total in paid:
            if paid_id in self.requests and total is not None:
                self.requests[paid_id].paid = -Decimal(total)


def _same_enterprise(tx: BankTransaction, item: _Open) -> bool:
    return tx.enterprise_id is None or tx.enterprise_id == item.enterprise_id


def _add_review(session: Session, request_id: int, reason: dict[str, Any]) -> None:
    request = session.get(PaymentRequest, request_id)
    if request is None:
        return
    sources = dict(request.field_sources or {})
    reasons = [r for r in sources.get(REVIEWS_KEY) or [] if r != reason]
    sources[REVIEWS_KEY] = [*reasons, reason]
    request.field_sources = sources
    if request.status == "open":
        request.status = "review"


def _describe(tx: BankTransaction) -> str:
    who = f" to {tx.counterparty_iban}" if tx.counterparty_iban else ""
    return f"bank movement {tx.id} of {tx.booking_date or '?'}: {-tx.amount:.2f} {tx.currency}{who}"


class _Matcher:
    def __init__(self, session: Session, index: _Index, numbers: dict[int, str], result: MatchResult) -> None:
        self.session, self.index, self.numbers, self.result = session, index, numbers, result

    def examine(self, tx: BankTransaction) -> None:
        self.result.examined += 1
        if tx.amount >= 0:
            tx.match_state = "credit"
            self.result.credits += 1
            return
        if (tx.currency or "EUR") != "EUR":
            self.unmatched(tx, f"currency {tx.currency}")
            return
        if tx.structured_reference:
            candidates = [r for r in self.index.by_reference.get(tx.structured_reference, [])
                          if not r.done and _same_enterprise(tx, r)]
            if len(candidates) == 1:
                self.pay(tx, candidates[0])
                return
            if candidates:
                self.suggest(tx, candidates, f"{len(candidates)} open payment requests carry reference "
                             f"{tx.structured_reference}")
                return
        if tx.counterparty_iban:
            booked = tx.booking_date or tx.value_date
            candidates = [r for r in self.index.by_iban_amount.get((tx.counterparty_iban, -tx.amount), [])
                          if not r.done and _same_enterprise(tx, r)
                          and (booked is None or r.start <= booked <= (r.end or booked))]
            if candidates:
                self.suggest(tx, candidates, "same amount and IBAN, no matching reference")
                return
        self.unmatched(tx, "no payment request with this reference, or this amount and IBAN")

    def unmatched(self, tx: BankTransaction, note: str) -> None:
        tx.match_state, tx.match_note = "unmatched", note
        self.result.unmatched += 1

    def suggest(self, tx: BankTransaction, candidates: list[_Open], why: str) -> None:
        tx.match_state = "suggested"
        tx.match_note = f"{why}: payment request(s) {', '.join(str(r.id) for r in candidates)}"
        for item in candidates:
            _add_review(self.session, item.id, {"field": "payment", "code": "payment_suggested",
                                                "message": f"{_describe(tx)} may pay this ({why}); confirm it"})
        self.result.suggested += 1

    def pay(self, tx: BankTransaction, item: _Open) -> None:
        paid_now = -tx.amount
        item.paid += paid_now
        tx.matched_payment_request_id = item.id
        if item.amount is not None and item.paid < item.amount:
            tx.match_state = "partial"
            tx.match_note = f"partial payment: {item.paid:.2f} of {item.amount:.2f}"
            _add_review(self.session, item.id, {"field": "amount", "code": "partially_paid",
                                                "message": f"{_describe(tx)} pays {paid_now:.2f}; "
                                                           f"{item.paid:.2f} of {item.amount:.2f} paid so far"})
            self.result.partial += 1
            return
        over = item.paid - item.amount if item.amount is not None else Decimal(0)
        tx.match_state = "matched"
        tx.match_note = f"overpaid by {over:.2f}" if over > 0 else None
        changed = self.session.execute(
            update(PaymentRequest).where(PaymentRequest.id == item.id, PaymentRequest.status.in_(OPEN_STATUSES))
            .values(status="paid")).rowcount  # type: ignore[attr-defined]
        item.done = True
        if not changed:  # paid meanwhile (another worker, a person)
            return
        number = self.numbers[item.enterprise_id]
        add_event(self.session, "be.eboxd.payment.matched", subject=number,
                  idempotency_key=f"payment.matched:{item.id}:{tx.id}",
                  data={"enterprise_number": number, "payment_request_id": item.id, "transaction_id": tx.id,
                        "amount": f"{paid_now:.2f}", "reference": tx.structured_reference,
                        "matched_by": "reference", "source": tx.source if tx.source in ("coda", "ponto") else "coda"})
        self.result.matched += 1
        self.result.paid_request_ids.append(item.id)


def match_payments(engine: Engine, *, window_days: int = 60, batch_size: int = 1000) -> MatchResult:
    """Examine every bank transaction not examined yet (see the module docstring)."""
    result = MatchResult()
    window = dt.timedelta(days=window_days)
    with Session(engine) as session:
        index = _Index(session, window)
        numbers = {row.id: row.number for row in session.execute(select(Enterprise.id, Enterprise.number))}
    last_id = 0
    while True:
        with Session(engine) as session, session.begin():
            batch = session.scalars(
                select(BankTransaction).where(BankTransaction.match_state.is_(None), BankTransaction.id > last_id)
                .order_by(BankTransaction.id).limit(batch_size).with_for_update(skip_locked=True)).all()
            if not batch:
                return result
            matcher = _Matcher(session, index, numbers, result)
            for tx in batch:
                matcher.examine(tx)
            last_id = batch[-1].id
