"""The document store full or read-only under real ``eboxd serve`` and ``eboxd worker`` processes.

The filesystem store lives on a small tmpfs this test mounts (the suite runs as root). While the
store cannot be written, every message stays unfetched (no document row, no file, no partial
download left), its fetch is retried, both processes keep running, and the worker's metric and log
say why. Once the store is writable again every message is fetched exactly once.
"""

from __future__ import annotations

import errno
import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from daemon.db.models import Document, Message
from tests.integration.checks import check_events, check_store
from tests.integration.conftest import Integration, receive_events, start_integration, wait_for_pipeline
from tests.integration.ebox_side import expected_letters
from tests.integration.processes import Process, metric, scrape, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq]

STORE_SIZE = "4m"
FILLER = "filler.bin"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False)


@contextmanager
def small_tmpfs(path: Path) -> Iterator[Path]:
    """A tmpfs of ``STORE_SIZE`` on ``path``; a failure to mount fails the test (never skips it)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = _run("mount", "-t", "tmpfs", "-o", f"size={STORE_SIZE},mode=0700", "tmpfs", str(path))
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the document store on {path} (this test needs root and "
                    f"CAP_SYS_ADMIN): {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield path
    finally:
        if _run("umount", str(path)).returncode != 0:
            _run("umount", "-l", str(path))  # a straggler still holds it: detach now, freed when it lets go


def fill(store: Path) -> Path:
    """Write a file until the filesystem is full; returns it."""
    filler = store / FILLER
    block = bytes(1 << 16)
    written = 0
    with filler.open("wb", buffering=0) as file:
        while True:
            try:
                written += file.write(block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    assert written > 0
    return filler


def remount(store: Path, mode: str) -> None:
    result = _run("mount", "-o", f"remount,{mode}", str(store))
    assert result.returncode == 0, f"remount {mode} of {store}: {result.stderr}"


@pytest.fixture
def on_tmpfs(engine: Engine, database_url: str, amqp_url: str, tmp_path: Path) -> Iterator[Integration]:
    with small_tmpfs(tmp_path / "store") as store:
        # Failed fetches that outlast dramatiq's retries are queued again by serve a second later.
        yield from start_integration(engine, database_url, amqp_url, tmp_path,
                                     EBOXD_DOCUMENTS__DIRECTORY=str(store),
                                     EBOXD_DOCUMENTS__REFETCH_AFTER_SECONDS="1")


def _store_files(store: Path) -> list[str]:
    return sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.is_file())


def _log_events(process: Process, event: str) -> list[dict[str, object]]:
    found = []
    for line in process.log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == event:
                found.append(entry)
    return found


def _fetch_state(engine: Engine) -> tuple[int, int, int, list[str]]:
    """Messages stored, of which fetched, the fewest fetch attempts of any, and their errors."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(Message.fetch_state, Message.fetch_attempts, Message.fetch_error)).all()
    return (len(rows), sum(r.fetch_state == "fetched" for r in rows), min((r.fetch_attempts for r in rows), default=0),
            sorted({str(r.fetch_error) for r in rows}))


def _break_store(kind: str, store: Path) -> Callable[[], None]:
    """Make the store unwritable; returns what repairs it."""
    if kind == "disk_full":
        filler = fill(store)
        return filler.unlink
    remount(store, "ro")
    return lambda: remount(store, "rw")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("kind", "explained"), [("disk_full", "is full"), ("read_only", "is read-only")])
def test_unwritable_store_keeps_messages_unfetched_and_retried_then_fetches_them_once(
        on_tmpfs: Integration, kind: str, explained: str) -> None:
    it = on_tmpfs
    store = Path(it.config.documents_dir)
    repair = _break_store(kind, store)
    before = _store_files(store)
    serve = it.processes.serve()
    worker = it.processes.worker(processes=1, threads=4)
    expected = len(expected_letters(it.sandbox, it.numbers))

    # Every message is stored by the poll and its fetch fails, at least twice (retried), for this reason.
    def retried() -> bool:
        stored, _, fewest, _ = _fetch_state(it.engine)
        return stored == expected and fewest >= 2

    wait_until(retried, timeout=90, what=f"every fetch to fail twice on a store that {explained}",
               processes=it.processes, describe=lambda: str(_fetch_state(it.engine)))
    _, fetched, _, errors = _fetch_state(it.engine)
    assert fetched == 0
    assert all(explained in error and "document store" in error for error in errors), errors
    with it.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Document)).scalar() == 0
    assert _store_files(store) == before, "a document or a partial download was left in the store"
    assert metric(scrape(worker.metrics_url), "eboxd_fetch_failures_total", reason=kind) >= 2 * expected
    failures = _log_events(worker, "fetch.failed")
    assert failures
    assert {entry["reason"] for entry in failures} == {kind}, failures[:3]
    assert explained in str(failures[0]["error"])
    it.processes.check_alive()

    repair()
    wait_for_pipeline(it, timeout=120, poll_every=5)
    received = receive_events(it)
    summary = check_store(it.engine, it.store, it.sandbox, it.numbers)  # every document once, intact
    check_events(it.engine, received, it.sandbox, it.numbers, summary)  # and announced once
    assert summary.messages == expected
    leftovers = [name for name in _store_files(store) if name.startswith(".staging") or name.endswith(".part")]
    assert leftovers == []
    codes = it.processes.stop()
    assert codes == {serve.name: 0, worker.name: 0}, f"{codes}\n{it.processes.logs()}"
