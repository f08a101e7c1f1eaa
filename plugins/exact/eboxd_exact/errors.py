"""What can go wrong talking to Exact Online, as exceptions the export actor understands.

``PermanentExportError`` subclasses fail the export at once (a 4xx: retrying the same request
cannot help and would count toward Exact's hourly error block; a lost token chain needs a person);
``ExportDeferred`` subclasses park it (the daily limit, an open circuit breaker); the rest are
``ExportError``: retried with backoff.
"""

from __future__ import annotations

import datetime as dt

from daemon.plugins import ExportDeferred, ExportError, PermanentExportError

__all__ = ["CircuitOpen", "DailyLimitReached", "ExactApiError", "ExactError", "ExactRefused", "ExactUnavailable",
           "NotConnected"]


class ExactError(ExportError):
    """Base of the Exact client's errors; retried unless a subclass says otherwise."""


class ExactUnavailable(ExactError):
    """No answer from Exact (refused, reset, timeout) or a 5xx.

    ``ambiguous``: the request may have been carried out (a created document may exist): look the
    marker up before sending it again.
    """

    def __init__(self, message: str, *, ambiguous: bool = False) -> None:
        super().__init__(message)
        self.ambiguous = ambiguous


class ExactApiError(ExactError):
    """An error answer of the REST API: ``status``, Exact's ``error.message.value`` and ``Reason``."""

    def __init__(self, method: str, path: str, status: int, message: str, reason: str | None = None) -> None:
        super().__init__(f"Exact {method} {path}: HTTP {status}: {message}" + (f" ({reason})" if reason else ""))
        self.status, self.exact_message, self.reason = status, message, reason


class ExactRefused(ExactApiError, PermanentExportError):
    """A 4xx: this request will not succeed as it is (never retried: 4xx count toward Exact's block)."""


class NotConnected(ExactError, PermanentExportError):
    """No usable token chain for the enterprise's connection: ``eboxd exact connect`` again."""

    def __init__(self, message: str, *, hint: str = "run `eboxd exact connect --enterprise <number>`") -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        return f"{super().__str__()}: {self.hint}"


class DailyLimitReached(ExactError, ExportDeferred):
    """The division's daily calls are (nearly) spent: nothing more is sent until ``until``."""

    def __init__(self, message: str, *, until: dt.datetime) -> None:
        ExportDeferred.__init__(self, message, until=until)


class CircuitOpen(ExactError, ExportDeferred):
    """Too many error answers for this key in the last hour: calls stop until ``until`` so Exact
    never blocks the key (more than 10 errors an hour)."""

    def __init__(self, message: str, *, until: dt.datetime) -> None:
        ExportDeferred.__init__(self, message, until=until)
