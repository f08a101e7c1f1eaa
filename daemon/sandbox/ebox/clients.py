"""Client registration, as ChaMan does it: upload a certificate, get an OAuth client ID."""

from __future__ import annotations

import random
import string
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from daemon.sandbox.belgian import cbe_is_valid
from daemon.sandbox.ebox.state import DEFAULT_SCOPES, Client, SandboxState

__all__ = ["RegistrationError", "register_client"]


class RegistrationError(ValueError):
    """The certificate or enterprise number is not acceptable."""


def _client_id(state: SandboxState) -> str:
    rng = random.Random(f"client-{state.seed}-{len(state.clients)}")  # noqa: S311 - deterministic fake ids
    while True:
        suffix = "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(10))
        candidate = f"self_service_chaman_{rng.randrange(100_000, 999_999)}_{suffix}"
        if candidate not in state.clients:
            return candidate


def register_client(
    state: SandboxState,
    certificate_pem: str | bytes,
    enterprise_number: str,
    *,
    scopes: Iterable[str] | None = None,
    activated: bool = True,
    mandates: Iterable[str] = (),
    client_id: str | None = None,
) -> str:
    """Register a client for ``enterprise_number`` with an X.509 certificate (PEM); return its ID.

    ``scopes`` defaults to the DocConsumer and provider-registry scopes; pass a narrower set to
    simulate a missing scope. ``activated=False`` simulates an e-Box whose DocConsumer terms were
    never accepted. ``mandates`` lists enterprises this client may consult as service provider.
    """
    pem = certificate_pem.encode("ascii") if isinstance(certificate_pem, str) else certificate_pem
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise RegistrationError(f"certificate is not a PEM X.509 certificate: {exc}") from exc
    key = certificate.public_key()
    if not isinstance(key, RSAPublicKey):
        raise RegistrationError("certificate key must be RSA (assertions are RS256)")
    if key.key_size < 2048:
        raise RegistrationError(f"RSA key too small: {key.key_size} bits, need at least 2048")
    for number in (enterprise_number, *mandates):
        if not cbe_is_valid(number):
            raise RegistrationError(f"not a valid enterprise number: {number!r}")
    with state.lock:
        new_id = client_id or _client_id(state)
        if new_id in state.clients:
            raise RegistrationError(f"client id already registered: {new_id}")
        state.clients[new_id] = Client(
            client_id=new_id,
            enterprise_number=enterprise_number,
            certificate=certificate,
            scopes=frozenset(DEFAULT_SCOPES if scopes is None else scopes),
            activated=activated,
            mandates=frozenset(mandates),
        )
    return new_id
