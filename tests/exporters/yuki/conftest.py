"""Fixtures for the Yuki plugin: its sandbox as a real HTTP server on loopback, a plugin manager
holding the installed ``eboxd_yuki``, and stored documents of several e-Box message types."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import eboxd_yuki
import pytest
import sqlalchemy as sa
from eboxd_yuki.client import clear_sessions
from eboxd_yuki.sandbox import YukiSandboxServer, serve_yuki_sandbox
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from daemon.db.models import Enterprise, Message
from daemon.exports import enable_exporter
from daemon.plugins import PluginManager
from daemon.secrets import SecretBox
from daemon.store import FilesystemStore
from tests.cli.conftest import _restore_logging, db_env, eboxd_env  # noqa: F401 - the CLI tests' fixtures
from tests.plugins.conftest import seed_documents

# Message types of the seeded documents, in order (seed_documents makes one message per name).
TYPES = ["FIN-TAX-ASSESSMENT", "NSSO-CONTRIBUTIONS", "FIN-INFO-REQUEST", None, "FIN-TAX-ASSESSMENT"]


@dataclass
class YukiSeeded:
    engine: Engine
    store: FilesystemStore
    secrets: SecretBox
    enterprise: Enterprise
    document_ids: list[int]


@pytest.fixture
def yuki() -> Iterator[YukiSandboxServer]:
    clear_sessions()
    with serve_yuki_sandbox("127.0.0.1", 0, seed=7) as server:
        yield server
    clear_sessions()


@pytest.fixture
def access_key(yuki: YukiSandboxServer) -> str:
    return next(iter(yuki.state.keys))


@pytest.fixture
def administration(yuki: YukiSandboxServer, access_key: str) -> str:
    domain = yuki.state.domains[yuki.state.keys[access_key].domains[0]]
    return next(iter(domain.administrations))  # "Acme NV"


@pytest.fixture
def manager() -> PluginManager:
    pm = PluginManager()
    assert pm.register(eboxd_yuki, name="yuki", distribution="eboxd-yuki")
    return pm


@pytest.fixture
def seeded(engine: Engine, tmp_path: Path) -> YukiSeeded:
    store = FilesystemStore(tmp_path / "documents")
    enterprise, ids = seed_documents(engine, store, tmp_path, [f"brief-{i}.pdf" for i in range(len(TYPES))])
    with engine.begin() as tx:
        for i, message_type in enumerate(TYPES):
            tx.execute(sa.update(Message).where(Message.ebox_message_id == f"m-{i}")
                       .values(message_type=message_type))
    return YukiSeeded(engine, store, SecretBox([b"y" * 32]), enterprise, ids)


def connect(seeded: YukiSeeded, manager: PluginManager, yuki: YukiSandboxServer, access_key: str,
            administration: str, **extra: str) -> str:
    """Enable the exporter as `eboxd yuki connect` does (with the check); the ledger target."""
    settings = {"access_key": access_key, "administration": administration, "url": yuki.url,
                "folders": "FIN-TAX-ASSESSMENT=purchase,NSSO-CONTRIBUTIONS=1", "timeout": "5", **extra}
    with Session(seeded.engine) as session, session.begin():
        enterprise = session.merge(seeded.enterprise)
        return enable_exporter(session, seeded.secrets, manager, enterprise, "yuki", settings).target


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
