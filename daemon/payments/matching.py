"""Matching bank movements to payment requests (``specs/banking.md`` §6).

Each bank transaction is examined once (``match_state`` None → a state); what it pays is kept as
``payment_matches`` rows, one per (request, movement) pair, so the cases below are explicit:

* a **credit** is not a payment we make (``credit``); a non-EUR debit is ``unmatched``.
* **References.** A debit's references are its structured OGM/RF, else every valid OGM/RF typed in
  its free-text communication. A reference names the open payment request carrying it (of the
  movement's enterprise when that is known).

  - One reference, one request: the movement is **applied** to it whole. Paid so far below the
    request's amount: **partial** (request in review, ``partially_paid``); several partial
    movements that add up pay it. Equal: **paid**. More: paid and **overpaid** (the excess is
    noted on the movement, the match and the request; the debt is settled, a refund is a
    person's business). A request without an amount is linked but stays in review
    (``amount_unknown``).
  - Several references, each naming one request (one transfer for several letters): when the
    movement's amount equals the sum of what is still open on those requests, it pays all of
    them (each gets its open amount); otherwise it is only suggested for each.
  - A reference carried by several open requests is ambiguous: suggested for each.
* **No reference match** (none given, or none naming an open request), but a counterparty IBAN:
  a request with the same IBAN and amount, nothing paid yet, whose due date (else creation date)
  lies within ``window_days`` of the booking date, is a candidate. One candidate is applied as
  above if its score reaches the threshold; several are suggested. Failing that, when the amount
  equals the sum of the open amounts of 2–12 requests of the same enterprise and IBAN in the
  window, those are suggested together (never paid automatically: a sum can be a coincidence).
* anything else is ``unmatched``.

**Confidence** (0–1) decides between paying and suggesting: a document is marked paid only at or
above ``confidence_threshold`` (``banking.match_confidence_threshold``, default 0.9). An exact
reference scores 1.0, or 0.8 when the movement went to another IBAN than the letter's; amount +
IBAN scores 0.6 plus up to 0.25 the closer the booking date is to the due date, so by default a
person confirms those (``eboxd payment review`` / ``confirm``).

A paid request gets one ``be.eboxd.payment.matched`` (key ``payment.matched:<request id>``), in
the transaction that marks it paid. A batch of movements is examined in one transaction, rows
locked with ``SKIP LOCKED``; a redelivered task finds nothing left to examine. Whether a request
is paid is decided on the sum of its applied matches read in SQL with the request row locked, so
partial payments examined by two workers at once still add up. Suggestions are left to a person:
:mod:`daemon.payments.review` (``eboxd payment confirm / dismiss / reject``).

The in-memory core, :class:`Matcher` (in :mod:`daemon.payments.matcher`, re-exported here), keeps
dictionaries by reference, by IBAN then amount, and by IBAN then enterprise: no movement scans all
requests. :func:`match_payments` is the database pass around it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from daemon.db.models import BankTransaction, Enterprise, PaymentMatch, PaymentRequest
from daemon.outbox import add_event
from daemon.payments.matcher import (
    DEFAULT_CONFIDENCE_THRESHOLD,
    BankMovement,
    Decision,
    Link,
    Matcher,
    OpenRequest,
    bank_movement,
    movement_references,
)
from daemon.payments.requests import REVIEWS_KEY

__all__ = [
    "DEFAULT_CONFIDENCE_THRESHOLD",
    "OPEN_STATUSES",
    "PAYMENT_REVIEW_CODES",
    "BankMovement",
    "Decision",
    "Link",
    "MatchResult",
    "Matcher",
    "OpenRequest",
    "add_review",
    "bank_movement",
    "drop_reviews",
    "match_payments",
    "matched_event",
    "movement_references",
]

OPEN_STATUSES = ("open", "review")
# Review reasons written by matching; a request that becomes paid no longer needs them.
PAYMENT_REVIEW_CODES = frozenset({"payment_suggested", "partially_paid", "amount_unknown"})


@dataclass
class MatchResult:
    examined: int = 0
    matched: int = 0  # requests marked paid
    partial: int = 0
    suggested: int = 0
    unmatched: int = 0
    credits: int = 0
    paid_request_ids: list[int] = field(default_factory=list)


def _open_requests(session: Session) -> Iterator[OpenRequest]:
    totals = session.execute(
        select(PaymentMatch.payment_request_id, func.sum(PaymentMatch.amount))
        .join(PaymentRequest, PaymentRequest.id == PaymentMatch.payment_request_id)
        .where(PaymentMatch.state == "applied", PaymentRequest.status.in_(OPEN_STATUSES))
        .group_by(PaymentMatch.payment_request_id))
    paid: dict[int, Decimal] = dict(totals.all())  # type: ignore[arg-type]
    rows = session.execute(select(
        PaymentRequest.id, PaymentRequest.enterprise_id, PaymentRequest.amount, PaymentRequest.iban,
        PaymentRequest.reference, PaymentRequest.reference_kind, PaymentRequest.due_date,
        PaymentRequest.created_at).where(PaymentRequest.status.in_(OPEN_STATUSES)))
    for rid, enterprise_id, amount, iban, reference, kind, due, created in rows:
        yield OpenRequest(rid, enterprise_id, amount, iban, reference if kind in ("ogm", "rf") else None,
                          due or created.date(), Decimal(paid.get(rid) or 0))


def add_review(session: Session, request: PaymentRequest, reason: dict[str, Any]) -> None:
    """Add a review reason (once) and put an open request in review."""
    sources = dict(request.field_sources or {})
    sources[REVIEWS_KEY] = [*(r for r in sources.get(REVIEWS_KEY) or [] if r != reason), reason]
    request.field_sources = sources
    if request.status == "open":
        request.status = "review"


def drop_reviews(request: PaymentRequest, keep: Any) -> None:
    """Remove the review reasons for which ``keep(reason)`` is false; a request in review left
    without reasons is open again."""
    sources = dict(request.field_sources or {})
    reasons = [r for r in sources.get(REVIEWS_KEY) or [] if keep(r)]
    if reasons:
        sources[REVIEWS_KEY] = reasons
    else:
        sources.pop(REVIEWS_KEY, None)
    request.field_sources = sources
    if request.status == "review" and not reasons:
        request.status = "open"


def _is_payment_review(reason: Any) -> bool:
    return isinstance(reason, dict) and reason.get("code") in PAYMENT_REVIEW_CODES


def matched_event(session: Session, request: PaymentRequest, *, transaction_id: int, source: str,
                  reference: str | None, paid: Decimal, matched_by: str, number: str | None = None) -> None:
    """Queue ``be.eboxd.payment.matched`` for a request that has just become paid (once per request)."""
    if number is None:
        number = session.execute(select(Enterprise.number).where(Enterprise.id == request.enterprise_id)).scalar_one()
    add_event(session, "be.eboxd.payment.matched", subject=number, idempotency_key=f"payment.matched:{request.id}",
              data={"enterprise_number": number, "payment_request_id": request.id, "transaction_id": transaction_id,
                    "amount": f"{paid:.2f}", "reference": reference or request.reference, "matched_by": matched_by,
                    "source": source if source in ("coda", "ponto") else "coda"})


@dataclass(frozen=True, slots=True)
class _Row:
    """What the pass reads of a bank transaction, besides the matcher's :class:`BankMovement`."""

    source: str
    currency: str
    structured_reference: str | None


def _describe(movement: BankMovement, currency: str) -> str:
    return f"movement {movement.id} ({-movement.amount:.2f} {currency} on {movement.booked or '?'})"


_COUNTERS = {"credit": "credits", "unmatched": "unmatched", "suggested": "suggested", "partial": "partial"}
_IN_CHUNK = 900  # ids per IN (...) list: SQLite's old limit is 999 variables


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), _IN_CHUNK):
        yield ids[start:start + _IN_CHUNK]


class _BatchWriter:
    """Writes one batch's decisions with few statements: movement states by primary key, match
    rows in one insert, the touched requests locked and loaded once, paid totals summed in SQL."""

    def __init__(self, session: Session, numbers: dict[int, str], result: MatchResult) -> None:
        self.session, self.numbers, self.result = session, numbers, result
        postgres = session.get_bind().dialect.name == "postgresql"
        self.insert = postgresql.insert if postgres else sqlite.insert

    def write(self, decisions: list[tuple[Decision, _Row]]) -> None:
        session = self.session
        for decision, _ in decisions:
            if decision.state in _COUNTERS:
                name = _COUNTERS[decision.state]
                setattr(self.result, name, getattr(self.result, name) + 1)
        session.execute(update(BankTransaction), [
            {"id": d.movement.id, "match_state": d.state, "match_note": d.note,
             "matched_payment_request_id": d.applied[0].request.id if d.applied else None} for d, _ in decisions])
        matches = [{"payment_request_id": link.request.id, "bank_transaction_id": d.movement.id, "state": state,
                    "amount": link.amount, "confidence": link.confidence, "matched_by": link.matched_by,
                    "note": d.note}
                   for d, _ in decisions for state, links in (("applied", d.applied), ("suggested", d.suggested))
                   for link in links]
        if not matches:
            return
        session.execute(self.insert(PaymentMatch).on_conflict_do_nothing(
            index_elements=["payment_request_id", "bank_transaction_id"]), matches)
        touched = sorted({link.request.id for d, _ in decisions for link in (*d.applied, *d.suggested)})
        requests: dict[int, PaymentRequest] = {}
        for chunk in _chunks(touched):  # locked: concurrent passes add up partial payments correctly
            query = select(PaymentRequest).where(PaymentRequest.id.in_(chunk)).with_for_update()
            requests.update((r.id, r) for r in session.scalars(query))
        for decision, row in decisions:
            for link in decision.suggested:
                add_review(session, requests[link.request.id], {
                    "field": "payment", "code": "payment_suggested", "transaction_id": decision.movement.id,
                    "message": f"{_describe(decision.movement, row.currency)} may pay this: {decision.why}"})
        self._settle(decisions, requests)

    def _settle(self, decisions: list[tuple[Decision, _Row]], requests: dict[int, PaymentRequest]) -> None:
        last: dict[int, tuple[Decision, _Row, Link]] = {}
        for decision, row in decisions:
            for link in decision.applied:
                last[link.request.id] = (decision, row, link)
        if not last:
            return
        paid: dict[int, Decimal] = {}
        for chunk in _chunks(sorted(last)):
            paid.update(self.session.execute(
                select(PaymentMatch.payment_request_id, func.sum(PaymentMatch.amount))
                .where(PaymentMatch.payment_request_id.in_(chunk), PaymentMatch.state == "applied")
                .group_by(PaymentMatch.payment_request_id)).all())  # type: ignore[arg-type]
        for request_id, (decision, row, link) in last.items():
            request, total = requests[request_id], paid.get(request_id, Decimal(0))
            if request.status not in OPEN_STATUSES:
                continue
            if request.amount is None or total < request.amount:
                code = "amount_unknown" if request.amount is None else "partially_paid"
                of = "" if request.amount is None else f" of {request.amount:.2f}"
                add_review(self.session, request, {
                    "field": "amount", "code": code, "transaction_id": decision.movement.id,
                    "message": f"{_describe(decision.movement, row.currency)} pays {link.amount:.2f}; "
                               f"{total:.2f}{of} paid so far"})
                continue
            drop_reviews(request, lambda r: not _is_payment_review(r))
            request.status = "paid"
            if total > request.amount:
                add_review(self.session, request, {"field": "amount", "code": "overpaid",
                                                   "transaction_id": decision.movement.id,
                                                   "message": f"overpaid by {total - request.amount:.2f}"})
            matched_event(self.session, request, transaction_id=decision.movement.id, source=row.source,
                          reference=row.structured_reference, paid=total, matched_by=link.matched_by,
                          number=self.numbers.get(request.enterprise_id))
            self.result.matched += 1
            self.result.paid_request_ids.append(request.id)


_COLUMNS = (BankTransaction.id, BankTransaction.enterprise_id, BankTransaction.amount, BankTransaction.currency,
            BankTransaction.booking_date, BankTransaction.value_date, BankTransaction.counterparty_iban,
            BankTransaction.structured_reference, BankTransaction.communication, BankTransaction.source)


def match_payments(engine: Engine, *, window_days: int = 60,
                   confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD, batch_size: int = 1000) -> MatchResult:
    """Examine every bank transaction not examined yet (see the module docstring)."""
    result = MatchResult()
    with Session(engine) as session:
        matcher = Matcher(_open_requests(session), window_days=window_days, confidence_threshold=confidence_threshold)
        numbers: dict[int, str] = dict(session.execute(select(Enterprise.id, Enterprise.number)).all())  # type: ignore[arg-type]
    last_id = 0
    while True:
        with Session(engine) as session, session.begin():
            batch = session.execute(
                select(*_COLUMNS).where(BankTransaction.match_state.is_(None), BankTransaction.id > last_id)
                .order_by(BankTransaction.id).limit(batch_size).with_for_update(skip_locked=True)).all()
            if not batch:
                return result
            decisions = []
            for tx_id, enterprise_id, amount, currency, booked, valued, iban, structured, text, source in batch:
                movement = bank_movement(tx_id, enterprise_id, amount, currency, booked or valued, iban, structured,
                                         text)
                decisions.append((matcher.decide(movement), _Row(source, currency or "EUR", structured)))
            result.examined += len(decisions)
            _BatchWriter(session, numbers, result).write(decisions)
            last_id = batch[-1][0]
