"""RFC 7523 client assertions (``private_key_jwt``) for the social-security OAuth v5 server."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import jwt

from ._credentials import Credential

__all__ = ["ASSERTION_LIFETIME", "CLIENT_ASSERTION_TYPE", "build_client_assertion"]

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 120


def build_client_assertion(
    credential: Credential,
    audience: str,
    *,
    lifetime: int = ASSERTION_LIFETIME,
    now: Callable[[], datetime] | None = None,
    jti: str | None = None,
) -> str:
    """A signed RS256 JWT: ``iss`` = ``sub`` = client ID, ``aud``, unique ``jti``, ``iat``, ``exp``.

    The result is a bearer credential for ``lifetime`` seconds: never log it.
    """
    if not 1 <= lifetime <= 300:
        raise ValueError("assertion lifetime must be between 1 and 300 seconds")
    issued = int((now or (lambda: datetime.now(UTC)))().timestamp())
    claims = {
        "iss": credential.client_id,
        "sub": credential.client_id,
        "aud": audience,
        "jti": jti or str(uuid.uuid4()),
        "iat": issued,
        "exp": issued + lifetime,
    }
    return jwt.encode(claims, credential.private_key, algorithm="RS256", headers={"typ": "JWT"})
