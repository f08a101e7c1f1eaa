"""The e-Box client's exception hierarchy.

Every exception derives from :class:`EboxError` (itself an :class:`daemon.errors.EboxdError`), so a
caller can catch the whole family, one branch (:class:`TokenError`, :class:`EboxApiError`,
:class:`TransportError`, :class:`DownloadError`) or one precise case.

Messages never contain tokens, assertions or key material.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from daemon.errors import EboxdError

__all__ = [
    "AttachmentNotFound",
    "BadRequest",
    "CertificateError",
    "CertificateKeyMismatch",
    "DigestMismatch",
    "DownloadError",
    "EboxApiError",
    "EboxConnectionError",
    "EboxError",
    "EboxTimeout",
    "Forbidden",
    "InvalidClientAssertion",
    "InvalidEnterpriseNumber",
    "InvalidScope",
    "MalformedResponse",
    "NotFound",
    "RateLimited",
    "ServerError",
    "SizeMismatch",
    "StatusMessage",
    "TokenEndpointError",
    "TokenError",
    "TransportError",
    "TruncatedDownload",
    "Unauthorized",
    "UnauthorizedClient",
    "UnknownClient",
    "UnknownEnvironment",
    "UnsupportedMediaType",
    "WeakKey",
]


class EboxError(EboxdError):
    """Base class of every error raised by :mod:`daemon.ebox`."""


class UnknownEnvironment(EboxError, ValueError):
    """An environment name or URL set that cannot be resolved."""


class InvalidEnterpriseNumber(EboxError, ValueError):
    """A CBE/KBO enterprise number that is malformed or fails its mod-97 check."""

    def __init__(self, value: object, reason: str) -> None:
        self.value = value
        self.reason = reason
        super().__init__(f"invalid enterprise number {value!r}: {reason}")


# --- certificates --------------------------------------------------------------------------------


class CertificateError(EboxError):
    """A key or certificate cannot be used."""


class WeakKey(CertificateError, ValueError):
    """An RSA key smaller than the enforced minimum."""


class CertificateKeyMismatch(CertificateError):
    """An imported certificate does not belong to the private key we hold."""


# --- transport -----------------------------------------------------------------------------------


class TransportError(EboxError):
    """The server could not be reached (after the retry budget was spent)."""

    def __init__(self, message: str, *, url: str, attempts: int) -> None:
        self.url = url
        self.attempts = attempts
        super().__init__(f"{message} ({url}, {attempts} attempt(s))")


class EboxTimeout(TransportError):
    """Every attempt timed out."""


class EboxConnectionError(TransportError):
    """Every attempt failed to connect or the connection dropped before a response."""


class MalformedResponse(EboxError):
    """A 2xx response whose body does not match the contract; ``field`` names the culprit."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"malformed response: {field}: {problem}")


# --- token endpoint ------------------------------------------------------------------------------


class TokenError(EboxError):
    """The token endpoint refused to issue an access token.

    ``error`` and ``description`` are the RFC 6749 §5.2 ``error`` / ``error_description`` fields.
    """

    def __init__(
        self,
        message: str,
        *,
        client_id: str,
        status_code: int | None = None,
        error: str | None = None,
        description: str | None = None,
    ) -> None:
        self.client_id = client_id
        self.status_code = status_code
        self.error = error
        self.description = description
        super().__init__(message)


class UnknownClient(TokenError):
    """The OAuth server does not know this client ID (not registered in ChaMan, or revoked)."""


class InvalidClientAssertion(TokenError):
    """The client is known but its assertion was rejected; ``reason`` says why."""

    @property
    def reason(self) -> str:
        return self.description or "no reason given"


class InvalidScope(TokenError):
    """The requested scope is unknown or not granted to this client."""


class UnauthorizedClient(TokenError):
    """The client may not use this grant or scope (``unauthorized_client``)."""


class TokenEndpointError(TokenError):
    """Any other refusal or failure of the token endpoint (bad request, 5xx, unreadable body)."""


# --- API errors ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusMessage:
    """The e-Box error body (``StatusMessage``): ``id``, ``code``, ``message`` and optional extras."""

    id: str | None
    code: str | None
    message: str | None
    contact: str | None = None
    environment: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> StatusMessage | None:
        """Lenient parse: error bodies are diagnostic, so missing fields become ``None``."""
        if not isinstance(data, dict):
            return None

        def text(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) else None

        if not any(text(k) for k in ("id", "code", "message")):
            return None
        return cls(text("id"), text("code"), text("message"), text("contact"), text("environment"))


class EboxApiError(EboxError):
    """The Message Registry answered with an error status.

    Carries the server's ``StatusMessage`` (``id``, ``code``, ``message``) when it sent one, and
    ``retry_after`` (seconds) when the server asked to come back later (429/503).
    """

    def __init__(
        self,
        *,
        status_code: int,
        method: str,
        url: str,
        status: StatusMessage | None = None,
        text: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status_code = status_code
        self.retry_after = retry_after
        self.method = method
        self.url = url
        self.status = status
        detail = ""
        if status is not None:
            detail = f": {status.code or '?'}: {status.message or ''} (error id {status.id or '?'})"
        elif text:
            detail = f": {text[:200]}"
        super().__init__(f"{method} {url} returned HTTP {status_code}{detail}")

    @property
    def id(self) -> str | None:
        return self.status.id if self.status else None

    @property
    def code(self) -> str | None:
        return self.status.code if self.status else None

    @property
    def server_message(self) -> str | None:
        return self.status.message if self.status else None


class BadRequest(EboxApiError):
    """HTTP 400: the request was syntactically invalid (bad filter, ``q`` without ``qlang``…)."""


class Unauthorized(EboxApiError):
    """HTTP 401 even after one re-authentication."""


class Forbidden(EboxApiError):
    """HTTP 403: valid token but a scope or a mandate (service-provider mode) is missing."""


class NotFound(EboxApiError):
    """HTTP 404: unknown message, attachment, reference id, or optional resource absent."""


class AttachmentNotFound(NotFound):
    """HTTP 404 on an attachment."""


class UnsupportedMediaType(EboxApiError):
    """HTTP 415: the server refused the request's content type."""


class RateLimited(EboxApiError):
    """HTTP 429 after the retry budget was spent."""


class ServerError(EboxApiError):
    """HTTP 5xx after the retry budget was spent."""


# --- downloads -----------------------------------------------------------------------------------


class DownloadError(EboxError):
    """An attachment download failed verification; no file was left behind."""


class TruncatedDownload(DownloadError):
    """The body ended before the announced length, or the connection dropped mid-body."""


class SizeMismatch(DownloadError):
    """The downloaded size disagrees with the attachment metadata."""


class DigestMismatch(DownloadError):
    """The SHA-256 of the downloaded bytes differs from the attachment's ``digest``."""

    def __init__(self, *, expected: str, actual: str, attachment_id: str | None) -> None:
        self.expected = expected
        self.actual = actual
        self.attachment_id = attachment_id
        super().__init__(f"attachment {attachment_id or '?'}: SHA-256 mismatch (expected {expected}, got {actual})")
