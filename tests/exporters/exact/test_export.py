"""The Exact exporter through the export ledger (``run_export``) on both databases, against the
sandbox over HTTP: connect, N documents, re-export, an unknown outcome, a lost token chain, the
oversize refusal and the error circuit breaker."""

from __future__ import annotations

import hashlib
import json

import pytest
import sqlalchemy as sa
from eboxd_exact.exporter import ExactExporter, marker_of
from eboxd_exact.limits import MAX_ERRORS, clear_governors
from eboxd_exact.sandbox import ExactSandboxServer
from sqlalchemy.orm import Session

from daemon.credentials import NEEDS_RECONNECT
from daemon.db.models import Document, Export, ExporterConfig, OAuthToken, OutboxRow, ProviderCallError
from daemon.exports import ExportOutcome, export_document_of, run_export
from daemon.plugins import PluginManager
from tests.exporters.exact.conftest import (
    DOCUMENTS,
    ExactSeeded,
    FakeClock,
    attachments_in,
    connect,
    documents_in,
    sandbox_app,
)


def _run(seeded: ExactSeeded, manager: PluginManager, document_id: int, target: str, *,
         last: bool = False) -> ExportOutcome:
    return run_export(seeded.engine, seeded.store, seeded.secrets, manager, document_id, "exact", target,
                      last_attempt=last)


def _ledger(seeded: ExactSeeded) -> list[tuple[int, str, int]]:
    with Session(seeded.engine) as session:
        return [(r.document_id, r.status, r.attempts) for r in session.scalars(sa.select(Export).order_by(Export.id))]


def _outbox(seeded: ExactSeeded, topic: str) -> list[OutboxRow]:
    with Session(seeded.engine) as session:
        return list(session.scalars(sa.select(OutboxRow).where(OutboxRow.topic == topic).order_by(OutboxRow.id)))


def test_connect_stores_tokens_encrypted_and_picks_the_current_division(
        seeded: ExactSeeded, manager: PluginManager, exact: ExactSandboxServer, clock: FakeClock) -> None:
    done = connect(seeded, manager, exact, clock)
    host = exact.url.removeprefix("http://")
    assert (done.target, done.division, done.division_name) == (f"exact:{host}:124132", 124132, "Acme NV")
    chain = exact.state.oauth.chains[-1]
    with Session(seeded.engine) as session:
        token = session.scalars(sa.select(OAuthToken)).one()
        config = session.scalars(sa.select(ExporterConfig)).one()
    assert token.state == "ok"
    assert token.version == 1
    assert chain.access_token.encode() not in token.token_encrypted
    assert chain.refresh_token.encode() not in token.token_encrypted
    assert token.details is not None
    assert token.subject == f"{host}/{exact.state.app.client_id}/{exact.state.user_id}"  # a connection, not a division
    assert "division" not in token.details
    assert config.settings["division"] == "124132"
    assert config.settings["connection"] == token.subject
    assert exact.state.app.client_secret not in json.dumps(config.settings)
    assert set(config.settings["client_secret"]) == {"__encrypted__"}

    other = connect(seeded, manager, exact, clock, division=124133)  # the user picks another division
    assert other.division == 124133
    assert other.replaced == [done.target]
    assert sum(chain.alive for chain in exact.state.oauth.chains) == 1  # re-consent replaced the chain
    with Session(seeded.engine) as session:
        assert session.scalars(sa.select(OAuthToken.version)).one() == 2
        enabled = session.scalars(sa.select(ExporterConfig.target).where(ExporterConfig.enabled.is_(True))).all()
    assert enabled == [other.target]

    with pytest.raises(Exception, match="division 999 is not one this Exact user can open"):
        connect(seeded, manager, exact, clock, division=999)


def test_export_n_documents_then_again_is_a_no_op(seeded: ExactSeeded, manager: PluginManager,
                                                 exact: ExactSandboxServer, clock: FakeClock) -> None:
    target = connect(seeded, manager, exact, clock).target
    outcomes = [_run(seeded, manager, doc, target) for doc in seeded.document_ids]
    assert [o.status for o in outcomes] == ["completed"] * DOCUMENTS
    documents, attachments = documents_in(exact), attachments_in(exact)
    assert len(documents) == len(attachments) == DOCUMENTS
    with Session(seeded.engine) as session:
        exported = [export_document_of(session, seeded.store, doc) for doc in seeded.document_ids]
    for document, exported_doc, attachment, outcome in zip(documents, exported, attachments, outcomes, strict=True):
        assert exported_doc is not None
        assert outcome.receipt is not None
        marker = marker_of(exported_doc)
        assert outcome.receipt["marker"] == marker
        assert outcome.receipt["document"] == document["ID"]
        assert outcome.receipt["attachment"] == attachment["ID"]
        assert str(document["Subject"]).endswith(f"[eboxd {marker}]")
        assert attachment["Document"] == document["ID"]
        assert hashlib.sha256(attachment["_data"]).hexdigest() == exported_doc.sha256  # type: ignore[arg-type]
    assert [d["Type"] for d in documents] == [20] + [55] * (DOCUMENTS - 1)  # the one with an amount: an invoice
    assert documents[0]["AmountFC"] == "123.45"
    assert len(_outbox(seeded, "be.eboxd.export.completed")) == DOCUMENTS

    calls = len(exact.state.stats.calls)
    again = [_run(seeded, manager, doc, target) for doc in seeded.document_ids]
    assert all(o.already_done for o in again)
    assert [o.receipt for o in again] == [o.receipt for o in outcomes]
    assert len(exact.state.stats.calls) == calls  # not even a lookup
    assert len(documents_in(exact)) == DOCUMENTS


@pytest.mark.parametrize("dropped", ["Documents", "DocumentAttachments"])
def test_connection_dropped_after_the_server_stored_it_never_duplicates(
        seeded: ExactSeeded, manager: PluginManager, exact: ExactSandboxServer, clock: FakeClock,
        dropped: str) -> None:
    target = connect(seeded, manager, exact, clock).target
    doc = seeded.document_ids[1]
    exact.state.fail_next("reset_after_store", entity=dropped, method="POST")
    with pytest.raises(Exception, match="no answer"):
        _run(seeded, manager, doc, target)
    assert _ledger(seeded) == [(doc, "retrying", 1)]
    assert len(documents_in(exact)) == 1  # Exact did create it

    outcome = _run(seeded, manager, doc, target)
    assert outcome.status == "completed"
    assert outcome.receipt is not None
    assert outcome.receipt["reconciled"] is True
    [document], [attachment] = documents_in(exact), attachments_in(exact)
    assert outcome.receipt["document"] == document["ID"]
    assert outcome.receipt["attachment"] == attachment["ID"]
    assert attachment["Document"] == document["ID"]


def test_an_answer_slower_than_the_timeout_is_an_unknown_outcome_resolved_by_the_marker(
        seeded: ExactSeeded, manager: PluginManager, exact: ExactSandboxServer, clock: FakeClock) -> None:
    target = connect(seeded, manager, exact, clock, timeout="1").target
    doc = seeded.document_ids[2]
    exact.state.fail_next("slow", entity="Documents", method="POST", seconds=2.5)  # stored, answered late
    with pytest.raises(Exception, match="no answer"):
        _run(seeded, manager, doc, target)
    outcome = _run(seeded, manager, doc, target)
    assert outcome.status == "completed"
    assert outcome.receipt is not None
    assert outcome.receipt["reconciled"] is True
    assert len(documents_in(exact)) == len(attachments_in(exact)) == 1


def test_a_server_error_is_retried_and_creates_the_document_once(
        seeded: ExactSeeded, manager: PluginManager, exact: ExactSandboxServer, clock: FakeClock) -> None:
    target = connect(seeded, manager, exact, clock).target
    doc = seeded.document_ids[3]
    exact.state.fail_next("status", entity="Documents", method="POST", status=503)
    with pytest.raises(Exception, match="HTTP 503"):
        _run(seeded, manager, doc, target)
    assert _ledger(seeded) == [(doc, "retrying", 1)]
    outcome = _run(seeded, manager, doc, target)
    assert outcome.status == "completed"
    assert outcome.receipt is not None
    assert "reconciled" not in outcome.receipt  # looked up, not there: created now
    assert len(documents_in(exact)) == len(attachments_in(exact)) == 1


def test_a_refused_refresh_token_needs_reconnect_without_a_retry_loop(
        seeded: ExactSeeded, manager: PluginManager, exact: ExactSandboxServer, clock: FakeClock) -> None:
    target = connect(seeded, manager, exact, clock).target
    assert _run(seeded, manager, seeded.document_ids[0], target).status == "completed"
    exact.state.oauth.chains[-1].alive = False  # revoked in Exact (or another app instance used the chain)
    clock.advance(580)
    outcome = _run(seeded, manager, seeded.document_ids[1], target)  # not the last attempt, still final
    assert outcome.status == "failed"
    assert "needs reconnecting" in (outcome.error or "")
    assert "eboxd exact connect" in (outcome.error or "")
    with Session(seeded.engine) as session:
        row = session.scalars(sa.select(OAuthToken)).one()
    assert row.state == NEEDS_RECONNECT
    refused = len(exact.state.oauth.stats.refused)
    calls = len(exact.state.stats.calls)
    assert _run(seeded, manager, seeded.document_ids[2], target).status == "failed"
    assert len(exact.state.oauth.stats.refused) == refused  # no second try with the dead token
    assert len(exact.state.stats.calls) == calls
    [event, _] = _outbox(seeded, "be.eboxd.export.failed")
    assert exact.state.app.client_secret not in json.dumps(event.payload)

    connect(seeded, manager, exact, clock)  # a person reconnects: exports work again
    assert _run(seeded, manager, seeded.document_ids[3], target).status == "completed"


def test_an_api_401_refreshes_only_a_token_old_enough_and_never_resends_the_refused_one(
        seeded: ExactSeeded, manager: PluginManager, exact: ExactSandboxServer, clock: FakeClock) -> None:
    target = connect(seeded, manager, exact, clock).target
    chain = exact.state.oauth.chains[-1]
    chain.access_token = "revoked"  # Exact stops accepting our access token (the refresh token lives)
    with pytest.raises(Exception, match="should still be valid"):
        _run(seeded, manager, seeded.document_ids[0], target)
    assert exact.state.oauth.describe()["refreshes"] == 0  # Exact would answer TooEarly: not asked
    assert [c[2] for c in exact.state.stats.calls[-1:]] == [401]  # one 401, the token not sent twice

    clock.advance(572)  # old enough for Exact to refresh, though not yet due by our margin
    assert _run(seeded, manager, seeded.document_ids[0], target).status == "completed"
    assert exact.state.oauth.describe()["refreshes"] == 1
    assert exact.state.oauth.describe()["refused"] == []


def test_a_document_over_the_body_cap_is_refused_before_any_call(
        seeded: ExactSeeded, manager: PluginManager, exact: ExactSandboxServer, clock: FakeClock) -> None:
    target = connect(seeded, manager, exact, clock).target
    doc = seeded.document_ids[0]
    with seeded.engine.begin() as tx:
        tx.execute(sa.update(Document).where(Document.id == doc).values(size=8 * 1024 * 1024))
    calls = len(exact.state.stats.calls)
    outcome = _run(seeded, manager, doc, target)
    assert outcome.status == "failed"
    assert "10 MB" in (outcome.error or "")
    assert len(exact.state.stats.calls) == calls


def test_error_answers_open_the_circuit_before_exact_would_block_the_key(
        seeded: ExactSeeded, manager: PluginManager, exact: ExactSandboxServer, clock: FakeClock) -> None:
    target = connect(seeded, manager, exact, clock).target
    exact.state.fail_next("status", entity="Documents", method="POST", status=400, count=100)
    outcomes = [_run(seeded, manager, doc, target) for doc in seeded.document_ids]
    assert [o.status for o in outcomes[:MAX_ERRORS]] == ["failed"] * MAX_ERRORS  # a 4xx is never retried
    assert {o.status for o in outcomes[MAX_ERRORS:]} == {"deferred"}
    assert "error answers in the last hour" in (outcomes[-1].error or "")
    errors = [c for c in exact.state.stats.calls if 400 <= c[2] < 500]
    assert len(errors) == MAX_ERRORS <= 10
    assert exact.state.stats.blocked == 0
    clear_governors()  # another worker process: it knows the errors from the database
    assert _run(seeded, manager, seeded.document_ids[-1], target).status == "deferred"
    assert len([c for c in exact.state.stats.calls if 400 <= c[2] < 500]) == MAX_ERRORS
    with Session(seeded.engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ProviderCallError)) == MAX_ERRORS

    clock.advance(3601)  # an hour later the circuit closes
    exact.state._knobs.clear()
    assert _run(seeded, manager, seeded.document_ids[-1], target).status == "completed"


def test_marker_is_stable_per_message_and_document(seeded: ExactSeeded) -> None:
    with Session(seeded.engine) as session:
        a = export_document_of(session, seeded.store, seeded.document_ids[0])
        b = export_document_of(session, seeded.store, seeded.document_ids[0])
        c = export_document_of(session, seeded.store, seeded.document_ids[1])
    assert a is not None
    assert b is not None
    assert c is not None
    assert marker_of(a) == marker_of(b) != marker_of(c)
    assert marker_of(a).startswith("exp-")


def test_settings_are_checked(exporter: ExactExporter, exact: ExactSandboxServer) -> None:
    from daemon.plugins import SettingsError, validate_settings  # noqa: PLC0415

    app = sandbox_app(exact)
    base = {"client_id": app.client_id, "client_secret": "s", "division": "124132",
            "connection": f"start.exactonline.be/{app.client_id}/some-user"}
    with pytest.raises(SettingsError, match="division"):
        validate_settings(exporter, {**base, "division": "acme"})
    with pytest.raises(SettingsError, match="only travel over https"):
        validate_settings(exporter, {**base, "url": "http://exact.example"})
    with pytest.raises(SettingsError, match="gl_account"):
        validate_settings(exporter, {**base, "journal": "60"})
    assert exporter.target(validate_settings(exporter, base)) == "exact:start.exactonline.be:124132"
    with pytest.raises(SettingsError, match="is not one of app"):  # another host's or app's tokens
        validate_settings(exporter, {**base, "region": "nl"})
    with pytest.raises(SettingsError, match="is not one of app"):
        validate_settings(exporter, {**base, "connection": "start.exactonline.be/other-app/some-user"})
