"""``eboxd doctor``: check configuration, database, broker, storage and every enterprise's credentials."""

from __future__ import annotations

import contextlib
import json
import sys

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from daemon.cli._params import ENTERPRISE_NUMBER
from daemon.cli._state import State, pass_state
from daemon.doctor import Context, Result, Status, run_checks
from daemon.enterprises import parse_number
from daemon.errors import EboxdError

__all__ = ["COMMANDS"]

_STYLES = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "bold red", Status.SKIP: "dim"}


@click.command()
@click.option("--enterprise", "-e", "enterprises", multiple=True, metavar="NUMBER", type=ENTERPRISE_NUMBER,
              help="Check only this enterprise's credentials (repeatable; default: all).")
@click.option("--no-token", is_flag=True, help="Do not request tokens from the e-Box token endpoint.")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_state
def doctor(state: State, enterprises: tuple[str, ...], no_token: bool, output: str) -> None:
    """Check that this node can work: configuration, database and migrations, broker and queues,
    document store, master key, each enterprise's certificate and token, the running daemon.

    Exits 1 if any check fails; warnings (a certificate expiring within 30 days, a queue nobody
    consumes) do not change the exit code.
    """
    context = Context(state.config_path, enterprises=tuple(parse_number(n) for n in enterprises),
                      request_tokens=not no_token)
    with contextlib.suppress(EboxdError):  # the config check reports it, as a row
        state.config  # noqa: B018 - configures logging as every command does
    results = run_checks(context)
    if output == "json":
        click.echo(json.dumps({"ok": _passed(results), "checks": [r.as_dict() for r in results]}, indent=2))
    else:
        _print_table(results)
    if not _passed(results):
        sys.exit(1)


def _passed(results: list[Result]) -> bool:
    return all(result.status is not Status.FAIL for result in results)


def _print_table(results: list[Result]) -> None:
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # journal, pipe or file: no wrapping of the details
    table = Table("check", "target", "status", "detail", title="eboxd doctor", title_justify="left")
    for result in results:
        style = _STYLES[result.status]
        table.add_row(Text(result.check), Text(result.target), Text(str(result.status), style=style),
                      Text(result.detail))
    console.print(table)
    counts = {status: sum(r.status is status for r in results) for status in Status}
    console.print(f"{counts[Status.OK]} ok, {counts[Status.WARN]} warnings, {counts[Status.FAIL]} failures, "
                  f"{counts[Status.SKIP]} skipped")


COMMANDS = [doctor]
