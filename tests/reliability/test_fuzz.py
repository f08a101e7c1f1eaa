"""Fuzzing of what eboxd reads from outside: CODA statements, OGM/RF/IBAN notations and the payment
fields read from a letter's text. The budget comes from the hypothesis profile ("ci" in the suite,
"long" in benchmarks/fuzz.py).

Complements tests/banking/test_coda_fuzz.py, tests/banking/test_properties.py and
tests/payments/test_extraction_properties.py (which check exact round trips of well-formed input):
here the inputs are hostile or damaged, and the properties are "only the documented error escapes"
and "whatever is returned is valid".
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.banking import (
    BankingError,
    InvalidIBAN,
    InvalidOGM,
    InvalidReference,
    InvalidRF,
    ReferenceKind,
    find_ibans,
    find_ogms,
    find_rfs,
    format_iban,
    is_valid_iban,
    is_valid_ogm,
    is_valid_rf,
    make_ogm,
    make_rf,
    ogm_check_digits,
    parse_bic,
    parse_iban,
    parse_ogm,
    parse_reference,
    parse_rf,
)
from daemon.banking.coda_writer import coda_bytes
from daemon.payments import extract_from_text
from tests.banking.test_coda_fuzz import only_coda_errors, statements
from tests.payments.test_extraction_properties import letters

# The budget scales with the loaded profile ("ci": 100 → 500 examples a test, "long": 2000 → 10000);
# these targets are cheap, and they are the ones meant to find what the round-trip tests cannot.
FUZZ = settings(max_examples=settings.default.max_examples * 5,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

T = TypeVar("T")

EPC_MAX_AMOUNT = Decimal("999999999.99")  # EPC069-12: the largest amount a SEPA credit transfer carries
EPC_MIN_AMOUNT = Decimal("0.01")

EXAMPLES: Counter[str] = Counter()
"""Examples run per test in this process, read by benchmarks/fuzz.py (an honest count, not the budget)."""


def _count(name: str) -> None:
    EXAMPLES[name] += 1


def _outcome(parse: Callable[[str], T], error_type: type[Exception], text: str) -> tuple[T | None, Exception | None]:
    """What ``parse`` made of ``text``: its result, or the documented error (anything else escapes)."""
    try:
        return parse(text), None
    except error_type as error:
        return None, error


# Text that looks enough like what the parsers look for to reach their deep branches.
_IDENTIFIER_CHARS = string.digits * 3 + "+*/.- \u00a0\t\nRFrfBEbeNLFRDE" + string.ascii_uppercase
identifier_text = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=_IDENTIFIER_CHARS, max_size=60),
    st.builds(lambda a, b: a + b, st.sampled_from(["+++", "***", "RF", "BE", "rf", "be", "NL91 ", ""]),
              st.text(alphabet=_IDENTIFIER_CHARS, max_size=40)),
)


def _mutate(text: str, data: st.DataObject) -> str:
    """A few typos, deletions, insertions, duplications and cuts in ``text``."""
    chars = list(text)
    for _ in range(data.draw(st.integers(0, 6))):
        if not chars:
            break
        at = data.draw(st.integers(0, len(chars) - 1))
        op = data.draw(st.sampled_from(["flip", "delete", "insert", "duplicate", "cut", "case"]))
        if op == "flip":
            chars[at] = data.draw(st.sampled_from(list("0123456789 ,.€+*/-:\nIOlSBE\u00a0\u202fé")))
        elif op == "delete":
            del chars[at]
        elif op == "insert":
            chars[at:at] = list(data.draw(st.text(max_size=6)))
        elif op == "duplicate":
            end = min(len(chars), at + data.draw(st.integers(1, 40)))
            chars[at:at] = chars[at:end]
        elif op == "cut":
            del chars[at:]
        else:
            chars[at] = chars[at].swapcase()
    return "".join(chars)


# --- CODA -------------------------------------------------------------------------------------------

@FUZZ
@given(st.lists(statements(), min_size=1, max_size=2), st.data())
def test_coda_damaged_written_files_raise_only_coda_errors(specs: list, data: st.DataObject) -> None:
    """Well-formed files from the writer, then damaged: a parse that does not raise CodaError returns
    movements whose amounts are exact (test_coda_fuzz damages one fixed sample; this covers every record
    kind the writer produces)."""
    _count("coda")
    raw = bytearray(coda_bytes(specs, newline=data.draw(st.sampled_from(["\n", "\r\n"]))))
    for _ in range(data.draw(st.integers(1, 5))):
        if not raw:
            break
        at = data.draw(st.integers(0, len(raw) - 1))
        op = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate", "swap_lines", "drop_line"]))
        if op == "flip":
            raw[at] = data.draw(st.integers(0, 255))
        elif op == "delete":
            del raw[at]
        elif op == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        elif op == "truncate":
            del raw[at:]
        else:
            lines = bytes(raw).split(b"\n")
            index = at % len(lines)
            if op == "swap_lines" and index + 1 < len(lines):
                lines[index], lines[index + 1] = lines[index + 1], lines[index]
            elif op == "drop_line":
                del lines[index]
            raw = bytearray(b"\n".join(lines))
    only_coda_errors(bytes(raw))


# --- OGM --------------------------------------------------------------------------------------------

def _assert_valid_ogm_digits(digits: str) -> None:
    assert len(digits) == 12, digits
    assert digits.isdigit(), digits
    assert ogm_check_digits(digits[:10]) == digits[10:], digits
    assert is_valid_ogm(digits)


@FUZZ
@given(identifier_text)
def test_ogm_parsing_accepts_only_valid_check_digits(text: str) -> None:
    _count("ogm")
    ogm, error = _outcome(parse_ogm, InvalidOGM, text)
    if ogm is None:
        assert isinstance(error, InvalidOGM)
        assert error.problem  # the error names what is wrong
        assert str(error)
        assert not is_valid_ogm(text)
        return
    _assert_valid_ogm_digits(ogm.digits)
    assert parse_ogm(ogm.display) == ogm == make_ogm(ogm.digits[:10])
    assert is_valid_ogm(text)


@FUZZ
@given(st.integers(0, 10**10 - 1), st.data())
def test_found_ogms_in_damaged_text_are_valid_or_carry_their_error(stem: int, data: st.DataObject) -> None:
    _count("ogm_find")
    text = _mutate(f"Communication : {make_ogm(stem).display} merci", data)
    for candidate in find_ogms(text):
        assert candidate.raw == text[candidate.start:candidate.end]
        if candidate.valid:
            assert candidate.ogm is not None
            assert candidate.error is None
            _assert_valid_ogm_digits(candidate.ogm.digits)
        else:
            assert isinstance(candidate.error, InvalidOGM)


# --- RF ---------------------------------------------------------------------------------------------

@FUZZ
@given(identifier_text)
def test_rf_parsing_accepts_only_valid_check_digits(text: str) -> None:
    _count("rf")
    reference, error = _outcome(parse_rf, InvalidRF, text)
    if reference is None:
        assert isinstance(error, InvalidRF)
        assert error.problem
        assert str(error)
        assert not is_valid_rf(text)
        return
    assert reference.value.startswith("RF")
    assert 5 <= len(reference.value) <= 25
    assert int("".join(str(int(c, 36)) for c in reference.value[4:] + reference.value[:4])) % 97 == 1
    assert parse_rf(reference.display) == reference == make_rf(reference.body)


@FUZZ
@given(st.text(alphabet=string.ascii_uppercase + string.digits, min_size=1, max_size=21), st.data())
def test_found_rfs_in_damaged_text_are_valid_or_carry_their_error(body: str, data: st.DataObject) -> None:
    _count("rf_find")
    text = _mutate(f"Reference {make_rf(body).display} please", data)
    for candidate in find_rfs(text):
        if candidate.valid:
            assert candidate.reference is not None
            assert parse_rf(candidate.reference.value) == candidate.reference
        else:
            assert isinstance(candidate.error, InvalidRF)


# --- IBAN and BIC -----------------------------------------------------------------------------------

@FUZZ
@given(identifier_text)
def test_iban_parsing_returns_only_valid_ibans(text: str) -> None:
    _count("iban")
    iban, error = _outcome(parse_iban, InvalidIBAN, text)
    if iban is None:
        assert isinstance(error, InvalidIBAN)
        assert error.problem
        assert str(error)
        assert not is_valid_iban(text)
        return
    assert iban == iban.upper()
    assert iban.isalnum()
    assert 15 <= len(iban) <= 34
    assert int("".join(str(int(c, 36)) for c in iban[4:] + iban[:4])) % 97 == 1
    assert parse_iban(format_iban(iban)) == iban


@FUZZ
@given(st.integers(0, 10**10 - 1), st.sampled_from(["", " ", "\u00a0"]), st.data())
def test_found_ibans_in_damaged_text_are_valid_or_carry_their_error(account: int, separator: str,
                                                                    data: st.DataObject) -> None:
    _count("iban_find")
    rest = account % 97
    bban = f"{account:010d}{97 if rest == 0 else rest:02d}"
    iban = f"BE{98 - int(bban + '111400') % 97:02d}{bban}"
    text = _mutate(f"IBAN : {separator.join(iban[i:i + 4] for i in range(0, 16, 4))} BIC GEBABEBB", data)
    for candidate in find_ibans(text):
        if candidate.valid:
            assert candidate.iban is not None
            assert parse_iban(candidate.iban) == candidate.iban
        else:
            assert isinstance(candidate.error, InvalidIBAN)


@FUZZ
@given(identifier_text)
def test_references_and_bics_raise_only_their_documented_errors(text: str) -> None:
    _count("reference")
    reference, error = _outcome(parse_reference, InvalidReference, text)
    if reference is None:
        assert str(error)
    else:
        assert parse_reference(reference.display, reference.kind) == reference
        if reference.kind is ReferenceKind.OGM:
            _assert_valid_ogm_digits(reference.value)
        elif reference.kind is ReferenceKind.RF:
            assert is_valid_rf(reference.value)
    bic, error = _outcome(parse_bic, BankingError, text)
    if bic is None:
        assert str(error)
    else:
        assert len(bic) in (8, 11)
        assert bic.isalnum()
        assert bic == bic.upper()


# --- payment fields read from a letter --------------------------------------------------------------

def _assert_sound(text: str) -> None:
    """Whatever extraction returns is usable as is: it never raises, a found OGM/RF has valid check
    digits, an amount is one SEPA can carry, an IBAN passes every check."""
    info = extract_from_text(text)
    assert isinstance(info.as_dict(), dict)
    if info.amount is not None:
        assert EPC_MIN_AMOUNT <= info.amount.value <= EPC_MAX_AMOUNT, (info.amount, text)
        assert info.amount.value == info.amount.value.quantize(Decimal("0.01")), info.amount
    if info.iban is not None:
        assert is_valid_iban(info.iban.value), (info.iban, text)
    if info.bic is not None:
        assert parse_bic(info.bic.value) == info.bic.value
    if info.reference is not None:
        reference = info.reference.value
        if reference.kind is ReferenceKind.OGM:
            _assert_valid_ogm_digits(reference.value)
        elif reference.kind is ReferenceKind.RF:
            assert is_valid_rf(reference.value), reference
    for name in ("amount", "currency", "iban", "bic", "reference", "due_date", "beneficiary"):
        field = info.get(name)
        assert field is None or 0.0 <= field.confidence <= 1.0


@FUZZ
@given(letters(), st.data())
def test_extraction_from_damaged_letters_returns_only_valid_fields(letter, data: st.DataObject) -> None:
    _count("extraction_letter")
    _assert_sound(_mutate(letter.text, data))


_LETTER_WORDS = st.sampled_from([
    "Montant à payer", "Te betalen bedrag", "Zu zahlender Betrag", "Solde à payer :", "IBAN :", "BIC :",
    "Communication structurée :", "+++", "***", "RF", "€", "EUR", "-", "1.234.567.890,12", "9999999999,99",
    "0,00", "-12,50", "0,001", "1e9", "12/13/2026", "31/02/2026", "\n", "\u00a0", "\u202f", "BE71 0961 2345 6769",
    "BE00 0000 0000 0000", "+++000/0000/00097+++", "+++999/9999/99999+++", "RF18 5390 0754 7034", "RF00",
    "Échéance :", "Vervaldag:", "Fälligkeit:", "GEBABEBB", "XXXXXXXX",
])


@FUZZ
@given(st.lists(st.one_of(_LETTER_WORDS, st.text(max_size=10), st.integers(-10**12, 10**13).map(str)),
                max_size=50), st.sampled_from([" ", "\n", "", " : "]))
def test_extraction_from_arbitrary_text_returns_only_valid_fields(parts: list[str], joiner: str) -> None:
    _count("extraction_text")
    _assert_sound(joiner.join(parts))


@pytest.mark.parametrize("text", [
    "Montant à payer : 1.234.567.890,12 EUR",  # above the EPC maximum
    "Montant à payer : 0,00 EUR",
    "Montant à payer : -12,50 EUR",
    "Montant à payer : 0,001 EUR",
    "Te betalen bedrag: 99999999999 EUR\nIBAN: BE00 0000 0000 0000\nMededeling: +++000/0000/00000+++",
])
def test_extraction_edge_cases(text: str) -> None:
    """Hand-picked edges of the properties above, run whatever the profile's budget."""
    _assert_sound(text)
