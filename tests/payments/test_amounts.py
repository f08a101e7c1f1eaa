"""Belgian amount notations."""

from __future__ import annotations

from decimal import Decimal

import pytest

from daemon.payments import AmountError, find_amounts, parse_amount


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("1.234,56 EUR", "1234.56", "EUR"),
        ("€ 1 234,56", "1234.56", "EUR"),
        ("€1.234,56", "1234.56", "EUR"),
        ("1234.56 EUR", "1234.56", "EUR"),
        ("EUR 1.234,56", "1234.56", "EUR"),
        ("1\u202f234,56\u00a0€", "1234.56", "EUR"),
        ("1 234 567,89 EUR", "1234567.89", "EUR"),
        ("1.234.567,89", "1234567.89", None),
        ("1,234.56", "1234.56", None),
        ("12,5 €", "12.50", "EUR"),
        ("0,00 EUR", "0.00", "EUR"),
        ("1.234,- EUR", "1234.00", "EUR"),
        ("12 euros", "12.00", "EUR"),
        ("-200,00 EUR", "-200.00", "EUR"),
        ("1'234.50 CHF", "1234.50", "CHF"),
        ("USD 99.99", "99.99", "USD"),
    ],
)
def test_notations(text, amount, currency):
    money = parse_amount(text)
    assert money.amount == Decimal(amount)
    assert money.currency == currency
    assert money.certain


def test_a_lone_group_of_three_is_thousands_but_uncertain():
    money = parse_amount("1.234 EUR")
    assert money.amount == Decimal("1234.00")
    assert not money.certain
    assert not money.has_decimals


@pytest.mark.parametrize("text", ["", "EUR", "1.23.45", "12/03/2026", "abc 12", "1.234,567"])
def test_not_amounts(text):
    with pytest.raises(AmountError):
        parse_amount(text)


def test_find_in_a_table_row():
    found = find_amounts("Impôt 12.345,67 EUR   Précompte -2.000,00 EUR   Solde 10.345,67 €")
    assert [m.amount for m in found] == [Decimal("12345.67"), Decimal("-2000.00"), Decimal("10345.67")]


def test_find_with_currency_only():
    found = find_amounts("Article 5972605, exercice 2025 : 1.234,56 EUR", require_currency=True)
    assert [m.raw for m in found] == ["1.234,56 EUR"]


def test_digits_inside_words_or_dates_are_not_amounts():
    assert [m.raw for m in find_amounts("Q1 2026 x12,50")] == ["2026"]
