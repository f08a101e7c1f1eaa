"""Bearer-token checks for the registry and federation APIs: token → client → enterprise.

401 = token missing, unknown, revoked or expired; 403 = valid token but missing scope, e-Box
not activated for consultation, or ``On-Behalf-Of-Enterprise-Number`` without a mandate
(ebox.md §3.3, §3.5; the mandate behaviour is inferred).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from daemon.sandbox.belgian import cbe_is_valid
from daemon.sandbox.ebox.errors import ApiError
from daemon.sandbox.ebox.state import Client, SandboxState
from daemon.sandbox.httpkit import Request

__all__ = ["ON_BEHALF_HEADER", "Principal", "authenticate"]

ON_BEHALF_HEADER = "On-Behalf-Of-Enterprise-Number"


@dataclass(frozen=True)
class Principal:
    """Who is calling, and whose e-Box they are reading."""

    client: Client
    enterprise_number: str
    on_behalf: bool = False


def _unauthorized(code: str, message: str, error: str = "invalid_token") -> ApiError:
    header = f'Bearer error="{error}", error_description="{message}"' if error else "Bearer"
    return ApiError(401, code, message, {"WWW-Authenticate": header})


def authenticate(
    state: SandboxState, request: Request, scopes: Iterable[str], *, force_expired: bool = False,
    consultation: bool = True,
) -> Principal:
    """Resolve the bearer token; require at least one of ``scopes``.

    ``force_expired`` is the expired-token fault: a valid token is answered as expired.
    ``consultation`` adds the DocConsumer activation and mandate checks (not for the federation).
    """
    authorization = request.header("Authorization") or ""
    scheme, _, value = authorization.partition(" ")
    if not authorization:
        raise _unauthorized("UNAUTHORIZED", "Missing Authorization header (Bearer token required)", "")
    if scheme.lower() != "bearer" or not value.strip():
        raise _unauthorized("UNAUTHORIZED", "Authorization must be a Bearer access token", "invalid_request")
    with state.lock:
        token = state.tokens.get(value.strip())
    if token is None:
        raise _unauthorized("INVALID_TOKEN", "Access token unknown or malformed")
    if token.revoked:
        raise _unauthorized("INVALID_TOKEN", "Access token revoked")
    if force_expired or token.expires_at <= state.now():
        raise _unauthorized("TOKEN_EXPIRED", "Access token expired")
    client = state.clients.get(token.client_id)
    if client is None:
        raise _unauthorized("INVALID_TOKEN", "Client of this access token no longer exists")
    wanted = list(scopes)
    if not token.scopes.intersection(wanted):
        raise ApiError(403, "MISSING_SCOPE", f"Access token lacks the required scope {wanted[0]}",
                       {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{wanted[0]}"'})
    if not consultation:
        return Principal(client, client.enterprise_number)
    target = client.enterprise_number
    on_behalf = (request.header(ON_BEHALF_HEADER) or "").strip()
    if on_behalf and on_behalf != client.enterprise_number:
        if not cbe_is_valid(on_behalf):
            raise ApiError(400, "INVALID_INPUT",
                           f"{ON_BEHALF_HEADER} is not a valid enterprise number: {on_behalf!r}")
        if on_behalf not in client.mandates:
            message = f"No validated e-Box Document Consumer mandate from {on_behalf} for {client.enterprise_number}"
            raise ApiError(403, "NO_MANDATE", message)
        return Principal(client, on_behalf, on_behalf=True)
    if not client.activated:
        raise ApiError(403, "DOCCONSUMER_NOT_ACTIVATED",
                       f"The e-Box of enterprise {target} is not activated for Document Consumer access "
                       "(terms not accepted)")
    return Principal(client, target)
