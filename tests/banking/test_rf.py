"""ISO 11649 creditor references."""

from __future__ import annotations

import pytest

from daemon.banking import InvalidRF, find_rfs, is_valid_rf, make_rf, parse_rf, rf_check_digits


def test_spec_example():
    assert rf_check_digits("539007547034") == "18"
    reference = make_rf("539007547034")
    assert reference.value == "RF18539007547034"
    assert reference.display == "RF18 5390 0754 7034"
    assert (reference.check, reference.body) == ("18", "539007547034")


@pytest.mark.parametrize(
    "notation",
    ["RF18539007547034", "RF18 5390 0754 7034", "rf18 5390 0754 7034", " RF18\u00a05390 0754\t7034 "],
)
def test_notations(notation):
    assert parse_rf(notation).value == "RF18539007547034"
    assert is_valid_rf(notation)


def test_letters_in_the_body():
    reference = make_rf("invoice2026x")
    assert reference.value.startswith("RF")
    assert reference.body == "INVOICE2026X"
    assert parse_rf(reference.display) == reference


def test_wrong_check_digits_say_expected_and_got():
    with pytest.raises(InvalidRF) as caught:
        parse_rf("RF19 5390 0754 7034")
    assert caught.value.problem == "check_digits"
    assert (caught.value.expected, caught.value.got) == ("18", "19")
    assert "expected 18, got 19" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "problem", "words"),
    [
        ("", "empty", "empty"),
        ("XX18539007547034", "format", "does not start with 'RF'"),
        ("RF1", "format", "two check digits"),
        ("RFAB1234", "format", "two check digits"),
        ("RF18", "length", "no reference"),
        ("RF18" + "1" * 22, "length", "22 characters"),
        ("RF18 5390-0754", "characters", "'-'"),
    ],
)
def test_malformed(text, problem, words):
    with pytest.raises(InvalidRF) as caught:
        parse_rf(text)
    assert caught.value.problem == problem
    assert words in str(caught.value)


def test_find_in_text_stops_at_the_following_word():
    (found,) = find_rfs("Référence: RF18 5390 0754 7034 EN PLUS")
    assert found.valid
    assert found.raw == "RF18 5390 0754 7034"
    (compact,) = find_rfs("ref RF18539007547034.")
    assert compact.reference is not None
    assert compact.reference.value == "RF18539007547034"


def test_find_reports_bad_check_digits():
    (found,) = find_rfs("Referenz RF19 5390 0754 7034 bitte angeben")
    assert not found.valid
    assert found.raw == "RF19 5390 0754 7034"
    assert found.error is not None
    assert found.error.expected == "18"


def test_find_ignores_rf_inside_words():
    assert find_rfs("XRF18539007547034 PERF18 1234") == []
