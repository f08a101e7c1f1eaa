"""Ponto webhooks on ``eboxd serve``'s HTTP server: a signed event is accepted and queues a sync;
forged (other key, unknown key, tampered body, wrong audience), stale, replayed and unsigned ones
are refused with a 4xx and logged. Keys come from the sandbox's keys endpoint over mTLS, cached."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from daemon.banking.ponto import PontoSettings, WebhookVerifier, webhook_route
from daemon.db.models import OutboxRow
from daemon.sandbox.ponto import PontoSandbox
from daemon.service.http import StatusServer
from daemon.workers.tasks import SYNC_PONTO

PATH = "/ponto/webhook"
EVENT = "account.transactionsCreated"


@pytest.fixture
def endpoint(engine: Engine, settings: PontoSettings) -> Iterator[tuple[str, WebhookVerifier]]:
    verifier = WebhookVerifier(settings, engine)
    server = StatusServer("127.0.0.1", 0, lambda: (True, {}), {PATH: webhook_route(verifier)})
    server.start()
    host, port = server.address
    yield f"http://{host}:{port}{PATH}", verifier
    server.stop()


def post(url: str, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/vnd.api+json", **({"Signature": signature} if signature else {})}
    return httpx.post(url, content=body, headers=headers, timeout=10)


def _sync_tasks(engine: Engine) -> list[dict[str, object]]:
    with Session(engine) as session:
        rows = session.scalars(select(OutboxRow).where(OutboxRow.topic == SYNC_PONTO.actor_name))
        return [row.payload for row in rows]


def test_a_signed_webhook_queues_a_sync_and_a_replay_is_refused(
        engine: Engine, sandbox: PontoSandbox, connected: str, endpoint: tuple[str, WebhookVerifier]) -> None:
    url, verifier = endpoint
    body, signature = sandbox.state.webhook(EVENT, connected)
    response = post(url, body, signature)
    assert response.status_code == 202
    assert response.json()["syncQueued"] is True
    [task] = _sync_tasks(engine)
    assert task["request_sync"] is False  # Ponto just synchronized: only read
    with capture_logs() as logs:
        assert post(url, body, signature).status_code == 409
    assert [entry["reason"] for entry in logs if entry["event"] == "ponto.webhook_refused"] == ["replayed"]
    other_body, other_signature = sandbox.state.webhook(EVENT, connected)
    assert post(url, other_body, other_signature).status_code == 202
    assert len(_sync_tasks(engine)) == 2  # keys cached
    assert verifier.key_fetches == 1


def test_an_event_for_an_unknown_account_is_accepted_without_a_sync(
        engine: Engine, sandbox: PontoSandbox, endpoint: tuple[str, WebhookVerifier]) -> None:
    body, signature = sandbox.state.webhook(EVENT, "not-ours")
    response = post(endpoint[0], body, signature)
    assert response.status_code == 202
    assert response.json()["syncQueued"] is False
    assert _sync_tasks(engine) == []


def test_forged_stale_and_tampered_webhooks_are_refused_and_logged(
        engine: Engine, sandbox: PontoSandbox, connected: str, endpoint: tuple[str, WebhookVerifier]) -> None:
    url, _verifier = endpoint
    state = sandbox.state
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body, good = state.webhook(EVENT, connected)
    cases: list[tuple[str, bytes, str | None, int]] = [
        ("bad_signature", *state.webhook(EVENT, connected, signer=forger), 401),  # the sandbox's kid, another key
        ("unknown_key", *state.webhook(EVENT, connected, signer=forger, kid="forger"), 401),
        ("digest_mismatch", body.replace(connected.encode(), b"x" * len(connected)), good, 401),
        ("stale", *state.webhook(EVENT, connected, now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)), 401),
        ("malformed", body, None, 400),
        ("malformed", body, "not-a-jwt", 400),
    ]
    with capture_logs() as logs:
        for reason, case_body, signature, status in cases:
            response = post(url, case_body, signature)
            assert (response.status_code, response.json()["error"]) == (status, reason)
    refused = [entry["reason"] for entry in logs if entry["event"] == "ponto.webhook_refused"]
    assert refused == [case[0] for case in cases]
    assert _sync_tasks(engine) == []
    assert post(url, body, good).status_code == 202  # the genuine one still passes


def test_a_webhook_for_another_application_is_refused(
        engine: Engine, sandbox: PontoSandbox, connected: str, settings: PontoSettings) -> None:
    verifier = WebhookVerifier(PontoSettings(**{**settings.__dict__, "client_id": "another-app"}), engine)
    body, signature = sandbox.state.webhook(EVENT, connected)
    status, answer = webhook_route(verifier)({"Signature": signature}, body)
    assert status == 401
    assert b"bad_claims" in answer
