"""Connecting an enterprise to its e-Box: the environment from configuration, the client for an
enterprise (directly or through a service provider), and a precise reason when it fails."""

from __future__ import annotations

import httpx
from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.orm import Session, aliased

from daemon import ebox
from daemon.config import Config
from daemon.db.models import Credential, Enterprise, utcnow
from daemon.enterprises.keys import load_credential, stored_credential
from daemon.enterprises.registry import EnterpriseError, credential_of, display
from daemon.errors import ConfigError
from daemon.secrets import SecretBox

__all__ = ["connect_enterprise", "ebox_environment", "explain", "open_client", "open_client_by_id"]


def ebox_environment(config: Config) -> ebox.Environment:
    settings = config.ebox
    try:
        return ebox.resolve_environment(
            settings.environment, base_url=settings.sandbox_url if settings.environment == "sandbox" else None,
            token_url=settings.token_url or None, registry_url=settings.registry_url or None,
            provider_registry_url=settings.provider_registry_url or None, audience=settings.audience or None,
        )
    except ebox.UnknownEnvironment as exc:
        raise ConfigError(f"[ebox]: {exc}") from None


def open_client(session: Session, config: Config, secrets: SecretBox, enterprise: Enterprise,
                *, token_provider: ebox.TokenProvider | None = None,
                http_client: httpx.Client | None = None) -> ebox.EboxClient:
    """A client reading ``enterprise``'s e-Box, with its own credential or its service provider's."""
    reader = enterprise
    if enterprise.access_via_id is not None:
        reader = session.get(Enterprise, enterprise.access_via_id) or enterprise
    credential = load_credential(session, secrets, reader)
    return ebox.EboxClient(
        credential, ebox_environment(config), token_provider=token_provider,
        on_behalf_of=enterprise.number if reader is not enterprise else None,
        on_behalf_of_header=config.ebox.on_behalf_of_header, timeout=config.ebox.timeout_seconds,
        http_client=http_client,
    )


_READER = aliased(Enterprise)
# The enterprise, whose credential reads its e-Box (its own, or its service provider's) and that
# credential, in one statement: the poll and fetch actors open a client per task.
_CLIENT_COLUMNS = (
    select(Enterprise.number, _READER.number.label("reader_number"), Credential.kind, Credential.client_id,
           Credential.private_key_encrypted)
    .join(_READER, _READER.id == func.coalesce(Enterprise.access_via_id, Enterprise.id))
    .outerjoin(Credential, (Credential.enterprise_id == _READER.id) & (Credential.kind == "ebox"))
    .where(Enterprise.id == bindparam("e_id"))
)


def open_client_by_id(conn: Connection, config: Config, secrets: SecretBox, enterprise_id: int, *,
                      token_provider: ebox.TokenProvider | None = None,
                      http_client: httpx.Client | None = None) -> ebox.EboxClient:
    """:func:`open_client` for an enterprise known by id, without loading ORM objects."""
    row = conn.execute(_CLIENT_COLUMNS, {"e_id": enterprise_id}).first()
    if row is None:
        raise EnterpriseError(f"enterprise {enterprise_id} no longer exists")
    credential = stored_credential(secrets, row.reader_number, row.kind or "ebox", row.client_id,
                                   row.private_key_encrypted)
    return ebox.EboxClient(
        credential, ebox_environment(config), token_provider=token_provider,
        on_behalf_of=row.number if row.reader_number != row.number else None,
        on_behalf_of_header=config.ebox.on_behalf_of_header, timeout=config.ebox.timeout_seconds,
        http_client=http_client,
    )


def connect_enterprise(session: Session, config: Config, secrets: SecretBox, enterprise: Enterprise, *,
                       client_id: str | None = None, via: Enterprise | None = None) -> ebox.EboxSummary:
    """Store the ChaMan client ID (or the service provider), get a token, call ``GET /ebox``.

    The stored settings are kept even when the e-Box refuses, so a retry needs no retyping; the
    caller's transaction decides. Raises :class:`EnterpriseError` with the precise reason.
    """
    if via is not None:
        if via.id == enterprise.id:
            raise EnterpriseError("an enterprise cannot be its own service provider")
        enterprise.access_via_id = via.id
    else:
        credential = credential_of(session, enterprise)
        if credential is None or credential.private_key_encrypted is None:
            raise EnterpriseError(f"{display(enterprise.number)} has no certificate yet: run `eboxd enterprise "
                                  f"certificate {enterprise.number}` and upload it in ChaMan first")
        if client_id:
            credential.client_id = client_id.strip()
        enterprise.access_via_id = None
    session.flush()
    try:
        with open_client(session, config, secrets, enterprise) as client:
            summary = client.summary()
    except ebox.EboxError as exc:
        raise EnterpriseError(explain(exc, enterprise)) from None
    reader = session.get(Enterprise, enterprise.access_via_id) if enterprise.access_via_id else enterprise
    if reader is not None and (credential := credential_of(session, reader)) is not None:
        credential.connected_at = utcnow()
    return summary


def _forbidden(exc: ebox.EboxError, number: str) -> str:
    code = (getattr(exc, "code", None) or "").upper()
    if "SCOPE" in code:
        return f"the token lacks the e-Box DocConsumer scope ({exc}): add it to the client in ChaMan"
    if "MANDATE" in code:
        return f"the service provider has no mandate to read the e-Box of {number} ({exc})"
    if "ACTIV" in code:
        return (f"the e-Box of {number} is not activated for Document Consumer access ({exc}): accept the "
                "terms in the e-Box Enterprise web application")
    return f"access refused by the e-Box ({exc})"


def explain(exc: ebox.EboxError, enterprise: Enterprise) -> str:
    """What went wrong, in the words of someone who set up ChaMan."""
    number = display(enterprise.number)
    if isinstance(exc, ebox.Forbidden):
        return _forbidden(exc, number)
    reasons: list[tuple[type[Exception], str]] = [
        (ebox.UnknownClient, "the token server does not know this client ID ({exc}): check the ID shown in "
                             "ChaMan for {number} and the environment"),
        (ebox.InvalidClientAssertion, "the token server refused our signed assertion ({exc}): the certificate "
                                      "uploaded in ChaMan is not the one made for {number} (upload the output "
                                      "of `eboxd enterprise certificate {raw}`), or it expired"),
        (ebox.InvalidScope, "the client is not allowed the e-Box scope ({exc}): add the DocConsumer scope in ChaMan"),
        (ebox.UnauthorizedClient, "the client may not use this grant or scope ({exc}): check it in ChaMan"),
        (ebox.TransportError, "the e-Box cannot be reached ({exc})"),
    ]
    for kind, template in reasons:
        if isinstance(exc, kind):
            return template.format(exc=exc, number=number, raw=enterprise.number)
    return f"{type(exc).__name__}: {exc}"
