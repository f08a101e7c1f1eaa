"""The CODA parser's error and warning types."""

from __future__ import annotations

from dataclasses import dataclass

from daemon.errors import EboxdError

__all__ = ["CodaError", "CodaWarning"]


class CodaError(EboxdError, ValueError):
    """A CODA file is malformed. ``file``, ``line`` (1-based), ``columns`` (1-based inclusive
    ``(first, last)`` or None), ``expected`` and ``got`` say where and what."""

    def __init__(self, file: str, line: int | None, columns: tuple[int, int] | None, expected: str,
                 got: str | None = None) -> None:
        self.file, self.line, self.columns, self.expected, self.got = file, line, columns, expected, got
        where = file if line is None else f"{file}:{line}"
        if columns is not None:
            first, last = columns
            where += f": column {first}" if first == last else f": columns {first}-{last}"
        message = f"{where}: expected {expected}"
        if got is not None:
            message += f", got {got!r}"
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class CodaWarning:
    """A problem that does not stop the import: ``code`` is stable (``short_line``,
    ``record_count``, ``debit_total``, ``credit_total``, ``balance``, ``account_mismatch``,
    ``sequence_gap``, ``application_code``, ``duplicate``, ``orphan_detail``, ``orphan_information``)."""

    code: str
    message: str
    line: int | None = None
