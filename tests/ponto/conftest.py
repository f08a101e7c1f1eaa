"""Fixtures: a Ponto sandbox over real TLS requiring our client certificate, and a connected enterprise."""

from __future__ import annotations

import importlib
import os
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import dramatiq
import httpx
import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from daemon.banking.ponto import Pkce, PontoSettings, authorization_url, complete_connect, parse_pasted
from daemon.config import load_config
from daemon.credentials import TokenStore
from daemon.db.models import Enterprise
from daemon.sandbox.ponto import PontoSandbox, SandboxPki, make_pki, serve_ponto_sandbox
from daemon.secrets import SecretBox

NUMBER = "0403170701"
IBAN = "BE68539007547034"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> SandboxPki:
    return make_pki(tmp_path_factory.mktemp("ponto-pki"))


@pytest.fixture
def sandbox(pki: SandboxPki) -> Iterator[PontoSandbox]:
    running = serve_ponto_sandbox(pki, sync_delay=0.2)
    yield running
    running.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def settings(sandbox: PontoSandbox, tmp_path: Path) -> PontoSettings:
    return PontoSettings(api_url=sandbox.url, authorize_url=sandbox.authorize_url,
                         webhook_keys_url=sandbox.webhook_keys_url, client_id=sandbox.state.client_id,
                         client_secret=sandbox.state.client_secret, certificate_file=str(sandbox.pki.client_cert_file),
                         key_file=str(sandbox.pki.client_key_file), ca_file=str(sandbox.pki.ca_file),
                         redirect_uri=f"http://127.0.0.1:{free_port()}/callback", page_limit=100,
                         sync_timeout_seconds=10)


@pytest.fixture
def master_key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def secrets_box(master_key: bytes) -> SecretBox:
    return SecretBox([master_key])


@pytest.fixture
def store(engine: Engine, secrets_box: SecretBox) -> TokenStore:
    return TokenStore(engine, secrets_box)


@pytest.fixture
def enterprise_id(engine: Engine) -> int:
    with Session(engine) as session, session.begin():
        enterprise = Enterprise(number=NUMBER, name="Ours")
        session.add(enterprise)
        session.flush()
        return enterprise.id


def browser(settings: PontoSettings) -> httpx.Client:
    """The person's browser at the consent page (it has the sandbox's client certificate too)."""
    return httpx.Client(verify=settings.ssl_context(), follow_redirects=False)


def consent(settings: PontoSettings, pkce: Pkce) -> str:
    """Approve in the 'browser' and return the redirect URL (what a person would paste)."""
    with browser(settings) as http:
        response = http.get(authorization_url(settings, pkce))
    assert response.status_code == 302, response.text
    return response.headers["Location"]


@pytest.fixture
def connected(engine: Engine, store: TokenStore, settings: PontoSettings, sandbox: PontoSandbox,
              enterprise_id: int) -> str:
    """The enterprise connected (pasted-code path) with one account at the sandbox; its Ponto id."""
    account = sandbox.state.add_account(IBAN)
    pkce = Pkce.new()
    code = parse_pasted(consent(settings, pkce), pkce)
    complete_connect(engine, store, settings, NUMBER, code, pkce)
    return account


def no_cert_context(settings: PontoSettings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.ca_file)


@pytest.fixture
def actors(engine: Engine, settings: PontoSettings, secrets_box: SecretBox, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    dramatiq.set_broker(StubBroker())
    module = importlib.import_module("daemon.workers.banking")
    secret = tmp_path / "ponto-secret"
    secret.write_text(settings.client_secret)
    config = load_config(environ={
        "EBOXD_PONTO__ENABLED": "true", "EBOXD_PONTO__API_URL": settings.api_url,
        "EBOXD_PONTO__CLIENT_ID": settings.client_id, "EBOXD_PONTO__CLIENT_SECRET_FILE": str(secret),
        "EBOXD_PONTO__CERTIFICATE_FILE": settings.certificate_file, "EBOXD_PONTO__KEY_FILE": settings.key_file,
        "EBOXD_PONTO__CA_FILE": settings.ca_file, "EBOXD_PONTO__SYNC_TIMEOUT_SECONDS": "10"})
    context = SimpleNamespace(engine=engine, config=config, secrets=secrets_box)
    monkeypatch.setattr(module, "worker_context", lambda: context)
    return module
