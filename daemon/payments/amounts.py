"""Money amounts as Belgian letters print them: ``1.234,56 EUR``, ``€ 1 234,56``, ``EUR 1.234,56``, ``1234.56 EUR``.

Belgian documents use a decimal comma and a dot or a (narrow, non-breaking) space between
thousands; English-style ``1,234.56`` and bare ``1234.56`` occur too. A lone separator followed
by exactly three digits (``1.234``) is read as a thousands separator and marked ``certain=False``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Context, Decimal

__all__ = ["AmountError", "Money", "find_amounts", "parse_amount"]

_CURRENCY_WORDS = {"EUR": "EUR", "€": "EUR", "EURO": "EUR", "EUROS": "EUR", "USD": "USD", "$": "USD",
                   "GBP": "GBP", "£": "GBP", "CHF": "CHF"}
_PRE = r"(?P<pre>EUR|€|USD|\$|GBP|£|CHF)[ \u00a0\u202f]?"
_POST = r"[ \u00a0\u202f]?(?P<post>EUR(?:OS?)?|euros?|€|USD|GBP|£|CHF)(?![A-Za-z])"
_NUMBER = r"""
    (?P<sign>[-−–][ ]?)?
    (?P<num>
        \d{1,3}(?:\.\d{3})+(?:,\d{1,2})?
      | \d{1,3}(?:,\d{3})+(?:\.\d{1,2})?
      | \d{1,3}(?:[ \u00a0\u202f']\d{3})+(?:[.,]\d{1,2})?
      | \d+(?:[.,]\d{1,2})?
    )
    (?P<dash>,-)?
    (?!\d|[.,]\d)
"""
_AMOUNT = re.compile(rf"(?<![\w.,/])(?:{_PRE})?{_NUMBER}(?:{_POST})?", re.VERBOSE)


class AmountError(ValueError):
    """Text is not an amount."""


@dataclass(frozen=True, slots=True)
class Money:
    """An amount found in text; ``currency`` is None when none is written next to it."""

    amount: Decimal
    currency: str | None
    raw: str
    start: int
    end: int
    certain: bool = True
    has_decimals: bool = True


def _interpret(num: str, dash: bool) -> tuple[Decimal, bool, bool]:
    """(value, certain, has_decimals) of the digits-and-separators part."""
    compact = re.sub(r"[ \u00a0\u202f']", "", num)
    if "," in compact and "." in compact:
        decimal_sep = "," if compact.rfind(",") > compact.rfind(".") else "."
    elif compact.count(",") == 1 and len(compact) - compact.index(",") - 1 <= 2:
        decimal_sep = ","
    elif compact.count(".") == 1 and len(compact) - compact.index(".") - 1 <= 2:
        decimal_sep = "."
    else:
        decimal_sep = None
    certain = dash or not (decimal_sep is None and (compact.count(",") + compact.count(".")) == 1)
    if decimal_sep is None:
        whole, cents = compact.replace(",", "").replace(".", ""), ""
    else:
        whole, _, cents = compact.rpartition(decimal_sep)
        whole = whole.replace(",", "").replace(".", "")
    # A long run of digits (an account or file number run together) must stay a (huge) number, not
    # raise InvalidOperation because it has more digits than the default context's precision.
    value = Decimal(f"{whole}.{cents or '0'}").quantize(Decimal("0.01"), context=Context(prec=len(whole) + 30))
    return value, certain, bool(cents) or dash


def _money(match: re.Match[str]) -> Money:
    value, certain, decimals = _interpret(match.group("num"), match.group("dash") is not None)
    if match.group("sign"):
        value = -value
    word = match.group("pre") or match.group("post")
    currency = None if word is None else _CURRENCY_WORDS[word.upper()]
    return Money(value, currency, match.group(0), match.start(), match.end(), certain, decimals)


def find_amounts(text: str, *, require_currency: bool = False) -> list[Money]:
    """Every amount in ``text`` in order; with ``require_currency`` only those written with a currency."""
    found = [_money(match) for match in _AMOUNT.finditer(text)]
    return [money for money in found if money.currency is not None or not require_currency]


def parse_amount(text: str) -> Money:
    """Read ``text`` as exactly one amount (currency optional); raise :class:`AmountError` otherwise."""
    stripped = text.strip()
    match = _AMOUNT.fullmatch(stripped)
    if match is None:
        raise AmountError(f"not an amount: {text!r} (expected e.g. '1.234,56 EUR' or '€ 1 234,56')")
    return _money(match)
