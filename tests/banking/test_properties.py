"""Property tests: every notation of a valid identifier parses back; every single-character typo is caught."""

from __future__ import annotations

import contextlib
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.banking import (
    InvalidIBAN,
    InvalidOGM,
    InvalidRF,
    find_ibans,
    find_ogms,
    find_rfs,
    make_ogm,
    make_rf,
    parse_iban,
    parse_ogm,
    parse_reference,
    parse_rf,
)
from daemon.banking.references import ReferenceKind

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

stems = st.integers(min_value=0, max_value=10**10 - 1)
separators = st.sampled_from(["/", " ", ".", "-", ""])
wrappers = st.sampled_from([("+++", "+++"), ("***", "***"), ("", ""), ("+++ ", " +++")])


def belgian_iban(account: int) -> str:
    rest = account % 97
    bban = f"{account:010d}{97 if rest == 0 else rest:02d}"
    return f"BE{98 - int(bban + '111400') % 97:02d}{bban}"


@SETTINGS
@given(stems, separators, wrappers)
def test_ogm_round_trips_through_any_notation(stem, separator, wrapper):
    ogm = make_ogm(stem)
    d = ogm.digits
    text = f"{wrapper[0]}{d[:3]}{separator}{d[3:7]}{separator}{d[7:]}{wrapper[1]}"
    assert parse_ogm(text) == ogm
    assert parse_ogm(ogm.display) == ogm
    assert parse_reference(text).kind is ReferenceKind.OGM


@SETTINGS
@given(stems, st.integers(min_value=0, max_value=11), st.integers(min_value=1, max_value=9))
def test_ogm_single_digit_error_is_caught(stem, position, delta):
    digits = make_ogm(stem).digits
    changed = f"{(int(digits[position]) + delta) % 10}"
    typo = digits[:position] + changed + digits[position + 1 :]
    with pytest.raises(InvalidOGM) as caught:
        parse_ogm(typo)
    assert caught.value.problem == "check_digits"


@SETTINGS
@given(stems, st.integers(min_value=0, max_value=9))
def test_ogm_adjacent_transposition_is_caught_in_the_stem(stem, position):
    digits = make_ogm(stem).digits
    if digits[position] == digits[position + 1]:
        return
    swapped = digits[:position] + digits[position + 1] + digits[position] + digits[position + 2 :]
    assert not _valid_ogm(swapped)


def _valid_ogm(text: str) -> bool:
    try:
        parse_ogm(text)
    except InvalidOGM:
        return False
    return True


@SETTINGS
@given(stems, st.text(alphabet="abc xyz:,", max_size=20), st.text(alphabet="abc xyz:,", max_size=20))
def test_ogm_found_in_surrounding_text(stem, before, after):
    ogm = make_ogm(stem)
    text = f"{before} {ogm.display} {after}"
    (found,) = find_ogms(text)
    assert found.ogm == ogm


rf_bodies = st.text(alphabet=string.ascii_uppercase + string.digits, min_size=1, max_size=21)


@SETTINGS
@given(rf_bodies, st.booleans(), st.booleans())
def test_rf_round_trips(body, grouped, lower):
    reference = make_rf(body)
    text = reference.display if grouped else reference.value
    text = text.lower() if lower else text
    assert parse_rf(text) == reference
    assert parse_reference(text).kind is ReferenceKind.RF


@SETTINGS
@given(rf_bodies, st.data())
def test_rf_single_character_error_is_caught(body, data):
    value = make_rf(body).value
    position = data.draw(st.integers(min_value=2, max_value=len(value) - 1))
    # Same class (digit for digit, letter for letter): mod 97 catches those for sure; a letter for a
    # digit changes the length of the numeric string and can alias.
    alphabet = string.digits if value[position].isdigit() else string.ascii_uppercase
    replacement = data.draw(st.sampled_from([c for c in alphabet if c != value[position]]))
    typo = value[:position] + replacement + value[position + 1 :]
    try:
        parse_rf(typo)
    except InvalidRF:
        return
    raise AssertionError(f"{typo} accepted for {value}")


@SETTINGS
@given(rf_bodies.filter(lambda b: len(b) >= 4))
def test_rf_found_in_text(body):
    reference = make_rf(body)
    (found,) = find_rfs(f"Reference: {reference.display} please")
    assert found.reference == reference


accounts = st.integers(min_value=0, max_value=10**10 - 1)


@SETTINGS
@given(accounts, st.sampled_from(["", " ", "\u00a0", "-"]), st.booleans())
def test_iban_round_trips(account, separator, lower):
    iban = belgian_iban(account)
    text = separator.join(iban[i : i + 4] for i in range(0, 16, 4))
    assert parse_iban(text.lower() if lower else text) == iban
    (found,) = find_ibans(f"Compte {text if separator in (' ', '') else iban} BIC")
    assert found.iban == iban


@SETTINGS
@given(accounts, st.integers(min_value=2, max_value=15), st.integers(min_value=1, max_value=9))
def test_iban_single_digit_error_is_caught(account, position, delta):
    iban = belgian_iban(account)
    typo = iban[:position] + f"{(int(iban[position]) + delta) % 10}" + iban[position + 1 :]
    with pytest.raises(InvalidIBAN) as caught:
        parse_iban(typo)
    assert caught.value.problem in ("check_digits", "national_check_digits")


@SETTINGS
@given(st.text(max_size=60))
def test_parsers_raise_only_their_own_errors(text):
    for parse, error in ((parse_ogm, InvalidOGM), (parse_rf, InvalidRF), (parse_iban, InvalidIBAN)):
        with contextlib.suppress(error):
            parse(text)
    find_ogms(text)
    find_rfs(text)
    find_ibans(text)
