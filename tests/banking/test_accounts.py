"""IBAN and BIC, on top of schwifty."""

from __future__ import annotations

import pytest

from daemon.banking import (
    InvalidBIC,
    InvalidIBAN,
    bic_for_iban,
    find_ibans,
    format_iban,
    is_valid_iban,
    parse_bic,
    parse_iban,
)


@pytest.mark.parametrize(
    "notation",
    ["BE68539007547034", "BE68 5390 0754 7034", "be68 5390 0754 7034", "IBAN: BE68 5390 0754 7034",
     "BE68-5390-0754-7034", "BE68\u00a05390\u00a00754\u00a07034"],
)
def test_notations(notation):
    assert parse_iban(notation) == "BE68539007547034"


def test_foreign_ibans():
    assert parse_iban("DE89 3704 0044 0532 0130 00") == "DE89370400440532013000"
    assert parse_iban("NL91ABNA0417164300") == "NL91ABNA0417164300"
    assert parse_iban("FR76 3000 6000 0112 3456 7890 189") == "FR7630006000011234567890189"


def test_format():
    assert format_iban("be68539007547034") == "BE68 5390 0754 7034"


def test_check_digits_say_expected_and_got():
    with pytest.raises(InvalidIBAN) as caught:
        parse_iban("BE69 5390 0754 7034")
    assert caught.value.problem == "check_digits"
    assert (caught.value.expected, caught.value.got) == ("68", "69")
    assert "expected 68, got 69" in str(caught.value)


def test_belgian_national_check_digits():
    # IBAN check digits right, Belgian account check digits (last two) wrong.
    bban = "539007547000"
    numeric = int(bban + "111400")
    iban = f"BE{98 - numeric % 97:02d}{bban}"
    with pytest.raises(InvalidIBAN) as caught:
        parse_iban(iban)
    assert caught.value.problem == "national_check_digits"
    assert (caught.value.expected, caught.value.got) == ("34", "00")
    assert parse_iban(iban, national_check=False) == iban
    assert is_valid_iban(iban, national_check=False)
    assert not is_valid_iban(iban)


@pytest.mark.parametrize(
    ("text", "problem", "words"),
    [
        ("", "empty", "empty"),
        ("BE6853900754703", "length", "BE IBANs have 16 characters, got 15"),
        ("XX68539007547034", "country", "unknown country code 'XX'"),
        ("BE68 5390 0754 70A4", "format", "does not match the BE format"),
        ("BE68 5390 0754 70$4", "characters", "'$'"),
        ("6853900754703400", "format", "two-letter country code"),
    ],
)
def test_malformed(text, problem, words):
    with pytest.raises(InvalidIBAN) as caught:
        parse_iban(text)
    assert caught.value.problem == problem
    assert words in str(caught.value)


def test_bic():
    assert parse_bic("gebabebb") == "GEBABEBB"
    assert parse_bic("GEBA BE BB XXX") == "GEBABEBBXXX"
    with pytest.raises(InvalidBIC, match="has 6 characters"):
        parse_bic("GEBABE")
    with pytest.raises(InvalidBIC, match="2-letter country code"):
        parse_bic("GEBA1EBB")
    with pytest.raises(InvalidBIC, match="empty"):
        parse_bic(" ")


@pytest.mark.parametrize(
    ("iban", "bic"),
    [("BE71096123456769", "GKCCBEBB"), ("BE76734933575495", "KREDBEBB"), ("BE10979538961004", "ARSPBE22")],
)
def test_bic_for_iban(iban, bic):
    assert bic_for_iban(iban) == bic


def test_bic_for_unknown_bank_or_bad_iban():
    assert bic_for_iban("BE68539007547034") is None  # bank code 539 is not in the registry
    assert bic_for_iban("nonsense") is None


def test_find_in_text():
    text = "IBAN BE68 5390 0754 7034 BIC GEBABEBB; NL91ABNA0417164300 FR76 3000 6000 0112 3456 7890 189; RF18 5390"
    found = find_ibans(text)
    assert [c.iban for c in found] == ["BE68539007547034", "NL91ABNA0417164300", "FR7630006000011234567890189"]
    assert text[found[0].start : found[0].end] == "BE68 5390 0754 7034"


def test_find_reports_invalid_ibans():
    (bad,) = find_ibans("Compte BE69 5390 0754 7034 ouvert")
    assert not bad.valid
    assert bad.error is not None
    assert bad.error.problem == "check_digits"
    (long,) = find_ibans("Compte BE68 5390 0754 70345")
    assert long.error is not None
    assert long.error.problem == "length"


def test_find_ignores_unknown_countries_and_words():
    assert find_ibans("QQ12 3456 7890 1234 and xBE68539007547034") == []
