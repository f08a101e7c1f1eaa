"""Must show: a third-party plugin installed by pip from its own directory is found through its
entry point by fresh ``eboxd`` processes and receives exports.

The example plugin (``example_plugin/``, the one docs/plugins.md walks through) is copied out of
the repository and installed with a real ``pip install`` (offline: ``--no-index``, built by the
environment's own setuptools) into a folder of its own that the subprocesses get on
``PYTHONPATH``. Nothing of the test process's ``sys.path`` reaches them, so the only way they can
know of ``example`` is the installed distribution's ``entry_points.txt``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from daemon.db.models import Export, OutboxRow
from daemon.secrets import create_key_file
from daemon.store import FilesystemStore
from tests.plugins.conftest import EXAMPLE_PLUGIN, seed_documents

NUMBER = "0123456749"
EBOXD = [sys.executable, "-m", "daemon"]

# What the worker runs for one export_document message, without RabbitMQ: the actor's function.
RUN_ACTOR = """
import sys
import dramatiq
from dramatiq.brokers.stub import StubBroker
dramatiq.set_broker(StubBroker())
from daemon.workers.exporting import export_document_actor
export_document_actor.fn(int(sys.argv[1]), sys.argv[2], sys.argv[3])
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin, pip-installed from a copy of its directory into a folder of its own."""
    root = tmp_path_factory.mktemp("pip")
    source = root / "eboxd-example"
    shutil.copytree(EXAMPLE_PLUGIN, source)
    target = root / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--no-build-isolation",
                           "--disable-pip-version-check", "--target", str(target), str(source)],
                          capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, ("pip could not build the example plugin offline; the test environment "
                                  "needs setuptools with `wheel` (pip install -e '.[test]'):\n" + done.stderr)
    assert (target / "eboxd_example-0.0.1.dist-info" / "entry_points.txt").read_text().split() == [
        "[eboxd]", "example", "=", "eboxd_example"]
    return target


@pytest.fixture
def env(site: Path, database_url: str, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "eboxd.toml"
    config.write_text("")
    environment = {name: value for name, value in os.environ.items() if not name.startswith("EBOXD_")}
    environment.update(PYTHONPATH=str(site), EBOXD_CONFIG=str(config), EBOXD_DATABASE__URL=database_url,
                       EBOXD_DAEMON__DATA_DIR=str(tmp_path / "state"))
    create_key_file(tmp_path / "state" / "master.key")
    return environment


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(args), env=env, capture_output=True, text=True, check=False, timeout=120,
                          cwd=env["EBOXD_DAEMON__DATA_DIR"])
    assert done.returncode == 0, done.stderr
    return done


def test_pip_installed_plugin_is_discovered_and_receives_exports(engine: Engine, env: dict[str, str], site: Path,
                                                                  tmp_path: Path) -> None:
    store = FilesystemStore(Path(env["EBOXD_DAEMON__DATA_DIR"]) / "documents")
    _, ids = seed_documents(engine, store, tmp_path, ["aanslag.pdf", "brief.pdf"], number=NUMBER)

    listing = _run(env, *EBOXD, "plugins").stdout.splitlines()
    [row] = [line.split() for line in listing if line.split()[:1] == ["example"]]
    assert row == ["example", "eboxd-example", "0.0.1", str(site / "eboxd_example" / "__init__.py")]
    assert "example" in listing[-1].removeprefix("exporters: ").split(", ")

    out = tmp_path / "received"
    out.mkdir()
    _run(env, *EBOXD, "exporter", "enable", "example", "--enterprise", NUMBER, "--dir", str(out))
    for document_id in (*ids, ids[0]):  # the first one delivered twice: a redelivered message
        _run(env, sys.executable, "-c", RUN_ACTOR, str(document_id), "example", str(out))

    received = sorted(out.iterdir())
    assert [path.name for path in received] == sorted(f"{hashlib.sha256(p.read_bytes()).hexdigest()}.bin"
                                                       for p in received)
    assert len(received) == len(ids)
    with Session(engine) as session:
        rows = session.scalars(sa.select(Export).order_by(Export.document_id)).all()
        events = session.scalars(sa.select(OutboxRow).where(OutboxRow.topic == "be.eboxd.export.completed")).all()
    assert [(r.document_id, r.exporter, r.status, r.attempts) for r in rows] == [
        (ids[0], "example", "completed", 1), (ids[1], "example", "completed", 1)]
    assert {Path(r.receipt["path"]).name for r in rows} == {path.name for path in received}
    assert len(events) == len(ids)


def test_without_the_install_the_plugin_is_unknown(engine: Engine, env: dict[str, str], tmp_path: Path) -> None:
    """The control: the same environment minus the pip-installed folder has no ``example``."""
    seed_documents(engine, FilesystemStore(tmp_path / "documents"), tmp_path, ["brief.pdf"], number=NUMBER)
    bare = {**env, "PYTHONPATH": ""}
    assert "example" not in _run(bare, *EBOXD, "plugins").stdout
    refused = subprocess.run([*EBOXD, "exporter", "enable", "example", "--enterprise", NUMBER, "--dir", "/tmp"],
                             env=bare, capture_output=True, text=True, check=False, timeout=120)
    assert refused.returncode == 2
    assert refused.stderr.startswith("eboxd: error: no exporter named 'example'")
