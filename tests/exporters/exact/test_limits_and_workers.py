"""Exact's limits and concurrent workers, through ``run_export`` against the sandbox over HTTP:
8 workers (threads, then processes) across a token expiry refresh exactly once and never reuse a
refresh token; the minutely limit reached mid-run waits and completes; a 429 with calls left is
waited out; the daily limit stops the run and the next day (a faked clock) finishes it."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import sqlalchemy as sa
from eboxd_exact.sandbox import ExactSandboxServer
from sqlalchemy.orm import Session

from daemon.db.models import Export, OAuthToken, OutboxRow
from daemon.exports import ExportOutcome, run_export
from daemon.plugins import PluginManager
from daemon.workers.tasks import EXPORT_DOCUMENT
from tests.conftest import REPO
from tests.exporters.exact.conftest import DOCUMENTS, ExactSeeded, FakeClock, attachments_in, connect, documents_in


def _run(seeded: ExactSeeded, manager: PluginManager, document_id: int, target: str) -> ExportOutcome:
    return run_export(seeded.engine, seeded.store, seeded.secrets, manager, document_id, "exact", target,
                      last_attempt=False)


def _token_version(seeded: ExactSeeded) -> int:
    with Session(seeded.engine) as session:
        return session.scalars(sa.select(OAuthToken.version)).one()


def _assert_one_refresh_no_reuse(exact: ExactSandboxServer, seeded: ExactSeeded) -> None:
    oauth = exact.state.oauth.describe()
    assert oauth["refreshes"] == 1
    assert oauth["refused"] == []  # no "Old refresh token used.", no TooEarly
    assert oauth["liveChains"] == 1
    assert _token_version(seeded) == 2
    assert len(documents_in(exact)) == len(attachments_in(exact)) == DOCUMENTS


def test_eight_threads_across_a_token_expiry_refresh_exactly_once(
        seeded: ExactSeeded, manager: PluginManager, exact: ExactSandboxServer, clock: FakeClock) -> None:
    target = connect(seeded, manager, exact, clock).target
    clock.advance(580)  # inside Exact's refresh window: every worker finds the token due
    exact.state.oauth.refresh_delay = 0.3  # a slow token endpoint widens the race
    start = threading.Barrier(DOCUMENTS)
    outcomes: dict[int, str] = {}

    def worker(document_id: int) -> None:
        start.wait()
        outcomes[document_id] = _run(seeded, manager, document_id, target).status

    threads = [threading.Thread(target=worker, args=(doc,)) for doc in seeded.document_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes.values()) == ["completed"] * DOCUMENTS
    _assert_one_refresh_no_reuse(exact, seeded)


def test_eight_processes_across_a_token_expiry_refresh_exactly_once(
        seeded: ExactSeeded, manager: PluginManager, exact: ExactSandboxServer, clock: FakeClock,
        database_url: str, tmp_path: Path) -> None:
    target = connect(seeded, manager, exact, clock).target
    clock.advance(580)
    exact.state.oauth.refresh_delay = 0.3
    start_at = time.time() + 4  # every process has started and imported by then
    key = (b"x" * 32).hex()
    processes = [subprocess.Popen(
        [sys.executable, "-m", "tests.exporters.exact.export_worker", json.dumps({
            "database_url": database_url, "key": key, "store": str(tmp_path / "documents"), "document_id": doc,
            "target": target, "offset": clock.offset.total_seconds(), "start_at": start_at})],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for doc in seeded.document_ids]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert [r["status"] for r in results] == ["completed"] * DOCUMENTS, results
    _assert_one_refresh_no_reuse(exact, seeded)


def test_minutely_limit_reached_mid_run_waits_for_the_reset_and_completes(
        seeded: ExactSeeded, manager: PluginManager, exact: ExactSandboxServer, clock: FakeClock) -> None:
    target = connect(seeded, manager, exact, clock).target
    exact.state.set_limits(minutely=7)
    outcomes = [_run(seeded, manager, doc, target) for doc in seeded.document_ids]
    assert [o.status for o in outcomes] == ["completed"] * DOCUMENTS
    assert len(clock.slept) >= 2  # it waited for the minute to turn, more than once
    assert all(0 < seconds <= 61 for seconds in clock.slept)
    assert not [c for c in exact.state.stats.calls if c[2] == 429]  # paused before Exact had to refuse
    assert len(documents_in(exact)) == DOCUMENTS


def test_a_429_with_calls_left_is_waited_out_and_retried_once(
        seeded: ExactSeeded, manager: PluginManager, exact: ExactSandboxServer, clock: FakeClock) -> None:
    target = connect(seeded, manager, exact, clock).target
    exact.state.fail_next("throttle", entity="Documents", method="POST")
    outcome = _run(seeded, manager, seeded.document_ids[0], target)
    assert outcome.status == "completed"
    assert [c for c in exact.state.stats.calls if c[2] == 429] == [("POST", "Documents", 429)]
    assert len(clock.slept) == 1
    assert 0 < clock.slept[0] <= 61
    assert len(documents_in(exact)) == 1


def test_daily_limit_stops_the_run_and_the_next_day_finishes_it(
        seeded: ExactSeeded, manager: PluginManager, exact: ExactSandboxServer, clock: FakeClock) -> None:
    target = connect(seeded, manager, exact, clock).target  # 3 calls: Me, Divisions, DocumentTypes
    exact.state.set_limits(daily=12)  # 9 left: DocumentTypes + 4 documents × 2 calls
    outcomes = [_run(seeded, manager, doc, target) for doc in seeded.document_ids]
    assert [o.status for o in outcomes] == ["completed"] * 4 + ["deferred"] * (DOCUMENTS - 4)
    assert "calls left today" in (outcomes[-1].error or "")
    assert not [c for c in exact.state.stats.calls if c[2] == 429]  # stopped before Exact refused
    assert len(documents_in(exact)) == len(attachments_in(exact)) == 4  # nothing half done
    next_day = dt.datetime.combine(clock.now().date() + dt.timedelta(days=1), dt.time(), dt.UTC)
    with Session(seeded.engine) as session:
        tasks = session.scalars(sa.select(OutboxRow).where(OutboxRow.topic == EXPORT_DOCUMENT.actor_name)).all()
        statuses = session.scalars(sa.select(Export.status).order_by(Export.id)).all()
    assert len(tasks) == DOCUMENTS - 4
    for task in tasks:  # queued again for Exact's next day, not retried sooner
        available = task.available_at if task.available_at.tzinfo else task.available_at.replace(tzinfo=dt.UTC)
        assert abs(available - next_day) < dt.timedelta(seconds=5)
    assert statuses == ["completed"] * 4 + ["deferred"] * (DOCUMENTS - 4)

    clock.advance((next_day - clock.now()).total_seconds() + 5)  # the next day: 12 calls again
    resumed = [_run(seeded, manager, doc, target) for doc in seeded.document_ids[4:]]
    # A resumed export first looks its marker up (it may have been sent): 3 calls each, so 3 fit.
    assert [o.status for o in resumed] == ["completed"] * 3 + ["deferred"]
    clock.advance(86_400)  # and the day after
    assert _run(seeded, manager, seeded.document_ids[-1], target).status == "completed"
    assert len(documents_in(exact)) == len(attachments_in(exact)) == DOCUMENTS
    assert not [c for c in exact.state.stats.calls if c[2] == 429]
