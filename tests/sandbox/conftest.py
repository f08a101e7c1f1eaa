"""Fixtures for the e-Box sandbox tests: a live server on 127.0.0.1:0, keys and certificates,
assertions built as a real client would, and an httpx client whose every response is validated
against the official contract."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from daemon.sandbox.ebox import EboxSandbox, serve_sandbox

from .specvalidate import validating_hook

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def make_certificate(key: rsa.RSAPrivateKey, cbe: str, *, days: int = 365, start_days_ago: int = 1) -> bytes:
    """A self-signed certificate with the legacy e-Box subject layout (ebox.md §3.4)."""
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Sandbox Test BV"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"urn:be:fgov:kbo-bce:organization:cbe-number:{cbe}"),
        x509.NameAttribute(NameOID.COMMON_NAME, "eboxd-tests"),
    ])
    start = datetime.now(UTC) - timedelta(days=start_days_ago)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start)
        .not_valid_after(start + timedelta(days=days)).sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_assertion(key: rsa.RSAPrivateKey, client_id: str, audience: str, **overrides: Any) -> str:
    """A private_key_jwt client assertion; ``overrides`` replace claims (``None`` removes one)."""
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, Any] = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now,
                              "exp": now + 120, "jti": str(uuid.uuid4())}
    for claim, value in overrides.items():
        if value is None:
            claims.pop(claim, None)
        else:
            claims[claim] = value
    return jwt.encode(claims, key, algorithm="RS256", headers={"typ": "JWT"})


def token_form(assertion: str, **extra: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion, **extra}


@pytest.fixture
def sandbox() -> Iterator[EboxSandbox]:
    server = serve_sandbox("127.0.0.1", 0, seed=42)
    try:
        yield server
    finally:
        server.shutdown()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """An httpx client validating every response against the vendored contract."""
    with httpx.Client(timeout=10, event_hooks={"response": [validating_hook]}) as client:
        yield client


@dataclass
class Caller:
    """A registered client with a token, calling one provider's registry."""

    sandbox: EboxSandbox
    http: httpx.Client
    client_id: str
    key: rsa.RSAPrivateKey
    enterprise: str
    token: str = ""
    provider: str = "nsso"
    extra_headers: dict[str, str] = field(default_factory=dict)

    def fetch_token(self, **form: str) -> httpx.Response:
        assertion = make_assertion(self.key, self.client_id, self.sandbox.token_url)
        response = self.http.post(self.sandbox.token_url, data=token_form(assertion, **form))
        if response.status_code == 200:
            self.token = response.json()["access_token"]
        return response

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **self.extra_headers}

    def url(self, subpath: str, provider: str | None = None) -> str:
        return self.sandbox.registry_url(provider or self.provider) + subpath

    def get(self, subpath: str, provider: str | None = None, **kwargs: Any) -> httpx.Response:
        return self.http.get(self.url(subpath, provider), headers=self.headers, **kwargs)

    def patch(self, subpath: str, body: Any, content_type: str = "application/merge-patch+json",
              provider: str | None = None) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.http.patch(self.url(subpath, provider), content=content,
                               headers={**self.headers, "Content-Type": content_type})

    def messages(self, provider: str | None = None, **params: Any) -> dict[str, Any]:
        response = self.get("/ebox/messages", provider, params=params)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def make_caller(sandbox: EboxSandbox, http: httpx.Client, rsa_key: rsa.RSAPrivateKey):
    def build(enterprise_index: int = 0, *, token: bool = True, **registration: Any) -> Caller:
        enterprise = registration.pop("enterprise", None) or sandbox.catalogue.enterprises[enterprise_index].number
        pem = make_certificate(rsa_key, enterprise)
        client_id = sandbox.register_client(pem, enterprise, **registration)
        caller = Caller(sandbox, http, client_id, rsa_key, enterprise)
        if token:
            response = caller.fetch_token()
            assert response.status_code == 200, response.text
        return caller

    return build


@pytest.fixture
def caller(make_caller) -> Caller:
    """A DocConsumer of the first seeded enterprise with a fresh token."""
    return make_caller(0)
