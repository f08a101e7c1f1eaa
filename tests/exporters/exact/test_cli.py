"""``eboxd exact connect`` and ``eboxd exact status`` through the real ``eboxd`` group (a plugin
command) against the sandbox — the loopback callback and a pasted code — and ``eboxd sandbox
--with exact`` as a process."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import webbrowser
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from eboxd_exact import ExactPlugin
from eboxd_exact.exporter import ExactExporter
from eboxd_exact.oauth import OAuthApp
from eboxd_exact.sandbox import ExactSandboxServer
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import daemon.plugins.manager as manager_module
from daemon.cli import cli
from daemon.credentials import TokenStore
from daemon.db.models import ExporterConfig, OAuthToken
from daemon.exports import decrypt_settings, run_export
from daemon.plugins import PluginManager
from daemon.secrets import SecretBox, create_key_file
from daemon.store import FilesystemStore
from tests.exporters.exact.conftest import FakeClock, consent
from tests.plugins.conftest import seed_documents

NUMBER = "0123456749"
OTHER = "0403170701"


@pytest.fixture
def cli_env(db_env: dict[str, str], engine: Engine, tmp_path: Path, clock: FakeClock,
            monkeypatch: pytest.MonkeyPatch) -> tuple[SecretBox, PluginManager]:
    """Configuration on the test database, a master key, one enterprise; the CLI's plugins = an
    exporter reading tokens with the CLI's master key."""
    key_file = Path(db_env["EBOXD_DAEMON__DATA_DIR"]) / "master.key"
    create_key_file(key_file)
    seed_documents(engine, FilesystemStore(tmp_path / "documents"), tmp_path, ["a.pdf"], number=NUMBER)
    secrets = SecretBox.from_file(key_file)
    manager = PluginManager()
    manager.register(ExactPlugin(ExactExporter(tokens=TokenStore(engine, secrets, clock=clock.now), clock=clock.now,
                                               sleep=clock.sleep)), name="exact", distribution="eboxd-exact")
    monkeypatch.setattr(manager_module, "_default", manager)
    return secrets, manager


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _connect(exact: ExactSandboxServer, *args: str) -> Result:
    app = exact.state.app
    return CliRunner().invoke(cli, ["exact", "connect", "--enterprise", NUMBER, "--client-id", app.client_id,
                                    "--url", exact.url, *args], input=f"{app.client_secret}\n",
                              catch_exceptions=False)


def test_connect_through_the_loopback_callback_then_export(
        cli_env: tuple[SecretBox, PluginManager], engine: Engine, exact: ExactSandboxServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    secrets, manager = cli_env
    redirect = f"http://127.0.0.1:{_free_port()}/callback"
    exact.state.app.redirect_uris.append(redirect)
    visited: list[str] = []

    def browser(url: str) -> bool:  # the user's browser: consent, then Exact's redirect to our callback
        visited.append(url)
        answer = httpx.get(url, follow_redirects=True, timeout=5)
        assert answer.status_code == 200
        assert "you can close this window" in answer.text
        return True

    monkeypatch.setattr(webbrowser, "open", browser)
    result = _connect(exact, "--redirect-uri", redirect, "--wait", "10")
    assert result.exit_code == 0, result.output
    assert visited
    assert visited[0].startswith(f"{exact.url}/api/oauth2/auth?")
    assert f"exact connected for {NUMBER}: division 124132 Acme NV as sandbox@example.be" in result.stdout
    chain = exact.state.oauth.chains[-1]
    for secret in (exact.state.app.client_secret, chain.access_token, chain.refresh_token):
        assert secret not in result.output
    with Session(engine) as session:
        config = session.scalars(sa.select(ExporterConfig)).one()
        token = session.scalars(sa.select(OAuthToken)).one()
    assert exact.state.app.client_secret not in json.dumps(config.settings)
    assert decrypt_settings(secrets, NUMBER, config)["client_secret"] == exact.state.app.client_secret
    assert chain.refresh_token.encode() not in token.token_encrypted

    with engine.connect() as conn:
        document_id = int(conn.execute(sa.text("SELECT min(id) FROM documents")).scalar_one())
    outcome = run_export(engine, FilesystemStore(tmp_path / "documents"), secrets, manager, document_id, "exact",
                         config.target, last_attempt=False)
    assert outcome.status == "completed", outcome.error
    assert len(exact.state.documents) == 1

    status = CliRunner().invoke(cli, ["exact", "status", "--enterprise", NUMBER], catch_exceptions=False)
    assert status.exit_code == 0, status.output
    assert f"{NUMBER}: ok — division 124132" in status.stdout
    assert chain.access_token not in status.output


def test_connect_with_a_pasted_code_and_a_chosen_division(
        cli_env: tuple[SecretBox, PluginManager], engine: Engine, exact: ExactSandboxServer) -> None:
    app = exact.state.app
    code = consent(exact, OAuthApp(exact.url, app.client_id, app.client_secret, app.redirect_uris[0]))
    result = _connect(exact, "--code", f"{app.redirect_uris[0]}?code={code}&state=x", "--division", "124133")
    assert result.exit_code == 0, result.output
    assert "division 124133 Beta BV" in result.stdout
    with Session(engine) as session:
        assert session.scalars(sa.select(ExporterConfig.target)).one().endswith(":124133")

    spent = _connect(exact, "--code", code)  # a code works once
    assert spent.exit_code == 1
    assert "authorization code is unknown, used or expired" in spent.stderr


def test_same_as_connects_another_client_enterprise_without_a_browser(
        cli_env: tuple[SecretBox, PluginManager], engine: Engine, exact: ExactSandboxServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    app = exact.state.app
    code = consent(exact, OAuthApp(exact.url, app.client_id, app.client_secret, app.redirect_uris[0]))
    assert _connect(exact, "--code", code).exit_code == 0
    seed_documents(engine, FilesystemStore(tmp_path / "documents"), tmp_path, ["b.pdf"], number=OTHER)
    monkeypatch.setattr(webbrowser, "open", lambda url: pytest.fail(f"opened a browser: {url}"))
    monkeypatch.delenv("EBOXD_EXACT_CLIENT_ID", raising=False)
    monkeypatch.delenv("EBOXD_EXACT_CLIENT_SECRET", raising=False)

    def link(*args: str) -> Result:
        return CliRunner().invoke(cli, ["exact", "connect", "--enterprise", OTHER, "--same-as", NUMBER, *args],
                                  catch_exceptions=False)

    guessed = link()
    assert guessed.exit_code == 1
    assert "--same-as needs --division" in guessed.stderr
    result = link("--division", "124133")  # no client id, no secret, no code: all from the connection
    assert result.exit_code == 0, result.output
    assert f"exact connected for {OTHER}: division 124133 Beta BV as sandbox@example.be" in result.stdout
    assert f"also serves 1 other enterprise(s): {NUMBER}" in result.stdout
    assert exact.state.oauth.describe()["codesIssued"] == 1
    with Session(engine) as session:
        assert len(session.scalars(sa.select(OAuthToken)).all()) == 1
    status = CliRunner().invoke(cli, ["exact", "status", "--enterprise", NUMBER], catch_exceptions=False)
    assert status.exit_code == 0, status.output
    assert f"{NUMBER}: ok — division 124132" in status.stdout
    assert f"shared with 1 other enterprise(s): {OTHER}" in status.stdout


def test_a_redirect_uri_that_is_not_loopback_asks_for_paste(cli_env: tuple[SecretBox, PluginManager],
                                                             exact: ExactSandboxServer) -> None:
    result = _connect(exact, "--redirect-uri", "https://eboxd.example/callback")
    assert result.exit_code == 1
    assert "use --paste" in result.stderr


def test_installed_plugin_registers_its_command_sandbox_and_exporter() -> None:
    pm = PluginManager().load(disabled=())
    assert "exact" in pm.exporters()
    assert "exact" in pm.commands()
    assert pm.sandboxes()["exact"].default_port == 8792
    assert {info.name: info.distribution for info in pm.plugins()}["exact"] == "eboxd-exact"


def test_eboxd_sandbox_with_exact_serves_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBOXD_") or k.startswith("EBOXD_TEST")}
    (tmp_path / "eboxd.toml").write_text("")
    env.update(EBOXD_CONFIG=str(tmp_path / "eboxd.toml"), EBOXD_DAEMON__DATA_DIR=str(tmp_path / "state"))
    command = [sys.executable, "-c", "from daemon.cli import main; main()", "sandbox", "--port", "0",
               "--with", "exact:0"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stderr is not None
        lines = []
        for line in process.stderr:
            lines.append(line)
            if line.startswith("Exact Online sandbox on"):
                break
        found = re.search(r"Exact Online sandbox on (http://[\d.:]+) .*client id ([\w-]+),", lines[-1])
        assert found, lines
        url, client_id = found.groups()
        assert httpx.get(f"{url}/_sandbox", timeout=5).json()["clientId"] == client_id
        assert httpx.get(f"{url}/_sandbox/documents", timeout=5).json() == []
    finally:
        process.terminate()
        process.wait(timeout=10)
