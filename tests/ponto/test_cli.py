"""``eboxd bank ponto connect --paste`` then ``sync`` and ``accounts``, run in-process against the sandbox."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

import daemon.cli.ponto as ponto_cli
from daemon.banking.ponto import PontoSettings
from daemon.cli import cli
from daemon.db.models import BankTransaction, OAuthToken, PontoAccount
from daemon.sandbox.ponto import PontoSandbox
from tests.ponto.conftest import IBAN, NUMBER, consent


@pytest.fixture
def env(tmp_path: Path, database_url: str, engine: Engine, settings: PontoSettings,
        monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("EBOXD_") and not name.startswith("EBOXD_TEST"):
            monkeypatch.delenv(name)
    key, secret, config = tmp_path / "master.key", tmp_path / "ponto-secret", tmp_path / "eboxd.toml"
    key.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode() + "\n")
    secret.write_text(settings.client_secret)
    config.write_text("")
    return {"EBOXD_CONFIG": str(config), "EBOXD_DATABASE__URL": database_url, "EBOXD_SECRETS__KEY_FILE": str(key),
           "EBOXD_DAEMON__DATA_DIR": str(tmp_path / "state"),
           "EBOXD_PONTO__ENABLED": "true", "EBOXD_PONTO__API_URL": settings.api_url,
           "EBOXD_PONTO__AUTHORIZE_URL": settings.authorize_url, "EBOXD_PONTO__CLIENT_ID": settings.client_id,
           "EBOXD_PONTO__CLIENT_SECRET_FILE": str(secret), "EBOXD_PONTO__CERTIFICATE_FILE": settings.certificate_file,
           "EBOXD_PONTO__KEY_FILE": settings.key_file, "EBOXD_PONTO__CA_FILE": settings.ca_file,
           "EBOXD_PONTO__REDIRECT_URI": settings.redirect_uri}


def test_connect_with_a_pasted_url_then_sync(env: dict[str, str], engine: Engine, settings: PontoSettings,
                                             sandbox: PontoSandbox, enterprise_id: int,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    account = sandbox.state.add_account(IBAN)
    sandbox.state.stage_transaction(account, "-10.00", remittance="hello")
    printed: dict[str, Any] = {}
    real = ponto_cli.authorization_url

    def capture(s: PontoSettings, pkce: Any) -> str:
        printed["pkce"] = pkce
        return real(s, pkce)

    monkeypatch.setattr(ponto_cli, "authorization_url", capture)
    # The person opens the printed URL, consents and pastes the redirected URL back.
    monkeypatch.setattr(ponto_cli.click, "prompt", lambda *_a, **_k: consent(settings, printed["pkce"]))
    runner = CliRunner()
    result = runner.invoke(cli, ["bank", "ponto", "connect", "--enterprise", NUMBER, "--paste"], env=env)
    assert result.exit_code == 0, result.output
    assert f"linked {account} {IBAN}" in result.output
    assert sandbox.state.client_secret not in result.output
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(OAuthToken)) == 1
        assert session.scalar(select(PontoAccount.account_id)) == account
    result = runner.invoke(cli, ["bank", "ponto", "sync", "--enterprise", NUMBER], env=env)
    assert result.exit_code == 0, result.output
    assert "success, read 1, new 1" in result.output
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(BankTransaction)) == 1
    result = runner.invoke(cli, ["bank", "ponto", "accounts"], env=env)
    assert result.exit_code == 0
    assert IBAN in result.output
    assert "success" in result.output
