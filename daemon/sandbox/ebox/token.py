"""``POST /REST/oauth/v5/token``: client credentials with a private_key_jwt client assertion.

Checks (ebox.md §3.1-3.2, RFC 7523 §3): ``alg`` RS256; signature against the certificate
registered for the client; ``iss`` = ``sub`` = client ID; ``aud`` = the token URL as the client
addresses it; ``exp`` in the future but at most ``max_assertion_lifetime`` (+ skew) ahead; ``iat``
present and not in the future; ``jti`` present and never reused; certificate still valid.
Errors are RFC 6749 §5.2 JSON; ``error_description`` says precisely what is wrong.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

import jwt

from daemon.sandbox.ebox.state import Client, IssuedToken, SandboxState
from daemon.sandbox.httpkit import Request, Response, json_response

__all__ = ["ASSERTION_TYPE", "TOKEN_PATH", "TokenError", "handle_token"]

TOKEN_PATH = "/REST/oauth/v5/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class TokenError(Exception):
    """An RFC 6749 §5.2 error."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def _invalid_client(description: str) -> TokenError:
    return TokenError("invalid_client", description, 401)


def _check_request(request: Request) -> dict[str, str]:
    content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise TokenError("invalid_request",
                         f"Content-Type must be application/x-www-form-urlencoded, got {content_type!r}")
    form = request.form()
    if form.get("grant_type") != "client_credentials":
        raise TokenError("unsupported_grant_type",
                         f"grant_type must be client_credentials, got {form.get('grant_type')!r}")
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise TokenError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
    if not form.get("client_assertion"):
        raise TokenError("invalid_request", "client_assertion is missing")
    if form.get("client_secret"):
        raise _invalid_client("client secrets are not accepted; use a signed client_assertion")
    return form


def _find_client(state: SandboxState, assertion: str, form: dict[str, str]) -> Client:
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise _invalid_client(f"client_assertion is not a well-formed JWT: {exc}") from exc
    if header.get("alg") != "RS256":
        raise _invalid_client(f"client_assertion alg must be RS256, got {header.get('alg')!r}")
    issuer, subject = claims.get("iss"), claims.get("sub")
    if not issuer or not subject:
        raise _invalid_client("client_assertion must carry iss and sub (both the client_id)")
    if issuer != subject:
        raise _invalid_client(f"iss ({issuer!r}) and sub ({subject!r}) must both equal the client_id")
    if form.get("client_id") and form["client_id"] != issuer:
        raise _invalid_client(f"client_id parameter {form['client_id']!r} does not match assertion iss {issuer!r}")
    client = state.clients.get(str(issuer))
    if client is None:
        raise _invalid_client(f"unknown client_id {issuer!r}: no client registered with this id")
    return client


def _verify(state: SandboxState, client: Client, assertion: str, audience: str, now: datetime) -> dict[str, Any]:
    cert = client.certificate
    if cert.not_valid_after_utc < now:
        raise _invalid_client(f"registered certificate expired on {cert.not_valid_after_utc.isoformat()}")
    if cert.not_valid_before_utc > now:
        raise _invalid_client(f"registered certificate not valid before {cert.not_valid_before_utc.isoformat()}")
    skew = state.settings.clock_skew
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            client.public_key,
            algorithms=["RS256"],
            audience=audience,
            leeway=skew,
            options={"require": ["exp", "iat", "jti", "iss", "sub", "aud"], "verify_exp": False, "verify_iat": False,
                     "verify_nbf": False},
        )
    except jwt.InvalidSignatureError as exc:
        raise _invalid_client("signature does not verify with the certificate registered for this client") from exc
    except jwt.InvalidAudienceError as exc:
        raise _invalid_client(f"aud must be the token endpoint URL {audience!r}") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise _invalid_client(f"client_assertion lacks required claim {exc.claim!r}") from exc
    except jwt.PyJWTError as exc:
        raise _invalid_client(f"client_assertion rejected: {exc}") from exc
    stamp = now.timestamp()
    exp, iat = claims["exp"], claims["iat"]
    if not isinstance(exp, int | float) or not isinstance(iat, int | float):
        raise _invalid_client("exp and iat must be numeric dates")
    if exp <= stamp - skew:
        raise _invalid_client(f"client_assertion expired {int(stamp - exp)} s ago (exp={int(exp)})")
    if exp > stamp + state.settings.max_assertion_lifetime + skew:
        raise _invalid_client(
            f"exp too far in the future: at most {state.settings.max_assertion_lifetime} s ahead allowed")
    if iat > stamp + skew:
        raise _invalid_client("iat is in the future")
    if "nbf" in claims and claims["nbf"] > stamp + skew:
        raise _invalid_client("client_assertion not yet valid (nbf)")
    return claims


def _remember_jti(state: SandboxState, claims: dict[str, Any], now: datetime) -> None:
    jti = str(claims["jti"])
    with state.lock:
        # Forget expired ones from the oldest on, up to the first that is not: constant time per
        # request (a scan of all of them made thousands of clients' tokens quadratic). An expired
        # one behind a longer-lived one stays a little longer; expired assertions are refused anyway.
        horizon = now - timedelta(seconds=state.settings.clock_skew)
        while state.used_jti:
            oldest, until = next(iter(state.used_jti.items()))
            if until >= horizon:
                break
            del state.used_jti[oldest]
        if jti in state.used_jti:
            raise _invalid_client(f"jti {jti!r} was already used: client_assertion replay refused")
        state.used_jti[jti] = datetime.fromtimestamp(float(claims["exp"]), now.tzinfo)


def _grant_scopes(client: Client, requested: str | None) -> frozenset[str]:
    if not requested:
        return client.scopes
    wanted = frozenset(requested.split())
    missing = wanted - client.scopes
    if missing:
        raise TokenError("invalid_scope", f"scope not granted to this client: {' '.join(sorted(missing))}")
    return wanted


def issue_token(state: SandboxState, request: Request) -> dict[str, Any]:
    """Validate the request and return the token JSON (raises :class:`TokenError`)."""
    form = _check_request(request)
    assertion = form["client_assertion"]
    client = _find_client(state, assertion, form)
    now = state.now()
    audience = state.settings.audience or f"{request.base_url}{TOKEN_PATH}"
    claims = _verify(state, client, assertion, audience, now)
    scopes = _grant_scopes(client, form.get("scope"))
    _remember_jti(state, claims, now)
    lifetime = state.settings.token_lifetime
    token = IssuedToken(secrets.token_urlsafe(32), client.client_id, scopes, now + timedelta(seconds=lifetime))
    with state.lock:
        state.tokens[token.value] = token
    return {"access_token": token.value, "token_type": "Bearer", "expires_in": lifetime,
            "scope": " ".join(sorted(scopes))}


def handle_token(state: SandboxState, request: Request) -> Response:
    """The token endpoint handler."""
    try:
        return json_response(200, issue_token(state, request), _NO_STORE)
    except TokenError as exc:
        return json_response(exc.status, {"error": exc.error, "error_description": exc.description}, _NO_STORE)
