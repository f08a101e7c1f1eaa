"""The pipeline under a misbehaving e-Box: about one request in ten answered 5xx, 429, too slowly
(client timeout), cut off (downloads) or 401 for an expired token. Nothing may be lost, nothing
duplicated, and the failures must show in the worker's metrics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from daemon.db.models import Message
from tests.integration.checks import check_events, check_poll_state, check_store, downloads
from tests.integration.conftest import Integration, receive_events, start_integration, wait_for_pipeline
from tests.integration.ebox_side import assert_no_concurrent_polls, expected_letters
from tests.integration.processes import metric, scrape, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq]

CLIENT_TIMEOUT = 1.0  # [ebox] timeout_seconds; the slow fault answers after 1.5 s


@pytest.fixture
def faulty(engine: Engine, database_url: str, amqp_url: str, tmp_path: Path) -> Iterator[Integration]:
    yield from start_integration(engine, database_url, amqp_url, tmp_path,
                                 EBOXD_EBOX__TIMEOUT_SECONDS=str(CLIENT_TIMEOUT))


def add_faults(it: Integration) -> None:
    """About 10 % of each kind; every rule draws on its own, so some requests meet several."""
    it.sandbox.add_fault("error", rate=0.05, status=503)
    it.sandbox.add_fault("error", rate=0.05, status=500)
    it.sandbox.add_fault("throttle", rate=0.1, retry_after=1)
    it.sandbox.add_fault("slow", rate=0.1, delay=CLIENT_TIMEOUT + 0.5)
    it.sandbox.add_fault("truncate", rate=0.1)  # downloads only
    it.sandbox.add_fault("expired_token", rate=0.1)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_faults_lose_nothing_duplicate_nothing_and_show_in_metrics(faulty: Integration) -> None:
    it = faulty
    add_faults(it)
    it.processes.serve()
    worker = it.processes.worker(processes=2, threads=4)
    wait_for_pipeline(it, timeout=120, poll_every=2)
    for number in it.numbers:
        it.sandbox.publish(number, kind="contributions")
    wait_for_pipeline(it, timeout=90, poll_every=2)

    received = receive_events(it)
    samples = scrape(worker.metrics_url)
    codes = it.processes.stop()
    assert set(codes.values()) == {0}, f"{codes}\n{it.processes.logs()}"

    # The faults did happen, of every kind.
    exchanges = it.recorder.exchanges()
    seen = Counter(e.status for e in exchanges)
    assert {503, 500, 429, 401} <= {status for status, n in seen.items() if n}, seen
    assert any(e.truncated for e in exchanges)
    assert any(e.delay > CLIENT_TIMEOUT for e in exchanges)

    # Nothing lost, nothing duplicated: in the database, the store and on the exchange.
    summary = check_store(it.engine, it.store, it.sandbox, it.numbers)
    assert summary.messages == 5 * 12 + 5
    check_events(it.engine, received, it.sandbox, it.numbers, summary)
    check_poll_state(it.engine, it.numbers, failures_allowed=True)
    assert_no_concurrent_polls(it.recorder)
    # A failed fetch is retried as a whole, so an attachment may be downloaded again, but never
    # once its message is stored.
    letters = expected_letters(it.sandbox, it.numbers)
    assert set(downloads(it.recorder, CLIENT_TIMEOUT)) == {
        (mid, a.attachment_id) for mid, letter in letters.items() for a in letter.attachments}
    with it.engine.connect() as conn:
        fetched_at = dict(conn.execute(sa.select(Message.ebox_message_id, Message.fetched_at)).all())
    late = [e for e in exchanges if e.message_id is not None and e.at > fetched_at[e.message_id]]
    assert late == [], "a message was fetched again after it was stored"

    # The failures are visible: fetches that failed (cut-off downloads) and were retried.
    assert metric(samples, "dramatiq_message_errors_total", actor_name="fetch_message") > 0
    assert metric(samples, "dramatiq_message_retries_total", actor_name="fetch_message") > 0
    assert metric(samples, "eboxd_fetch_failures_total") > 0
    assert metric(samples, "eboxd_polls_total", outcome="ok") > 0
    # eboxd's own counters add up to what was stored, once, across the worker processes.
    assert metric(samples, "eboxd_messages_received_total") == summary.messages
    assert metric(samples, "eboxd_documents_stored_total") == summary.documents
    assert metric(samples, "eboxd_payment_requests_total") == summary.payment_requests


@pytest.fixture
def few_retries(engine: Engine, database_url: str, amqp_url: str, tmp_path: Path) -> Iterator[Integration]:
    yield from start_integration(engine, database_url, amqp_url, tmp_path, EBOXD_WORKER__MAX_RETRIES="1",
                                 EBOXD_DOCUMENTS__REFETCH_AFTER_SECONDS="2")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_document_failing_longer_than_the_worker_retries_is_still_fetched_later(few_retries: Integration) -> None:
    it = few_retries
    letter = next(letter for letter in expected_letters(it.sandbox, it.numbers).values()
                  if len(letter.attachments) == 1)
    content = f"/ebox/messages/{letter.message_id}/attachments/{letter.attachments[0].attachment_id}/content"
    rule = it.sandbox.add_fault("truncate", path=content, count=2)  # the first try and its one retry
    it.processes.serve()
    it.processes.worker(processes=1, threads=4)
    wait_until(lambda: rule.fired == 2, timeout=60, what="both downloads to fail", processes=it.processes)
    # The e-Box is well again and polls keep coming (asked for every second): the message must arrive.
    wait_for_pipeline(it, timeout=8, poll_every=1)
    check_store(it.engine, it.store, it.sandbox, it.numbers)
