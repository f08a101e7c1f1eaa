"""The hot path: movements read a 2.1 [2.2] [2.3] group at a time.

One compiled regex checks a whole group and cuts it into fields at C speed: the record types,
the digit fields, the 2.2/2.3 carrying the 2.1's sequence and detail numbers (a back-reference)
and every line being 128 characters. Whatever it does not match (3.x, records 0/1/8/9, a short
line, a malformed field, a 2.2 in the next read block) goes to the line-by-line parser, which
says exactly what is wrong; both update the same :class:`~daemon.banking.coda.parser.Parser`
state, so the result is the same either way.

A group's communication is decoded as soon as the group is known complete (a 2.3, or another 2.1
next); otherwise, rarely, the movement stays ``parser.pending`` until the next 2.1 or its
top-level movement is finished.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from daemon.banking.coda.decoding import UNDECODED, counterparty_of, decode_communication
from daemon.banking.coda.model import Communication, CommunicationBuilder, Counterparty, Movement
from daemon.banking.coda.records import CACHE_LIMIT

if TYPE_CHECKING:
    from daemon.banking.coda.parser import Parser

__all__ = ["DETAIL_TYPES", "GROUP", "TOP_LEVEL_TYPES", "read_groups"]

# columns 1-128 of each record, then its line end; unused columns are (?:…) to skip a capture
GROUP = re.compile(
    # 2.1: sequence, detail, bank reference, sign, amount, value date, transaction code,
    # communication type, communication zone, entry date, paper number, globalisation code
    r"21([0-9]{4})([0-9]{4})(.{21})([01])([0-9]{15})(.{6})(.{8})([01])(.{53})(.{6})(.{3})(.)(?:.{3})\n"
    # 2.2: communication zone, end-to-end id, BIC, R-type, ISO reason, category purpose, purpose
    r"(?:22\1\2(.{53})(.{35})(.{11})(?:.{3})(.)(.{4})(.{4})(.{4})(?:.{3})\n)?"
    # 2.3: account + currency + name zone, communication zone
    r"(?:23\1\2(.{72})(.{43})(?:.{3})\n)?")
_BLANK_ZONE_22, _BLANK_ZONE_23 = " " * 53, " " * 43
_NO_COUNTERPARTY = Counterparty()
_UNSET: Any = object()
DETAIL_TYPES = frozenset("5678")  # placed under the current top-level movement when the sequence matches
TOP_LEVEL_TYPES = frozenset("0123")
# int() of the usual 4-digit sequence and detail numbers by lookup, a third of the cost (100 kB;
# sequences restart with each statement, so few statements go past 999)
_NUMBERS = {f"{n:04d}": n for n in range(1000)}
_ZERO_AMOUNT = "0" * 15
_GLOBALISATION = {str(n): n for n in range(10)}


def read_groups(parser: Parser, text: str, pos: int, number: int, out: list[Movement]) -> tuple[int, int]:  # noqa: PLR0912, PLR0915 -- the hot loop, kept in one frame on purpose
    """Read the groups at ``pos`` in ``text`` (lines ending in LF; ``number`` is the line before
    ``pos``) until one does not match; the top-level movements they complete go to ``out``.
    Returns the new position and line number."""
    match = GROUP.match
    found: Any = match(text, pos)
    if found is None:
        return pos, number
    if parser.pending is not None:  # a 2.1 before this one whose 2.2/2.3 could have been in this text
        parser.decode_pending()
    if parser.info is not None:
        parser.flush_info()
    first = number
    dates, codes, parties, bic_parties = parser.dates, parser.codes, parser.counterparties, parser.bic_parties
    numbers, globalisations = _NUMBERS, _GLOBALISATION
    debit_amounts: list[Decimal] = []  # of the movements with detail number 0, summed once at the end
    credit_amounts: list[Decimal] = []
    top, last_seven, last_sequence = parser.top, parser.last_seven, parser.last_sequence
    new, decimal = object.__new__, Decimal
    build: Any = object.__new__  # a CommunicationBuilder, then a Communication
    while True:
        (sequence_text, detail_text, bank_reference, sign, digits, value_text, code_text, structured, zone21,
         entry_text, paper_number, globalisation, zone22, end_to_end, bic, r_type, iso_reason, category_purpose,
         purpose, zone23, zone3) = found.groups()
        pos = found.end()
        number += 1
        line = number  # the 2.1's: for a date error or a warning while placing it
        value = decimal(digits + "E-3")  # exactly Decimal(int(digits)).scaleb(-3), a third quicker
        if sign == "1":
            value = -value
        value_date = dates.get(value_text, _UNSET)
        if value_date is _UNSET:
            parser.line = line
            value_date = parser.cached_date(value_text, 48, 53, "value date")
        entry_date = dates.get(entry_text, _UNSET)
        if entry_date is _UNSET:
            parser.line = line
            entry_date = parser.cached_date(entry_text, 116, 121, "entry date")
        code = codes.get(code_text) or parser.transaction_code(code_text)
        if zone22 is None:
            zone2 = _BLANK_ZONE_22
            end_to_end_id = bic_code = None
            party = _NO_COUNTERPARTY
            r_type = iso_reason = category_purpose = purpose = ""
        else:
            zone2 = zone22
            number += 1
            end_to_end = end_to_end.strip()
            end_to_end_id = end_to_end if end_to_end and end_to_end != "NOTPROVIDED" else None
            bic_code = bic.strip() or None
            party = _NO_COUNTERPARTY if bic_code is None else (bic_parties.get(bic_code)
                                                                or parser.bic_party(bic_code))
            r_type, iso_reason = r_type.strip(), iso_reason.strip()
            category_purpose, purpose = category_purpose.strip(), purpose.strip()
        if zone23 is None:
            zone3 = _BLANK_ZONE_23
        else:
            number += 1
            known = parties.get((zone23, bic_code))
            if known is None:
                known = counterparty_of(zone23, bic_code)
                if len(parties) >= CACHE_LIMIT:
                    parties.clear()
                parties[zone23, bic_code] = known
            party = known
        sequence = numbers.get(sequence_text)
        if sequence is None:
            sequence = int(sequence_text)
        detail = numbers.get(detail_text)
        if detail is None:
            detail = int(detail_text)
        globalised = globalisations.get(globalisation)
        if globalised is None:
            globalised = int(globalisation) if globalisation.isdigit() else 0
        # Decoded now unless a 2.2/2.3 may still come (in the line-by-line reader, or the next block)
        if zone23 is None and not text.startswith("21", pos):
            communication = UNDECODED
        elif structured == "0":
            raw = zone21 + zone2 + zone3
            communication = build(CommunicationBuilder)  # free_communication(raw, raw.strip()), without the call
            communication.structured = False
            communication.raw = raw
            communication.type = None
            communication.text = raw.strip()
            communication.__class__ = Communication
        else:
            communication = decode_communication(True, zone21 + zone2 + zone3)
        # Movement(…) without its __init__ call: half the cost, once per movement
        movement = new(Movement)
        movement.sequence = sequence
        movement.detail = detail
        movement.bank_reference = bank_reference.strip()
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
            if sign == "1" and digits != _ZERO_AMOUNT:
                debit_amounts.append(value)
            else:
                credit_amounts.append(value)
        found = match(text, pos)
        if found is None:
            break
    parser.top, parser.last_seven, parser.last_sequence = top, last_seven, last_sequence
    if communication is UNDECODED:
        parser.pending, parser.pending_zones = movement, [zone21, zone2, zone3]
        parser.pending_structured = structured == "1"
    parser.line = number
    parser.counted += number - first  # every line read is a record 2.x
    parser.debits -= sum(debit_amounts)  # exact: 28 digits of precision
    parser.credits += sum(credit_amounts)
    parser.last_21, parser.last_21_key = movement, sequence_text + detail_text
    parser.last_record = "2.3" if zone23 is not None else "2.1" if zone22 is None else "2.2"
    return pos, number
