"""``eboxd serve`` and ``eboxd worker`` as real processes of a test, their metrics, the broker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pika
import pika.exceptions
import pytest
from prometheus_client.parser import text_string_to_metric_families

from daemon.workers.tasks import QUEUES

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(*, database_url: str, amqp_url: str, exchange: str, sandbox_url: str, key_file: Path,
             **extra: str) -> dict[str, str]:
    """The environment every eboxd process of a test shares (each adds its own data directory)."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("EBOXD_", "PROMETHEUS_", "dramatiq_")) or k.startswith("EBOXD_TEST")}
    return {
        **clean, "PYTHONPATH": str(REPO), "EBOXD_DATABASE__URL": database_url, "EBOXD_BROKER__URL": amqp_url,
        "EBOXD_BROKER__EVENTS_EXCHANGE": exchange, "EBOXD_EBOX__SANDBOX_URL": sandbox_url,
        "EBOXD_SECRETS__KEY_FILE": str(key_file), "EBOXD_LOGGING__FORMAT": "json",
        "EBOXD_SERVICE__LOOP_INTERVAL_SECONDS": "0.2", "EBOXD_OUTBOX__IDLE_INTERVAL_SECONDS": "0.05",
        "EBOXD_POLL__INTERVAL_SECONDS": "600", "EBOXD_POLL__JITTER_SECONDS": "0",
        "EBOXD_WORKER__MIN_BACKOFF_SECONDS": "0.2", "EBOXD_WORKER__MAX_BACKOFF_SECONDS": "2",
        **extra,
    }


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    metrics_url: str

    def log_tail(self, chars: int = 3000) -> str:
        return f"--- {self.name} ({self.log}) ---\n" + self.log.read_text(errors="replace")[-chars:]


class Processes:
    """``eboxd serve`` and ``eboxd worker`` processes of one test; stopped by SIGTERM at the end."""

    def __init__(self, env: dict[str, str], directory: Path) -> None:
        self.env = env
        self.directory = directory
        self.started: list[Process] = []
        self._ports: set[int] = set()

    def _port(self) -> int:
        while (port := free_port()) in self._ports:
            pass
        self._ports.add(port)
        return port

    def _start(self, name: str, args: list[str], env: dict[str, str], metrics_url: str) -> Process:
        data_dir = self.directory / name
        data_dir.mkdir(parents=True, exist_ok=True)
        log = self.directory / f"{name}.log"
        with log.open("wb") as output:  # the child keeps its own descriptor
            popen = subprocess.Popen(
                [sys.executable, "-m", "daemon", *args], env={**env, "EBOXD_DAEMON__DATA_DIR": str(data_dir)},
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        process = Process(name, popen, log, metrics_url)
        self.started.append(process)
        return process

    def serve(self, name: str = "serve") -> Process:
        port = self._port()
        return self._start(name, ["serve"], {**self.env, "EBOXD_SERVICE__HTTP_PORT": str(port)},
                           f"http://127.0.0.1:{port}/metrics")

    def worker(self, name: str = "worker", *, processes: int = 1, threads: int = 4) -> Process:
        """A worker whose dramatiq and eboxd metrics are served on a port of its own."""
        port, prom_dir = self._port(), self.directory / f"{name}-prometheus"
        prom_dir.mkdir(parents=True, exist_ok=True)
        env = {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(prom_dir), "dramatiq_prom_db": str(prom_dir),
               "dramatiq_prom_host": "127.0.0.1", "dramatiq_prom_port": str(port)}
        return self._start(name, ["worker", "--processes", str(processes), "--threads", str(threads)], env,
                           f"http://127.0.0.1:{port}/")

    def check_alive(self) -> None:
        for process in self.started:
            if process.popen.poll() is not None:
                pytest.fail(f"{process.name} exited with {process.popen.returncode}\n{process.log_tail()}")

    def logs(self) -> str:
        return "\n".join(process.log_tail() for process in self.started)

    def stop(self, timeout: float = 30) -> dict[str, int]:
        """SIGTERM every process, wait, and return the exit codes (a process that would not stop
        is killed, with its whole process group, and reported as -9)."""
        for process in self.started:
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGTERM)
        codes = {}
        for process in self.started:
            try:
                codes[process.name] = process.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.popen.pid, signal.SIGKILL)
                process.popen.wait(10)
                codes[process.name] = -9
        return codes


def scrape(url: str, timeout: float = 10.0) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus samples of an endpoint: (name, sorted labels) → value."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def metric(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], metric_name: str, /,
           **labels: str) -> float:
    """The sum of the samples of ``metric_name`` whose labels include ``labels``."""
    return sum(value for (sample, sample_labels), value in samples.items()
               if sample == metric_name and set(labels.items()) <= set(sample_labels))


def purge_task_queues(amqp_url: str) -> None:
    """Empty eboxd's dramatiq queues: tasks left on the broker by an earlier run (of another test,
    against another database) would otherwise run against this test's database."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        for queue in QUEUES:
            for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
                channel = connection.channel()
                try:
                    channel.queue_purge(name)
                except pika.exceptions.ChannelClosedByBroker:
                    continue  # not declared yet
                channel.close()
    finally:
        connection.close()


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str, processes: Processes,
               describe: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        processes.check_alive()
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; {describe()}\n{processes.logs()}")
        time.sleep(0.3)
