"""The export ledger end to end on both databases: schedule, export, redeliver, fail, retry."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import dramatiq
import pytest
import sqlalchemy as sa
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage, Retries
from sqlalchemy.orm import Session

from daemon.db.models import Export, OutboxRow
from daemon.exports import enable_exporter, retry_exports, run_export, schedule_exports
from daemon.plugins import PluginManager, SettingsError
from daemon.workers.exporting import is_last_attempt
from tests.plugins.conftest import Seeded


def _enable(seeded: Seeded, manager: PluginManager, out: Path, **extra: str) -> str:
    with Session(seeded.engine) as session, session.begin():
        enterprise = session.merge(seeded.enterprise)
        return enable_exporter(session, seeded.secrets, manager, enterprise, "zip", {"dir": str(out), **extra}).target


def _events(seeded: Seeded, topic: str) -> list[dict]:
    with seeded.engine.connect() as conn:
        return [row.payload["data"] for row in conn.execute(sa.select(OutboxRow).where(OutboxRow.topic == topic))]


def test_enable_validates_settings_with_the_plugin(seeded: Seeded, manager: PluginManager) -> None:
    with pytest.raises(SettingsError, match="absolute"):
        _enable(seeded, manager, Path("relative"))
    with pytest.raises(SettingsError, match="no setting 'colour'"):
        _enable(seeded, manager, Path("/tmp/x"), colour="red")


def test_schedule_then_redelivered_export_writes_once(seeded: Seeded, manager: PluginManager, tmp_path: Path) -> None:
    target = _enable(seeded, manager, tmp_path / "out")
    with seeded.engine.begin() as tx:
        assert schedule_exports(tx, seeded.enterprise.id, seeded.document_ids) == 3
        assert schedule_exports(tx, seeded.enterprise.id, seeded.document_ids) == 0  # same keys
    doc = seeded.document_ids[0]
    first = run_export(seeded.engine, seeded.store, seeded.secrets, manager, doc, "zip", target, last_attempt=False)
    again = run_export(seeded.engine, seeded.store, seeded.secrets, manager, doc, "zip", target, last_attempt=False)
    assert first.status == "completed"
    assert not first.already_done
    assert again.already_done
    assert again.receipt == first.receipt
    files = list((tmp_path / "out").rglob("*.zip"))
    assert len(files) == 1
    assert Path(first.receipt["path"]) == files[0]
    with zipfile.ZipFile(files[0]) as zf:
        assert zf.testzip() is None
    with Session(seeded.engine) as session:
        rows = session.scalars(sa.select(Export)).all()
    assert [(r.document_id, r.status, r.attempts) for r in rows] == [(doc, "completed", 1)]
    assert len(_events(seeded, "be.eboxd.export.completed")) == 1


def test_worker_killed_mid_export_redelivery_leaves_one_copy(seeded: Seeded, manager: PluginManager,
                                                             tmp_path: Path) -> None:
    target = _enable(seeded, manager, tmp_path / "out", layout="files")
    doc = seeded.document_ids[1]
    an_hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with seeded.engine.begin() as tx:  # the state a killed worker leaves: claimed, never finished
        tx.execute(sa.insert(Export).values(document_id=doc, exporter="zip", target=target, status="exporting",
                                            attempts=1, updated_at=an_hour_ago))
    run_export(seeded.engine, seeded.store, seeded.secrets, manager, doc, "zip", target, last_attempt=False)
    run_export(seeded.engine, seeded.store, seeded.secrets, manager, doc, "zip", target, last_attempt=False)
    assert len([p for p in (tmp_path / "out").rglob("*") if p.is_file()]) == 1


def test_a_delivery_while_another_is_still_exporting_waits_for_it(seeded: Seeded, manager: PluginManager,
                                                                   tmp_path: Path) -> None:
    """The broker delivers a task again when its consumer's connection dropped, while that delivery may
    still be exporting: the second one must not export at the same time, nor spend a retry."""
    target = _enable(seeded, manager, tmp_path / "out", layout="files")
    doc = seeded.document_ids[2]
    claimed = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=10)
    with seeded.engine.begin() as tx:  # claimed ten seconds ago by a delivery still running
        tx.execute(sa.insert(Export).values(document_id=doc, exporter="zip", target=target, status="exporting",
                                            attempts=1, updated_at=claimed))
    second = run_export(seeded.engine, seeded.store, seeded.secrets, manager, doc, "zip", target,
                        last_attempt=True, lease_seconds=60)
    assert second.status == "in_progress"
    assert not list((tmp_path / "out").rglob("*.*"))
    with Session(seeded.engine) as session:
        row = session.scalars(sa.select(Export)).one()
        [later] = session.scalars(sa.select(OutboxRow).where(OutboxRow.topic == "export_document")).all()
    assert (row.status, row.attempts) == ("exporting", 1)  # untouched: it is the other delivery's
    assert later.payload == {"document_id": doc, "exporter": "zip", "target": target}
    assert abs((later.available_at - (claimed + dt.timedelta(seconds=60))).total_seconds()) < 2
    # That delivery was in fact killed: once its time limit has passed, the export is taken up, once.
    third = run_export(seeded.engine, seeded.store, seeded.secrets, manager, doc, "zip", target,
                       last_attempt=False, lease_seconds=5)
    assert third.status == "completed"
    assert len([p for p in (tmp_path / "out").rglob("*") if p.is_file()]) == 1


def test_failure_after_last_retry_marks_failed_with_event_and_retry_requeues(
        seeded: Seeded, manager: PluginManager, tmp_path: Path) -> None:
    target = _enable(seeded, manager, tmp_path / "out")
    blocker = tmp_path / "out" / seeded.enterprise.number
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the folder should be")
    doc = seeded.document_ids[0]
    with pytest.raises(OSError, match=r"File exists|Not a directory"):
        run_export(seeded.engine, seeded.store, seeded.secrets, manager, doc, "zip", target, last_attempt=False)
    outcome = run_export(seeded.engine, seeded.store, seeded.secrets, manager, doc, "zip", target, last_attempt=True)
    assert outcome.status == "failed"
    with Session(seeded.engine) as session:
        row = session.scalars(sa.select(Export)).one()
        assert (row.status, row.attempts) == ("failed", 2)
        assert "Error" in row.last_error
    [event] = _events(seeded, "be.eboxd.export.failed")
    assert event["attempts"] == 2
    assert event["document_id"] == doc
    blocker.unlink()
    with Session(seeded.engine) as session, session.begin():
        assert len(retry_exports(session)) == 1
    with seeded.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).where(OutboxRow.topic == "export_document")) == 1
    done = run_export(seeded.engine, seeded.store, seeded.secrets, manager, doc, "zip", target, last_attempt=False)
    assert done.status == "completed"


def test_is_last_attempt_follows_the_retries_middleware() -> None:
    broker = StubBroker(middleware=[Retries(max_retries=2, min_backoff=1, max_backoff=5), CurrentMessage()])
    broker.emit_after("process_boot")
    seen: list[bool] = []

    @dramatiq.actor(broker=broker, actor_name="flaky")
    def flaky() -> None:
        seen.append(is_last_attempt(CurrentMessage.get_current_message(), broker))
        raise RuntimeError("down")

    flaky.send()
    worker = dramatiq.Worker(broker, worker_timeout=50)
    worker.start()
    try:
        broker.join("default", fail_fast=False)
        worker.join()
    finally:
        worker.stop()
    assert seen == [False, False, True]
