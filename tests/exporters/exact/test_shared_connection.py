"""One Exact connection (host, app, Exact user) shared by several enterprises, each exporting to its
own division, through ``run_export`` against the sandbox over HTTP on both databases.

Exact keeps one refresh-token chain per user and app: an accountant connecting a second client
enterprise with the same Exact user used to kill the first one's chain. Here both share one token
row: several expiries, exactly one chain, documents never in the other's division; ``--same-as``
links without a consent; 8 processes for 8 enterprises across an expiry refresh once; reconnecting
one keeps the other working; a refused refresh token stops every enterprise of the connection at
once; the limits stay per division."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import pytest
import sqlalchemy as sa
from eboxd_exact.cli import Connected, connect_enterprise, link_enterprise
from eboxd_exact.limits import MAX_ERRORS
from eboxd_exact.sandbox import ExactSandboxServer
from sqlalchemy.orm import Session

from daemon.credentials import NEEDS_RECONNECT
from daemon.db.models import Export, ExporterConfig, OAuthToken
from daemon.exports import ExportOutcome, run_export
from daemon.plugins import PluginManager
from tests.conftest import REPO
from tests.exporters.exact.conftest import (
    DOCUMENTS,
    ExactSeeded,
    FakeClock,
    attachments_in,
    consent,
    documents_in,
    sandbox_app,
)
from tests.plugins.conftest import seed_documents

A, B = "0123456749", "0403170701"  # A is the seeded enterprise
DIV_A, DIV_B = 124132, 124133


@pytest.fixture
def second(seeded: ExactSeeded, tmp_path: Path) -> list[int]:
    """Enterprise B with documents of its own (the same files as A's: only the ledger tells them apart)."""
    _, ids = seed_documents(seeded.engine, seeded.store, tmp_path, [f"b-{i}.pdf" for i in range(DOCUMENTS)], number=B)
    return ids


def _consent_connect(seeded: ExactSeeded, manager: PluginManager, exact: ExactSandboxServer, clock: FakeClock,
                     number: str, division: int) -> Connected:
    app = sandbox_app(exact)
    settings = {"client_id": app.client_id, "client_secret": app.client_secret, "url": exact.url, "timeout": "5"}
    return connect_enterprise(seeded.engine, seeded.secrets, manager, number, settings, app, consent(exact, app),
                              division=division, clock=clock.now)


def _link(seeded: ExactSeeded, manager: PluginManager, clock: FakeClock, number: str, same_as: str,
          division: int | None) -> Connected:
    return link_enterprise(seeded.engine, seeded.secrets, manager, number, same_as, division=division,
                           clock=clock.now)


def _run(seeded: ExactSeeded, manager: PluginManager, document_id: int, target: str) -> ExportOutcome:
    return run_export(seeded.engine, seeded.store, seeded.secrets, manager, document_id, "exact", target,
                      last_attempt=False)


def _tokens(seeded: ExactSeeded) -> list[OAuthToken]:
    with Session(seeded.engine) as session:
        return list(session.scalars(sa.select(OAuthToken)))


def _division_of(exact: ExactSandboxServer, outcome: ExportOutcome) -> tuple[int, int]:
    """Where Exact holds the export's Document and its attachment."""
    assert outcome.receipt is not None
    [document] = [d for d in documents_in(exact) if d["ID"] == outcome.receipt["document"]]
    [attachment] = [a for a in attachments_in(exact) if a["ID"] == outcome.receipt["attachment"]]
    return int(document["Division"]), int(attachment["Division"])  # type: ignore[call-overload]


def test_two_enterprises_of_one_user_share_one_chain_across_expiries_and_never_cross_divisions(
        seeded: ExactSeeded, second: list[int], manager: PluginManager, exact: ExactSandboxServer,
        clock: FakeClock) -> None:
    a = _consent_connect(seeded, manager, exact, clock, A, DIV_A)
    assert _run(seeded, manager, seeded.document_ids[0], a.target).status == "completed"
    b = _consent_connect(seeded, manager, exact, clock, B, DIV_B)  # same Exact user: Exact replaces its chain
    assert b.shared_with == [A]
    assert a.connection == b.connection
    [token] = _tokens(seeded)  # one connection row, renewed by B's consent
    assert (token.subject, token.version) == (a.connection, 2)
    with Session(seeded.engine) as session:
        configs = {c.target: c.settings for c in session.scalars(sa.select(ExporterConfig))}
    assert {s["connection"] for s in configs.values()} == {a.connection}
    assert {s["division"] for s in configs.values()} == {str(DIV_A), str(DIV_B)}

    outcomes: list[tuple[int, ExportOutcome]] = []
    for round_ in range(1, 4):  # three token expiries, A and B taking turns to find the token due
        clock.advance(580)
        first, then = ((A, B) if round_ % 2 else (B, A))
        for number in (first, then):
            doc = (seeded.document_ids if number == A else second)[round_]
            outcomes.append((DIV_A if number == A else DIV_B,
                             _run(seeded, manager, doc, a.target if number == A else b.target)))
    assert [o.status for _, o in outcomes] == ["completed"] * 6
    oauth = exact.state.oauth.describe()
    assert oauth["refreshes"] == 3  # one per expiry, whichever enterprise came first
    assert oauth["refused"] == []  # A was never left with a chain B's consent had killed
    assert oauth["liveChains"] == 1
    assert [t.version for t in _tokens(seeded)] == [5]
    for division, outcome in outcomes:
        assert _division_of(exact, outcome) == (division, division)
        assert outcome.receipt is not None
        assert outcome.receipt["division"] == division
    assert len({str(d["Subject"]) for d in documents_in(exact)}) == len(documents_in(exact)) == 7


def test_same_as_links_an_enterprise_to_the_connection_without_a_consent(
        seeded: ExactSeeded, second: list[int], manager: PluginManager, exact: ExactSandboxServer,
        clock: FakeClock) -> None:
    a = _consent_connect(seeded, manager, exact, clock, A, DIV_A)
    with pytest.raises(click.ClickException, match="needs --division"):  # never guessed: it would be A's
        _link(seeded, manager, clock, B, A, None)
    with pytest.raises(click.ClickException, match="division 999 is not one this Exact user can open"):
        _link(seeded, manager, clock, B, A, 999)
    with pytest.raises(click.ClickException, match="has no Exact connection to share"):
        _link(seeded, manager, clock, A, B, DIV_A)
    b = _link(seeded, manager, clock, B, A, DIV_B)
    assert (b.connection, b.division, b.shared_with) == (a.connection, DIV_B, [A])
    oauth = exact.state.oauth.describe()
    assert (oauth["codesIssued"], oauth["liveChains"]) == (1, 1)  # no second consent, no second chain
    [token] = _tokens(seeded)
    assert token.version == 1  # the pair of A's consent, used as it is

    clock.advance(580)
    outcome_b = _run(seeded, manager, second[0], b.target)
    outcome_a = _run(seeded, manager, seeded.document_ids[1], a.target)
    assert (outcome_a.status, outcome_b.status) == ("completed", "completed")
    assert _division_of(exact, outcome_a) == (DIV_A, DIV_A)
    assert _division_of(exact, outcome_b) == (DIV_B, DIV_B)
    assert exact.state.oauth.describe()["refreshes"] == 1


def test_reconnecting_one_enterprise_with_the_same_user_keeps_the_other_working(
        seeded: ExactSeeded, second: list[int], manager: PluginManager, exact: ExactSandboxServer,
        clock: FakeClock) -> None:
    a = _consent_connect(seeded, manager, exact, clock, A, DIV_A)
    b = _link(seeded, manager, clock, B, A, DIV_B)
    assert _run(seeded, manager, second[0], b.target).status == "completed"
    clock.advance(300)
    again = _consent_connect(seeded, manager, exact, clock, A, DIV_A)  # a person connects A again
    assert (again.connection, again.shared_with) == (a.connection, [B])
    for offset in (0, 580):  # B right away (the old access token is dead), then across an expiry
        clock.advance(offset)
        assert _run(seeded, manager, second[1 + bool(offset)], b.target).status == "completed"
    oauth = exact.state.oauth.describe()
    assert oauth["refused"] == []
    assert (oauth["liveChains"], oauth["refreshes"]) == (1, 1)
    assert not [c for c in exact.state.stats.calls if c[2] == 401]  # B never presented a dead token
    assert _run(seeded, manager, seeded.document_ids[0], a.target).status == "completed"
    with Session(seeded.engine) as session:  # and B kept its own division
        settings = session.scalars(sa.select(ExporterConfig.settings).where(ExporterConfig.target == b.target)).one()
    assert settings["division"] == str(DIV_B)


def test_a_refused_refresh_token_stops_every_enterprise_of_the_connection_without_further_calls(
        seeded: ExactSeeded, second: list[int], manager: PluginManager, exact: ExactSandboxServer,
        clock: FakeClock) -> None:
    a = _consent_connect(seeded, manager, exact, clock, A, DIV_A)
    b = _link(seeded, manager, clock, B, A, DIV_B)
    exact.state.oauth.chains[-1].alive = False  # revoked in Exact
    clock.advance(580)
    failed_a = _run(seeded, manager, seeded.document_ids[0], a.target)
    host = exact.url.removeprefix("http://")
    assert failed_a.status == "failed"
    assert f"exact connection sandbox@example.be on {host} needs reconnecting" in (failed_a.error or "")
    assert "every enterprise using this connection" in (failed_a.error or "")
    [token] = _tokens(seeded)
    assert token.state == NEEDS_RECONNECT
    refused, calls = len(exact.state.oauth.stats.refused), len(exact.state.stats.calls)
    assert refused == 1
    failed_b = _run(seeded, manager, second[0], b.target)  # B's token is A's: dead too, known at once
    assert failed_b.status == "failed"
    assert "sandbox@example.be" in (failed_b.error or "")
    assert f"eboxd exact connect --enterprise {B}" in (failed_b.error or "")
    assert _run(seeded, manager, seeded.document_ids[1], a.target).status == "failed"
    assert (len(exact.state.oauth.stats.refused), len(exact.state.stats.calls)) == (refused, calls)

    _consent_connect(seeded, manager, exact, clock, B, DIV_B)  # one consent, through B, heals both
    assert _run(seeded, manager, seeded.document_ids[2], a.target).status == "completed"
    assert _run(seeded, manager, second[1], b.target).status == "completed"


def test_limits_and_the_error_circuit_stay_per_division(
        seeded: ExactSeeded, second: list[int], manager: PluginManager, exact: ExactSandboxServer,
        clock: FakeClock) -> None:
    """Exact counts calls per app and division: A's division running into errors does not stop B."""
    a = _consent_connect(seeded, manager, exact, clock, A, DIV_A)
    b = _link(seeded, manager, clock, B, A, DIV_B)
    exact.state.fail_next("status", entity="Documents", method="POST", status=400, count=MAX_ERRORS)
    assert [_run(seeded, manager, doc, a.target).status for doc in seeded.document_ids[:MAX_ERRORS + 1]] == \
        ["failed"] * MAX_ERRORS + ["deferred"]
    assert _run(seeded, manager, second[0], b.target).status == "completed"


def test_eight_processes_for_eight_enterprises_of_one_user_refresh_exactly_once(
        seeded: ExactSeeded, manager: PluginManager, exact: ExactSandboxServer, clock: FakeClock,
        database_url: str, tmp_path: Path) -> None:
    numbers = [A, "0403170701", "0202239951", "0308357159", "0206731645", "0403170897", "0403170996", "0403171095"]
    divisions = [DIV_A + i for i in range(len(numbers))]
    with exact.state._lock:  # an accountant's Exact user: one division per client enterprise
        for division in divisions:
            exact.state.divisions.setdefault(division, f"Client {division}")
            exact.state.accounts.setdefault(division, [])
    documents = {A: seeded.document_ids[0]}
    for number in numbers[1:]:
        documents[number] = seed_documents(seeded.engine, seeded.store, tmp_path, ["x.pdf"], number=number)[1][0]
    targets = {A: _consent_connect(seeded, manager, exact, clock, A, DIV_A).target}
    for number, division in zip(numbers[1:], divisions[1:], strict=True):
        targets[number] = _link(seeded, manager, clock, number, A, division).target
    clock.advance(580)  # inside Exact's refresh window: every worker finds the shared token due
    exact.state.oauth.refresh_delay = 0.3  # a slow token endpoint widens the race
    start_at = time.time() + 4
    processes = [subprocess.Popen(
        [sys.executable, "-m", "tests.exporters.exact.export_worker", json.dumps({
            "database_url": database_url, "key": (b"x" * 32).hex(), "store": str(tmp_path / "documents"),
            "document_id": documents[number], "target": targets[number], "offset": clock.offset.total_seconds(),
            "start_at": start_at})],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for number in numbers]
    results: list[dict[str, Any]] = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert [r["status"] for r in results] == ["completed"] * len(numbers), results
    oauth = exact.state.oauth.describe()
    assert oauth["refreshes"] == 1
    assert oauth["refused"] == []  # no "Old refresh token used.", no TooEarly
    assert oauth["liveChains"] == 1
    [token] = _tokens(seeded)
    assert token.version == 2
    assert len(documents_in(exact)) == len(attachments_in(exact)) == len(numbers)
    with Session(seeded.engine) as session:
        rows = session.execute(sa.select(Export.document_id, Export.receipt)).all()
    receipts: dict[int, dict[str, Any] | None] = dict(rows)
    for number, division in zip(numbers, divisions, strict=True):  # each in its own enterprise's division
        outcome = ExportOutcome("completed", receipt=receipts[documents[number]])
        assert _division_of(exact, outcome) == (division, division)


def test_another_exact_user_is_another_connection_and_an_unused_one_is_forgotten(
        seeded: ExactSeeded, second: list[int], manager: PluginManager, exact: ExactSandboxServer,
        clock: FakeClock) -> None:
    a = _consent_connect(seeded, manager, exact, clock, A, DIV_A)
    _link(seeded, manager, clock, B, A, DIV_B)
    colleague = exact.state.add_user("collega@example.be")
    exact.state.login_as(colleague)  # B's owner prefers their own Exact user
    b = _consent_connect(seeded, manager, exact, clock, B, DIV_B)
    assert b.connection != a.connection
    assert (b.user, b.shared_with) == ("collega@example.be", [])
    assert sorted(t.subject for t in _tokens(seeded)) == sorted([a.connection, b.connection])
    assert exact.state.oauth.describe()["liveUsers"] == sorted([exact.state.user_id, colleague])  # two chains
    clock.advance(580)
    outcome_a = _run(seeded, manager, seeded.document_ids[0], a.target)
    outcome_b = _run(seeded, manager, second[0], b.target)
    assert (outcome_a.status, outcome_b.status) == ("completed", "completed")
    assert (_division_of(exact, outcome_a), _division_of(exact, outcome_b)) == ((DIV_A, DIV_A), (DIV_B, DIV_B))
    assert exact.state.oauth.describe()["refreshes"] == 2  # one per connection

    moved = _consent_connect(seeded, manager, exact, clock, A, DIV_A)  # A follows: nobody uses the first user's
    assert (moved.connection, moved.shared_with) == (b.connection, [B])
    assert [t.subject for t in _tokens(seeded)] == [b.connection]  # its tokens are not kept for nothing


def test_a_consent_that_fails_afterwards_still_renews_the_chain_of_the_others(
        seeded: ExactSeeded, second: list[int], manager: PluginManager, exact: ExactSandboxServer,
        clock: FakeClock) -> None:
    """The consent kills the user's earlier chain in Exact whatever happens next: its pair is stored
    on the connection before the division is checked, so B is not left on a dead chain."""
    _consent_connect(seeded, manager, exact, clock, A, DIV_A)
    b = _link(seeded, manager, clock, B, A, DIV_B)
    with pytest.raises(click.ClickException, match="division 999 is not one"):
        _consent_connect(seeded, manager, exact, clock, A, 999)
    for offset in (0, 580):
        clock.advance(offset)
        assert _run(seeded, manager, second[bool(offset)], b.target).status == "completed"
    assert exact.state.oauth.describe()["refused"] == []
    assert [t.version for t in _tokens(seeded)] == [3]  # A's consent, the failed one's, one refresh
