from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.ebox import EnterpriseNumber, InvalidEnterpriseNumber, parse_enterprise_number


@pytest.mark.parametrize(
    "notation",
    [
        "0403.170.701",
        "0403 170 701",
        "0403170701",
        "BE0403170701",
        "be 0403.170.701",
        "BE-0403-170-701",
        "403170701",
        "403.170.701",
        403170701,
        "  0403170701\n",
    ],
)
def test_accepts_common_notations(notation):
    number = parse_enterprise_number(notation)
    assert number.canonical == "0403170701"
    assert number.display == "0403.170.701"
    assert str(number) == "0403170701"
    assert number.vat == "BE0403170701"


def test_first_digit_one_is_valid():
    first_eight = 10000000
    check = 97 - first_eight % 97
    assert parse_enterprise_number(f"{first_eight}{check:02d}").display == f"1000.000.0{check:02d}"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("BE", "no digits after the BE prefix"),
        ("0403.170.702", "check digits 02 do not match (expected 01 for 04031707)"),
        ("2403170701", "the first digit must be 0 or 1, got 2"),
        ("04031707", "expected 10 digits (or 9 in the old notation), got 8"),
        ("04031707011", "expected 10 digits (or 9 in the old notation), got 11"),
        ("0403I70701", "unexpected character(s) 'I'"),
        ("FR0403170701", "unexpected character(s) 'FR'"),
        ("０４０３１７０７０１", "unexpected character(s)"),
    ],
)
def test_rejects_with_a_precise_reason(value, reason):
    with pytest.raises(InvalidEnterpriseNumber) as info:
        parse_enterprise_number(value)
    assert reason in str(info.value)
    assert info.value.value == value
    assert isinstance(info.value, ValueError)


def test_rejects_non_strings():
    with pytest.raises(InvalidEnterpriseNumber, match="expected a string"):
        parse_enterprise_number(4.03)  # type: ignore[arg-type]
    with pytest.raises(InvalidEnterpriseNumber):
        parse_enterprise_number(True)  # type: ignore[arg-type]


def test_value_object_semantics():
    a = EnterpriseNumber("BE 0403.170.701")
    b = parse_enterprise_number("403170701")
    assert a == b
    assert hash(a) == hash(b)
    assert {a, b} == {a}
    assert repr(a) == "EnterpriseNumber('0403.170.701')"
    assert parse_enterprise_number(a) is a
    with pytest.raises(InvalidEnterpriseNumber):
        EnterpriseNumber("0403170702")


@given(st.integers(min_value=0, max_value=19_999_999))
def test_every_computed_check_digit_is_accepted(first_eight):
    digits = f"{first_eight:08d}{97 - first_eight % 97:02d}"
    assert parse_enterprise_number(digits).canonical == digits


@given(st.integers(min_value=0, max_value=19_999_999), st.integers(min_value=0, max_value=99))
def test_any_other_check_digit_is_rejected(first_eight, check):
    if check == 97 - first_eight % 97:
        return
    with pytest.raises(InvalidEnterpriseNumber, match="check digits"):
        parse_enterprise_number(f"{first_eight:08d}{check:02d}")
