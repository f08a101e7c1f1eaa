"""CODA 2.x (Febelfin coded statement of account) parser: streaming, strict where a wrong value
would be silently wrong, lenient where banks are known to differ.

Positions follow ``specs/banking.md`` §1 (1-based inclusive, 128-character records). The parser
reads a file a block of lines at a time and keeps at most one statement in memory (:func:`iter_statements`),
or only the movement being built (:func:`iter_movements`), so memory does not grow with the
size of the file.

* Structural errors (a non-digit amount, an unknown record type, a 2.2 that belongs to no 2.1,
  a file that ends before its record 9…) raise :class:`CodaError`, which names the file, the
  line, the columns and what was expected there. Nothing else escapes.
* Trailer checks (record count, debit/credit totals, old + credit − debit = new, the account of
  records 1 and 8, contiguous sequence numbers), short lines and unusual header values are
  *warnings* on the statement (:class:`CodaWarning`): hand-edited and anonymised files break them.

Communications are assembled from the raw zones of 2.1/2.2/2.3 (3.1/3.2/3.3 for information)
before decoding, then decoded by structured type (:class:`Communication`). Two checks wait until
their field is first read, since many readers never ask: the OGM a free communication's text may
hold (``ogm``, ``from_text``) and an RF's check digits (``rf`` of type 100); the values are those
of decoding at once.

Import from here; the modules behind it are private: ``api`` (the three entry points), ``reader``
(bytes to text, 64 KiB at a time), ``parser`` (the record state machine) on ``records`` (its
state, field checks, records 0/1/8/9), ``groups`` (the hot path: movements a 2.1 [2.2] [2.3]
group at a time) on ``scan`` (one group cut into fields: the C extension ``_scan`` when built,
else a regex giving the same), ``decoding`` (amounts, dates, accounts, communications),
``references`` (OGM and RF checks), ``model`` (the returned dataclasses) and ``errors``. About 6
times as fast as the faster of the PyPI parsers pycoda and febelfin-coda on a 100 MB file (5 on
10 MB; about 3.5 without the C scanner), reading the same fields, while checking more
(``benchmarks/coda_parse.py``).
"""

from __future__ import annotations

from daemon.banking.coda.api import iter_movements, iter_statements, parse_coda
from daemon.banking.coda.errors import CodaError, CodaWarning
from daemon.banking.coda.model import (
    Account,
    Communication,
    Counterparty,
    Header,
    Information,
    Movement,
    Statement,
    TransactionCode,
)
from daemon.banking.coda.reader import RECORD_LENGTH

__all__ = [
    "RECORD_LENGTH",
    "Account",
    "CodaError",
    "CodaWarning",
    "Communication",
    "Counterparty",
    "Header",
    "Information",
    "Movement",
    "Statement",
    "TransactionCode",
    "iter_movements",
    "iter_statements",
    "parse_coda",
]
