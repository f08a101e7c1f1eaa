"""``eboxd yuki connect`` through the real ``eboxd`` group (a plugin command) against the sandbox,
and ``eboxd sandbox --with yuki`` as a process."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from eboxd_yuki.sandbox import YukiSandboxServer
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import daemon.plugins.manager as manager_module
from daemon.cli import cli
from daemon.db.models import ExporterConfig
from daemon.exports import decrypt_settings, run_export
from daemon.plugins import PluginManager
from daemon.secrets import SecretBox, create_key_file
from daemon.store import FilesystemStore
from tests.plugins.conftest import seed_documents

NUMBER = "0123456749"


@pytest.fixture
def cli_env(db_env: dict[str, str], engine: Engine, tmp_path: Path, manager: PluginManager,
            monkeypatch: pytest.MonkeyPatch) -> SecretBox:
    """Configuration on the test database, a master key, one enterprise; the CLI's plugins = ours."""
    key_file = Path(db_env["EBOXD_DAEMON__DATA_DIR"]) / "master.key"
    create_key_file(key_file)
    seed_documents(engine, FilesystemStore(tmp_path / "documents"), tmp_path, ["a.pdf"], number=NUMBER)
    monkeypatch.setattr(manager_module, "_default", manager)
    return SecretBox.from_file(key_file)


def _connect(*args: str, key: str) -> Result:
    return CliRunner().invoke(cli, ["yuki", "connect", "--enterprise", NUMBER, *args], input=f"{key}\n",
                              catch_exceptions=False)


def _config(engine: Engine) -> ExporterConfig:
    with Session(engine) as session:
        return session.scalars(sa.select(ExporterConfig)).one()


def test_connect_asks_which_administration_then_enables_the_exporter(
        cli_env: SecretBox, engine: Engine, yuki: YukiSandboxServer, access_key: str) -> None:
    listing = _connect("--url", yuki.url, key=access_key)
    assert listing.exit_code == 1
    assert "sees 2 administrations" in listing.stderr
    assert "Acme NV" in listing.stderr
    assert "Beta BV" in listing.stderr
    with Session(engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ExporterConfig)) == 0

    done = _connect("--url", yuki.url, "--administration", "beta bv", "--folder", "purchase", key=access_key)
    assert done.exit_code == 0, done.output
    domain = yuki.state.domains[yuki.state.keys[access_key].domains[0]]
    beta = next(a for a, name in domain.administrations.items() if name == "Beta BV")
    assert f"→ yuki:be:{beta}" in done.stdout
    assert access_key not in done.output  # the hidden prompt does not echo it
    row = _config(engine)
    assert access_key not in json.dumps(row.settings)
    settings = decrypt_settings(cli_env, NUMBER, row)
    assert settings["access_key"] == access_key
    assert (settings["administration"], settings["folder"], settings["url"]) == (beta, "1", yuki.url)
    assert "domain" not in settings  # one domain: nothing to switch

    again = _connect("--url", yuki.url, "--administration", beta, key=access_key)  # idempotent
    assert again.exit_code == 0
    assert _config(engine).id == row.id

    other = _connect("--url", yuki.url, "--administration", "Acme NV", key=access_key)  # one per enterprise
    assert other.exit_code == 0
    assert f"disabled the earlier Yuki connection yuki:be:{beta}" in other.stderr
    with Session(engine) as session:
        enabled = session.scalars(sa.select(ExporterConfig.target).where(ExporterConfig.enabled.is_(True))).all()
    assert enabled == [f"yuki:be:{next(a for a in domain.administrations if a != beta)}"]


def test_connect_with_an_invalid_key(cli_env: SecretBox, yuki: YukiSandboxServer) -> None:
    result = _connect("--url", yuki.url, key="not-a-key")
    assert result.exit_code == 1
    assert "Invalid access key" in result.stderr
    assert "not-a-key" not in result.output


def test_connect_with_a_key_of_several_domains_pins_the_domain(
        cli_env: SecretBox, engine: Engine, yuki: YukiSandboxServer, manager: PluginManager, tmp_path: Path) -> None:
    made = yuki.state.add_key(administrations=["Gamma NV"], domain_name="Firm", extra_domains=1)
    second = made["domains"][1]
    result = _connect("--url", yuki.url, "--administration", second["administrations"][0]["id"],
                      key=made["accessKey"])
    assert result.exit_code == 0, result.output
    row = _config(engine)
    assert decrypt_settings(cli_env, NUMBER, row)["domain"] == second["id"]
    outcome = run_export(engine, FilesystemStore(tmp_path / "documents"), cli_env, manager,
                         _document_id(engine), "yuki", row.target, last_attempt=False)
    assert outcome.status == "completed", outcome.error
    [upload] = yuki.uploads()
    assert (upload["domain"], upload["administration"]) == (second["id"], second["administrations"][0]["id"])


def _document_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT min(id) FROM documents")).scalar_one())


def test_installed_plugin_registers_its_command_sandbox_and_exporter() -> None:
    pm = PluginManager().load(disabled=())
    assert "yuki" in pm.exporters()
    assert "yuki" in pm.commands()
    assert pm.sandboxes()["yuki"].default_port == 8791
    assert {info.name: info.distribution for info in pm.plugins()}["yuki"] == "eboxd-yuki"


def test_eboxd_sandbox_with_yuki_serves_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBOXD_") or k.startswith("EBOXD_TEST")}
    (tmp_path / "eboxd.toml").write_text("")
    env.update(EBOXD_CONFIG=str(tmp_path / "eboxd.toml"), EBOXD_DAEMON__DATA_DIR=str(tmp_path / "state"))
    command = [sys.executable, "-c", "from daemon.cli import main; main()", "sandbox", "--port", "0",
               "--with", "yuki:0"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stderr is not None
        lines = []
        for line in process.stderr:
            lines.append(line)
            if line.startswith("Yuki sandbox on"):
                break
        found = re.search(r"Yuki sandbox on (http://[\d.:]+)/ws/Archive.asmx; access key (\w+)", lines[-1])
        assert found, lines
        url, key = found.groups()
        response = httpx.get(f"{url}/_sandbox", timeout=5)
        assert response.json()["keys"][0]["accessKey"] == key
        assert httpx.get(f"{url}/_sandbox/uploads", timeout=5).json() == []
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_key_rotation_reencrypts_the_access_key(cli_env: SecretBox, engine: Engine, yuki: YukiSandboxServer,
                                                access_key: str, db_env: dict[str, str]) -> None:
    connected = _connect("--url", yuki.url, "--administration", "beta bv", key=access_key)
    assert connected.exit_code == 0, connected.output
    before = _config(engine).settings["access_key"]
    rotated = CliRunner().invoke(cli, ["keys", "rotate", "--new-key"], catch_exceptions=False)
    assert rotated.exit_code == 0, rotated.output
    assert "1 secret(s) re-encrypted" in rotated.output
    after = _config(engine)
    assert after.settings["access_key"] != before
    key_file = Path(db_env["EBOXD_DAEMON__DATA_DIR"]) / "master.key"
    newest = SecretBox.from_file(key_file)
    assert newest.is_current(base64.b64decode(after.settings["access_key"]["__encrypted__"]))
    assert decrypt_settings(newest, NUMBER, after)["access_key"] == access_key
    again = CliRunner().invoke(cli, ["keys", "rotate"], catch_exceptions=False)
    assert "0 secret(s) re-encrypted under the current key, 1 already were" in again.output


def test_a_key_typed_on_the_command_line_works_with_a_warning(
        cli_env: SecretBox, yuki: YukiSandboxServer, access_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    typed = CliRunner().invoke(cli, ["yuki", "connect", "--enterprise", NUMBER, "--url", yuki.url, "--administration",
                                     "beta bv", "--access-key", access_key], catch_exceptions=False)
    assert typed.exit_code == 0, typed.output
    assert "--access-key on the command line is visible to every local user" in typed.stderr
    assert "$EBOXD_YUKI_ACCESS_KEY" in typed.stderr
    monkeypatch.setenv("EBOXD_YUKI_ACCESS_KEY", access_key)
    from_env = CliRunner().invoke(cli, ["yuki", "connect", "--enterprise", NUMBER, "--url", yuki.url,
                                        "--administration", "beta bv"], catch_exceptions=False)
    assert from_env.exit_code == 0, from_env.output
    assert "warning" not in from_env.stderr
    monkeypatch.delenv("EBOXD_YUKI_ACCESS_KEY")
    prompted = _connect("--url", yuki.url, "--administration", "beta bv", key=access_key)
    assert "warning" not in prompted.stderr
