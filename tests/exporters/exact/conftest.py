"""Fixtures for the Exact plugin: its sandbox as a real HTTP server on loopback sharing a fake clock
with the exporter (so tests move both to a token's expiry, the next minute, the next day), a
plugin manager holding an exporter bound to the test database's token store, and stored
documents."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from eboxd_exact import ExactPlugin
from eboxd_exact.cli import Connected, connect_enterprise
from eboxd_exact.exporter import ExactExporter
from eboxd_exact.limits import clear_governors
from eboxd_exact.oauth import OAuthApp, authorize_url
from eboxd_exact.sandbox import ExactSandboxServer, serve_exact_sandbox
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from daemon.credentials import TokenStore
from daemon.db.models import Enterprise, Message
from daemon.plugins import PluginManager
from daemon.secrets import SecretBox
from daemon.store import FilesystemStore
from tests.cli.conftest import _restore_logging, db_env, eboxd_env  # noqa: F401 - the CLI tests' fixtures
from tests.plugins.conftest import seed_documents

DOCUMENTS = 8  # one per concurrent worker


@dataclass
class FakeClock:
    """Real time plus an offset the test moves; ``sleep`` moves it instead of waiting."""

    offset: dt.timedelta = dt.timedelta()
    slept: list[float] = field(default_factory=list)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += dt.timedelta(seconds=seconds)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)


@dataclass
class ExactSeeded:
    engine: Engine
    store: FilesystemStore
    secrets: SecretBox
    enterprise: Enterprise
    document_ids: list[int]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def exact(clock: FakeClock) -> Iterator[ExactSandboxServer]:
    clear_governors()
    with serve_exact_sandbox("127.0.0.1", 0, seed=11, clock=clock.now) as server:
        yield server
    clear_governors()


@pytest.fixture
def seeded(engine: Engine, tmp_path: Path) -> ExactSeeded:
    store = FilesystemStore(tmp_path / "documents")
    enterprise, ids = seed_documents(engine, store, tmp_path, [f"brief-{i}.pdf" for i in range(DOCUMENTS)])
    with engine.begin() as tx:
        tx.execute(sa.update(Message).values(message_type="FIN-TAX-ASSESSMENT"))
    return ExactSeeded(engine, store, SecretBox([b"x" * 32]), enterprise, ids)


@pytest.fixture
def tokens(seeded: ExactSeeded, clock: FakeClock) -> TokenStore:
    return TokenStore(seeded.engine, seeded.secrets, clock=clock.now)


@pytest.fixture
def exporter(tokens: TokenStore, clock: FakeClock) -> ExactExporter:
    return ExactExporter(tokens=tokens, clock=clock.now, sleep=clock.sleep)


@pytest.fixture
def manager(exporter: ExactExporter) -> PluginManager:
    pm = PluginManager()
    assert pm.register(ExactPlugin(exporter), name="exact", distribution="eboxd-exact")
    return pm


def consent(exact: ExactSandboxServer, app: OAuthApp) -> str:
    """What the browser does: open the consent page, read the code from Exact's redirect."""
    response = httpx.get(authorize_url(app, "state-1"))
    assert response.status_code == 302
    return parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]


def sandbox_app(exact: ExactSandboxServer) -> OAuthApp:
    app = exact.state.app
    return OAuthApp(exact.url, app.client_id, app.client_secret, app.redirect_uris[0])


def connect(seeded: ExactSeeded, manager: PluginManager, exact: ExactSandboxServer, clock: FakeClock, *,
            division: int | None = None, **extra: str) -> Connected:
    """Connect the seeded enterprise as `eboxd exact connect` does."""
    app = sandbox_app(exact)
    settings = {"client_id": app.client_id, "client_secret": app.client_secret, "url": exact.url, "timeout": "5",
                **extra}
    return connect_enterprise(seeded.engine, seeded.secrets, manager, seeded.enterprise.number, settings, app,
                              consent(exact, app), division=division, clock=clock.now)


def documents_in(exact: ExactSandboxServer) -> list[dict[str, object]]:
    with exact.state._lock:
        return [dict(d) for d in exact.state.documents]


def attachments_in(exact: ExactSandboxServer) -> list[dict[str, object]]:
    with exact.state._lock:
        return [dict(a) for a in exact.state.attachments]


def session_of(seeded: ExactSeeded) -> Session:
    return Session(seeded.engine)
