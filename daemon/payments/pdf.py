"""The text of a PDF, with pypdf."""

from __future__ import annotations

import io

from pypdf import PdfReader

from daemon.errors import EboxdError

__all__ = ["DEFAULT_MAX_PAGES", "UnreadableDocument", "pdf_text"]

DEFAULT_MAX_PAGES = 20
"""Payment details sit on the first pages; long annexes are not read."""


class UnreadableDocument(EboxdError):
    """The bytes are not a PDF pypdf can read (damaged, truncated, or encrypted with a password)."""


def pdf_text(data: bytes, *, max_pages: int = DEFAULT_MAX_PAGES) -> str:
    """The text of the first ``max_pages`` pages, pages separated by a form feed."""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableDocument("the PDF is encrypted with a password")
        pages = [page.extract_text() or "" for page in reader.pages[:max_pages]]
    except UnreadableDocument:
        raise
    except Exception as exc:  # pypdf on hostile input raises more than PyPdfError (IndexError, RecursionError…)
        raise UnreadableDocument(f"cannot read the PDF: {exc}") from exc
    return "\f".join(pages)
