"""Fixtures for plugin and export tests: a seeded enterprise with stored documents, a plugin
manager loaded with the ZIP plugin, and installing a plugin from its own directory."""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from daemon.db.models import Document, Enterprise, Message, PaymentRequest
from daemon.plugins import PluginManager
from daemon.secrets import SecretBox
from daemon.store import FilesystemStore

EXAMPLE_PLUGIN = Path(__file__).parent / "example_plugin"


@dataclass
class Seeded:
    engine: Engine
    store: FilesystemStore
    secrets: SecretBox
    enterprise: Enterprise
    document_ids: list[int]


def store_bytes(store: FilesystemStore, tmp: Path, content: bytes) -> tuple[str, str]:
    sha = hashlib.sha256(content).hexdigest()
    source = store.staging() / f"{sha}.part"
    source.write_bytes(content)
    return store.put(source, sha), sha


def seed_documents(engine: Engine, store: FilesystemStore, tmp: Path, names: list[str], *,
                   number: str = "0123456749") -> tuple[Enterprise, list[int]]:
    ids = []
    with Session(engine, expire_on_commit=False) as session, session.begin():
        enterprise = Enterprise(number=number, name="Acme NV")
        session.add(enterprise)
        session.flush()
        for i, name in enumerate(names):
            message = Message(enterprise_id=enterprise.id, provider_id="fod", ebox_message_id=f"m-{i}",
                              subject=f"Aanslagbiljet {i}", sender="FOD Financiën",
                              published_at=dt.datetime(2024, 5, 1 + i % 28, tzinfo=dt.UTC))
            session.add(message)
            session.flush()
            key, sha = store_bytes(store, tmp, f"%PDF-1.4 document {i}\n".encode() * 50)
            document = Document(message_id=message.id, attachment_id=f"a-{i}", file_name=name,
                                media_type="application/pdf", size=len(f"%PDF-1.4 document {i}\n") * 50,
                                sha256=sha, storage_key=key)
            session.add(document)
            session.flush()
            if i == 0:
                session.add(PaymentRequest(enterprise_id=enterprise.id, message_id=message.id,
                                           document_id=document.id, amount=Decimal("123.45"),
                                           reference="+++090/9337/55493+++", status="open"))
            ids.append(document.id)
    return enterprise, ids


@pytest.fixture
def seeded(engine: Engine, tmp_path: Path) -> Seeded:
    store = FilesystemStore(tmp_path / "documents")
    enterprise, ids = seed_documents(engine, store, tmp_path, ["aanslag.pdf", "bijlage.pdf", "brief.pdf"])
    return Seeded(engine, store, SecretBox([b"k" * 32]), enterprise, ids)


@pytest.fixture
def manager() -> PluginManager:
    import eboxd_zip  # noqa: PLC0415

    pm = PluginManager()
    pm.register(eboxd_zip, name="zip", distribution="eboxd-zip")
    return pm


@pytest.fixture
def installed_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The example plugin installed from its own directory, as pip would: its package importable
    and a ``.dist-info`` with its entry points on ``sys.path``."""
    site = tmp_path / "site"
    dist_info = site / "eboxd_example-0.0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: eboxd-example\nVersion: 0.0.1\n")
    (dist_info / "entry_points.txt").write_text("[eboxd]\nexample = eboxd_example\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN))
    yield site
    sys.modules.pop("eboxd_example", None)
