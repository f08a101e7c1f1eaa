"""A running ``eboxd serve`` watches ``[banking] coda_drop_dir``: it imports dropped CODA files,
moves them, queues matching through the outbox, counts them in /metrics, and loses or doubles
nothing when it is killed mid-way."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from daemon.banking.coda_writer import MovementSpec, StatementSpec, coda_bytes
from daemon.config import load_config
from daemon.db.models import BankTransaction, OutboxRow
from daemon.service.daemon import coda_drop_folder
from daemon.workers.tasks import MATCH_PAYMENTS
from tests.integration.processes import purge_task_queues
from tests.service.test_serve import get, serve_env, start

__all__ = ["serve_env"]  # the fixture of test_serve, imported so pytest finds it here

pytestmark = pytest.mark.slow


def statement(day: int, *amounts: str) -> bytes:
    return coda_bytes([StatementSpec(date=dt.date(2026, 11, 1) + dt.timedelta(days=day), movements=[
        MovementSpec(Decimal(amount), communication=f"invoice {day}-{i}") for i, amount in enumerate(amounts)])])


def wait_for(condition: Callable[[], bool], what: str, process: subprocess.Popen, log: Path,
             timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"eboxd serve exited with {process.returncode}: {log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}: {log.read_text()[-3000:]}")
        time.sleep(0.1)


def scalar(engine: Engine, query: sa.Select) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(query) or 0)


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "coda-in"
    folder.mkdir()
    return folder


@pytest.fixture
def drop_env(serve_env: dict[str, str], inbox: Path, amqp_url: str) -> Iterator[dict[str, str]]:
    purge_task_queues(amqp_url)
    yield {**serve_env, "EBOXD_BANKING__CODA_DROP_DIR": str(inbox), "EBOXD_BANKING__CODA_DROP_SETTLE_SECONDS": "0.3"}
    purge_task_queues(amqp_url)  # the match_payments tasks published for no worker


def stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(10)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_serve_imports_a_dropped_file_and_rejects_a_bad_one(
        drop_env: dict[str, str], engine: Engine, inbox: Path, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    daemon = start(["serve"], drop_env, log)
    try:
        # The safe way to drop: write under .part, then rename.
        (inbox / "kbc.cod.part").write_bytes(statement(0, "-12.34", "-56.78"))
        time.sleep(1.0)  # well past the settle time: a .part file is never read
        assert (inbox / "kbc.cod.part").exists()
        (inbox / "kbc.cod.part").rename(inbox / "kbc.cod")
        complete = statement(1, "-1.00").decode("latin-1").splitlines()
        complete[2] = complete[2][:32] + "not an amount! " + complete[2][47:]  # line 3, columns 33-47
        (inbox / "bad.cod").write_bytes(("\n".join(complete) + "\n").encode("latin-1"))
        processed, reason = inbox / "processed" / "kbc.cod", inbox / "rejected" / "bad.cod.reason.txt"
        wait_for(lambda: processed.exists() and reason.exists(), "both files moved", daemon, log)
        assert scalar(engine, sa.select(sa.func.count()).select_from(BankTransaction)) == 2
        assert {"line: 3", "columns: 33-47"} <= set(reason.read_text().splitlines())
        # Matching was queued through the outbox, and the relay published it.
        sent_match_tasks = sa.select(sa.func.count()).where(
            OutboxRow.topic == MATCH_PAYMENTS.actor_name, OutboxRow.sent_at.is_not(None))
        wait_for(lambda: scalar(engine, sent_match_tasks) == 1, "the match_payments task published", daemon, log)
        status, body = get(f"http://127.0.0.1:{drop_env['EBOXD_SERVICE__HTTP_PORT']}/metrics")
        assert status == 200
        assert b'eboxd_coda_files_total{outcome="imported"} 1.0' in body
        assert b'eboxd_coda_files_total{outcome="rejected"} 1.0' in body
        assert sorted(p.name for p in inbox.iterdir()) == ["processed", "rejected"]
    finally:
        assert stop(daemon) == 0
    events = [json.loads(line)["event"] for line in log.read_text().splitlines() if line.startswith("{")]
    assert {"coda_drop.watching", "coda_drop.imported", "coda_drop.rejected"} <= set(events)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_serve_killed_while_importing_loses_and_doubles_nothing(
        drop_env: dict[str, str], engine: Engine, inbox: Path, tmp_path: Path) -> None:
    """SIGKILL as soon as the first files are moved, while the others are being imported; after a
    restart every file ends in processed/ exactly once and every movement is stored once."""
    files = 40
    for day in range(files):
        (inbox / f"statement-{day:02d}.cod").write_bytes(statement(day, "-1.00", "-2.00", "3.00"))
    processed = inbox / "processed"
    first = start(["serve"], drop_env, tmp_path / "serve-1.log")
    try:
        wait_for(lambda: processed.exists() and any(processed.iterdir()), "a first file moved", first,
                 tmp_path / "serve-1.log")
        first.kill()
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    # A file linked into processed/ may still be in the folder too (killed in the middle of its move).
    waiting = {p.name for p in inbox.iterdir() if p.is_file()} - {p.name for p in processed.iterdir()}
    assert 0 < len(waiting) < files, "the kill came too late to test anything"
    second = start(["serve"], drop_env, tmp_path / "serve-2.log")
    try:
        wait_for(lambda: not any(p.is_file() for p in inbox.iterdir()), "every file moved", second,
                 tmp_path / "serve-2.log")
    finally:
        assert stop(second) == 0
    assert sorted(p.name for p in processed.iterdir()) == [f"statement-{day:02d}.cod" for day in range(files)]
    assert scalar(engine, sa.select(sa.func.count()).select_from(BankTransaction)) == 3 * files
    assert scalar(engine, sa.select(sa.func.count(sa.distinct(BankTransaction.dedupe_key)))) == 3 * files


def test_drop_folder_setting(engine: Engine, tmp_path: Path) -> None:
    """Off when empty; a relative path is under the data directory, an absolute one as given."""
    def folder(value: str) -> Path | None:
        config = load_config(environ={"EBOXD_DAEMON__DATA_DIR": str(tmp_path / "state"),
                                      "EBOXD_BANKING__CODA_DROP_DIR": value,
                                      "EBOXD_BANKING__CODA_DROP_SETTLE_SECONDS": "2.5"})
        watched = coda_drop_folder(config, engine)
        if watched is not None:
            assert watched.settle_seconds == 2.5
        return None if watched is None else watched.directory

    assert folder("") is None
    assert folder("coda") == tmp_path / "state" / "coda"
    assert folder(str(tmp_path / "elsewhere")) == tmp_path / "elsewhere"
