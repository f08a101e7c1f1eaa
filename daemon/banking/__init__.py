"""Belgian banking identifiers: structured communications (OGM/VCS), RF creditor references,
IBAN and BIC. Pure functions and value types, no I/O.

Import from here::

    from daemon import banking

    banking.parse_ogm("***010/8068/17183***").display      # '+++010/8068/17183+++'
    banking.parse_rf("rf18 5390 0754 7034").value           # 'RF18539007547034'
    banking.parse_iban("be68 5390 0754 7034")               # 'BE68539007547034'
    banking.parse_reference("+++010/8068/17183+++").kind    # ReferenceKind.OGM

Every parser raises a :class:`BankingError` subclass whose message names the check that failed
and, for check digits, the expected and the found value.
"""

from __future__ import annotations

from daemon.banking.accounts import (
    IbanCandidate,
    bic_for_iban,
    find_ibans,
    format_iban,
    is_valid_iban,
    parse_bic,
    parse_iban,
)
from daemon.banking.errors import BankingError, InvalidBIC, InvalidIBAN, InvalidOGM, InvalidReference, InvalidRF
from daemon.banking.ogm import (
    OgmCandidate,
    StructuredCommunication,
    find_ogms,
    is_valid_ogm,
    make_ogm,
    ogm_check_digits,
    parse_ogm,
)
from daemon.banking.references import FREE_TEXT_MAX, PaymentReference, ReferenceKind, parse_reference
from daemon.banking.rf import CreditorReference, RfCandidate, find_rfs, is_valid_rf, make_rf, parse_rf, rf_check_digits

__all__ = [
    "FREE_TEXT_MAX",
    "BankingError",
    "CreditorReference",
    "IbanCandidate",
    "InvalidBIC",
    "InvalidIBAN",
    "InvalidOGM",
    "InvalidRF",
    "InvalidReference",
    "OgmCandidate",
    "PaymentReference",
    "ReferenceKind",
    "RfCandidate",
    "StructuredCommunication",
    "bic_for_iban",
    "find_ibans",
    "find_ogms",
    "find_rfs",
    "format_iban",
    "is_valid_iban",
    "is_valid_ogm",
    "is_valid_rf",
    "make_ogm",
    "make_rf",
    "ogm_check_digits",
    "parse_bic",
    "parse_iban",
    "parse_ogm",
    "parse_reference",
    "parse_rf",
    "rf_check_digits",
]
