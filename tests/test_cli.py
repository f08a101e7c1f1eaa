"""The command line as an operator meets it: one clear line and exit code 2 for what they must fix."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import daemon.cli
from daemon.cli import BUILT_IN

REPO = Path(__file__).resolve().parent.parent


def eboxd(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EBOXD_") or k.startswith("EBOXD_TEST")}
    return subprocess.run([sys.executable, "-m", "daemon", *args], check=False, capture_output=True,
                          text=True, timeout=60,
                          env={**clean, "PYTHONPATH": str(REPO), **(env or {})}, cwd=cwd)


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("[broker]\nheartbeat_secnds = 5\n", ["eboxd.toml:2", "unknown key [broker] heartbeat_secnds"]),
        ("[service]\nhttp_port = 'nine'\n", ["eboxd.toml:2", "[service] http_port: expected an integer"]),
        ("[logging]\nlevel = 'chatty'\n", ["[logging] level: must be one of"]),
        ("[[database]]\n", ["'database' must be a [section] table"]),
    ],
)
def test_bad_config_file(tmp_path: Path, text: str, needles: list[str]) -> None:
    config = tmp_path / "eboxd.toml"
    config.write_text(text)
    for command in (["config", "check"], ["serve"], ["worker"], ["init"]):
        assert_one_line_error(eboxd("--config", str(config), *command), *needles)


def test_bad_environment_override() -> None:
    result = eboxd("config", "check", env={"EBOXD_WORKER__THREADS": "many"})
    assert_one_line_error(result, "EBOXD_WORKER__THREADS", "expected an integer")


def test_unreachable_database(tmp_path: Path) -> None:
    result = eboxd("serve", env={"EBOXD_DATABASE__URL": "postgresql+psycopg://nobody:secret@127.0.0.1:9/eboxd"})
    assert_one_line_error(result, "database unreachable", "127.0.0.1:9")
    assert "secret" not in result.stderr


def test_database_behind_the_code(tmp_path: Path) -> None:
    result = eboxd("serve", env={"EBOXD_DAEMON__DATA_DIR": str(tmp_path)})
    assert_one_line_error(result, "database schema is at nothing", "eboxd db upgrade")


def test_unreachable_broker(tmp_path: Path) -> None:
    env = {"EBOXD_DAEMON__DATA_DIR": str(tmp_path), "EBOXD_BROKER__URL": "amqp://guest:hunter2@127.0.0.1:9/",
           "EBOXD_BROKER__CONNECT_TIMEOUT_SECONDS": "1"}
    assert eboxd("init", env=env).returncode == 0
    result = eboxd("serve", env=env)
    assert_one_line_error(result, "broker unreachable", "127.0.0.1:9")
    assert "hunter2" not in result.stderr


def test_port_out_of_range_on_the_command_line(tmp_path: Path) -> None:
    result = eboxd("worker", "--threads", "0", env={"EBOXD_DAEMON__DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "Invalid value for '--threads'" in result.stderr
    assert "Traceback" not in result.stderr


def test_init_then_db_current_and_upgrade_are_idempotent(tmp_path: Path) -> None:
    env = {"EBOXD_DAEMON__DATA_DIR": str(tmp_path / "state")}
    first = eboxd("init", env=env)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "state" / "eboxd.db").exists()
    again = eboxd("db", "upgrade", env=env)
    assert again.returncode == 0
    current = eboxd("db", "current", env=env)
    assert current.stdout.split(";")[0].split(": ")[1] == current.stdout.strip().split(": ")[-1]
    assert eboxd("outbox", "status", env=env).stdout.startswith("pending 0;")


def test_help_lists_the_commands() -> None:
    result = eboxd("--help")
    for command in ("serve", "worker", "init", "db", "config", "outbox"):
        assert command in result.stdout


def test_built_in_table_names_every_command_of_every_cli_module() -> None:
    """The ``eboxd`` group imports a command's module only when it runs: its table must be complete."""
    defined: dict[str, str] = {}
    for module in pkgutil.iter_modules(daemon.cli.__path__):
        commands = getattr(importlib.import_module(f"daemon.cli.{module.name}"), "COMMANDS", ())
        defined.update({command.name: module.name for command in commands})
    assert defined == BUILT_IN


def test_a_command_imports_only_its_own_module() -> None:
    code = ("import sys\nfrom daemon.cli import main\n"
            "try:\n    main(['exports', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('daemon.cli.')))")
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    loaded = result.stdout.strip().splitlines()[-1]
    assert "daemon.cli.exporters" in loaded
    for other in ("payment", "bank", "messages", "enterprise"):
        assert f"daemon.cli.{other}'" not in loaded
