"""Fixtures for the pipeline: a sandbox, a configuration pointing at it, enterprises onboarded
through the same service functions the CLI uses."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from daemon.config import Config, load_config
from daemon.enterprises import KeyOptions, add_enterprise, connect_enterprise, issue_certificate
from daemon.poll import EboxAccess
from daemon.sandbox.ebox import serve_sandbox
from daemon.sandbox.ebox.server import EboxSandbox
from daemon.secrets import SecretBox, create_key_file, master_key_path
from daemon.store import DocumentStore, create_store


@pytest.fixture
def sandbox() -> Iterator[EboxSandbox]:
    server = serve_sandbox("127.0.0.1", 0, seed=5, enterprises=3)
    yield server
    server.shutdown()


def pipeline_config(database_url: str, sandbox_url: str, data_dir: Path, **extra: str) -> Config:
    environ = {"EBOXD_DATABASE__URL": database_url, "EBOXD_DAEMON__DATA_DIR": str(data_dir),
               "EBOXD_EBOX__SANDBOX_URL": sandbox_url, "EBOXD_EBOX__KEY_SIZE": "2048", **extra}
    config = load_config(environ=environ)
    create_key_file(master_key_path(config))
    return config


@pytest.fixture
def config(database_url: str, sandbox: EboxSandbox, tmp_path: Path) -> Config:
    return pipeline_config(database_url, sandbox.url, tmp_path / "state")


@dataclass
class Pipeline:
    config: Config
    engine: Engine
    secrets: SecretBox
    access: EboxAccess
    store: DocumentStore
    numbers: list[str]


def onboard_all(engine: Engine, config: Config, sandbox: EboxSandbox, secrets: SecretBox) -> list[str]:
    numbers = []
    for seeded in sandbox.catalogue.enterprises:
        with Session(engine) as session, session.begin():
            enterprise = add_enterprise(session, seeded.number, seeded.name)
            pem, _ = issue_certificate(session, secrets, enterprise, KeyOptions("sandbox", 2048, 30))
            client_id = sandbox.register_client(pem, seeded.number)
            connect_enterprise(session, config, secrets, enterprise, client_id=client_id)
        numbers.append(seeded.number)
    return numbers


@pytest.fixture
def pipeline(config: Config, engine: Engine, sandbox: EboxSandbox) -> Iterator[Pipeline]:
    secrets = SecretBox.from_config(config)
    numbers = onboard_all(engine, config, sandbox, secrets)
    access = EboxAccess(config, secrets)
    yield Pipeline(config, engine, secrets, access, create_store(config, engine), numbers)
    access.close()
