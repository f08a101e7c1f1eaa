"""The in-memory core of payment matching: what one bank movement pays, decided against indexes of
the open payment requests (by reference; by IBAN then amount; by IBAN then enterprise), so no
movement scans all requests. No database here: :mod:`daemon.payments.matching` feeds it rows and
writes its decisions; ``benchmarks/matching.py`` times it. The rules are in that module's
docstring.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from daemon.banking.ogm import find_ogms
from daemon.banking.rf import find_rfs

__all__ = [
    "DEFAULT_CONFIDENCE_THRESHOLD",
    "BankMovement",
    "Decision",
    "Link",
    "Matcher",
    "OpenRequest",
    "bank_movement",
    "movement_references",
]

DEFAULT_CONFIDENCE_THRESHOLD = 0.9
REFERENCE_CONFIDENCE = 1.0
OTHER_IBAN_CONFIDENCE = 0.8  # right OGM, another beneficiary account than the letter's
AMOUNT_IBAN_CONFIDENCE = 0.6
DATE_BONUS = 0.25  # added in full when booked on the due date, nothing at the window's edge
AMBIGUOUS_CONFIDENCE = 0.5
MAX_SUM_CANDIDATES = 12


@dataclass(slots=True)
class OpenRequest:
    id: int
    enterprise_id: int
    amount: Decimal | None
    iban: str | None
    reference: str | None  # OGM (12 digits) or RF; free references do not match
    anchor: dt.date  # due date, else the day it was read
    paid: Decimal = Decimal(0)
    closed: bool = False

    @property
    def remaining(self) -> Decimal | None:
        return None if self.amount is None else self.amount - self.paid


@dataclass(slots=True)  # not frozen: a frozen dataclass is built ~2× slower, and there is one per movement
class BankMovement:
    id: int
    enterprise_id: int | None
    amount: Decimal  # signed: a payment we make is negative
    currency: str
    booked: dt.date | None
    counterparty_iban: str | None
    references: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Link:
    request: OpenRequest
    amount: Decimal  # the part of the movement for this request
    confidence: float
    matched_by: str  # reference, amount_and_iban


@dataclass(slots=True)
class Decision:
    movement: BankMovement
    state: str  # credit, matched, partial, suggested, unmatched
    note: str | None = None  # for the movement
    why: str = ""  # for the requests' review reasons
    # tuples, empty by default: most movements pay nothing, and four lists each would cost more
    applied: tuple[Link, ...] = ()
    suggested: tuple[Link, ...] = ()
    paid: tuple[OpenRequest, ...] = ()  # requests this movement completes
    partial: tuple[OpenRequest, ...] = ()


_ZERO = Decimal(0)  # Decimal against Decimal compares faster than against an int
_WITHOUT_DIGITS = str.maketrans("", "", "0123456789")
_OGM_DIGITS = 12


def movement_references(structured: str | None, communication: str | None) -> tuple[str, ...]:
    """The structured reference, else the distinct valid OGMs (12 digits) and RFs of free text."""
    if structured:
        return (structured,)
    if not communication:
        return ()
    found: list[str] = []
    text = communication
    # most free texts hold fewer than 12 digits: no OGM, and no regex run
    if len(text) - len(text.translate(_WITHOUT_DIGITS)) >= _OGM_DIGITS:
        for candidate in find_ogms(text):
            if candidate.valid:
                found.append(candidate.digits)
                # blanked, so that an RF just before it cannot swallow its digits ("RF.. 1234…")
                text = text[:candidate.start] + " " * (candidate.end - candidate.start) + text[candidate.end:]
    if "RF" in text:
        found += [c.reference.value for c in find_rfs(text) if c.reference is not None]
    return tuple(dict.fromkeys(found)) if found else ()


def bank_movement(movement_id: int, enterprise_id: int | None, amount: Decimal, currency: str | None,
                  booked: dt.date | None, counterparty_iban: str | None, structured: str | None,
                  communication: str | None) -> BankMovement:
    """A movement as the matcher sees it, from a ``bank_transactions`` row's values (credits are
    not scanned for references: they pay nothing of ours)."""
    references = () if amount >= _ZERO else movement_references(structured, communication)
    return BankMovement(movement_id, enterprise_id, amount, currency or "EUR", booked, counterparty_iban, references)


def _ids(requests: Iterable[OpenRequest]) -> str:
    return ", ".join(str(r.id) for r in requests)


class Matcher:
    """Decides what each movement pays, updating the requests' paid amounts as it goes."""

    def __init__(self, requests: Iterable[OpenRequest], *, window_days: int = 60,
                 confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD) -> None:
        self.window = dt.timedelta(days=window_days)
        self.threshold = confidence_threshold
        self.by_reference: dict[str, list[OpenRequest]] = defaultdict(list)
        # IBAN first, then amount: a str caches its hash, a Decimal does not, and most IBANs miss
        self.by_iban_amount: dict[str, dict[Decimal, list[OpenRequest]]] = defaultdict(lambda: defaultdict(list))
        self.by_iban_enterprise: dict[str, dict[int, list[OpenRequest]]] = defaultdict(lambda: defaultdict(list))
        for request in requests:
            if request.reference:
                self.by_reference[request.reference].append(request)
            if request.iban and request.amount is not None:
                self.by_iban_amount[request.iban][request.amount].append(request)
                self.by_iban_enterprise[request.iban][request.enterprise_id].append(request)

    def decide(self, movement: BankMovement) -> Decision:
        if movement.amount >= _ZERO:
            return Decision(movement, "credit")
        if movement.currency != "EUR":
            return Decision(movement, "unmatched", f"currency {movement.currency}")
        paid = -movement.amount
        decision = self._by_reference(movement, paid) if movement.references else None
        if decision is None and movement.counterparty_iban and movement.booked:
            decision = self._by_amount_and_iban(movement, paid, movement.counterparty_iban, movement.booked)
        return decision or Decision(movement, "unmatched",
                                    "no open payment request with this reference, or this amount and IBAN")

    def _open(self, movement: BankMovement, candidates: Iterable[OpenRequest]) -> list[OpenRequest]:
        return [r for r in candidates if not r.closed
                and (movement.enterprise_id is None or movement.enterprise_id == r.enterprise_id)]

    def _by_reference(self, movement: BankMovement, paid: Decimal) -> Decision | None:
        named: dict[int, OpenRequest] = {}
        for reference in movement.references:
            candidates = self._open(movement, self.by_reference.get(reference, ()))
            if len(candidates) > 1:
                return self._suggest(movement, [(r, paid) for r in candidates], AMBIGUOUS_CONFIDENCE, "reference",
                                     f"{len(candidates)} open payment requests carry reference {reference}")
            for request in candidates:
                named[request.id] = request
        targets = list(named.values())
        if not targets:
            return None
        if len(targets) == 1:
            request = targets[0]
            to = movement.counterparty_iban
            other_iban = bool(to and request.iban and to != request.iban)
            confidence = OTHER_IBAN_CONFIDENCE if other_iban else REFERENCE_CONFIDENCE
            why = f"reference matches but paid to {to}" if other_iban else "reference"
            return self._apply(movement, [(request, paid)], confidence, "reference", why)
        remaining = [r.remaining for r in targets]
        shares = [(r, left) for r, left in zip(targets, remaining, strict=True) if left is not None]
        total = sum((left for _, left in shares), Decimal(0))
        if len(shares) == len(targets) and total == paid:
            return self._apply(movement, shares, REFERENCE_CONFIDENCE, "reference",
                               f"one movement for {len(targets)} payment requests")
        return self._suggest(movement, [(r, left or paid) for r, left in zip(targets, remaining, strict=True)],
                             AMBIGUOUS_CONFIDENCE, "reference",
                             f"one movement of {paid:.2f} names {len(targets)} payment requests whose open "
                             f"amounts add up to {total:.2f}")

    def _in_window(self, request: OpenRequest, booked: dt.date) -> bool:
        return abs(booked - request.anchor) <= self.window

    def _date_score(self, request: OpenRequest, booked: dt.date) -> float:
        closeness = 1 - abs((booked - request.anchor).days) / max(self.window.days, 1)
        return round(AMOUNT_IBAN_CONFIDENCE + DATE_BONUS * max(closeness, 0.0), 3)

    def _by_amount_and_iban(self, movement: BankMovement, paid: Decimal, iban: str, booked: dt.date
                            ) -> Decision | None:
        amounts = self.by_iban_amount.get(iban)
        if amounts is None:  # no open request to this IBAN: neither lookup below can hit
            return None
        same = amounts.get(paid)
        candidates = ([r for r in self._open(movement, same) if not r.paid and self._in_window(r, booked)]
                      if same else [])
        if len(candidates) == 1:
            request = candidates[0]
            return self._apply(movement, [(request, paid)], self._date_score(request, booked), "amount_and_iban",
                               "same amount and IBAN, no matching reference")
        if candidates:
            return self._suggest(movement, [(r, paid) for r in candidates], AMBIGUOUS_CONFIDENCE, "amount_and_iban",
                                 f"{len(candidates)} open payment requests have this amount and IBAN")
        return self._by_sum(movement, paid, iban, booked)

    def _by_sum(self, movement: BankMovement, paid: Decimal, iban: str, booked: dt.date) -> Decision | None:
        """One transfer for several requests of an enterprise to one IBAN: only ever suggested."""
        ours = movement.enterprise_id
        to_iban = None if ours is None else self.by_iban_enterprise[iban].get(ours)
        if not to_iban or len(to_iban) < 2:  # a sum needs two requests
            return None
        group = [r for r in self._open(movement, to_iban) if self._in_window(r, booked)]
        if not 2 <= len(group) <= MAX_SUM_CANDIDATES:
            return None
        shares = [(r, r.remaining) for r in group if r.remaining]
        if len(shares) == len(group) and sum(left for _, left in shares) == paid:
            return self._suggest(movement, shares, AMBIGUOUS_CONFIDENCE, "amount_and_iban",  # type: ignore[arg-type]
                                 f"the amount equals the sum of {len(group)} open payment requests to {iban}")
        return None

    def _suggest(self, movement: BankMovement, shares: list[tuple[OpenRequest, Decimal]], confidence: float,
                 matched_by: str, why: str) -> Decision:
        links = [Link(request, share, confidence, matched_by) for request, share in shares]
        return Decision(movement, "suggested", f"{why}: payment request(s) {_ids(r for r, _ in shares)}",
                        why=why, suggested=tuple(links))

    def _apply(self, movement: BankMovement, shares: list[tuple[OpenRequest, Decimal]], confidence: float,
               matched_by: str, why: str) -> Decision:
        if confidence < self.threshold:
            return self._suggest(movement, shares, confidence, matched_by,
                                 f"{why} (confidence {confidence:.2f}, below {self.threshold:.2f})")
        paid: list[OpenRequest] = []
        partial: list[OpenRequest] = []
        notes = [why] if len(shares) > 1 else []
        for request, share in shares:
            request.paid += share
            remaining = request.remaining
            if remaining is None:
                partial.append(request)
                notes.append(f"payment request {request.id} has no amount")
            elif remaining > 0:
                partial.append(request)
                notes.append(f"partial payment: {request.paid:.2f} of {request.amount:.2f}")
            else:
                request.closed = True
                paid.append(request)
                if remaining < 0:
                    notes.append(f"overpaid by {-remaining:.2f}")
        return Decision(movement, "partial" if partial else "matched", "; ".join(notes) or None, why,
                        applied=tuple(Link(r, s, confidence, matched_by) for r, s in shares), paid=tuple(paid),
                        partial=tuple(partial))
