"""The whole pipeline with real processes and a real broker: sandbox → ``eboxd serve`` + ``eboxd
worker`` → database, document store and the ``eboxd.events`` exchange, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from daemon.poll import request_poll
from tests.integration.checks import check_events, check_fetched_once, check_poll_state, check_store
from tests.integration.conftest import Integration, receive_events, wait_for_pipeline
from tests.integration.ebox_side import assert_no_concurrent_polls

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq]


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_every_message_document_and_payment_arrives_exactly_once(integration: Integration) -> None:
    it = integration
    it.processes.serve()
    it.processes.worker(processes=1, threads=4)
    wait_for_pipeline(it, timeout=90)

    # New letters while running: found by the next poll (asked for, as `eboxd poll --all` does).
    for number in it.numbers:
        it.sandbox.publish(number, kind="tax_assessment")
    request_poll(it.engine)
    wait_for_pipeline(it, timeout=60, poll_every=3)

    received = receive_events(it)
    codes = it.processes.stop()
    assert set(codes.values()) == {0}, f"{codes}\n{it.processes.logs()}"

    summary = check_store(it.engine, it.store, it.sandbox, it.numbers)
    assert summary.messages == 5 * 12 + 5
    check_events(it.engine, received, it.sandbox, it.numbers, summary)
    check_poll_state(it.engine, it.numbers)
    check_fetched_once(it.recorder, it.sandbox, it.numbers)
    assert_no_concurrent_polls(it.recorder)
