"""The Yuki exporter through the export ledger on both databases, against the sandbox over HTTP:
folders per message type, session expiry mid-run, faults, and never two uploads of one document."""

from __future__ import annotations

import datetime as dt
import json

import dramatiq
import pytest
import sqlalchemy as sa
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage, Retries
from eboxd_yuki.client import next_yuki_day
from eboxd_yuki.exporter import marker_of
from eboxd_yuki.sandbox import YukiSandboxServer
from sqlalchemy.orm import Session

from daemon.db.models import Export, ExporterConfig, OutboxRow
from daemon.exports import run_export
from daemon.plugins import PluginManager, SettingsError
from daemon.workers.tasks import EXPORT_DOCUMENT
from tests.exporters.yuki.conftest import TYPES, YukiSeeded, connect


def _run(seeded: YukiSeeded, manager: PluginManager, document_id: int, target: str, *, last: bool = False):
    return run_export(seeded.engine, seeded.store, seeded.secrets, manager, document_id, "yuki", target,
                      last_attempt=last)


def _ledger(seeded: YukiSeeded) -> list[tuple[int, str, int]]:
    with Session(seeded.engine) as session:
        return [(r.document_id, r.status, r.attempts) for r in session.scalars(sa.select(Export).order_by(Export.id))]


def _outbox(seeded: YukiSeeded, topic: str) -> list[OutboxRow]:
    with Session(seeded.engine) as session:
        return list(session.scalars(sa.select(OutboxRow).where(OutboxRow.topic == topic).order_by(OutboxRow.id)))


def test_connect_checks_key_and_administration_and_stores_the_key_encrypted(
        seeded: YukiSeeded, manager: PluginManager, yuki: YukiSandboxServer, access_key: str,
        administration: str) -> None:
    with pytest.raises(SettingsError, match="refused"):
        connect(seeded, manager, yuki, "f" * 32, administration)
    with pytest.raises(SettingsError, match="not reachable with this key"):
        connect(seeded, manager, yuki, access_key, "00000000-0000-4000-8000-000000000000")
    with pytest.raises(SettingsError, match="no folder 6"):
        connect(seeded, manager, yuki, access_key, administration, folder="6")
    target = connect(seeded, manager, yuki, access_key, administration)
    assert target == f"yuki:be:{administration}"
    with Session(seeded.engine) as session:
        [row] = session.scalars(sa.select(ExporterConfig)).all()
    assert access_key not in json.dumps(row.settings)
    assert set(row.settings["access_key"]) == {"__encrypted__"}
    assert row.settings["administration"] == administration


def test_upload_n_documents_into_the_right_folders_with_marker_and_amount(
        seeded: YukiSeeded, manager: PluginManager, yuki: YukiSandboxServer, access_key: str,
        administration: str) -> None:
    target = connect(seeded, manager, yuki, access_key, administration)
    outcomes = [_run(seeded, manager, doc, target) for doc in seeded.document_ids]
    assert [o.status for o in outcomes] == ["completed"] * len(TYPES)
    uploads = yuki.uploads()
    expected = {"FIN-TAX-ASSESSMENT": 1, "NSSO-CONTRIBUTIONS": 1}
    assert [u["folder"] for u in uploads] == [expected.get(t or "", 7) for t in TYPES]
    assert {u["administration"] for u in uploads} == {administration}
    for i, (upload, outcome) in enumerate(zip(uploads, outcomes, strict=True)):
        assert outcome.receipt is not None
        assert outcome.receipt["document"] == upload["id"]
        assert outcome.receipt["marker"] in upload["remarks"]
        assert f"e-Box m-{i}" in upload["remarks"]
        assert upload["file_name"].endswith(f"_{outcome.receipt['marker'][4:12]}.pdf")
        assert upload["sha256"] in {d["sha256"] for d in _document_hashes(seeded)}
    assert uploads[0]["amount"] == "123.45"  # the payment request of the first document
    assert {u["amount"] for u in uploads[1:]} == {"0.00"}
    assert yuki.state.calls.count("Authenticate") == 1  # one session for the whole run (and the check)
    assert len(_outbox(seeded, "be.eboxd.export.completed")) == len(TYPES)


def _document_hashes(seeded: YukiSeeded) -> list[dict[str, str]]:
    with seeded.engine.connect() as conn:
        return [{"sha256": sha} for (sha,) in conn.execute(sa.text("SELECT sha256 FROM documents"))]


def test_session_expiry_mid_run_is_renewed_once(seeded: YukiSeeded, manager: PluginManager, yuki: YukiSandboxServer,
                                                access_key: str, administration: str) -> None:
    target = connect(seeded, manager, yuki, access_key, administration)
    docs = seeded.document_ids
    _run(seeded, manager, docs[0], target)
    _run(seeded, manager, docs[1], target)
    assert yuki.state.expire_sessions() == 1
    for doc in docs[2:]:
        assert _run(seeded, manager, doc, target).status == "completed"
    assert yuki.state.calls.count("Authenticate") == 2
    assert len(yuki.uploads()) == len(docs)
    assert {status for _, status, _ in _ledger(seeded)} == {"completed"}


def test_invalid_key_fails_at_once_with_a_reconnect_hint(seeded: YukiSeeded, manager: PluginManager,
                                                         yuki: YukiSandboxServer, access_key: str,
                                                         administration: str) -> None:
    target = connect(seeded, manager, yuki, access_key, administration)
    del yuki.state.keys[access_key]  # revoked in Yuki after connecting
    yuki.state.expire_sessions()
    outcome = _run(seeded, manager, seeded.document_ids[0], target)  # not the last attempt, still final
    assert outcome.status == "failed"
    assert "Invalid access key" in (outcome.error or "")
    assert "eboxd yuki connect" in (outcome.error or "")
    assert _ledger(seeded) == [(seeded.document_ids[0], "failed", 1)]
    [event] = _outbox(seeded, "be.eboxd.export.failed")
    assert access_key not in json.dumps(event.payload)
    assert yuki.uploads() == []


def test_daily_limit_defers_to_the_next_day_without_failing(seeded: YukiSeeded, manager: PluginManager,
                                                            yuki: YukiSandboxServer, access_key: str,
                                                            administration: str) -> None:
    target = connect(seeded, manager, yuki, access_key, administration)  # Authenticate, Administrations, Folders
    domain = yuki.state.keys[access_key].domains[0]
    yuki.state.set_daily_limit(domain, 5)
    first, second, third = seeded.document_ids[:3]
    assert _run(seeded, manager, first, target).status == "completed"
    assert _run(seeded, manager, second, target).status == "completed"  # the 5th call of the day
    before = dt.datetime.now(dt.UTC)
    outcome = _run(seeded, manager, third, target, last=True)  # even on the last dramatiq attempt
    assert outcome.status == "deferred"
    assert "Daily limit exceeded" in (outcome.error or "")
    calls = len(yuki.state.calls)
    assert _run(seeded, manager, seeded.document_ids[3], target).status == "deferred"
    assert len(yuki.state.calls) == calls  # the domain is paused: no call spent
    assert [s for _, s, _ in _ledger(seeded)] == ["completed", "completed", "deferred", "deferred"]
    assert _outbox(seeded, "be.eboxd.export.failed") == []
    tasks = [t for t in _outbox(seeded, EXPORT_DOCUMENT.actor_name) if t.payload["document_id"] == third]
    [task] = tasks
    assert task.payload == {"document_id": third, "exporter": "yuki", "target": target}
    available = task.available_at.replace(tzinfo=dt.UTC) if task.available_at.tzinfo is None else task.available_at
    assert abs(available - next_yuki_day(before)) < dt.timedelta(minutes=1)
    assert len(yuki.uploads()) == 2


def test_completed_export_redelivered_is_a_no_op(seeded: YukiSeeded, manager: PluginManager, yuki: YukiSandboxServer,
                                                  access_key: str, administration: str) -> None:
    target = connect(seeded, manager, yuki, access_key, administration)
    doc = seeded.document_ids[0]
    first = _run(seeded, manager, doc, target)
    calls = len(yuki.state.calls)
    again = _run(seeded, manager, doc, target)
    assert again.already_done
    assert again.receipt == first.receipt
    assert len(yuki.state.calls) == calls  # not even a search
    assert len(yuki.uploads()) == 1


def test_lost_response_then_redelivery_finds_the_upload_instead_of_sending_again(
        seeded: YukiSeeded, manager: PluginManager, yuki: YukiSandboxServer, access_key: str,
        administration: str) -> None:
    target = connect(seeded, manager, yuki, access_key, administration)
    doc = seeded.document_ids[1]
    yuki.state.fail_next("", operation="UploadDocumentWithData", kind="reset_after_store")
    with pytest.raises(Exception, match="no answer"):
        _run(seeded, manager, doc, target)
    assert _ledger(seeded) == [(doc, "retrying", 1)]
    outcome = _run(seeded, manager, doc, target)
    assert outcome.status == "completed"
    assert outcome.receipt is not None
    assert outcome.receipt["reconciled"] is True
    [upload] = yuki.uploads()
    assert outcome.receipt["document"] == upload["id"]
    assert yuki.state.calls.count("SearchDocuments") == 1


def test_killed_worker_redelivery_through_the_export_actor_uploads_once(
        seeded: YukiSeeded, manager: PluginManager, yuki: YukiSandboxServer, access_key: str, administration: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The real ``export_document`` actor on a dramatiq worker: a document uploaded by a worker that died
    before recording it (ledger row left ``exporting``), then the task delivered twice more."""
    from types import SimpleNamespace  # noqa: PLC0415

    from daemon.workers import exporting  # noqa: PLC0415

    target = connect(seeded, manager, yuki, access_key, administration)
    doc = seeded.document_ids[0]
    _run(seeded, manager, doc, target)  # delivered to Yuki...
    with seeded.engine.begin() as tx:  # ...but the worker died before the ledger said so
        tx.execute(sa.update(Export).values(status="exporting", receipt=None,  # claimed before its time limit
                                            updated_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
    assert len(yuki.uploads()) == 1

    broker = StubBroker(middleware=[Retries(max_retries=0), CurrentMessage()])
    broker.emit_after("process_boot")
    dramatiq.set_broker(broker)
    broker.declare_actor(exporting.export_document_actor)
    context = SimpleNamespace(engine=seeded.engine, store=seeded.store, secrets=seeded.secrets)
    monkeypatch.setattr(exporting, "worker_context", lambda: context)
    monkeypatch.setattr(exporting, "get_plugin_manager", lambda: manager)
    for _ in range(2):  # the redelivery, and a duplicate of it
        broker.enqueue(dramatiq.Message(queue_name=EXPORT_DOCUMENT.queue_name, actor_name=EXPORT_DOCUMENT.actor_name,
                                        args=(), kwargs={"document_id": doc, "exporter": "yuki", "target": target},
                                        options={}))
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=1)
    worker.start()
    try:
        broker.join(EXPORT_DOCUMENT.queue_name, fail_fast=True)
        worker.join()
    finally:
        worker.stop()
    assert len(yuki.uploads()) == 1
    assert _ledger(seeded) == [(doc, "completed", 2)]
    with Session(seeded.engine) as session:
        receipt = session.scalars(sa.select(Export.receipt)).one()
    assert receipt["reconciled"] is True
    assert receipt["document"] == yuki.uploads()[0]["id"]


def test_marker_is_stable_per_document(seeded: YukiSeeded) -> None:
    from daemon.exports import export_document_of  # noqa: PLC0415

    with Session(seeded.engine) as session:
        a = export_document_of(session, seeded.store, seeded.document_ids[0])
        b = export_document_of(session, seeded.store, seeded.document_ids[0])
    assert a is not None
    assert b is not None
    assert marker_of(a) == marker_of(b) == f"exp-{a.sha256[:12]}"
