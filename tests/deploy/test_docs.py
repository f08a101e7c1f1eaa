"""docs/operations.md stays true: the log events it indexes are logged by the code, the commands it
tells operators to run exist, and the doctor's checks are all described."""

from __future__ import annotations

import re
from pathlib import Path

import click

from daemon.cli import cli
from daemon.doctor import CHECKS

REPO = Path(__file__).resolve().parents[2]
OPERATIONS = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
# Commands the documentation announces before they land (remove once they exist).
ANNOUNCED = {("keys", "rotate")}


def source() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in (REPO / "daemon").rglob("*.py"))


def test_every_indexed_log_event_is_logged_by_the_code() -> None:
    table = OPERATIONS.split("## Troubleshooting by log event", 1)[1]
    events = re.findall(r"^\| `([a-z_]+(?:\.[a-z_]+)+)` \|", table, flags=re.MULTILINE)
    assert len(events) >= 15
    code = source()
    for event in events:
        assert f'"{event}"' in code, f"{event} is documented but never logged"


def test_every_documented_command_exists() -> None:
    mentioned = set(re.findall(r"`eboxd ([a-z-]+)(?: ([a-z-]+))?", OPERATIONS))
    assert len(mentioned) >= 8
    for name, sub in mentioned:
        if (name, sub) in ANNOUNCED:
            continue
        command = cli.get_command(click.Context(cli), name)
        assert command is not None, f"eboxd {name} does not exist"
        if sub and isinstance(command, click.Group):
            assert sub in command.commands, f"eboxd {name} {sub} does not exist"


def test_every_doctor_check_is_described() -> None:
    table = OPERATIONS.split("## Checking a node", 1)[1].split("\n## ", 1)[0]
    described = set(re.findall(r"^\| `([a-z ]+)`", table, flags=re.MULTILINE))
    names = {check.__name__.removeprefix("check_").replace("_", " ") for check in CHECKS}
    # check_credentials reports as "certificate" and "token" rows, check_broker adds "queue" rows.
    expected = (names - {"credentials"}) | {"certificate", "token", "queue"}
    assert described == expected
