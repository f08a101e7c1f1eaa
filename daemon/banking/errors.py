"""Errors raised when a banking identifier (OGM, RF, IBAN, BIC) is malformed.

Every error names the value, what is wrong with it and, for check digits, what was expected
and what was found, so an operator can correct a typo from the message alone.
"""

from __future__ import annotations

from daemon.errors import EboxdError

__all__ = ["BankingError", "InvalidBIC", "InvalidIBAN", "InvalidOGM", "InvalidRF", "InvalidReference"]


class BankingError(EboxdError, ValueError):
    """A banking identifier is malformed.

    ``value`` is the input as given, ``problem`` a stable code (``empty``, ``characters``,
    ``length``, ``format``, ``country``, ``check_digits``, ``national_check_digits``), and
    ``expected``/``got`` the two sides of a failed check when there is one.
    """

    what = "identifier"

    def __init__(
        self, value: str, problem: str, detail: str, *, expected: str | None = None, got: str | None = None
    ) -> None:
        self.value = value
        self.problem = problem
        self.detail = detail
        self.expected = expected
        self.got = got
        super().__init__(f"{self.what} {value!r}: {detail}" if value.strip() else f"{self.what}: {detail}")


class InvalidReference(BankingError):
    """A payment reference (structured communication or creditor reference) is malformed."""

    what = "payment reference"


class InvalidOGM(InvalidReference):
    """A Belgian structured communication (OGM/VCS) is malformed or fails its check digits."""

    what = "structured communication"


class InvalidRF(InvalidReference):
    """An ISO 11649 creditor reference is malformed or fails its check digits."""

    what = "creditor reference"


class InvalidIBAN(BankingError):
    """An IBAN is malformed or fails its check digits."""

    what = "IBAN"


class InvalidBIC(BankingError):
    """A BIC (ISO 9362) is malformed."""

    what = "BIC"
