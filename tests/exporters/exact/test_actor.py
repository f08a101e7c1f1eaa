"""The production path: the ``export_document`` actor on a dramatiq worker, with the plugin's
default exporter finding its token store through the worker's own context (configuration from
the environment, its engine and master key), delivered twice: one document in Exact."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
import sqlalchemy as sa
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage, Retries
from eboxd_exact import ExactPlugin
from eboxd_exact.cli import connect_enterprise
from eboxd_exact.exporter import ExactExporter
from eboxd_exact.sandbox import ExactSandboxServer
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from daemon.db.models import Export
from daemon.plugins import PluginManager
from daemon.secrets import SecretBox, create_key_file
from daemon.workers import exporting
from daemon.workers.context import worker_context
from daemon.workers.tasks import EXPORT_DOCUMENT
from tests.exporters.exact.conftest import consent, sandbox_app
from tests.plugins.conftest import seed_documents

NUMBER = "0123456749"


@pytest.fixture
def worker_env(db_env: dict[str, str], engine: Engine) -> Iterator[Path]:
    """The worker's configuration: the test database, a master key in the data directory."""
    data_dir = Path(db_env["EBOXD_DAEMON__DATA_DIR"])
    create_key_file(data_dir / "master.key")
    worker_context.cache_clear()
    yield data_dir
    worker_context.cache_clear()


def test_export_actor_with_the_default_exporter_delivers_once(
        worker_env: Path, engine: Engine, exact: ExactSandboxServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    context = worker_context()
    secrets = SecretBox.from_file(worker_env / "master.key")
    _, [document_id] = seed_documents(engine, context.store, worker_env, ["a.pdf"], number=NUMBER)  # type: ignore[arg-type]
    manager = PluginManager()
    manager.register(ExactPlugin(ExactExporter()), name="exact", distribution="eboxd-exact")  # as installed
    app = sandbox_app(exact)
    target = connect_enterprise(engine, secrets, manager, NUMBER, {
        "client_id": app.client_id, "client_secret": app.client_secret, "url": exact.url}, app,
        consent(exact, app)).target

    broker = StubBroker(middleware=[Retries(max_retries=0), CurrentMessage()])
    broker.emit_after("process_boot")
    dramatiq.set_broker(broker)
    broker.declare_actor(exporting.export_document_actor)
    monkeypatch.setattr(exporting, "get_plugin_manager", lambda: manager)
    for _ in range(2):  # a task and its duplicate
        broker.enqueue(dramatiq.Message(queue_name=EXPORT_DOCUMENT.queue_name, actor_name=EXPORT_DOCUMENT.actor_name,
                                        args=(), kwargs={"document_id": document_id, "exporter": "exact",
                                                         "target": target}, options={}))
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=1)
    worker.start()
    try:
        broker.join(EXPORT_DOCUMENT.queue_name, fail_fast=True)
        worker.join()
    finally:
        worker.stop()
    with Session(engine) as session:
        assert session.scalars(sa.select(Export.status)).all() == ["completed"]
    assert len(exact.state.documents) == len(exact.state.attachments) == 1
