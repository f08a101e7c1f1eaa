"""PDF text extraction with pypdf."""

from __future__ import annotations

import pytest

from daemon.payments import UnreadableDocument, pdf_text
from daemon.sandbox.pdf import Line, render_pdf


def test_accents_and_euro_sign_survive():
    text = pdf_text(render_pdf(["Échéance : à payer avant le 15/03/2026", "Zu zahlender Betrag: 1.234,56 €",
                                "Fälligkeit – Begunstigde: FOD Financiën"]))
    assert "Échéance : à payer avant le 15/03/2026" in text
    assert "1.234,56 €" in text
    assert "FOD Financiën" in text


def test_pages_are_separated_and_limited():
    lines = [Line(f"line {index}", size=20) for index in range(120)]
    pdf = render_pdf(lines)
    full = pdf_text(pdf)
    assert full.count("\f") >= 2
    first = pdf_text(pdf, max_pages=1)
    assert "\f" not in first
    assert "line 0" in first
    assert "line 119" not in first


@pytest.mark.parametrize("data", [b"", b"hello", b"%PDF-1.4\n1 0 obj\n<<", render_pdf(["x"])[:200]])
def test_damaged_pdfs_raise_one_error_type(data):
    with pytest.raises(UnreadableDocument, match="PDF"):
        pdf_text(data)
