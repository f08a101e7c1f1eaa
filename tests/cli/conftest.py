"""Commands run in-process on a fresh group that reports errors exactly as ``eboxd`` does
(``daemon.cli.main``): one line ``eboxd: error: …`` and the error's exit code."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine

from daemon.cli import bank, messages, payment
from daemon.cli._state import State
from daemon.errors import EboxdError
from tests.log_capture import restored_logging

Run = Callable[..., Result]


class _Root(click.Group):
    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except EboxdError as exc:
            click.echo(f"eboxd: error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=_Root)
@click.option("--verbose", "-v", is_flag=True)
@click.pass_context
def root(ctx: click.Context, verbose: bool) -> None:
    ctx.obj = State(None)
    ctx.obj.verbose = verbose


for _command in (*messages.COMMANDS, *payment.COMMANDS, *bank.COMMANDS):
    root.add_command(_command)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Commands configure logging onto the runner's captured stderr; put it back afterwards."""
    with restored_logging():
        yield


@pytest.fixture
def eboxd_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """No EBOXD_* from the developer's shell; an empty configuration file; data under tmp_path."""
    for name in list(os.environ):
        if name.startswith("EBOXD_") and not name.startswith("EBOXD_TEST"):
            monkeypatch.delenv(name)
    config = tmp_path / "eboxd.toml"
    config.write_text("")
    env = {"EBOXD_CONFIG": str(config), "EBOXD_DAEMON__DATA_DIR": str(tmp_path / "state")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def db_env(eboxd_env: dict[str, str], database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
           ) -> dict[str, str]:
    """The commands' configuration pointing at the test database (migrated by ``engine``)."""
    monkeypatch.setenv("EBOXD_DATABASE__URL", database_url)
    return {**eboxd_env, "EBOXD_DATABASE__URL": database_url}


@pytest.fixture
def run(eboxd_env: dict[str, str]) -> Run:
    def invoke(*args: str, **kwargs: Any) -> Result:
        return CliRunner().invoke(root, list(args), catch_exceptions=False, **kwargs)

    return invoke


def assert_one_line_error(result: Result, exit_code: int, *needles: str) -> str:
    assert result.exit_code == exit_code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("eboxd: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0]
    return lines[0]
