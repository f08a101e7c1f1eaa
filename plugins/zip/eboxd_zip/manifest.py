"""The bundle's manifest: ``index.csv`` (UTF-8 with BOM, ``;``, CRLF) and ``index.json`` (typed),
produced a row at a time so that the bundle can spool them to disk instead of holding them."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from daemon.plugins import ExportDocument

__all__ = ["COLUMNS", "CSV_BOM", "FOLDER", "JSON_TAIL", "Entry", "csv_header", "csv_row", "json_head", "json_row",
           "row_of"]

COLUMNS = ("doc_sha256", "file", "kind", "document_date", "received_date", "enterprise_number", "enterprise_name",
           "message_id", "counterparty_name", "subject", "original_file_name", "reference", "amount_incl_vat",
           "currency", "due_date", "iban", "structured_ref", "payment_status", "language", "size_bytes",
           "document_id", "media_type")

KIND = "government_letter"  # everything in an e-Box comes from a public institution
FOLDER = "government-letters"
CSV_BOM = "\ufeff".encode()


@dataclass
class Entry:
    """One document's place in the bundle."""

    document: ExportDocument
    path: str  # inside data/


def row_of(entry: Entry) -> dict[str, Any]:
    doc = entry.document
    pay = doc.payment
    structured = pay.reference if pay and pay.reference and pay.reference.startswith("+++") else None
    return {
        "doc_sha256": doc.sha256, "file": entry.path, "kind": KIND,
        "document_date": doc.published_at.date().isoformat() if doc.published_at else None,
        "received_date": doc.received_at.date().isoformat() if doc.received_at else None,
        "enterprise_number": doc.enterprise_number, "enterprise_name": doc.enterprise_name,
        "message_id": doc.message_id, "counterparty_name": doc.sender, "subject": doc.subject,
        "original_file_name": doc.file_name, "reference": pay.reference if pay else None,
        "amount_incl_vat": float(pay.amount) if pay and pay.amount is not None else None,
        "currency": pay.currency if pay else None,
        "due_date": pay.due_date.isoformat() if pay and pay.due_date else None,
        "iban": pay.iban if pay else None, "structured_ref": structured,
        "payment_status": pay.status if pay else None, "language": doc.language, "size_bytes": doc.size,
        "document_id": doc.document_id, "media_type": doc.media_type,
    }


def csv_header() -> str:
    """The first line of ``index.csv``, after the byte-order mark."""
    return _csv_line(COLUMNS)


def csv_row(entry: Entry) -> str:
    """One document's line of ``index.csv`` (CRLF included; ``.`` decimals, two places)."""
    row = row_of(entry)
    amount = entry.document.payment.amount if entry.document.payment else None
    row["amount_incl_vat"] = f"{amount:.2f}" if amount is not None else None
    return _csv_line(["" if row[c] is None else row[c] for c in COLUMNS])


def json_row(entry: Entry) -> str:
    """One document's object in ``index.json``'s ``documents``."""
    return json.dumps(row_of(entry), ensure_ascii=False)


def json_head(*, bundle_id: str, period: str, administration: str) -> str:
    """``index.json`` up to the opening of ``documents``; the rows follow, comma-separated, then ``]}``."""
    head = json.dumps({"schema": "handover/1", "bundle_id": bundle_id, "period": period,
                       "administration": administration}, ensure_ascii=False)
    return head[:-1] + ', "documents": [\n'


JSON_TAIL = "\n]}\n"


def _csv_line(values: Any) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";", lineterminator="\r\n").writerow(values)
    return buffer.getvalue()
