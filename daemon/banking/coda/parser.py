"""The CODA state machine: records in, statements and movements out (see the package docstring).

Hot path: the 2.1 [2.2] [2.3] groups that make up nearly all of a file, read by
:func:`~daemon.banking.coda.groups.read_groups` a group per regex match. Every other line goes
through :meth:`Parser.one_line`, which reads fields one at a time and, for a group the regex does
not match, says exactly which field is wrong (:meth:`Parser.reject_21`, :meth:`Parser.reject_22_23`).
Dates, transaction codes and 2.3 counterparties repeat, so each distinct one is decoded once
(bounded caches).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, NoReturn

from daemon.banking.coda.decoding import (
    UNDECODED,
    counterparty_of,
    decode_communication,
    decode_information,
    name_from_information,
    with_changes,
)
from daemon.banking.coda.errors import CodaError
from daemon.banking.coda.groups import DETAIL_TYPES, TOP_LEVEL_TYPES, read_groups
from daemon.banking.coda.model import (
    Counterparty,
    Information,
    Movement,
    Statement,
    TransactionCode,
)
from daemon.banking.coda.reader import RECORD_LENGTH, WHITESPACE, Block
from daemon.banking.coda.records import Records, remember

__all__ = ["Event", "Parser"]

Event = tuple[str, Any]  # ("movement", (statement, movement)) or ("statement", statement)


class Parser(Records):
    """The record state machine: a run of lines in, statement and movement events out."""

    # main loop
    def run(self, blocks: Iterable[Block]) -> Iterator[Event]:
        number = 0
        done: list[Movement] = []
        for text, raw in blocks:
            pos, end = 0, len(text)
            base = number  # the line before the block
            flat: memoryview | None = None  # the block's bytes without LFs, made for its first run of groups
            while pos < end:
                statement = self.statement
                if statement is not None and self.header is None and text.startswith("21", pos):
                    out = statement.movements if self.collect else done
                    start, first = pos, number
                    pos, number = read_groups(self, text, pos, number, out)
                    if pos != start:  # the records read, as they are, without their LFs (one per line)
                        if raw is not None:
                            if flat is None:
                                flat = memoryview(raw.replace(b"\n", b""))
                            self.digest.update(flat[start - (first - base):pos - (number - base)])
                        else:
                            self.digest.update(text[start:pos].replace("\n", "").encode("utf-8", "surrogatepass"))
                    if done:
                        for movement in done:
                            yield "movement", (statement, movement)
                        done.clear()
                    if pos >= end:
                        break
                stop = text.index("\n", pos)
                line, pos = text[pos:stop], stop + 1
                number += 1
                events = self.one_line(line, number)
                if events:
                    yield from events
        self.check_end()

    # The line-by-line path returns its events (usually none) instead of yielding them: two
    # generators fewer per record 0/1/8/9.
    def one_line(self, line: str, number: int) -> tuple[Event, ...]:
        """Any record, line by line: the records the group scanner leaves, and their precise errors."""
        if len(line) == RECORD_LENGTH and line[0] not in WHITESPACE:
            text = line
        elif line.strip(WHITESPACE):
            self.line = number
            text = self.fit(line)
        else:
            return ()  # blank lines are skipped, but counted
        self.line = number
        statement = self.statement
        kind = text[0]
        if kind not in ("2", "3") or statement is None or self.header is not None:
            return self.other_record(text)
        self.digest.update(text.encode("utf-8", "surrogatepass"))
        self.text = text
        if kind == "2" and text[1] == "1":
            done = self.record_21(text)
            if done is not None:
                return self.emit(statement, done)
            return ()
        if kind == "3":
            self.information_record()
        else:
            self.record_22_23(text)
        return ()

    def emit(self, statement: Statement, movement: Movement) -> tuple[Event, ...]:
        if self.collect:
            statement.movements.append(movement)
            return ()
        return (("movement", (statement, movement)),)

    def other_record(self, text: str) -> tuple[Event, ...]:
        """Records 0, 1, 4, 8, 9, and any record out of place."""
        self.text = text
        if self.header is not None:  # the line after a record 0
            header, self.header = self.header, None
            self.record_1(header)
            return ()
        statement = self.statement
        kind = text[0]
        if kind == "0" or statement is None:
            if kind != "0":
                raise self.error((1, 1), "record 0 (header) before any other record", kind)
            self.header = self.record_0()
            return ()
        self.digest.update(text.encode("utf-8", "surrogatepass"))
        if kind in ("8", "9"):
            done = self.finish_movement()
            events = () if done is None else self.emit(statement, done)
            if kind == "8":
                self.record_8(statement)
                return events
            return (*events, ("statement", self.record_9(statement)))
        if kind == "4":
            self.record_4(statement)
            return ()
        if kind == "1":
            raise self.error((1, 1), "one record 1 per statement, right after record 0", kind)
        raise self.error((1, 1), "a record type among 0, 1, 2, 3, 4, 8, 9", kind)

    def check_end(self) -> None:
        if self.header is not None:
            raise CodaError(self.name, self.line, None, "record 1 (old balance) after record 0, "
                            "got the end of the file")
        if self.statement is not None:
            raise CodaError(self.name, self.line or None, None,
                            "record 9 (trailer) to end the statement begun at line "
                            f"{self.statement.first_line}, got the end of the file")
        if self.line == 0:
            raise CodaError(self.name, None, None, "a CODA file, got an empty file")

    def fit(self, line: str) -> str:
        """The line as a 128-character record (short lines padded with a warning)."""
        if len(line) > RECORD_LENGTH:
            if line[RECORD_LENGTH:].strip():
                raise self.error((RECORD_LENGTH + 1, len(line)), f"a record of {RECORD_LENGTH} characters",
                                 f"{len(line)} characters")
            return line[:RECORD_LENGTH]
        if len(line) < RECORD_LENGTH:
            self.warn("short_line", f"line {self.line} has {len(line)} characters; padded to {RECORD_LENGTH}")
            return line.ljust(RECORD_LENGTH)
        return line

    def record_4(self, statement: Statement) -> None:
        self.flush_info()
        statement.free_messages.append(self.field(33, 112).strip())
        self.last_record = "4"

    # movements (the hot path is groups.read_groups)
    def record_21(self, text: str) -> Movement | None:
        """A 2.1 left to the line-by-line reader (a padded short line, or malformed): a group of
        one, or its precise error. Returns the top-level movement it completes, if any."""
        done: list[Movement] = []
        pos, _ = read_groups(self, text + "\n", 0, self.line - 1, done)
        if pos == 0:
            self.reject_21()
        return done[0] if done else None

    def place(self, movement: Movement, kind: str) -> Movement | None:
        """Attach a new movement to its parent, or make it the current top-level one; returns the
        top-level movement this one completes, if any."""
        sequence, done = movement.sequence, None
        parent: Movement | None = None
        if kind in DETAIL_TYPES and self.top is not None and self.top.sequence == sequence:
            parent = self.top
        elif kind == "9" and self.last_seven is not None and self.last_seven.sequence == sequence:
            parent = self.last_seven
        if parent is not None:
            parent.details.append(movement)
        else:
            if kind not in TOP_LEVEL_TYPES:
                self.warn("orphan_detail", f"movement {sequence:04d}/{movement.detail:04d} of type {kind!r} has no "
                          "parent movement with its sequence number; kept as a top-level movement")
            done = self.finish_movement()
            if self.last_sequence is not None and sequence != self.last_sequence + 1 and sequence != self.last_sequence:
                self.warn("sequence_gap", f"sequence {sequence:04d} follows {self.last_sequence:04d}")
            self.last_sequence = sequence
            self.top = movement
        if kind == "7":
            self.last_seven = movement
        return done

    def reject_21(self) -> NoReturn:
        """Raise the precise error for a 2.1 that :data:`~daemon.banking.coda.scan.GROUP` does not match."""
        self.number(3, 6, "sequence number")
        self.number(7, 10, "detail number")
        self.amount(32, 33, 47, "amount")
        structured = self.field(62, 62)
        raise self.error((62, 62), "communication type 0 (free) or 1 (structured)", structured)

    def transaction_code(self, text: str) -> TransactionCode:
        return remember(self.codes, text, TransactionCode(text[0], text[1:3], text[3:5], text[5:8]))

    def bic_party(self, bic: str) -> Counterparty:
        return remember(self.bic_parties, bic, Counterparty(bic=bic))

    def new_counterparty(self, key: str | tuple[str, str], zone: str, bic: str | None) -> Counterparty:
        """The counterparty of a 2.3 zone (and the 2.2's BIC) not met yet, decoded and remembered
        under ``key``: the zone, or (zone, BIC) when there is a BIC."""
        return remember(self.counterparties, key, counterparty_of(zone, bic))

    def record_22_23(self, text: str) -> None:
        self.counted += 1
        movement, article = self.last_21, text[1]
        if (movement is None or text[2:10] != self.last_21_key
                or (self.last_record != "2.1" and (article != "3" or self.last_record != "2.2"))
                or article not in ("2", "3")):
            self.text = text
            self.reject_22_23(article)
        assert movement is not None  # checked above
        assert movement is self.pending  # a group that a 2.2/2.3 may still join stays pending (read_groups)
        if article == "2":
            self.record_22(movement, text)
        else:
            self.record_23(movement, text)

    def record_22(self, movement: Movement, text: str) -> None:
        self.pending_zones[1] = text[10:63]  # the movement is pending (read_groups: the group was open)
        end_to_end = text[63:98].strip()
        movement.end_to_end_id = None if not end_to_end or end_to_end == "NOTPROVIDED" else end_to_end
        bic = text[98:109].strip()
        if bic:
            movement.counterparty = with_changes(movement.counterparty, bic=bic)
        movement.r_type, movement.iso_reason = text[112:113].strip(), text[113:117].strip()
        movement.category_purpose, movement.purpose = text[117:121].strip(), text[121:125].strip()
        self.last_record = "2.2"

    def record_23(self, movement: Movement, text: str) -> None:
        zone, bic = text[10:82], movement.counterparty.bic
        key = zone if bic is None else (zone, bic)
        movement.counterparty = self.counterparties.get(key) or self.new_counterparty(key, zone, bic)
        self.pending_zones[2] = text[82:125]
        self.last_record = "2.3"

    def reject_22_23(self, article: str) -> NoReturn:
        """Raise the precise error for a 2.2 or 2.3 out of place or not matching its 2.1."""
        self.number(3, 6, "sequence number")
        self.number(7, 10, "detail number")
        if article not in ("2", "3"):
            raise self.error((2, 2), "record 2.1, 2.2 or 2.3", f"2.{article}")
        movement = self.last_21
        if movement is None or self.last_record not in (("2.1",) if article == "2" else ("2.1", "2.2")):
            raise self.error((1, 2), f"record 2.{article} right after its record 2.1"
                             + ("" if article == "2" else " or 2.2"), f"2{article} after {self.last_record}")
        raise self.error((3, 10), f"the sequence and detail numbers of the 2.1 at line {movement.line} "
                         f"({movement.sequence:04d}{movement.detail:04d})", self.field(3, 10))

    def decode_pending(self) -> None:
        """Decode the communication of the last 2.1, now that no 2.2/2.3 can follow."""
        assert self.pending is not None
        self.pending.communication = decode_communication(self.pending_structured, "".join(self.pending_zones))
        self.pending = None

    def finish_movement(self) -> Movement | None:
        """Close the current top-level movement and return it."""
        if self.info is not None:
            self.flush_info()
        if self.pending is not None:
            self.decode_pending()
        done, self.top = self.top, None
        return done

    # information
    def flush_info(self) -> None:
        info = self.info
        if info is not None:
            info.communication = decode_information(self.info_structured, "".join(self.info_zones))
            if self.info_owner is not None:
                name_from_information(self.info_owner, info.communication)
            self.info = self.info_owner = None

    def information_record(self) -> None:
        assert self.statement is not None
        article = self.field(2, 2)
        self.counted += 1
        sequence = self.number(3, 6, "sequence number")
        detail = self.number(7, 10, "detail number")
        if article == "1":
            self.flush_info()
            owner = self.last_21
            structured = self.field(40, 40)
            if structured not in ("0", "1"):
                raise self.error((40, 40), "communication type 0 (free) or 1 (structured)", structured)
            info = Information(sequence, detail, self.field(11, 31).strip(), self.field(32, 39),
                               UNDECODED, self.line)
            if owner is None or owner.sequence != sequence:
                self.warn("orphan_information", f"information {sequence:04d}/{detail:04d} follows no movement with "
                          "its sequence number; dropped from the hierarchy")
                owner = None
            else:
                owner.information.append(info)
            self.info_owner = owner
            self.info, self.info_structured = info, structured == "1"
            self.info_zones = [self.field(41, 113), " " * 105, " " * 90]
            self.last_record = "3.1"
            return
        if article not in ("2", "3"):
            raise self.error((2, 2), "record 3.1, 3.2 or 3.3", f"3.{article}")
        if self.info is None or self.last_record not in (("3.1",) if article == "2" else ("3.1", "3.2")):
            raise self.error((1, 2), f"record 3.{article} right after its record 3.1"
                             + ("" if article == "2" else " or 3.2"), f"3{article} after {self.last_record}")
        if (self.info.sequence, self.info.detail) != (sequence, detail):
            raise self.error((3, 10), f"the sequence and detail numbers of the 3.1 at line {self.info.line} "
                             f"({self.info.sequence:04d}{self.info.detail:04d})", self.field(3, 10))
        if article == "2":
            self.info_zones[1] = self.field(11, 115)
        else:
            self.info_zones[2] = self.field(11, 100)
        self.last_record = f"3.{article}"
