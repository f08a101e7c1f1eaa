"""``eboxd payment``: what must be paid, read from a PDF exactly as the pipeline reads it.

``payment extract`` is for support and for checking a new letter layout: it runs the same
extraction as the ``fetch_message`` actor on any PDF and shows every field with its source and
confidence. Later commands of the group work on stored payment requests.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from daemon.cli._state import State, pass_state
from daemon.payments import FIELD_NAMES, PaymentInfo, UnreadableDocument, extract_payment, pdf_text

__all__ = ["COMMANDS", "FieldRow", "console", "extraction_json", "field_table", "plain", "read_pdf"]

_PDF_MAGIC = b"%PDF-"
_MAGIC_WINDOW = 1024  # PDF readers accept the header anywhere in the first KiB


def console() -> Console:
    """Rich output: the terminal's width on a TTY; in pipes (grep, less -S) and tests a fixed 200
    columns, so a row stays on one line."""
    return Console() if sys.stdout.isatty() else Console(width=200)


@dataclass(frozen=True)
class FieldRow:
    """One payment field as shown to a person; ``source`` is None when the field is absent."""

    name: str
    value: str
    source: str | None = None
    confidence: float | None = None
    evidence: str = ""


def _confidence_text(confidence: float | None) -> Text:
    if confidence is None:
        return Text("")
    style = "red" if confidence <= 0.3 else "yellow" if confidence < 0.75 else ""
    return Text(f"{confidence:.2f}", style=style)


def field_table(rows: Sequence[FieldRow]) -> Table:
    """The field / value / source / confidence (/ evidence, if any row has some) table shared by
    ``payment`` and ``messages``."""
    evidence = any(row.evidence for row in rows)
    table = Table("field", "value", "source", "confidence")
    if evidence:
        table.add_column("evidence", overflow="fold", max_width=60)
    for row in rows:
        cells = [Text(row.name), Text(row.value) if row.source else Text("-", style="dim"),
                 Text(row.source or ""), _confidence_text(row.confidence)]
        if evidence:
            cells.append(Text(row.evidence))
        table.add_row(*cells)
    return table


def plain(value: str | None, default: str = "-") -> Text:
    """A table cell holding text as it is: a subject like "[URGENT]" is not rich markup."""
    return Text(default if value is None else value)


@contextmanager
def _quiet_pypdf(verbose: bool) -> Iterator[None]:
    """pypdf logs every oddity of a damaged file ("EOF marker not found"); we report one line instead."""
    logger = logging.getLogger("pypdf")
    before = logger.level
    if not verbose:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(before)


def read_pdf(path: Path, *, verbose: bool = False) -> PaymentInfo:
    """The payment information of the PDF at ``path``; :class:`UnreadableDocument` (one line) if it
    is not a PDF, is encrypted with a password, or is damaged."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableDocument(f"{path}: cannot read the file: {exc.strerror}") from None
    if _PDF_MAGIC not in data[:_MAGIC_WINDOW]:
        what = "the file is empty" if not data else "no %PDF- header"
        raise UnreadableDocument(f"{path} is not a PDF ({what})")
    with _quiet_pypdf(verbose):
        try:
            text = pdf_text(data)
        except UnreadableDocument as exc:
            raise UnreadableDocument(f"{path}: {exc}") from None
    # The same reading as extract_payment(pdf=data), without parsing the PDF a second time.
    return extract_payment(text=text)


def extraction_json(info: PaymentInfo) -> dict[str, Any]:
    """Flat values under the field names (``jq .amount`` gives the amount) plus ``fields`` with each
    field's source, confidence and evidence; absent fields are null in both."""
    detailed = info.as_dict()
    out: dict[str, Any] = {"is_payment": info.is_payment}
    fields: dict[str, Any] = {}
    for name in FIELD_NAMES:
        item = detailed[name]
        out[name] = None if item is None else item["value"]
        fields[name] = None if item is None else {key: value for key, value in item.items() if key != "value"}
    out["reference_kind"] = None if info.reference_kind is None else str(info.reference_kind)
    out["needs_review"] = info.needs_review
    out["review_reasons"] = detailed["review_reasons"]
    out["notes"] = detailed["notes"]
    out["fields"] = fields
    return out


def _info_rows(info: PaymentInfo) -> list[FieldRow]:
    detailed = info.as_dict()
    rows = []
    for name in FIELD_NAMES:
        item = detailed[name]
        if item is None:
            rows.append(FieldRow(name, ""))
            continue
        value = str(item["value"])
        if "kind" in item:
            value += f" ({item['kind']})"
        if item.get("alternatives"):
            value += f"; also seen: {', '.join(map(str, item['alternatives']))}"
        rows.append(FieldRow(name, value, item["source"], item["confidence"], item.get("evidence", "")))
    return rows


def _verdict(info: PaymentInfo) -> str:
    if info.is_payment:
        return "payment requested" + (", needs review" if info.needs_review else "")
    return "could not tell whether a payment is requested" if info.needs_review else "no payment requested"


def _print_extraction(path: Path, info: PaymentInfo) -> None:
    out = console()
    out.print(Text(f"{path.name}: {_verdict(info)}", style="bold"))
    if info.is_payment or any(info.get(name) for name in FIELD_NAMES):
        out.print(field_table(_info_rows(info)))
    for review in info.reviews:
        out.print(Text(f"review: {review.field}: {review.message} [{review.code}]", style="yellow"), soft_wrap=True)
    for note in info.notes:
        out.print(Text(f"note: {note}", style="dim"), soft_wrap=True)


@click.group()
def payment() -> None:
    """Payment requests: reading them from documents."""


@payment.command("extract", short_help="Read the payment fields of any PDF, with source and confidence.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON: flat field values (amount, currency, iban, bic, reference, due_date, "
                   "beneficiary, needs_review) plus `fields` with each one's source and confidence.")
@pass_state
def extract(state: State, file: Path, as_json: bool) -> None:
    """Read what FILE (any PDF) asks to be paid, as eboxd reads stored documents.

    Shows each field with its source and confidence, and why a person should review it, if so.
    Exits 0 when the PDF was read (payment or not, review or not), 1 when FILE is not a readable
    PDF (not a PDF, damaged, encrypted with a password).
    """
    info = read_pdf(file, verbose=state.verbose)
    if as_json:
        click.echo(json.dumps(extraction_json(info), indent=2, ensure_ascii=False))
    else:
        _print_extraction(file, info)


COMMANDS = [payment]
