"""``eboxd plugins``, ``eboxd exporter``, ``eboxd exports``, ``eboxd export``: exporter plugins,
their per-enterprise configuration, the export ledger, and one-off bundles."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.cli._params import ENTERPRISE_NUMBER
from daemon.cli._state import State, pass_state
from daemon.db.models import Document, Enterprise, Export, Message
from daemon.enterprises import find_enterprise
from daemon.errors import EboxdError
from daemon.exports import (
    DocumentSelection,
    disable_exporter,
    enable_exporter,
    exporter_configs,
    public_settings,
    require_exporter,
    retry_exports,
)
from daemon.plugins import get_plugin_manager
from daemon.store import create_store

__all__ = ["COMMANDS"]


def _console() -> Console:
    return Console(width=160, soft_wrap=True)


def _table(*columns: str) -> Table:
    """A plain table whose long cells (paths, targets, errors) wrap instead of being cut short."""
    table = Table(box=None)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


@click.command("plugins")
@pass_state
def plugins_command(state: State) -> None:
    """List installed plugins, where they come from, their exporters, and plugins that failed."""
    state.config  # noqa: B018  (configures logging before plugins load and log)
    manager = get_plugin_manager()
    exporters = manager.exporters()
    table = _table("plugin", "distribution", "version", "source")
    for info in manager.plugins():
        table.add_row(info.name, info.distribution or "eboxd (built-in)", info.version or "-", info.source)
    console = _console()
    console.print(table)
    console.print(f"exporters: {', '.join(sorted(exporters)) or 'none'}")
    for failure in manager.failures:
        click.echo(f"failed: {failure}", err=True)


@click.group("exporter")
def exporter_group() -> None:
    """Which exporters each enterprise uses, and their settings."""


def _parse_sets(pairs: tuple[str, ...]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="--set")
        values[name.strip().replace("-", "_")] = value
    return values


@exporter_group.command("enable")
@click.argument("name")
@click.option("--enterprise", "number", required=True, type=ENTERPRISE_NUMBER, help="Enterprise number.")
@click.option("--dir", "directory", help="Target folder (exporters with a `dir` setting, e.g. zip).")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Any other setting; repeatable.")
@click.option("--no-check", is_flag=True, help="Save without trying the target first.")
@pass_state
def exporter_enable(state: State, name: str, number: str, directory: str | None, sets: tuple[str, ...],
                    no_check: bool) -> None:
    """Enable exporter NAME for an enterprise; the plugin validates the settings first."""
    settings = _parse_sets(sets)
    if directory is not None:
        settings["dir"] = str(Path(directory).expanduser().absolute())
    with Session(state.engine()) as session, session.begin():
        enterprise = find_enterprise(session, number)
        row = enable_exporter(session, state.secrets, get_plugin_manager(), enterprise, name, settings,
                              check=not no_check)
        click.echo(f"exporter {name} enabled for {enterprise.number} → {row.target}")


@exporter_group.command("disable")
@click.argument("name")
@click.option("--enterprise", "number", required=True, type=ENTERPRISE_NUMBER, help="Enterprise number.")
@click.option("--target", help="Only this target (default: every target of NAME).")
@pass_state
def exporter_disable(state: State, name: str, number: str, target: str | None) -> None:
    """Disable exporter NAME for an enterprise (its ledger is kept)."""
    with Session(state.engine()) as session, session.begin():
        enterprise = find_enterprise(session, number)
        number = enterprise.number  # read now: the row expires when the transaction commits
        changed = disable_exporter(session, enterprise, name, target)
    if not changed:
        raise EboxdError(f"exporter {name} is not enabled for {number}")
    click.echo(f"exporter {name} disabled for {number} ({changed} target{'s' * (changed != 1)})")


@exporter_group.command("list")
@click.option("--enterprise", "number", type=ENTERPRISE_NUMBER, help="Only this enterprise.")
@pass_state
def exporter_list(state: State, number: str | None) -> None:
    """Exporter configurations per enterprise (secret settings masked)."""
    table = _table("enterprise", "exporter", "target", "enabled", "settings")
    with Session(state.engine()) as session:
        enterprise = find_enterprise(session, number) if number else None
        numbers = dict(session.execute(select(Enterprise.id, Enterprise.number)).all())
        for row in exporter_configs(session, enterprise):
            settings = ", ".join(f"{k}={v}" for k, v in public_settings(row).items())
            table.add_row(numbers[row.enterprise_id], row.exporter, row.target, "yes" if row.enabled else "no",
                          settings)
    _console().print(table)


@click.group("exports")
def exports_group() -> None:
    """The export ledger: what was delivered where, what failed."""


@exports_group.command("list")
@click.option("--failed", is_flag=True, help="Only exports that gave up (with their reason).")
@click.option("--enterprise", "number", type=ENTERPRISE_NUMBER, help="Only this enterprise.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="At most this many rows, newest first.")
@pass_state
def exports_list(state: State, failed: bool, number: str | None, limit: int) -> None:
    """Export ledger rows, newest first."""
    query = (select(Export, Enterprise.number).join(Document, Document.id == Export.document_id)
             .join(Message, Message.id == Document.message_id).join(Enterprise, Enterprise.id == Message.enterprise_id)
             .order_by(Export.id.desc()).limit(limit))
    table = _table("id", "enterprise", "document", "exporter", "target", "status", "attempts", "error")
    with Session(state.engine()) as session:
        if failed:
            query = query.where(Export.status == "failed")
        if number:
            query = query.where(Enterprise.id == find_enterprise(session, number).id)
        for row, enterprise_number in session.execute(query):
            table.add_row(str(row.id), enterprise_number, str(row.document_id), row.exporter, row.target,
                          row.status, str(row.attempts), (row.last_error or "")[:80])
    _console().print(table)


@exports_group.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "retry_all", is_flag=True, help="Every failed export.")
@pass_state
def exports_retry(state: State, ids: tuple[int, ...], retry_all: bool) -> None:
    """Queue failed exports again: those IDS (from `eboxd exports list --failed`), or --all."""
    if not ids and not retry_all:
        raise click.UsageError("give export ids, or --all")
    with Session(state.engine()) as session, session.begin():
        rows = retry_exports(session, ids)
    click.echo(f"{len(rows)} export{'s' * (len(rows) != 1)} queued again")


@click.command("export")
@click.argument("name")
@click.option("--enterprise", "number", required=True, type=ENTERPRISE_NUMBER, help="Enterprise number.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Messages published on or after this day.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Messages published on or before this day.")
@click.option("--ids", "ids", multiple=True, type=int, help="Only these document ids; repeatable.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="The bundle file, or a folder to write it into under its standard name.")
@click.option("--max-mb", type=click.FloatRange(min=0), metavar="MB",
              help="Split into parts of at most MB megabytes (zip: 20 by default, for mailboxes; 0: one file).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@pass_state
def export_command(state: State, name: str, number: str, since: dt.datetime | None, until: dt.datetime | None,
                   ids: tuple[int, ...], output: Path, max_mb: float | None, no_progress: bool) -> None:
    """Write an enterprise's documents into one bundle with exporter NAME (e.g. zip)."""
    engine = state.engine()  # first: it configures logging before plugins load and log
    exporter = require_exporter(get_plugin_manager(), name)
    bundle = getattr(exporter, "bundle", None)
    if not callable(bundle):
        raise EboxdError(f"exporter {name} does not write bundles")
    store = create_store(state.config, engine)
    with Session(engine) as session:
        enterprise = find_enterprise(session, number)
        if ids:  # the selection would silently leave out another enterprise's documents: say so instead
            own = set(session.scalars(select(Document.id).join(Message, Message.id == Document.message_id).where(
                Message.enterprise_id == enterprise.id, Document.id.in_(ids))))
            if foreign := sorted(set(ids) - own):
                raise click.ClickException(f"document {', '.join(map(str, foreign))}: not a document of enterprise "
                                           f"{enterprise.number} (or no such document); nothing written")
        documents = DocumentSelection(session, store, enterprise.id, since=since.date() if since else None,
                                      until=until.date() if until else None, ids=ids)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      disable=no_progress, console=Console(stderr=True)) as progress:
            task = progress.add_task("export", total=documents.count())  # the selected documents only
            limit = {} if max_mb is None else {"limit": int(max_mb * 1_000_000)}  # else the exporter's default
            result = bundle(documents, output, administration=enterprise.number,
                            progress=lambda _doc: progress.advance(task), **limit)
    for written in result if isinstance(result, list | tuple) else [result]:  # one bundle, or its parts
        click.echo(f"{written.path}: {written.documents} documents, {written.payload_bytes} bytes")


COMMANDS = (plugins_command, exporter_group, exports_group, export_command)
