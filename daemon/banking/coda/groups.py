"""The hot path: movements read a 2.1 [2.2] [2.3] group at a time.

:func:`~daemon.banking.coda.scan.scan_group` checks a whole group and cuts it into converted fields
in one call (in C when built, else by one regex): the record types, the digit fields, the 2.2/2.3
carrying the 2.1's sequence and detail numbers and every line being 128 characters. Whatever it
does not match (3.x, records 0/1/8/9, a short line, a malformed field, a 2.2 in the next read
block) goes to the line-by-line parser, which says exactly what is wrong; both update the same
:class:`~daemon.banking.coda.parser.Parser` state, so the result is the same either way.

A group's communication is decoded as soon as the group is known complete (a 2.3, or another 2.1
next); otherwise, rarely, the movement stays ``parser.pending`` until the next 2.1 or its
top-level movement is finished.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from daemon.banking.coda.decoding import UNDECODED, decode_communication
from daemon.banking.coda.model import Communication, CommunicationBuilder, Counterparty, Movement
from daemon.banking.coda.scan import scan_group

if TYPE_CHECKING:
    from daemon.banking.coda.parser import Parser

__all__ = ["DETAIL_TYPES", "TOP_LEVEL_TYPES", "read_groups"]

_NO_COUNTERPARTY = Counterparty()
_UNSET: Any = object()
DETAIL_TYPES = frozenset("5678")  # placed under the current top-level movement when the sequence matches
TOP_LEVEL_TYPES = frozenset("0123")


def read_groups(parser: Parser, text: str, pos: int, number: int, out: list[Movement]) -> tuple[int, int]:  # noqa: PLR0912, PLR0915 -- the hot loop, kept in one frame on purpose
    """Read the groups at ``pos`` in ``text`` (lines ending in LF; ``number`` is the line before
    ``pos``) until one does not match; the top-level movements they complete go to ``out``.
    Returns the new position and line number."""
    scan = scan_group
    found: Any = scan(text, pos)
    if found is None:
        return pos, number
    if parser.pending is not None:  # a 2.1 before this one whose 2.2/2.3 could have been in this text
        parser.decode_pending()
    if parser.info is not None:
        parser.flush_info()
    first = number
    dates, codes, parties, bic_parties = parser.dates, parser.codes, parser.counterparties, parser.bic_parties
    debit_amounts: list[Decimal] = []  # of the movements with detail number 0, summed once at the end
    credit_amounts: list[Decimal] = []
    top, last_seven, last_sequence = parser.top, parser.last_seven, parser.last_sequence
    new = object.__new__
    build: Any = object.__new__  # a CommunicationBuilder, then a Communication
    while True:
        group_start = pos
        (pos, lines, sequence, detail, bank_reference, value, debit, value_text, code_text, structured, raw,
         entry_text, paper_number, globalised, end_to_end_id, bic_code, r_type, iso_reason, category_purpose,
         purpose, zone23) = found
        line = number + 1  # the 2.1's: for a date error or a warning while placing it
        number += lines
        value_date = dates.get(value_text, _UNSET)
        if value_date is _UNSET:
            parser.line = line
            value_date = parser.cached_date(value_text, 48, 53, "value date")
        if entry_text == value_text:  # usually: one look-up fewer
            entry_date = value_date
        else:
            entry_date = dates.get(entry_text, _UNSET)
            if entry_date is _UNSET:
                parser.line = line
                entry_date = parser.cached_date(entry_text, 116, 121, "entry date")
        code = codes.get(code_text) or parser.transaction_code(code_text)
        if zone23 is None:
            party = _NO_COUNTERPARTY if bic_code is None else (bic_parties.get(bic_code)
                                                                or parser.bic_party(bic_code))
        else:
            key = zone23 if bic_code is None else (zone23, bic_code)  # as Parser.record_23
            party = parties.get(key) or parser.new_counterparty(key, zone23, bic_code)
        # Decoded now unless a 2.2/2.3 may still come (in the line-by-line reader, or the next block)
        if zone23 is None and not text.startswith("21", pos):
            communication = UNDECODED
        elif structured == "0":
            communication = build(CommunicationBuilder)  # free_communication(raw, raw.strip()), without the call
            communication.structured = False
            communication.raw = raw
            communication.type = None
            communication.text = raw.strip()
            communication.__class__ = Communication
        else:
            communication = decode_communication(True, raw)
        # Movement(…) without its __init__ call: half the cost, once per movement
        movement = new(Movement)
        movement.sequence = sequence
        movement.detail = detail
        movement.bank_reference = bank_reference
        movement.amount = value
        movement.value_date = value_date
        movement.entry_date = entry_date
        movement.transaction_code = code
        movement.communication = communication
        movement.paper_number = paper_number
        movement.globalisation = globalised
        movement.line = line
        movement.end_to_end_id = end_to_end_id
        movement.counterparty = party
        movement.r_type = r_type
        movement.iso_reason = iso_reason
        movement.category_purpose = category_purpose
        movement.purpose = purpose
        movement.details = []
        movement.information = []
        kind = code.type
        if kind in DETAIL_TYPES and top is not None and top.sequence == sequence:  # most details: no call
            top.details.append(movement)
            if kind == "7":
                last_seven = movement
        elif kind in TOP_LEVEL_TYPES:  # Parser.place's usual case, inline
            if top is not None:
                out.append(top)
            if last_sequence is not None and sequence != last_sequence + 1 and sequence != last_sequence:
                parser.line = line
                parser.warn("sequence_gap", f"sequence {sequence:04d} follows {last_sequence:04d}")
            last_sequence = sequence
            top = movement
        else:
            parser.top, parser.last_seven, parser.last_sequence, parser.line = top, last_seven, last_sequence, line
            done = parser.place(movement, kind)
            if done is not None:
                out.append(done)
            top, last_seven, last_sequence = parser.top, parser.last_seven, parser.last_sequence
        if detail == 0:
            if debit:
                debit_amounts.append(value)
            else:
                credit_amounts.append(value)
        found = scan(text, pos)
        if found is None:
            break
    parser.top, parser.last_seven, parser.last_sequence = top, last_seven, last_sequence
    if communication is UNDECODED:
        parser.pending, parser.pending_zones = movement, [raw[:53], raw[53:106], raw[106:]]
        parser.pending_structured = structured == "1"
    parser.line = number
    parser.counted += number - first  # every line read is a record 2.x
    parser.debits -= sum(debit_amounts)  # exact: 28 digits of precision
    parser.credits += sum(credit_amounts)
    parser.last_21, parser.last_21_key = movement, text[group_start + 2:group_start + 10]
    parser.last_record = "2.3" if zone23 is not None else "2.1" if lines == 1 else "2.2"
    return pos, number
