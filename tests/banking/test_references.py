"""Payment references of any kind."""

from __future__ import annotations

import pytest

from daemon.banking import (
    FREE_TEXT_MAX,
    InvalidOGM,
    InvalidReference,
    InvalidRF,
    PaymentReference,
    ReferenceKind,
    make_ogm,
    make_rf,
    parse_reference,
)


def test_recognises_the_kind():
    assert parse_reference("+++010/8068/17183+++") == PaymentReference(ReferenceKind.OGM, "010806817183")
    assert parse_reference("010806817183").kind is ReferenceKind.OGM
    assert parse_reference("RF18 5390 0754 7034") == PaymentReference(ReferenceKind.RF, "RF18539007547034")
    assert parse_reference("Facture 2026/17").kind is ReferenceKind.FREE
    assert parse_reference("2026001234").kind is ReferenceKind.FREE


def test_display_and_structured():
    assert parse_reference("010806817183").display == "+++010/8068/17183+++"
    assert parse_reference("rf18539007547034").display == "RF18 5390 0754 7034"
    assert str(parse_reference("  Facture   17 ")) == "Facture 17"
    assert parse_reference("010806817183").structured
    assert not parse_reference("Facture 17").structured


def test_near_misses_are_errors_not_free_text():
    with pytest.raises(InvalidOGM, match="check digits 84"):
        parse_reference("+++010/8068/17184+++")
    with pytest.raises(InvalidOGM, match="11 digits"):
        parse_reference("010/8068/1718")
    with pytest.raises(InvalidRF, match="expected 18"):
        parse_reference("RF19 5390 0754 7034")


def test_forced_kind():
    assert parse_reference("010806817183", "free").kind is ReferenceKind.FREE
    with pytest.raises(InvalidOGM):
        parse_reference("Facture 17", ReferenceKind.OGM)


def test_free_text_limits():
    with pytest.raises(InvalidReference, match="empty"):
        parse_reference("   ")
    with pytest.raises(InvalidReference, match=f"limited to {FREE_TEXT_MAX}"):
        parse_reference("x" * (FREE_TEXT_MAX + 1))


def test_factories():
    assert PaymentReference.ogm(make_ogm(1)).value == make_ogm(1).digits
    assert PaymentReference.rf(make_rf("ABC")).value == make_rf("ABC").value
