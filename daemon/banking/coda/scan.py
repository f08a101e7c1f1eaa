"""One 2.1 [2.2] [2.3] group cut into converted fields: the C speed-up ``_scan`` when it is
built, else the same from the regex :data:`GROUP`.

Both return ``None`` exactly where the regex does not match (the line-by-line parser then says
what is wrong), else :data:`Fields`. ``_scan.c`` does in one call what costs the regex path a
match object, 21 substrings, six ``strip`` calls and three look-ups; the files it reads and the
results are the same, checked by ``tests/banking/test_coda_scan.py`` on random and mutated input.
``EBOXD_CODA_PURE_PYTHON=1`` forces the regex path (for that test and for comparison).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from decimal import Decimal

__all__ = ["GROUP", "PURE_PYTHON_VARIABLE", "Fields", "accelerated", "python_scan_group", "regex_path_reason",
           "scan_group"]

# columns 1-128 of each record, then its line end; unused columns are (?:…) to skip a capture
GROUP = re.compile(
    # 2.1: sequence, detail, bank reference, sign, amount, value date, transaction code,
    # communication type, communication zone, entry date, paper number, globalisation code
    r"21([0-9]{4})([0-9]{4})(.{21})([01])([0-9]{15})(.{6})(.{8})([01])(.{53})(.{6})(.{3})(.)(?:.{3})\n"
    # 2.2: communication zone, end-to-end id, BIC, R-type, ISO reason, category purpose, purpose
    r"(?:22\1\2(.{53})(.{35})(.{11})(?:.{3})(.)(.{4})(.{4})(.{4})(?:.{3})\n)?"
    # 2.3: account + currency + name zone, communication zone
    r"(?:23\1\2(.{72})(.{43})(?:.{3})\n)?")

# (end, lines, sequence, detail, bank_reference, amount, debit, value_date, transaction_code,
#  structured, communication, entry_date, paper_number, globalisation, end_to_end_id, bic, r_type,
#  iso_reason, category_purpose, purpose, zone23): ``end`` is the position after the group,
# ``lines`` its records (1-3); ``amount`` is signed and ``debit`` is true for a debit other than
# zero; dates and the transaction code are as written (the parser caches their decoding);
# ``communication`` is the three zones of 2.1, 2.2 and 2.3 put together (53 + 53 + 43 characters,
# blank for a missing record); ``zone23`` is the 2.3's account and name zone, None without a 2.3;
# without a 2.2 the end-to-end id and BIC are None and the R-type and purposes ""; strings are
# stripped except the zones, dates, codes and the paper number.
Fields = tuple[int, int, int, int, str, Decimal, bool, str, str, str, str, str, str, int, str | None, str | None,
               str, str, str, str, str | None]

# int() of the usual 4-digit sequence and detail numbers by lookup, a third of the cost
_NUMBERS = {f"{n:04d}": n for n in range(1000)}
_ZERO_AMOUNT = "0" * 15
_GLOBALISATION = {str(n): n for n in range(10)}
_BLANK_ZONE_22, _BLANK_ZONE_23 = " " * 53, " " * 43


def python_scan_group(text: str, pos: int) -> Fields | None:
    """The group at ``pos`` of ``text`` by :data:`GROUP`, or None where it does not match."""
    found = GROUP.match(text, pos)
    if found is None:
        return None
    (sequence_text, detail_text, bank_reference, sign, digits, value_text, code_text, structured, zone21,
     entry_text, paper_number, globalisation, zone22, end_to_end, bic, r_type, iso_reason, category_purpose,
     purpose, zone23, zone3) = found.groups()
    debit = sign == "1" and digits != _ZERO_AMOUNT
    value = Decimal(("-" + digits if debit else digits) + "E-3")  # exactly Decimal(int(digits)).scaleb(-3)
    sequence = _NUMBERS.get(sequence_text)
    if sequence is None:
        sequence = int(sequence_text)
    detail = _NUMBERS.get(detail_text)
    if detail is None:
        detail = int(detail_text)
    globalised = _GLOBALISATION.get(globalisation, 0)  # an ASCII digit, else none
    lines = 1
    if zone22 is None:
        end_to_end_id = bic_code = None
        r_type = iso_reason = category_purpose = purpose = ""
    else:
        lines += 1
        end_to_end = end_to_end.strip()
        end_to_end_id = end_to_end if end_to_end and end_to_end != "NOTPROVIDED" else None
        bic_code = bic.strip() or None
        r_type, iso_reason = r_type.strip(), iso_reason.strip()
        category_purpose, purpose = category_purpose.strip(), purpose.strip()
    if zone23 is not None:
        lines += 1
    communication = zone21 + (zone22 or _BLANK_ZONE_22) + (zone3 or _BLANK_ZONE_23)
    return (found.end(), lines, sequence, detail, bank_reference.strip(), value, debit, value_text, code_text,
            structured, communication, entry_text, paper_number, globalised, end_to_end_id, bic_code, r_type,
            iso_reason, category_purpose, purpose, zone23)


PURE_PYTHON_VARIABLE = "EBOXD_CODA_PURE_PYTHON"


def _load() -> tuple[Callable[[str, int], Fields | None] | None, str | None]:
    """The C scanner, or None and why not."""
    if os.environ.get(PURE_PYTHON_VARIABLE):
        return None, f"turned off by {PURE_PYTHON_VARIABLE}"
    try:
        from daemon.banking.coda import _scan  # type: ignore[attr-defined]  # noqa: PLC0415
    except ImportError:  # not built (no C compiler at install time): the regex path
        return None, "C extension not built"
    return _scan.group, None


_accelerated, regex_path_reason = _load()  # the reason is shown by ``eboxd doctor``
accelerated = _accelerated is not None
scan_group: Callable[[str, int], Fields | None] = _accelerated or python_scan_group
