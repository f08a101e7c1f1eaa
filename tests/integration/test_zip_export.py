"""Poll → fetch → export → ZIP with real processes: every enterprise has the ZIP exporter enabled
(some dropping one-document bags, some bare files), a worker is SIGKILLed while exports are
running, and still every fetched document ends up exactly once in the drop folder (no temporary
file left), the export ledger and the events, and then once in ``eboxd export zip``'s bundle of
each enterprise."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from eboxd_zip.bundle import document_path
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from daemon.db.models import Document, Enterprise, Export, Message, OutboxRow
from daemon.exports import enable_exporter, export_document_of
from daemon.plugins import PluginManager
from daemon.poll import request_poll
from daemon.secrets import SecretBox
from tests.amqp_helpers import private_amqp_url
from tests.integration.conftest import Integration, start_integration, wait_for_pipeline
from tests.integration.processes import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq]


@pytest.fixture
def amqp_url() -> Iterator[str]:
    yield from private_amqp_url()


@pytest.fixture
def integration(engine: Engine, database_url: str, amqp_url: str, tmp_path: Path) -> Iterator[Integration]:
    """A short actor time limit: the exports the killed worker was running are taken up again once it
    has passed (the ledger's in-progress lease), not after the default ten minutes."""
    yield from start_integration(engine, database_url, amqp_url, tmp_path, EBOXD_WORKER__TIME_LIMIT_SECONDS="15")


def _layout(number: str) -> str:
    """Both ways the daemon drops documents: a one-document bag (``zip``) or the bare file."""
    return "zip" if int(number) % 2 else "files"


def _enable_zip(it: Integration, folder: Path) -> None:
    manager = PluginManager().load()  # the installed eboxd-zip, found through its entry point
    with Session(it.engine) as session, session.begin():
        for enterprise in session.scalars(sa.select(Enterprise).where(Enterprise.number.in_(it.numbers))):
            enable_exporter(session, SecretBox.from_config(it.config), manager, enterprise, "zip",
                            {"dir": str(folder), "layout": _layout(enterprise.number)})


def _exports(it: Integration) -> Counter[str]:
    with it.engine.connect() as conn:
        return Counter(dict(conn.execute(sa.select(Export.status, sa.func.count()).group_by(Export.status)).all()))


def _documents(it: Integration) -> int:
    with it.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(Document)).scalar() or 0)


def _expected_files(it: Integration, folder: Path) -> dict[Path, str]:
    """Where each stored document must be in the drop folder, with its SHA-256."""
    with Session(it.engine) as session:
        ids = session.scalars(sa.select(Document.id)).all()
        docs = [export_document_of(session, it.store, document_id) for document_id in ids]
    expected = {}
    for doc in docs:
        assert doc is not None
        path = Path(document_path(doc, doc.enterprise_number))
        if _layout(doc.enterprise_number) == "files":
            expected[folder / doc.enterprise_number / path] = doc.sha256
        else:
            expected[folder / doc.enterprise_number / f"{path.stem}.zip"] = doc.sha256
    return expected


def _content(path: Path) -> bytes:
    """A dropped document's bytes: the file itself, or the one document inside its bag."""
    if path.suffix != ".zip":
        return path.read_bytes()
    with zipfile.ZipFile(path) as bag:
        assert bag.testzip() is None
        [document] = [name for name in bag.namelist() if "/data/government-letters/" in name]
        return bag.read(document)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_every_fetched_document_is_exported_once_despite_a_killed_worker(integration: Integration,
                                                                          tmp_path: Path) -> None:
    it = integration
    folder = tmp_path / "handover"
    _enable_zip(it, folder)
    it.processes.serve()
    doomed = it.processes.worker("worker-killed", processes=1, threads=4)
    request_poll(it.engine)  # every enterprise now, as `eboxd poll --all` asks
    wait_until(lambda: _exports(it)["completed"] >= 1, timeout=90, what="the first export",
               processes=it.processes)
    os.killpg(doomed.popen.pid, signal.SIGKILL)  # the worker and its dramatiq children, mid-run
    doomed.popen.wait(10)
    at_kill = _exports(it)
    it.processes.started.remove(doomed)
    it.processes.worker("worker", processes=1, threads=4)
    wait_for_pipeline(it, timeout=120, poll_every=3)
    wait_until(lambda: _exports(it)["completed"] == _documents(it), timeout=90, what="every export",
               processes=it.processes, describe=lambda: f"exports {dict(_exports(it))} of {_documents(it)}")
    codes = it.processes.stop()
    assert set(codes.values()) == {0}, f"{codes}\n{it.processes.logs()}"
    assert at_kill["completed"] < _documents(it), "the worker was killed after the exports were done"

    # The drop folder: each document once, under its own name, whole; no temporary file left.
    expected = _expected_files(it, folder)
    assert len(expected) == _documents(it) >= 5 * 12
    found = {path for path in folder.rglob("*") if path.is_file()}
    assert found == set(expected), f"missing {set(expected) - found}, extra {found - set(expected)}"
    assert {_layout(n) for n in it.numbers} == {"zip", "files"}
    for path, sha in expected.items():
        assert hashlib.sha256(_content(path)).hexdigest() == sha, path
    # The ledger and the events: one completed export per document, one event each.
    with it.engine.connect() as conn:
        ledger = conn.execute(sa.select(Export.document_id, Export.status)).all()
        events = conn.execute(sa.select(OutboxRow.payload).where(
            OutboxRow.topic == "be.eboxd.export.completed")).scalars().all()
    assert sorted(status for _, status in ledger) == ["completed"] * len(expected)
    assert len({document_id for document_id, _ in ledger}) == len(expected)
    assert sorted(event["data"]["document_id"] for event in events) == sorted(d for d, _ in ledger)

    # eboxd export zip: one bundle per enterprise with each of its documents exactly once.
    for number in it.numbers:
        _check_bundle(it, number, tmp_path / f"bundle-{number}.zip")


def _check_bundle(it: Integration, number: str, bundle: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "daemon", "export", "zip", "--enterprise", number, "-o",
                           str(bundle), "--no-progress"], env={**it.processes.env, "EBOXD_DAEMON__DATA_DIR":
                                                              str(bundle.parent / "cli")},
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    with it.engine.connect() as conn:
        stored = sorted(conn.execute(sa.select(Document.sha256).join(Message).join(Enterprise)
                                     .where(Enterprise.number == number)).scalars())
    with zipfile.ZipFile(bundle) as zf:
        assert zf.testzip() is None
        [index_name] = [name for name in zf.namelist() if name.endswith("/data/index.json")]
        index = json.loads(zf.read(index_name))
        top = index_name.split("/", 1)[0]
        contents = sorted(hashlib.sha256(zf.read(f"{top}/data/{row['file']}")).hexdigest()
                          for row in index["documents"])
        payload = [name for name in zf.namelist() if "/data/government-letters/" in name]
    assert sorted(row["doc_sha256"] for row in index["documents"]) == contents == stored
    assert len(payload) == len(stored)
