"""Errors of the Ponto Connect client."""

from __future__ import annotations

from daemon.errors import EboxdError

__all__ = ["PontoApiError", "PontoError", "PontoUnavailable", "WebhookRefused"]


class PontoError(EboxdError):
    """Something went wrong talking to Ponto Connect."""


class PontoUnavailable(PontoError):
    """Ponto did not answer usefully (network, 5xx, 429) after our retries: try again later."""


class PontoApiError(PontoError):
    """Ponto refused a request (4xx other than 429). The message carries ``ibanity-request-id``."""

    def __init__(self, method: str, path: str, status: int, detail: str, request_id: str | None = None) -> None:
        super().__init__(f"Ponto {method} {path}: HTTP {status} {detail}"
                         + (f" (ibanity-request-id {request_id})" if request_id else ""))
        self.status, self.request_id = status, request_id


class WebhookRefused(PontoError):
    """A webhook failed verification (signature, digest, freshness or replay); ``reason`` is a stable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"webhook refused: {reason}" + (f" ({detail})" if detail else ""))
        self.reason = reason
