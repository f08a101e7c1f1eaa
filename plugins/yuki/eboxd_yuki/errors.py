"""What can go wrong talking to Yuki, as exceptions the export actor already understands.

``PermanentExportError`` subclasses fail the export at once (retrying cannot help: the key or the
domain needs a person); ``ExportDeferred`` parks it until Yuki's day turns; the rest are
``ExportError``: retried with backoff.
"""

from __future__ import annotations

import datetime as dt

from daemon.plugins import ExportDeferred, ExportError, PermanentExportError

__all__ = [
    "DailyLimitExceeded",
    "InactiveDomain",
    "InvalidAccessKey",
    "InvalidSession",
    "NoRights",
    "YukiError",
    "YukiFault",
    "YukiUnavailable",
]


class YukiError(ExportError):
    """Base of the Yuki client's errors; retried unless a subclass says otherwise."""


class YukiUnavailable(YukiError):
    """No SOAP answer: connection refused or reset, timeout, a bare HTTP error.

    ``ambiguous``: the request may have reached Yuki (an upload may exist): reconcile before a resend.
    """

    def __init__(self, message: str, *, ambiguous: bool = False) -> None:
        super().__init__(message)
        self.ambiguous = ambiguous


class YukiFault(YukiError):
    """A SOAP fault Yuki answered (``faultcode``, ``faultstring``)."""

    def __init__(self, operation: str, code: str, string: str, detail: str = "") -> None:
        # Not super(): in DailyLimitExceeded the next class would be ExportDeferred, wanting ``until``.
        ExportError.__init__(self, f"Yuki {operation}: {string}" + (f" ({detail})" if detail else ""))
        self.operation, self.code, self.string, self.detail = operation, code, string, detail


class InvalidSession(YukiFault):
    """The session was refused even right after a fresh ``Authenticate``."""


class InvalidAccessKey(YukiFault, PermanentExportError):
    """The access key is unknown (revoked, mistyped, or of the other country's host): reconnect."""

    hint = "run `eboxd yuki connect --enterprise <number>` with a valid access key"

    def __str__(self) -> str:
        return f"{super().__str__()}: {self.hint}"


class NoRights(YukiFault, PermanentExportError):
    """The key lacks the Archive right ("retrieve and submit documents")."""


class InactiveDomain(YukiFault, PermanentExportError):
    """The Yuki domain has no active database (ended subscription)."""


class DailyLimitExceeded(YukiFault, ExportDeferred):
    """The domain spent its daily calls; nothing is sent to it until ``until`` (Yuki's next day)."""

    def __init__(self, operation: str, code: str, string: str, detail: str = "", *,
                 until: dt.datetime) -> None:
        YukiFault.__init__(self, operation, code, string, detail)
        self.until = until
