"""Error bodies: the contract's ``StatusMessage`` (registry and federation flavours)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from daemon.sandbox.httpkit import Response, json_response

__all__ = ["ApiError", "error_response", "status_message"]


class ApiError(Exception):
    """Raised by handlers; rendered as a ``StatusMessage`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def status_message(code: str, message: str, environment: str, *, federation: bool = False) -> dict[str, str]:
    """``{id, code, message, contact, environment}``; the federation spec wants UPPERCASE environments."""
    return {
        "id": str(uuid.uuid4()),
        "code": code,
        "message": message,
        "contact": "eboxintegration@smals.be",
        "environment": environment.upper() if federation else environment,
    }


def error_response(error: ApiError, environment: str, *, federation: bool = False) -> Response:
    """Render an :class:`ApiError`."""
    body = status_message(error.code, error.message, environment, federation=federation)
    return json_response(error.status, body, error.headers)
