"""Benchmarks' access to the test RabbitMQ: $EBOXD_TEST_AMQP_URL, else the running test node, else
one started for the benchmark and stopped after it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RABBITMQ = REPO / "scripts" / "services" / "rabbitmq.sh"


@contextmanager
def rabbitmq() -> Iterator[str]:
    if url := os.environ.get("EBOXD_TEST_AMQP_URL"):  # inside `make test`'s environment
        yield url
        return
    running = subprocess.run([str(RABBITMQ), "status"], check=False, capture_output=True, text=True)
    if running.returncode == 0:
        yield running.stdout.strip() or os.environ["EBOXD_TEST_AMQP_URL"]
        return
    started = subprocess.run([str(RABBITMQ), "start"], capture_output=True, text=True, check=True)
    try:
        yield started.stdout.strip()
    finally:
        subprocess.run([str(RABBITMQ), "stop"], capture_output=True, check=False)
