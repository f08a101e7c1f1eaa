"""Belgian structured communication (OGM/VCS)."""

from __future__ import annotations

import pytest

from daemon.banking import InvalidOGM, find_ogms, is_valid_ogm, make_ogm, ogm_check_digits, parse_ogm

# Spec examples (banking.md §3) and the valid OGMs of the CODA samples (§1.13).
KNOWN = ["010806817183", "269021157996", "702600521948", "240283842818"]


@pytest.mark.parametrize("digits", KNOWN)
def test_known_ogms_are_valid(digits):
    ogm = parse_ogm(digits)
    assert ogm.digits == digits
    assert ogm.display == f"+++{digits[:3]}/{digits[3:7]}/{digits[7:]}+++"
    assert str(ogm) == ogm.display


def test_spec_example_check_digits():
    assert ogm_check_digits("0108068171") == "83"
    assert make_ogm("0108068171").display == "+++010/8068/17183+++"


def test_remainder_zero_is_written_97():
    assert ogm_check_digits(0) == "97"
    assert ogm_check_digits(97) == "97"
    assert make_ogm(97 * 12345).check == "97"
    with pytest.raises(InvalidOGM) as caught:
        parse_ogm("000000009700")
    assert caught.value.expected == "97"
    assert caught.value.got == "00"


@pytest.mark.parametrize(
    "notation",
    [
        "+++010/8068/17183+++",
        "***010/8068/17183***",
        "+++ 010 / 8068 / 17183 +++",
        "010/8068/17183",
        "010 8068 17183",
        "010.8068.17183",
        "010-8068-17183",
        "010806817183",
        "  010806817183\n",
        "+++010806817183+++",
        "010\u00a08068\u00a017183",
    ],
)
def test_every_common_notation(notation):
    assert parse_ogm(notation).digits == "010806817183"
    assert is_valid_ogm(notation)


def test_wrong_check_digits_say_expected_and_got():
    with pytest.raises(InvalidOGM) as caught:
        parse_ogm("+++010/8068/17184+++")
    error = caught.value
    assert error.problem == "check_digits"
    assert (error.expected, error.got) == ("83", "84")
    assert "expected 83" in str(error)
    assert "got 84" in str(error)
    assert "0108068171" in str(error)
    assert "+++010/8068/17184+++" in str(error)


@pytest.mark.parametrize(
    ("text", "problem", "words"),
    [
        ("", "empty", "empty"),
        ("+++   +++", "empty", "empty"),
        ("01080681718", "length", "has 11 digits"),
        ("0108068171830", "length", "has 13 digits"),
        ("010/8068/1718a", "characters", "'a' at position 14"),
        ("RF18 5390", "characters", "'R' at position 1"),
    ],
)
def test_malformed(text, problem, words):
    with pytest.raises(InvalidOGM) as caught:
        parse_ogm(text)
    assert caught.value.problem == problem
    assert words in str(caught.value)
    assert not is_valid_ogm(text)


def test_invalid_ogm_is_a_value_error_with_an_operator_message():
    with pytest.raises(ValueError, match="structured communication"):
        parse_ogm("123")


def test_stem_must_have_ten_digits():
    with pytest.raises(InvalidOGM, match="10 digits"):
        ogm_check_digits("123")
    with pytest.raises(InvalidOGM):
        make_ogm(10**10)


def test_value_type_rejects_bad_digits():
    ogm = make_ogm(1234567890)
    assert ogm.stem == "1234567890"
    with pytest.raises(InvalidOGM):
        type(ogm)("123456789000")


def test_find_in_text_reports_forms_and_errors():
    text = ("Communication: +++283/0941/90105+++ or 283/0941/90106, ***111/2222/33333***, "
            "bare 010806817183, date 12/03/2026, phone 02/123 45 67, account 734-9335754-95")
    found = find_ogms(text)
    assert [(c.form, c.digits, c.valid) for c in found] == [
        ("wrapped", "283094190105", True),
        ("grouped", "283094190106", False),
        ("wrapped", "111222233333", False),
        ("bare", "010806817183", True),
    ]
    assert found[1].error is not None
    assert found[1].error.expected == "05"
    assert text[found[0].start : found[0].end] == "+++283/0941/90105+++"


def test_find_reports_wrapped_strings_of_the_wrong_length():
    (candidate,) = find_ogms("Mededeling: +++123/4567/8901+++")
    assert not candidate.valid
    assert candidate.error is not None
    assert candidate.error.problem == "length"


def test_find_ignores_longer_digit_runs():
    assert find_ogms("ref 0108068171830 and 1010806817183") == []
