"""The Ponto client against the sandbox over real TLS with a client certificate: connect (loopback
callback and pasted code), PKCE, mTLS enforcement, paging ≥ 1,000 transactions, synchronizations,
429/5xx handling."""

from __future__ import annotations

import threading
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from daemon.banking.ponto import (
    PROVIDER,
    Pkce,
    PontoApiError,
    PontoClient,
    PontoSettings,
    PontoUnavailable,
    complete_connect,
    exchange_code,
    wait_for_callback,
)
from daemon.credentials import TokenStore
from daemon.db.models import OAuthToken, PontoAccount
from daemon.sandbox.ponto import PontoSandbox
from tests.ponto.conftest import IBAN, NUMBER, consent, no_cert_context


def test_connect_through_the_loopback_callback_links_accounts_and_stores_tokens_encrypted(
        engine: Engine, store: TokenStore, settings: PontoSettings, sandbox: PontoSandbox, enterprise_id: int) -> None:
    account = sandbox.state.add_account(IBAN)
    pkce = Pkce.new()
    listening = threading.Event()
    got: dict[str, str] = {}
    waiter = threading.Thread(target=lambda: got.update(code=wait_for_callback(settings.redirect_uri, pkce, timeout=10,
                                                                              ready=listening.set)))
    waiter.start()
    assert listening.wait(5)
    redirect = consent(settings, pkce)
    assert httpx.get(redirect, timeout=5).status_code == 200  # the browser follows the redirect
    waiter.join(10)
    complete_connect(engine, store, settings, NUMBER, got["code"], pkce)
    with Session(engine) as session:
        linked = session.scalars(select(PontoAccount)).all()
        blob = session.scalar(select(OAuthToken.token_encrypted).where(OAuthToken.provider == PROVIDER))
    assert [(a.account_id, a.iban, a.enterprise_id) for a in linked] == [(account, IBAN, enterprise_id)]
    stored = store.load(PROVIDER, NUMBER)
    assert stored is not None
    assert stored.pair.refresh_token
    assert stored.pair.refresh_token.encode() not in blob
    assert stored.pair.access_token.encode() not in blob


def test_a_code_needs_the_right_pkce_verifier_and_works_once(settings: PontoSettings, sandbox: PontoSandbox) -> None:
    pkce = Pkce.new()
    code = consent(settings, pkce).split("code=")[1].split("&")[0]
    with pytest.raises(PontoApiError, match="invalid_grant"):
        exchange_code(settings, code, Pkce.new())  # another verifier: refused (and the code is spent)
    pkce2 = Pkce.new()
    code2 = consent(settings, pkce2).split("code=")[1].split("&")[0]
    assert exchange_code(settings, code2, pkce2).refresh_token
    with pytest.raises(PontoApiError):
        exchange_code(settings, code2, pkce2)


def test_the_sandbox_requires_a_client_certificate_and_the_client_verifies_the_server(
        settings: PontoSettings, sandbox: PontoSandbox) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(sandbox.url + "/accounts", verify=no_cert_context(settings)).raise_for_status()
    with pytest.raises(httpx.ConnectError):  # the system CAs do not know the sandbox CA
        httpx.get(sandbox.url + "/")


def test_sync_then_page_through_1200_transactions(engine: Engine, store: TokenStore, settings: PontoSettings,
                                                  sandbox: PontoSandbox, connected: str) -> None:
    for i in range(1200):
        sandbox.state.stage_transaction(connected, Decimal(-i - 1) / 100, remittance=f"tx {i}")
    with PontoClient(settings, store, NUMBER) as client:
        assert list(client.transactions(connected)) == []  # not synchronized yet
        sync = client.create_synchronization(connected)
        assert client.synchronization(sync)["attributes"]["status"] in ("pending", "running")
        assert client.wait_synchronization(sync, interval=0.05) == "success"
        seen = list(client.transactions(connected, limit=100))
        updated = list(client.updated_transactions(sync))
    pages = [p for m, p in sandbox.state.requests if p == f"/accounts/{connected}/transactions"]
    assert len(seen) == 1200
    assert len({t["id"] for t in seen}) == 1200
    assert len(pages) == 1 + 12  # one empty read, then 12 pages of 100 following links.next
    assert {t["id"] for t in updated} == {t["id"] for t in seen}


def test_rate_limits_and_server_errors_are_retried_then_given_up(store: TokenStore, settings: PontoSettings,
                                                                 sandbox: PontoSandbox, connected: str) -> None:
    waits: list[float] = []
    with PontoClient(settings, store, NUMBER, sleep=waits.append, backoff=0.25) as client:
        sandbox.state.fail_next(429, 2, retry_after=3)
        sandbox.state.fail_next(503, 1)
        assert [a["id"] for a in client.accounts()] == [connected]
        assert waits == [3.0, 3.0, 1.0]  # Retry-After honoured; the 5xx on the third attempt backs off 0.25·2²
        sandbox.state.fail_next(500, 5)
        with pytest.raises(PontoUnavailable, match="500 after 5 attempts"):
            client.accounts()
        with pytest.raises(PontoApiError, match="404"):
            client.request("GET", "/accounts/nope")


def test_links_to_another_origin_are_not_followed(store: TokenStore, settings: PontoSettings, connected: str) -> None:
    with PontoClient(settings, store, NUMBER) as client, pytest.raises(Exception, match="another origin"):
        client.request("GET", "https://evil.example/accounts")


def test_an_expired_access_token_is_refreshed_once_and_the_old_refresh_token_is_refused(
        store: TokenStore, settings: PontoSettings, sandbox: PontoSandbox, connected: str) -> None:
    before = store.load(PROVIDER, NUMBER)
    assert before is not None
    sandbox.state.access_tokens.clear()  # every access token expired at Ponto
    with capture_logs() as logs, PontoClient(settings, store, NUMBER) as client:
        assert client.accounts()
    after = store.load(PROVIDER, NUMBER)
    logged = repr(logs)
    assert after is not None
    for secret in (before.pair.refresh_token, after.pair.refresh_token, after.pair.access_token,
                   settings.client_secret):
        assert secret not in logged
    assert "credentials.refreshed" in logged
    assert after is not None
    assert after.version == before.version + 1
    assert sandbox.state.refresh_grants == 1
    with httpx.Client(verify=settings.ssl_context()) as http:  # the spent refresh token is refused
        response = http.post(sandbox.url + "/oauth2/token", auth=(settings.client_id, settings.client_secret),
                             data={"grant_type": "refresh_token", "refresh_token": before.pair.refresh_token})
    assert response.status_code == 400
    assert "reused" in response.text
