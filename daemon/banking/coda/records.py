"""The CODA parser's state, field access with precise errors, and the records read once per
statement (0, 1, 8, 9) with the trailer checks. :class:`~daemon.banking.coda.parser.Parser` adds
the movements and information on top.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any, TypeVar

from daemon.banking.coda.decoding import amount, as_written, date, iban_of
from daemon.banking.coda.errors import CodaError, CodaWarning
from daemon.banking.coda.model import Account, Counterparty, Header, Information, Movement, Statement, TransactionCode

__all__ = ["CACHE_LIMIT", "Records", "remember"]

_UNSET: Any = object()
CACHE_LIMIT = 4096  # entries per cache (dates, codes, counterparties), emptied when full: memory stays flat
_V = TypeVar("_V")


def remember(cache: dict[Any, _V], key: Any, value: _V) -> _V:
    """Store ``value`` under ``key`` in one of the parser's caches, emptying it first when full
    (:data:`CACHE_LIMIT`), and return it."""
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    cache[key] = value
    return value


class Records:
    """One file's state: the statement and movement being built, the running totals and digest."""

    def __init__(self, name: str, *, collect: bool) -> None:
        self.name = name
        self.collect = collect
        self.statement: Statement | None = None
        self.account_line8: str | None = None
        self.counted = 0
        self.debits = Decimal(0)
        self.credits = Decimal(0)
        self.last_sequence: int | None = None
        self.top: Movement | None = None  # current top-level movement
        self.last_seven: Movement | None = None
        self.last_21: Movement | None = None  # the movement the next 2.2/2.3 belongs to
        self.last_21_key = ""  # its columns 3-10 as written
        self.last_record: str | None = None  # "2.1", "2.2", "2.3", "3.1", …
        self.info: Information | None = None
        self.info_owner: Movement | None = None  # the movement ``info`` belongs to, if any
        self.pending: Movement | None = None  # the last 2.1 read, while a 2.2/2.3 may still come: undecoded
        self.pending_zones: list[str] = []  # its communication zones from 2.1, 2.2 and 2.3 (blank until read)
        self.pending_structured = False
        self.info_zones: list[str] = []
        self.info_structured = False
        self.digest = hashlib.sha256()
        self.pending_warnings: list[CodaWarning] = []
        self.dates: dict[str, Any] = {}
        self.codes: dict[str, TransactionCode] = {}
        # a 2.3's account and name repeat (regular suppliers and customers): decoded once, by its
        # zone, or (zone, BIC) when its 2.2 gives a BIC (a tuple costs a look-up a third more)
        self.counterparties: dict[str | tuple[str, str], Counterparty] = {}
        self.bic_parties: dict[str, Counterparty] = {}  # a 2.2's BIC without a 2.3
        self.header: Header | None = None  # between a record 0 and its record 1
        # the last record 0 and its header: the statements of a file usually share one
        self.last_header: tuple[str, Header] | None = None
        self.accounts: dict[tuple[str, str], Account] = {}  # record 1 and 8 account zones, decoded once
        self.header_line = 0
        self.line = 0
        self.text = ""

    # field access with precise errors
    def error(self, columns: tuple[int, int] | None, expected: str, got: str | None = None) -> CodaError:
        return CodaError(self.name, self.line, columns, expected, got)

    def field(self, first: int, last: int) -> str:
        return self.text[first - 1:last]

    def digits(self, first: int, last: int, what: str) -> str:
        value = self.field(first, last)
        if not (value.isascii() and value.isdigit()):
            raise self.error((first, last), f"{what} ({last - first + 1} digits)", value)
        return value

    def number(self, first: int, last: int, what: str) -> int:
        return int(self.digits(first, last, what))

    def amount(self, sign_at: int, first: int, last: int, what: str) -> Decimal:
        sign = self.field(sign_at, sign_at)
        if sign not in ("0", "1"):
            raise self.error((sign_at, sign_at), f"the sign of the {what}: 0 (credit) or 1 (debit)", sign)
        value = amount(self.digits(first, last, f"the {what}, 3 implied decimals"))
        return -value if sign == "1" else value

    def date(self, first: int, last: int, what: str) -> Any:
        value = self.text[first - 1:last]
        found = self.dates.get(value, _UNSET)
        return self.cached_date(value, first, last, what) if found is _UNSET else found

    def cached_date(self, text: str, first: int, last: int, what: str) -> Any:
        """:meth:`date` of ``text`` (columns ``first``-``last``), remembered: a file has few distinct dates."""
        try:
            value = date(text)
        except ValueError:
            raise self.error((first, last), f"the {what} as DDMMYY", text) from None
        return remember(self.dates, text, value)

    def warn(self, code: str, message: str) -> None:
        warning = CodaWarning(code, message, self.line)
        if self.statement is None:
            self.pending_warnings.append(warning)
        else:
            self.statement.warnings.append(warning)

    # once per statement
    def record_0(self) -> Header:
        """Check record 0 and return its header; :meth:`record_1` builds the statement from the next line."""
        if self.statement is not None:
            raise self.error((1, 1), f"record 9 (trailer) of the statement begun at line {self.statement.first_line} "
                             "before a new record 0", "0")
        text = self.text
        self.header_line = self.line
        if self.last_header is not None and self.last_header[0] == text:  # checked and decoded already
            return self.last_header[1]
        if text[0:5] != "00000":
            raise self.error((1, 5), "00000 (record 0)", text[0:5])
        self.digits(6, 16, "creation date, bank id and application code")
        if text[127:128] != "2":
            raise self.error((128, 128), "version 2 (CODA 2.x)", text[127:128])
        header = Header(self.date(6, 11, "creation date"), text[11:14], text[14:16], text[16:17] == "D",  # its order
                        text[24:34].strip(), text[34:60].strip(), text[60:71].strip(), text[71:82].strip(),
                        text[83:88].strip(), text[88:104].strip(), text[104:120].strip(), text[127:128])
        self.last_header = text, header
        return header

    def record_1(self, header: Header) -> None:
        header_line = self.header_line
        if self.text[0] != "1":
            raise self.error((1, 1), "record 1 (old balance) right after record 0", self.text[0])
        # records 1…9 only: a re-delivery differs in its header (D flag, creation date)
        self.digest = hashlib.sha256(self.text.encode("utf-8", "surrogatepass"))
        text = self.text
        structure = text[1:2]
        if structure not in ("0", "1", "2", "3"):
            raise self.error((2, 2), "account structure 0, 1, 2 or 3", structure)
        account = self.account(structure, 0)
        statement = Statement(
            self.name, header, account, text[2:5], text[125:128], self.amount(43, 44, 58, "old balance"),
            self.date(59, 64, "old balance date"), text[64:90].strip(), text[90:125].strip(), header_line)
        statement.warnings.extend(self.pending_warnings)
        self.pending_warnings = []
        if header.application_code != "05":
            statement.warnings.append(CodaWarning(
                "application_code", f"application code {header.application_code!r}, usually '05'", header_line))
        if header.duplicate:
            statement.warnings.append(CodaWarning("duplicate", "the header marks this file as a re-delivery (D)",
                                                  header_line))
        self.statement = statement
        self.counted = 1
        self.debits = self.credits = Decimal(0)
        self.last_sequence = None
        self.top = self.last_seven = self.last_21 = None
        self.info = self.info_owner = self.pending = None
        self.last_record = "1"
        self.account_line8 = None

    def account(self, structure: str, shift: int) -> Account:
        """The account zone of record 1 (shift 0) or 8 (shift 1): columns 6-42 of record 1."""
        zone = self.text[5 - shift:42 - shift]
        return self.accounts.get((structure, zone)) or remember(
            self.accounts, (structure, zone), self.decode_account(structure, zone))

    @staticmethod
    def decode_account(structure: str, zone: str) -> Account:
        if structure == "0":
            number, currency = zone[0:12], zone[13:16]
            return Account(structure, number, iban_of(number, belgian_bban=True), currency.strip())
        if structure == "2":
            number = zone[0:16].strip()
            return Account(structure, number, iban_of(number) or as_written(number), zone[34:37].strip())
        number = zone[0:34].strip()
        iban = (iban_of(number) or as_written(number)) if structure == "3" else None
        return Account(structure, number, iban, zone[34:37].strip())

    def record_8(self, statement: Statement) -> None:
        self.counted += 1
        statement.new_balance = self.amount(42, 43, 57, "new balance")
        statement.new_balance_date = self.date(58, 63, "new balance date")
        self.account_line8 = self.account(statement.account.structure, 1).number
        self.last_record = "8"

    def record_9(self, statement: Statement) -> Statement:
        statement.record_count = self.number(17, 22, "the record count")
        statement.debit_total = amount(self.digits(23, 37, "the debit total, 3 implied decimals"))
        statement.credit_total = amount(self.digits(38, 52, "the credit total, 3 implied decimals"))
        if statement.new_balance is None:  # empty statement: 0, 1, 9
            statement.new_balance = statement.old_balance
            statement.new_balance_date = statement.old_balance_date
        self.check_trailer(statement)
        statement.digest = self.digest.hexdigest()
        self.statement = None
        self.last_21 = self.top = self.last_seven = None
        return statement

    def check_trailer(self, st: Statement) -> None:
        line = self.line
        if st.record_count != self.counted:
            st.warnings.append(CodaWarning("record_count", f"trailer counts {st.record_count} records 1/2/3/8, "
                                           f"the statement has {self.counted}", line))
        if st.debit_total != self.debits:
            st.warnings.append(CodaWarning("debit_total", f"trailer debit total {st.debit_total}, the movements "
                                           f"add up to {self.debits}", line))
        if st.credit_total != self.credits:
            st.warnings.append(CodaWarning("credit_total", f"trailer credit total {st.credit_total}, the movements "
                                           f"add up to {self.credits}", line))
        assert st.new_balance is not None
        expected = st.old_balance + self.credits - self.debits
        if expected != st.new_balance:
            st.warnings.append(CodaWarning(
                "balance", f"old balance {st.old_balance} + credit {self.credits} - debit {self.debits} = {expected}, "
                f"but the new balance is {st.new_balance}", line))
        if self.account_line8 is not None and self.account_line8 != st.account.number:
            st.warnings.append(CodaWarning("account_mismatch", f"record 8 account {self.account_line8!r} differs "
                                           f"from record 1 account {st.account.number!r}", line))
