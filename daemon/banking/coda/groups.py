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
from daemon.banking.coda.model import Counterparty, Movement
from daemon.banking.coda.records import CACHE_LIMIT

if TYPE_CHECKING:
    from daemon.banking.coda.parser import Parser

__all__ = ["DETAIL_TYPES", "GROUP", "read_groups"]

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
# int() of the usual 4-digit sequence and detail numbers by lookup, a third of the cost (100 kB;
# sequences restart with each statement, so few statements go past 999)
_NUMBERS = {f"{n:04d}": n for n in range(1000)}
_GLOBALISATION = {str(n): n for n in range(10)}


def _record_22(end_to_end: str, bic: str, r_type: str, iso_reason: str, category_purpose: str, purpose: str,
               ) -> tuple[str | None, str | None, str, str, str, str]:
    """The 2.2 fields of a group, as :meth:`Parser.record_22` reads them."""
    end_to_end = end_to_end.strip()
    return (None if not end_to_end or end_to_end == "NOTPROVIDED" else end_to_end, bic.strip() or None,
            r_type.strip(), iso_reason.strip(), category_purpose.strip(), purpose.strip())


def read_groups(parser: Parser, text: str, pos: int, number: int, out: list[Movement]) -> tuple[int, int]:  # noqa: PLR0912, PLR0915 -- the hot loop, kept in one frame on purpose
    """Read the groups at ``pos`` in ``text`` (lines ending in LF; ``number`` is the line before
    ``pos``) until one does not match; the top-level movements they complete go to ``out``.
    Returns the new position and line number."""
    match = GROUP.match
    first = number
    dates, codes, parties, bic_parties = parser.dates, parser.codes, parser.counterparties, parser.bic_parties
    numbers = _NUMBERS
    place = parser.place
    debits, credits = parser.debits, parser.credits
    sequence_text = detail_text = ""
    movement = None
    pending = parser.pending  # a 2.1 before this one whose 2.2/2.3 could have been in this text
    while (found := match(text, pos)) is not None:
        if pending is not None:
            parser.decode_pending()
            pending = None
        (sequence_text, detail_text, bank_reference, sign, digits, value_text, code_text, structured, zone21,
         entry_text, paper_number, globalisation, zone22, end_to_end, bic, r_type, iso_reason, category_purpose,
         purpose, zone23, zone3) = found.groups()
        pos = found.end()
        number += 1
        parser.line = line = number  # the 2.1's: for a date error or a warning while placing it
        if parser.info is not None:
            parser.flush_info()
        value = Decimal(digits).scaleb(-3)
        if sign == "1":
            value = -value
        value_date = dates.get(value_text, _UNSET)
        if value_date is _UNSET:
            value_date = parser.cached_date(value_text, 48, 53, "value date")
        entry_date = dates.get(entry_text, _UNSET)
        if entry_date is _UNSET:
            entry_date = parser.cached_date(entry_text, 116, 121, "entry date")
        code = codes.get(code_text) or parser.transaction_code(code_text)
        end_to_end_id: str | None = None
        bic_code: str | None = None
        party: Counterparty = _NO_COUNTERPARTY
        if zone22 is None:
            zone2 = _BLANK_ZONE_22
            r_type = iso_reason = category_purpose = purpose = ""
        else:
            zone2 = zone22
            number += 1
            end_to_end_id, bic_code, r_type, iso_reason, category_purpose, purpose = _record_22(
                end_to_end, bic, r_type, iso_reason, category_purpose, purpose)
            if bic_code is not None:
                party = bic_parties.get(bic_code) or parser.bic_party(bic_code)
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
        globalised = _GLOBALISATION.get(globalisation)
        if globalised is None:
            globalised = int(globalisation) if globalisation.isdigit() else 0
        # Decoded now unless a 2.2/2.3 may still come (in the line-by-line reader, or the next block)
        if zone23 is not None or text.startswith("21", pos):
            communication = decode_communication(structured == "1", zone21 + zone2 + zone3)
        else:
            communication = UNDECODED
        # positional, in Movement's field order: a third cheaper than keywords
        movement = Movement(
            sequence, detail, bank_reference.strip(), value, value_date, entry_date, code, communication, paper_number,
            globalised, line, end_to_end_id, party, r_type, iso_reason, category_purpose, purpose, [], [])
        kind = code.type
        top = parser.top
        if kind in DETAIL_TYPES and top is not None and top.sequence == sequence:  # most details: no call
            top.details.append(movement)
            if kind == "7":
                parser.last_seven = movement
        else:
            done = place(movement, kind)
            if done is not None:
                out.append(done)
        if detail == 0:
            if value < 0:
                debits -= value
            else:
                credits += value
    if movement is not None:
        if communication is UNDECODED:
            parser.pending, parser.pending_zones = movement, [zone21, zone2, zone3]
            parser.pending_structured = structured == "1"
        parser.line = number
        parser.counted += number - first  # every line read is a record 2.x
        parser.debits, parser.credits = debits, credits
        parser.last_21, parser.last_21_key = movement, sequence_text + detail_text
        parser.last_record = "2.3" if zone23 is not None else "2.1" if zone22 is None else "2.2"
    return pos, number
