"""``eboxd messages``, ``eboxd documents``, ``eboxd poll``: what the pipeline fetched, and asking for more.

Read-only views of the database (messages, their documents and payment requests), a copy of a
stored document out of the document store, and "poll these enterprises now".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import IO

import click
from rich.table import Table
from rich.text import Text
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from daemon.cli._params import ENTERPRISE_NUMBER
from daemon.cli._state import State, pass_state
from daemon.cli.payment import console, field_table, plain, stored_rows
from daemon.db.models import Document, Enterprise, Message, PaymentRequest
from daemon.enterprises import EnterpriseError, display, find_enterprise
from daemon.errors import EboxdError
from daemon.poll.schedule import request_poll
from daemon.store import StoreError, create_store

__all__ = ["COMMANDS", "NotFound"]

OPEN = "open"
"""The status of a payment request still waiting to be paid (what ``--to-pay`` lists)."""
REVIEW_KEY = "review_reasons"
"""Key of ``PaymentRequest.field_sources`` holding why a person must look (strings or
``{"field", "code", "message"}`` objects, as ``PaymentInfo.as_dict()`` writes them)."""
_CHUNK = 1 << 16


class NotFound(EboxdError):
    """No message or document with the id given."""


# -- shared formatting -------------------------------------------------------------------------


def _when(value: dt.datetime | None, *, seconds: bool = False) -> str:
    if value is None:
        return "-"
    text = f"{value.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S}"
    return f"{text} UTC" if seconds else text[:-3]


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    if size < 1024:
        return f"{size} B"
    if size < 1 << 20:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1 << 20):.1f} MiB"


def _read_state(message: Message) -> Text:
    text = Text("read" if message.read else "unread", style="" if message.read else "bold")
    if not message.visible:
        text.append(", hidden", style="dim")
    return text


def _reviews(request: PaymentRequest) -> list[str]:
    raw = (request.field_sources or {}).get(REVIEW_KEY) or []
    return [str(item.get("message", item)) if isinstance(item, dict) else str(item) for item in raw]


def _amount(request: PaymentRequest) -> str:
    return "?" if request.amount is None else f"{request.amount:.2f} {request.currency}"


# -- messages list -----------------------------------------------------------------------------


_Row = tuple[Message, str, PaymentRequest | None]


def _list_rows(session: Session, numbers: Sequence[str], unread: bool, to_pay: bool, limit: int) -> list[_Row]:
    """Newest first; ``limit`` 0 means all (callers ask one more than they show, to tell "more")."""
    stmt = (select(Message, Enterprise.number, PaymentRequest)
            .join(Enterprise, Enterprise.id == Message.enterprise_id)
            .outerjoin(PaymentRequest, PaymentRequest.message_id == Message.id))
    if numbers:
        stmt = stmt.where(Message.enterprise_id.in_([find_enterprise(session, number).id for number in numbers]))
    if unread:
        stmt = stmt.where(Message.read.is_(False))
    if to_pay:
        stmt = stmt.where(PaymentRequest.status == OPEN)
    stmt = stmt.order_by(func.coalesce(Message.published_at, Message.received_at).desc(), Message.id.desc())
    if limit:
        stmt = stmt.limit(limit)
    return [(message, number, request) for message, number, request in session.execute(stmt)]


def _payment_cells(request: PaymentRequest | None) -> tuple[str, str, Text]:
    if request is None:
        return "", "", Text("")
    status = Text(request.status, style="bold" if request.status == OPEN else "")  # Text: never markup
    if _reviews(request):
        status.append(", review", style="yellow")
    due = request.due_date.isoformat() if request.due_date else "-"
    return _amount(request), due, status


def _list_table(rows: Sequence[_Row]) -> Table:
    table = Table()
    for header in ("id", "enterprise", "published (UTC)"):
        table.add_column(header, no_wrap=True)
    table.add_column("sender", overflow="fold")  # sender and subject wrap first on narrow terminals
    table.add_column("subject", overflow="fold")
    for header in ("state", "fetch", "to pay", "due", "payment"):
        table.add_column(header, no_wrap=True)
    for message, number, request in rows:
        table.add_row(str(message.id), display(number), _when(message.published_at or message.received_at),
                      plain(message.sender), plain(message.subject, ""), _read_state(message),
                      Text(message.fetch_state, style="red" if message.fetch_state == "failed" else ""),
                      *_payment_cells(request))
    return table


@click.group()
def messages() -> None:
    """Messages polled from the e-Box, with their documents and payment requests."""


@messages.command("list", short_help="Messages, newest first, with read/fetch state and payment.")
@click.option("--enterprise", "-e", "numbers", multiple=True, metavar="NUMBER", type=ENTERPRISE_NUMBER,
              help="Only this enterprise's messages (CBE number in any notation; repeatable).")
@click.option("--unread", is_flag=True, help="Only messages still unread in the e-Box.")
@click.option("--to-pay", is_flag=True, help="Only messages with an open payment request.")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="Show at most this many, newest first (0: all).")
@pass_state
def list_command(state: State, numbers: tuple[str, ...], unread: bool, to_pay: bool, limit: int) -> None:
    """Messages, newest first, with their read and fetch state and what they ask to be paid."""
    with Session(state.engine()) as session:
        rows = _list_rows(session, numbers, unread, to_pay, limit + 1 if limit else 0)
        more = bool(limit) and len(rows) > limit
        rows = rows[:limit] if limit else rows
        if not rows:
            click.echo("no messages")
            return
        console().print(_list_table(rows))
    if more:
        click.echo(f"showing the newest {limit}; more match (--limit N, or --limit 0 for all)", err=True)


# -- messages show -----------------------------------------------------------------------------


def _message_lines(session: Session, message: Message) -> list[tuple[str, str]]:
    company = session.get(Enterprise, message.enterprise_id)
    assert company is not None  # messages.enterprise_id is a non-null foreign key
    fetch = message.fetch_state + (f" at {_when(message.fetched_at, seconds=True)}" if message.fetched_at else "")
    lines = [("message", str(message.id)), ("enterprise", f"{display(company.number)} ({company.name})"),
             ("provider", message.provider_id), ("e-Box id", message.ebox_message_id),
             ("subject", message.subject or "-"), ("sender", message.sender or "-"),
             ("type", message.message_type or "-"),
             ("published", _when(message.published_at, seconds=True)),
             ("registered mail", "yes" if message.registered_mail else "no"),
             ("state", f"{'read' if message.read else 'unread'}, {'visible' if message.visible else 'hidden'}"),
             ("received by eboxd", _when(message.received_at, seconds=True)), ("fetch", fetch)]
    if message.fetch_error:
        lines.append(("fetch error", message.fetch_error))
    return lines


def _documents_table(documents: Sequence[Document]) -> Table:
    table = Table("id", "file name", "media type", "lang", "size")
    table.add_column("sha256", no_wrap=True, min_width=64)  # whole, to compare with `sha256sum`
    table.add_column("stored (UTC)")
    for document in documents:
        table.add_row(str(document.id), plain(document.file_name or document.attachment_id),
                      plain(document.media_type), plain(document.language), _size(document.size),
                      plain(document.sha256),
                      _when(document.stored_at) if document.storage_key else Text("not stored", style="dim"))
    return table


def _print_payment(request: PaymentRequest) -> None:
    out = console()
    document = f", from document {request.document_id}" if request.document_id else ""
    out.print(Text(f"payment request {request.id}: {request.status}{document}", style="bold"))
    out.print(field_table(stored_rows(request)))
    for reason in _reviews(request):
        out.print(Text(f"review: {reason}", style="yellow"), soft_wrap=True)


@messages.command("show", short_help="One message with its documents and payment request.")
@click.argument("message_id", metavar="ID", type=int)
@pass_state
def show(state: State, message_id: int) -> None:
    """One message (by the id `messages list` shows): metadata, documents, payment request."""
    with Session(state.engine()) as session:
        message = session.get(Message, message_id)
        if message is None:
            raise NotFound(f"no message with id {message_id}: `eboxd messages list` shows the ids")
        lines = _message_lines(session, message)
        documents = session.scalars(select(Document).where(Document.message_id == message.id)
                                    .order_by(Document.id)).all()
        request = session.scalar(select(PaymentRequest).where(PaymentRequest.message_id == message.id))
    for label, value in lines:
        click.echo(f"{label:>18}: {value}")
    out = console()
    out.print(Text(f"\n{len(documents)} document(s)", style="bold"))
    if documents:
        out.print(_documents_table(documents))
    if request is None:
        out.print(Text("\nno payment request", style="dim"))
        return
    out.print()
    _print_payment(request)


# -- documents get -----------------------------------------------------------------------------


def _copy_verified(source: IO[bytes], target: IO[bytes], document: Document) -> None:
    """Copy, and fail if the bytes are not the ones the database recorded."""
    digest = hashlib.sha256()
    while chunk := source.read(_CHUNK):
        digest.update(chunk)
        target.write(chunk)
    if document.sha256 and digest.hexdigest() != document.sha256:
        raise StoreError(f"document {document.id}: the stored content's hash {digest.hexdigest()} differs "
                         f"from the recorded {document.sha256}")


def _write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """``write(file)`` into a temporary file next to ``path``, renamed over it only when complete:
    ``path`` is either untouched or the whole document, never half of it."""
    try:
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as exc:
        raise EboxdError(f"cannot write to {path.parent}: {exc.strerror}") from None
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException as exc:
        with suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise EboxdError(f"cannot write {path}: {exc.strerror}") from None
        raise


def _target(output: str, document: Document) -> Path:
    path = Path(output)
    if path.is_dir():  # like cp: into the directory, under the document's own name
        path /= Path(document.file_name or f"document-{document.id}").name
    return path


@click.group()
def documents() -> None:
    """Documents fetched from the e-Box and kept in the document store."""


@documents.command("get")
@click.argument("document_id", metavar="ID", type=int)
@click.option("-o", "--output", required=True, metavar="FILE",
              help="Write here (a directory: under the document's file name; -: standard output).")
@pass_state
def get(state: State, document_id: int, output: str) -> None:
    """Copy a stored document (by the id `messages show` lists) out of the store, checking its hash."""
    engine = state.engine()
    with Session(engine) as session:
        document = session.get(Document, document_id)
    if document is None:
        raise NotFound(f"no document with id {document_id}: `eboxd messages show MESSAGE_ID` lists them")
    if not document.storage_key:
        raise NotFound(f"document {document_id} ({document.file_name or document.attachment_id}) is not stored "
                       "(not fetched yet, fetch failed, or metadata-only mode)")
    store = create_store(state.config, engine)

    def copy(target: IO[bytes]) -> None:
        try:
            with store.open(document.storage_key) as source:  # type: ignore[arg-type]
                _copy_verified(source, target, document)
        except FileNotFoundError:
            raise StoreError(f"document {document_id} ({document.storage_key}) is missing from {store!r}") from None
        except OSError as exc:  # only the store's side: writing errors are caught around the target
            if exc.filename is None:
                raise
            raise StoreError(f"cannot read document {document_id} from {store!r}: {exc.strerror}") from None

    if output == "-":
        stdout = sys.stdout.buffer
        try:
            copy(stdout)
            stdout.flush()
        except BrokenPipeError:
            raise EboxdError(f"document {document_id}: standard output closed before the end") from None
        return
    path = _target(output, document)
    _write_atomically(path, copy)
    click.echo(f"document {document_id} ({_size(document.size)}) written to {path}", err=True)


# -- poll --------------------------------------------------------------------------------------


def _enterprise_ids(session: Session, numbers: Sequence[str]) -> list[int]:
    companies = {company.id: company for company in (find_enterprise(session, number) for number in numbers)}
    disabled = [display(company.number) for company in companies.values() if not company.enabled]
    if disabled:
        raise EnterpriseError(f"disabled, never polled: {', '.join(disabled)} (`eboxd enterprise enable` first)")
    return list(companies)


@click.command(short_help="Poll enterprises now instead of at their next turn.")
@click.argument("numbers", nargs=-1, metavar="[NUMBER]...", type=ENTERPRISE_NUMBER)
@click.option("--all", "all_enterprises", is_flag=True, help="Every enabled enterprise.")
@pass_state
def poll(state: State, numbers: tuple[str, ...], all_enterprises: bool) -> None:
    """Poll these enterprises (CBE numbers, any notation) now instead of at their next turn.

    Makes them due in the schedule; a running `eboxd serve` starts the polls at its next round.
    An enterprise being polled right now is left alone.
    """
    if bool(numbers) == all_enterprises:
        raise click.UsageError("give enterprise numbers or --all (not both)")
    engine = state.engine()
    if all_enterprises:
        count = request_poll(engine, None)
        click.echo(f"{count} enterprise(s) due for polling now; `eboxd serve` starts them")
        return
    with Session(engine) as session:
        ids = _enterprise_ids(session, numbers)
    count = request_poll(engine, ids)
    busy = f"; {len(ids) - count} already being polled" if count < len(ids) else ""
    click.echo(f"{count} of {len(ids)} enterprise(s) due for polling now{busy}; `eboxd serve` starts them")


COMMANDS = [messages, documents, poll]
