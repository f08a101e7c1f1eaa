"""A running sandbox with five enterprises onboarded into a fresh database, an events queue bound
to a per-test exchange, and the processes of the test (stopped at the end whatever happened)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from daemon.config import Config
from daemon.db.models import OutboxRow
from daemon.poll import request_poll
from daemon.sandbox.ebox import EboxSandbox, serve_sandbox
from daemon.secrets import SecretBox, master_key_path
from daemon.store import DocumentStore, create_store
from tests.amqp_helpers import bind_event_queue, delete_queue, drain, unique_name
from tests.integration.checks import progress
from tests.integration.ebox_side import SandboxRecorder, expected_letters
from tests.integration.processes import Processes, base_env, purge_task_queues, wait_until
from tests.pipeline.conftest import onboard_all, pipeline_config

ENTERPRISES = 5


@dataclass
class Integration:
    sandbox: EboxSandbox
    recorder: SandboxRecorder
    config: Config
    engine: Engine
    store: DocumentStore
    numbers: list[str]
    amqp_url: str
    events_queue: str
    processes: Processes


def start_integration(engine: Engine, database_url: str, amqp_url: str, tmp_path: Path, *,
                      listing_hold: float = 0.05, **env: str) -> Iterator[Integration]:
    env = {"EBOXD_DOCUMENTS__DIRECTORY": str(tmp_path / "documents"), **env}  # one store for all processes
    sandbox = serve_sandbox("127.0.0.1", 0, seed=11, enterprises=ENTERPRISES)
    try:
        recorder = SandboxRecorder(sandbox, listing_hold=listing_hold)
        config = pipeline_config(database_url, sandbox.url, tmp_path / "onboarding", **env)
        numbers = onboard_all(engine, config, sandbox, SecretBox.from_config(config))
        exchange = unique_name("test.integration")
        queue = bind_event_queue(amqp_url, exchange)
        purge_task_queues(amqp_url)
        processes = Processes(base_env(database_url=database_url, amqp_url=amqp_url, exchange=exchange,
                                       sandbox_url=sandbox.url, key_file=master_key_path(config), **env),
                              tmp_path)
        try:
            yield Integration(sandbox, recorder, config, engine, create_store(config, engine), numbers, amqp_url,
                              queue, processes)
        finally:
            processes.stop()
            purge_task_queues(amqp_url)
            delete_queue(amqp_url, queue)
    finally:
        sandbox.shutdown()


def wait_for_pipeline(it: Integration, *, timeout: float, poll_every: float | None = None) -> None:
    """Until every expected message is stored and fetched, the outbox drained and no poll running.
    With ``poll_every``, while messages are missing, ask for a poll of every enterprise that often
    (what `eboxd poll --all` does): a failed poll is otherwise retried only a minute later."""
    last_request = time.monotonic()

    def done() -> bool:
        nonlocal last_request
        expected = len(expected_letters(it.sandbox, it.numbers))
        finished, _, stored = progress(it.engine, expected)
        if stored < expected and poll_every is not None and time.monotonic() - last_request > poll_every:
            request_poll(it.engine)
            last_request = time.monotonic()
        return finished

    wait_until(done, timeout=timeout, what="the pipeline to store everything", processes=it.processes,
               describe=lambda: progress(it.engine, len(expected_letters(it.sandbox, it.numbers)))[1])


def receive_events(it: Integration) -> list[tuple[Any, dict[str, Any]]]:
    """What the test's queue on the events exchange holds: as many as the outbox has events, and
    whatever more arrives within half a second."""
    with it.engine.connect() as conn:
        expected = conn.execute(sa.select(sa.func.count()).where(OutboxRow.kind == "event")).scalar()
    return drain(it.amqp_url, it.events_queue, expect=int(expected or 0), timeout=30)


@pytest.fixture
def integration(engine: Engine, database_url: str, amqp_url: str, tmp_path: Path) -> Iterator[Integration]:
    yield from start_integration(engine, database_url, amqp_url, tmp_path)
