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
import segno
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.orm import Session

from daemon.cli._params import ENTERPRISE_NUMBER, checked_payment_field
from daemon.cli._state import State, pass_state
from daemon.payments import FIELD_NAMES, PaymentInfo, UnreadableDocument, extract_payment, pdf_text
from daemon.payments.manage import PaymentRefused, edit_payment_request, epc_payload, find_payment_request
from daemon.payments.requests import REVIEWS_KEY
from daemon.payments.review import ReviewItem, confirm_payment, dismiss_match, reject_request, review_items

__all__ = ["COMMANDS", "FieldRow", "console", "extraction_json", "field_table", "plain", "read_pdf", "stored_rows"]

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
    """Payment requests: reading them from documents, correcting them, paying them by QR code."""


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



# -- stored payment requests: show, edit, qr ---------------------------------------------------

_COLUMN_OF = {"beneficiary": "beneficiary_name"}
_EPC_MAX_VERSION = 13


def stored_json(request: Any) -> dict[str, Any]:
    """A stored payment request as JSON: flat values, status, version, sources and review reasons."""
    sources = dict(request.field_sources or {})
    reviews = sources.pop(REVIEWS_KEY, None) or []
    return {
        "payment_request_id": request.id, "document_id": request.document_id, "status": request.status,
        "version": request.version,
        "amount": None if request.amount is None else f"{request.amount:.2f}", "currency": request.currency,
        "iban": request.iban, "bic": request.bic, "reference": request.reference,
        "reference_kind": request.reference_kind,
        "due_date": None if request.due_date is None else request.due_date.isoformat(),
        "beneficiary": request.beneficiary_name, "sources": sources, "review_reasons": reviews,
    }


def stored_rows(request: Any) -> list[FieldRow]:
    """A stored payment request's fields with their source, confidence and, for a manual edit, what it was."""
    sources = request.field_sources or {}
    rows = []
    for name in FIELD_NAMES:
        value = getattr(request, _COLUMN_OF.get(name, name))
        found = sources.get(name)
        meta: dict[str, Any] = found if isinstance(found, dict) else {}
        if value is None:
            rows.append(FieldRow(name, ""))
            continue
        text = f"{value:.2f}" if name == "amount" else value.isoformat() if name == "due_date" else str(value)
        if name == "reference" and request.reference_kind:
            text += f" ({request.reference_kind})"
        confidence = meta.get("confidence")
        evidence = f"was {meta['previous']}" if meta.get("source") == "manual" and meta.get("previous") else ""
        rows.append(FieldRow(name, text, str(meta.get("source", "?")),
                             float(confidence) if isinstance(confidence, int | float) else None, evidence))
    return rows


def _print_stored(request: Any) -> None:
    out = console()
    out.print(Text(f"payment request {request.id} (document {request.document_id}): {request.status}, "
                   f"version {request.version}", style="bold"))
    out.print(field_table(stored_rows(request)))
    for review in (request.field_sources or {}).get(REVIEWS_KEY) or []:
        message = review.get("message", review) if isinstance(review, dict) else review
        field = f"{review.get('field')}: " if isinstance(review, dict) and review.get("field") else ""
        out.print(Text(f"review: {field}{message}", style="yellow"), soft_wrap=True)


@payment.command("show", short_help="A stored payment request, by document id.")
@click.argument("document_id", metavar="DOC", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (flat values, status, version, sources).")
@pass_state
def show(state: State, document_id: int, as_json: bool) -> None:
    """The payment request of document DOC (`eboxd messages show ID` lists a message's documents):
    each field with its source, the status and why it needs review, if it does."""
    with Session(state.engine()) as session:
        request = find_payment_request(session, document_id)
        if as_json:
            click.echo(json.dumps(stored_json(request), indent=2, ensure_ascii=False))
        else:
            _print_stored(request)


@payment.command("edit", short_help="Correct a payment request's fields (validated, recorded as manual).")
@click.argument("document_id", metavar="DOC", type=int)
@click.option("--amount", callback=checked_payment_field("amount"),
              help="Amount in euros, e.g. 1234.56 (at most 2 decimals, 0.01 to 999999999.99).")
@click.option("--iban", callback=checked_payment_field("iban"),
              help="Beneficiary IBAN (any spacing); its check digits are verified.")
@click.option("--bic", callback=checked_payment_field("bic"), help="Beneficiary BIC (8 or 11 characters).")
@click.option("--reference", callback=checked_payment_field("reference"),
              help="Structured communication (+++123/4567/89012+++), RF reference or free text.")
@click.option("--due-date", "due_date", callback=checked_payment_field("due_date"), help="Due date, YYYY-MM-DD.")
@click.option("--name", "name", callback=checked_payment_field("beneficiary"),
              help="Beneficiary name (at most 70 characters).")
@pass_state
def edit(state: State, document_id: int, amount: str | None, iban: str | None, bic: str | None,
         reference: str | None, due_date: str | None, name: str | None) -> None:
    """Correct the payment request of document DOC.

    Each value is checked (IBAN and OGM/RF check digits, BIC format, amount within the SEPA limits,
    date) and refused with the reason. Changed fields are recorded with source `manual`, the
    request's version goes up and be.eboxd.payment.requested is sent again with the new data.
    """
    result = edit_payment_request(state.engine(), document_id, {
        "amount": amount, "iban": iban, "bic": bic, "reference": reference, "due_date": due_date,
        "beneficiary": name})
    if not result.changed:
        click.echo(f"payment request {result.request_id}: nothing changed (version {result.version})")
        return
    click.echo(f"payment request {result.request_id}: changed {', '.join(result.changed)}; version "
               f"{result.version}, status {result.status}")


@payment.command("qr", short_help="EPC069-12 (SEPA) QR code of a payment request, as PNG or SVG.")
@click.argument("document_id", metavar="DOC", type=int)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output file: .png or .svg.")
@click.option("--scale", default=6, show_default=True, type=click.IntRange(1, 40), help="Pixels per module.")
@pass_state
def qr(state: State, document_id: int, output: Path, scale: int) -> None:
    """Write the EPC QR code ("SEPA QR") that banking apps scan to prefill the transfer of DOC's
    payment request: IBAN, name, amount in euros, and the OGM/RF as structured reference."""
    kind = output.suffix.lower()
    if kind not in (".png", ".svg"):
        raise PaymentRefused(f"{output}: the output must end in .png or .svg")
    with Session(state.engine()) as session:
        payload = epc_payload(find_payment_request(session, document_id))
    code = segno.make_qr(payload, error="m", boost_error=False)
    if code.version > _EPC_MAX_VERSION:  # type: ignore[operator]
        raise PaymentRefused(f"the EPC payload needs QR version {code.version}; EPC069-12 allows at most 13")
    try:
        code.save(str(output), scale=scale, border=4)
    except OSError as exc:
        raise PaymentRefused(f"{output}: cannot write: {exc.strerror}") from None
    click.echo(f"{output}: EPC QR code, {len(payload)} bytes, version {code.version}")


# -- matching decisions: review, confirm, dismiss, reject ----------------------------------------

def _reason_text(reason: dict[str, Any]) -> str:
    return str(reason.get("message") or reason.get("code") or reason)


def _movement_lines(item: ReviewItem) -> Text:
    text = Text()
    for m in item.movements:
        who = " ".join(part for part in (m.counterparty_name, m.counterparty_iban) if part) or "no counterparty"
        ref = f", {m.reference}" if m.reference else f", {m.communication!r}" if m.communication else ""
        share = f" (share {m.share})" if m.share != m.amount else ""
        line = f"#{m.transaction_id} {m.booking_date or '?'} {m.amount}{share} to {who}{ref}: {m.match}"
        line += "" if m.match == "applied" else f" ({m.matched_by}, confidence {m.confidence:.2f})"
        text.append(line + "\n", style="" if m.match == "applied" else "cyan")
    text.rstrip()
    return text or Text("-", style="dim")


def review_table(items: Sequence[ReviewItem]) -> Table:
    table = Table("doc", "request", "enterprise", "amount", "paid", "due", "reference", "why", "movements",
                  title=f"{len(items)} payment request(s) to review")
    table.columns[7].max_width = 60
    for item in items:
        table.add_row(plain(None if item.document_id is None else str(item.document_id)), str(item.payment_request_id),
                      item.enterprise_number, plain(item.amount), item.paid, plain(item.due_date),
                      plain(item.reference), Text("\n".join(_reason_text(r) for r in item.reasons)),
                      _movement_lines(item))
    return table


@payment.command("review", short_help="Payment requests a person must look at, with the suggested movements.")
@click.option("--enterprise", "enterprise_number", metavar="NUMBER", type=ENTERPRISE_NUMBER,
              help="Only this enterprise (10 digits).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: a list of requests with reasons and movements.")
@pass_state
def review(state: State, enterprise_number: str | None, as_json: bool) -> None:
    """List the payment requests in review: why (partly paid, a movement may pay it, unclear
    extraction) and the bank movements suggested for them or already paying part of them.

    Then: `eboxd payment confirm DOC --movement ID` (it pays), `eboxd payment dismiss DOC
    --movement ID` (it does not), `eboxd payment edit DOC …` (fix a field) or `eboxd payment reject
    DOC --reason …` (nothing to pay through the bank).
    """
    with Session(state.engine()) as session:
        items = review_items(session, enterprise_number=enterprise_number)
    if as_json:
        click.echo(json.dumps([item.as_json() for item in items], indent=2, ensure_ascii=False))
    elif not items:
        click.echo("nothing to review")
    else:
        console().print(review_table(items))


@payment.command("confirm", short_help="Mark a payment request paid by bank movement(s) you checked.")
@click.argument("document_id", metavar="DOC", type=int)
@click.option("--movement", "movement_ids", metavar="ID", type=int, multiple=True, required=True,
              help="A bank movement that pays it (repeat for several); `eboxd payment review` lists them.")
@pass_state
def confirm(state: State, document_id: int, movement_ids: tuple[int, ...]) -> None:
    """Confirm that the movement(s) pay DOC's payment request: it becomes paid and
    be.eboxd.payment.matched is sent with matched_by "manual". Running it again changes nothing."""
    click.echo(confirm_payment(state.engine(), document_id, movement_ids).message)


@payment.command("dismiss", short_help="Say that a suggested bank movement does not pay a payment request.")
@click.argument("document_id", metavar="DOC", type=int)
@click.option("--movement", "movement_id", metavar="ID", type=int, required=True,
              help="The bank movement that does not pay it.")
@pass_state
def dismiss(state: State, document_id: int, movement_id: int) -> None:
    """Drop movement ID from DOC's payment request (a suggestion, or a partial payment wrongly
    counted). The request goes back to open when nothing else needs review. Idempotent."""
    click.echo(dismiss_match(state.engine(), document_id, movement_id).message)


@payment.command("reject", short_help="Take a payment request out of matching: nothing to pay by bank.")
@click.argument("document_id", metavar="DOC", type=int)
@click.option("--reason", required=True, help="Why (not a debt, cancelled, paid by card…); kept with it.")
@pass_state
def reject(state: State, document_id: int, reason: str) -> None:
    """Mark DOC's payment request rejected: it is no longer matched or listed for review,
    and its suggestions are dropped. A paid request cannot be rejected."""
    click.echo(reject_request(state.engine(), document_id, reason).message)


COMMANDS = [payment]
