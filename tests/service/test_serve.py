"""``eboxd serve`` and ``eboxd worker`` as real processes, with a fake systemd notify socket."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from daemon.db.models import OutboxRow, ScheduledJob
from tests.amqp_helpers import bind_event_queue, drain, unique_name
from tests.outbox.test_relay import add_events

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NotifySocket:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def wait_for(self, line: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(line in m.splitlines() for m in self.messages):
                return
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
        pytest.fail(f"no {line} from eboxd serve within {timeout}s; got {self.messages}")


@pytest.fixture
def serve_env(database_url: str, engine: Engine, amqp_url: str, tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EBOXD_") or k.startswith("EBOXD_TEST")}
    return {**clean, "PYTHONPATH": str(REPO), "EBOXD_DATABASE__URL": database_url,
            "EBOXD_BROKER__URL": amqp_url, "EBOXD_BROKER__EVENTS_EXCHANGE": unique_name("test.events"),
            "EBOXD_SERVICE__HTTP_PORT": str(free_port()), "EBOXD_SERVICE__LOOP_INTERVAL_SECONDS": "0.2",
            "EBOXD_LOGGING__FORMAT": "json", "EBOXD_DAEMON__DATA_DIR": str(tmp_path)}


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.sock.close()


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "daemon", *args], env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_serve_notifies_systemd_relays_and_stops_cleanly(
        serve_env: dict[str, str], notify: NotifySocket, engine: Engine, amqp_url: str, tmp_path: Path) -> None:
    queue = bind_event_queue(amqp_url, serve_env["EBOXD_BROKER__EVENTS_EXCHANGE"])
    add_events(engine, 25)
    env = {**serve_env, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "2000000"}
    env["WATCHDOG_PID"] = ""  # set below once the pid is known is impossible: leave unset
    env.pop("WATCHDOG_PID")
    daemon = start(["serve"], env, tmp_path / "serve.log")
    try:
        notify.wait_for("READY=1")
        notify.wait_for("WATCHDOG=1")
        assert any(m.startswith("STATUS=") or "\nSTATUS=" in m for m in notify.messages)
        assert len(drain(amqp_url, queue, expect=25)) == 25
        port = serve_env["EBOXD_SERVICE__HTTP_PORT"]
        status, body = get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200
        assert json.loads(body)["status"] == "ok"
        status, metrics = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert b'eboxd_outbox_published_total{kind="event"} 25.0' in metrics
        assert b"eboxd_outbox_pending 0.0" in metrics
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
        notify.wait_for("STOPPING=1")
    finally:
        if daemon.poll() is None:
            daemon.kill()
    log = (tmp_path / "serve.log").read_text()
    events = [json.loads(line)["event"] for line in log.splitlines() if line.startswith("{")]
    assert "daemon.ready" in events
    assert "daemon.stopped" in events


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_serve_and_worker_run_a_scheduled_job_end_to_end(
        serve_env: dict[str, str], engine: Engine, tmp_path: Path) -> None:
    """serve's scheduler writes a purge task to the outbox, the relay publishes it, a worker runs it."""
    queue_env = {**serve_env, "EBOXD_OUTBOX__RETENTION_DAYS": "0"}
    add_events(engine, 10)
    daemon = start(["serve"], queue_env, tmp_path / "serve.log")
    worker = start(["worker", "--processes", "1", "--threads", "2"], queue_env, tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                events_left = conn.execute(sa.select(sa.func.count()).where(OutboxRow.kind == "event")).scalar()
                ran = conn.execute(sa.select(ScheduledJob.last_run_at).where(
                    ScheduledJob.name == "purge-outbox")).scalar()
            if ran is not None and events_left == 0:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the purge task did not run: " + (tmp_path / "worker.log").read_text()[-3000:])
    finally:
        for process in (worker, daemon):
            process.send_signal(signal.SIGTERM)
        for process in (worker, daemon):
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
    assert daemon.returncode == 0
    worker_log = (tmp_path / "worker.log").read_text()
    purged = [json.loads(line) for line in worker_log.splitlines()
              if line.startswith("{") and '"outbox.purged"' in line]
    assert purged, worker_log[-3000:]
    assert purged[0]["actor"] == "purge_outbox"  # the log context middleware bound the actor
    assert purged[0]["message_id"]
