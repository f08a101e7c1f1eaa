"""docs/cli.md documents every command and option of these groups, as their ``--help`` shows them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from daemon.cli import bank, messages, payment

DOCS = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()


def commands(group: click.Command, path: str = "eboxd") -> Iterator[tuple[str, click.Command]]:
    path = f"{path} {group.name}"
    if isinstance(group, click.Group):
        for command in group.commands.values():
            yield from commands(command, path)
    else:
        yield path, group


ALL = [item for group in (*messages.COMMANDS, *payment.COMMANDS, *bank.COMMANDS) for item in commands(group)]


@pytest.mark.parametrize(("path", "command"), ALL, ids=[path for path, _ in ALL])
def test_every_command_and_option_is_documented(path: str, command: click.Command):
    headings = [line for line in DOCS.splitlines() if line.startswith("## ")]
    assert any(f"`{path}" in heading for heading in headings), f"no section for {path}"
    for param in command.params:
        if isinstance(param, click.Option):
            assert any(f"`{name}" in DOCS for name in param.opts), f"{path}: {param.opts} undocumented"
