"""The systemd watchdog is fed by the scheduler loop only while that loop makes progress.

A fake ``NOTIFY_SOCKET`` records what eboxd sends. The loop is made to hang the way it would in
production, from outside: a database lock it waits on (real ``eboxd serve`` process), or a periodic
job that blocks (the daemon in-process with one extra job). Meanwhile the relay and HTTP threads
keep running, which is exactly when a pinger on a side thread would lie to systemd.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from daemon.config import load_config
from daemon.service import Daemon, create_publisher
from daemon.service.scheduler import PeriodicJob
from tests.amqp_helpers import unique_name
from tests.service.test_serve import free_port, get, start

pytestmark = pytest.mark.slow

LOOP_INTERVAL = 0.2


class Listener:
    """The service manager's side of sd_notify: every datagram, with the time it arrived."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.received: list[tuple[float, str]] = []

    def pump(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.received.extend((time.monotonic(), line) for line in data.decode().splitlines())

    def wait_for(self, line: str, timeout: float = 30, since: float = 0.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, got in self.received:
                if got == line and at >= since:
                    return at
            self.pump(0.1)
        pytest.fail(f"no {line} within {timeout}s; got {[m for _, m in self.received][-20:]}")

    def times(self, line: str, since: float = 0.0, until: float = float("inf")) -> list[float]:
        return [at for at, got in self.received if got == line and since <= at <= until]

    def last(self, prefix: str) -> str:
        return next(got for _, got in reversed(self.received) if got.startswith(prefix))


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[Listener]:
    sock = Listener(tmp_path / "notify.sock")
    yield sock
    sock.sock.close()


def assert_fed_periodically(listener: Listener, since: float, seconds: float = 2.0) -> None:
    listener.pump(seconds)
    pings = listener.times("WATCHDOG=1", since=since)
    assert len(pings) >= seconds / LOOP_INTERVAL / 2, f"only {len(pings)} WATCHDOG=1 in {seconds}s"
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert max(gaps) < 1.0, f"watchdog pings {gaps} apart; WATCHDOG_USEC/2 is the budget"


def assert_starved(listener: Listener, seconds: float = 3.0) -> float:
    """Let a round already past the lock finish, then expect silence for ``seconds``."""
    listener.pump(3 * LOOP_INTERVAL)
    hung_at = time.monotonic()
    listener.pump(seconds)
    assert listener.times("WATCHDOG=1", since=hung_at) == [], "the watchdog was fed while the loop hung"
    return hung_at


@contextmanager
def database_lock(engine: Engine, sqlite_path: Path | None) -> Iterator[None]:
    """Hold the lock the scheduler loop needs first in every round, as a stuck session would."""
    if sqlite_path is not None:
        conn = sqlite3.connect(sqlite_path, timeout=30, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")  # in WAL mode: the write lock; BEGIN IMMEDIATE waits for it
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    with engine.connect() as conn:
        conn.execute(sa.text("LOCK TABLE scheduled_jobs IN ACCESS EXCLUSIVE MODE"))
        try:
            yield
        finally:
            conn.rollback()


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_serve_feeds_the_watchdog_only_while_its_loop_progresses(
        database_url: str, engine: Engine, amqp_url: str, listener: Listener, tmp_path: Path) -> None:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("EBOXD_", "WATCHDOG_"))
             or k.startswith("EBOXD_TEST")}
    env = {**clean, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "EBOXD_DATABASE__URL": database_url,
           "EBOXD_BROKER__URL": amqp_url, "EBOXD_BROKER__EVENTS_EXCHANGE": unique_name("test.events"),
           "EBOXD_SERVICE__HTTP_PORT": str(port), "EBOXD_SERVICE__LOOP_INTERVAL_SECONDS": str(LOOP_INTERVAL),
           # A loop waiting on SQLite's write lock waits (hangs) rather than failing fast.
           "EBOXD_DATABASE__BUSY_TIMEOUT_SECONDS": "120",
           "EBOXD_LOGGING__FORMAT": "json", "EBOXD_DAEMON__DATA_DIR": str(tmp_path),
           "NOTIFY_SOCKET": str(listener.path), "WATCHDOG_USEC": "3000000"}
    daemon = start(["serve"], env, tmp_path / "serve.log")
    sqlite_path = Path(engine.url.database) if engine.dialect.name == "sqlite" else None
    try:
        ready = listener.wait_for("READY=1")
        first = listener.wait_for("WATCHDOG=1", since=ready)
        assert first >= ready
        assert_fed_periodically(listener, since=first)
        status = listener.last("STATUS=")
        assert status.startswith("STATUS=healthy: 0 enterprises, outbox pending 0, broker up"), status

        with database_lock(engine, sqlite_path):
            assert_starved(listener)
            assert daemon.poll() is None
            _, body = get(f"http://127.0.0.1:{port}/healthz")  # the HTTP thread still answers
            assert json.loads(body)["loop_age_seconds"] > 2.5, body

        resumed = time.monotonic()
        listener.wait_for("WATCHDOG=1", timeout=30, since=resumed)  # the lock is gone: fed again
        assert_fed_periodically(listener, since=resumed, seconds=1.0)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
        listener.wait_for("STOPPING=1")
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(10)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_a_periodic_job_that_blocks_starves_the_watchdog(
        database_url: str, engine: Engine, amqp_url: str, listener: Listener,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(listener.path))
    monkeypatch.setenv("WATCHDOG_USEC", "3000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    config = load_config(environ={
        "EBOXD_DATABASE__URL": database_url, "EBOXD_BROKER__URL": amqp_url,
        "EBOXD_BROKER__EVENTS_EXCHANGE": unique_name("test.events"), "EBOXD_SERVICE__HTTP_PORT": "0",
        "EBOXD_SERVICE__LOOP_INTERVAL_SECONDS": str(LOOP_INTERVAL), "EBOXD_DAEMON__DATA_DIR": str(tmp_path)})
    hang, release = threading.Event(), threading.Event()
    runs: list[dt.datetime] = []

    def probe(_tx: Connection, now: dt.datetime) -> None:  # stands for a job stuck on a remote call
        runs.append(now)
        if hang.is_set():
            release.wait(60)

    publisher = create_publisher(config)
    publisher.connect()
    daemon = Daemon(config, engine, publisher, jobs=[PeriodicJob("probe", dt.timedelta(0), probe)])
    thread = threading.Thread(target=daemon.run, name="daemon-under-test")
    thread.start()
    try:
        ready = listener.wait_for("READY=1")
        first = listener.wait_for("WATCHDOG=1", since=ready)
        assert_fed_periodically(listener, since=first)
        assert len(runs) >= 3

        hang.set()
        assert_starved(listener)
        assert daemon.health()[1]["loop_age_seconds"] > 2.5  # /healthz shows the hang too
        assert daemon._relay_thread.is_alive()  # a side-thread pinger would still have fed systemd

        hang.clear()
        release.set()
        resumed = time.monotonic()
        listener.wait_for("WATCHDOG=1", timeout=30, since=resumed)
    finally:
        release.set()
        daemon.stop.set()
        thread.join(60)
    assert not thread.is_alive()
    listener.wait_for("STOPPING=1")
