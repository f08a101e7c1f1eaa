"""Two ``eboxd serve`` nodes and two workers on one PostgreSQL, with polls asked for all the time
and new letters arriving: no enterprise is polled twice at once, no message is fetched twice."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from daemon.db.models import Enterprise
from daemon.poll import EboxAccess, claim_due_polls, poll_enterprise, request_poll
from daemon.secrets import SecretBox
from tests.integration.checks import check_events, check_fetched_once, check_poll_state, check_store
from tests.integration.conftest import Integration, receive_events, start_integration, wait_for_pipeline
from tests.integration.ebox_side import assert_no_concurrent_polls, concurrent_polls
from tests.integration.processes import metric, scrape

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq]

HAMMER_SECONDS = 12.0


@pytest.fixture
def two_nodes(engine: Engine, database_url: str, amqp_url: str, tmp_path: Path) -> Iterator[Integration]:
    # Listings held 0.2 s: a poll run lasts at least 0.4 s (two providers), long enough for a
    # second run of the same enterprise to show up beside it if the leases let one through.
    yield from start_integration(engine, database_url, amqp_url, tmp_path, listing_hold=0.2,
                                 EBOXD_DOCUMENTS__STORE="database")


def hammer(it: Integration, stop: threading.Event) -> None:
    """What busy operators and a busy e-Box do: `eboxd poll --all` five times a second, a new
    letter every second."""
    rng = random.Random(4)
    ticks = 0
    while not stop.wait(0.2):
        request_poll(it.engine)
        ticks += 1
        if ticks % 5 == 0:
            it.sandbox.publish(rng.choice(it.numbers))


def third_scheduler(it: Integration, stop: threading.Event) -> None:
    """The two nodes take turns at the ``enqueue-polls`` job (it is scheduled in the database), so
    their claims rarely meet: this claims due polls as a third node would, at its own pace, racing
    them on ``FOR UPDATE SKIP LOCKED``. Its tasks are relayed and run like the others."""
    while not stop.wait(0.07):
        with it.engine.begin() as tx:
            claim_due_polls(tx, it.config.poll)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_nodes_never_poll_one_enterprise_at_once_nor_fetch_a_message_twice(two_nodes: Integration) -> None:
    it = two_nodes
    serves = [it.processes.serve("serve-a"), it.processes.serve("serve-b")]
    workers = [it.processes.worker("worker-a", processes=1, threads=4),
               it.processes.worker("worker-b", processes=1, threads=4)]
    stop = threading.Event()
    threads = [threading.Thread(target=target, args=(it, stop)) for target in (hammer, third_scheduler)]
    for thread in threads:
        thread.start()
    try:
        stop.wait(HAMMER_SECONDS)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    wait_for_pipeline(it, timeout=90, poll_every=3)

    received = receive_events(it)
    serve_metrics = [scrape(p.metrics_url) for p in serves]
    worker_metrics = [scrape(p.metrics_url) for p in workers]
    codes = it.processes.stop()
    assert set(codes.values()) == {0}, f"{codes}\n{it.processes.logs()}"

    # The work really was shared: both nodes relayed tasks, both workers polled and fetched. (The
    # enqueue-polls job goes to whichever node's round comes first, not necessarily to both.)
    assert sum(metric(samples, "eboxd_scheduler_job_runs_total", name="enqueue-polls", outcome="ok")
               for samples in serve_metrics) > 0
    for samples in serve_metrics:
        assert metric(samples, "eboxd_outbox_published_total", kind="task") > 0
    for samples in worker_metrics:
        assert metric(samples, "dramatiq_messages_total", actor_name="poll_enterprise") > 0
        assert metric(samples, "dramatiq_messages_total", actor_name="fetch_message") > 0
    # Every enterprise was polled over and over, under contention.
    listings = Counter(e.enterprise for e in it.recorder.exchanges("listing"))
    assert set(listings) == set(it.numbers)
    assert min(listings.values()) >= 2 * 3, listings  # two providers: at least three runs each

    summary = check_store(it.engine, it.store, it.sandbox, it.numbers)
    assert summary.messages > 5 * 12
    check_events(it.engine, received, it.sandbox, it.numbers, summary)
    check_poll_state(it.engine, it.numbers)
    check_fetched_once(it.recorder, it.sandbox, it.numbers)
    assert_no_concurrent_polls(it.recorder)

    # The detector is live: two polls of one enterprise started together, bypassing the leases, are seen.
    access = EboxAccess(it.config, SecretBox.from_config(it.config))
    with it.engine.connect() as conn:
        enterprise_id = conn.execute(sa.select(Enterprise.id).where(Enterprise.number == it.numbers[0])).scalar_one()
    barrier = threading.Barrier(2)

    def rogue_poll() -> None:
        barrier.wait()
        poll_enterprise(it.engine, access, it.config, enterprise_id, "no-lease")

    rogues = [threading.Thread(target=rogue_poll) for _ in range(2)]
    for rogue in rogues:
        rogue.start()
    for rogue in rogues:
        rogue.join()
    access.close()
    assert {number for number, _, _ in concurrent_polls(it.recorder)} == {it.numbers[0]}
