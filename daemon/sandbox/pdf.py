"""A tiny, deterministic PDF writer for sandbox letters.

Text only, in the standard Helvetica fonts with ``WinAnsiEncoding`` (cp1252), so accented
letters (é, ë, ü, ß, €…) render and extract correctly with ordinary PDF readers such as pypdf.
No compression, no timestamps: the same lines always give the same bytes.

``pad_to`` grows a letter to a realistic size (a scanned or font-embedding PDF weighs ~100 kB) with
an unreferenced binary stream of pseudo-random, incompressible filler derived from the text: the
file stays valid, its text unchanged, and it is still the same bytes for the same lines.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Line", "render_pdf"]

_PAGE_WIDTH = 595  # A4 in points
_PAGE_HEIGHT = 842
_MARGIN_LEFT = 56
_MARGIN_TOP = 64
_MARGIN_BOTTOM = 64


@dataclass(frozen=True)
class Line:
    """One line of text; ``bold`` uses Helvetica-Bold; ``gap`` adds space above it."""

    text: str
    bold: bool = False
    size: float = 10.5
    gap: float = 0.0


def _escape(text: str) -> bytes:
    """Encode ``text`` as a PDF literal string body in cp1252 (non-ASCII as octal escapes)."""
    out = bytearray()
    for byte in text.encode("cp1252", errors="replace"):
        if byte in (0x28, 0x29, 0x5C):  # ( ) \
            out += b"\\" + bytes([byte])
        elif 0x20 <= byte < 0x7F:
            out.append(byte)
        else:
            out += f"\\{byte:03o}".encode("ascii")
    return bytes(out)


def _paginate(lines: Sequence[Line]) -> list[list[tuple[Line, float]]]:
    pages: list[list[tuple[Line, float]]] = [[]]
    y: float = _PAGE_HEIGHT - _MARGIN_TOP
    for line in lines:
        step = line.size * 1.45 + line.gap
        if y - step < _MARGIN_BOTTOM and pages[-1]:
            pages.append([])
            y = _PAGE_HEIGHT - _MARGIN_TOP
            step = line.size * 1.45
        y -= step
        pages[-1].append((line, y))
    return pages


def _content_stream(placed: Iterable[tuple[Line, float]]) -> bytes:
    parts = [b"BT"]
    for line, y in placed:
        font = b"/F2" if line.bold else b"/F1"
        parts.append(font + f" {line.size:g} Tf".encode("ascii"))
        parts.append(f"1 0 0 1 {_MARGIN_LEFT} {y:.2f} Tm".encode("ascii"))
        parts.append(b"(" + _escape(line.text) + b") Tj")
    parts.append(b"ET")
    return b"\n".join(parts) + b"\n"


def render_pdf(lines: Sequence[Line | str], *, title: str = "", author: str = "", pad_to: int | None = None) -> bytes:
    """Lay ``lines`` out top-down on A4 pages and return a complete PDF 1.4 file (of at least
    ``pad_to`` bytes when given)."""
    normalised = [line if isinstance(line, Line) else Line(line) for line in lines]
    pages = _paginate(normalised)
    # Object numbers: 1 catalog, 2 pages, 3 F1, 4 F2, 5 info, then (page, content) pairs.
    objects: list[bytes] = []
    kids = " ".join(f"{6 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode("ascii"))
    for name in ("Helvetica", "Helvetica-Bold"):
        objects.append(
            f"<< /Type /Font /Subtype /Type1 /BaseFont /{name} /Encoding /WinAnsiEncoding >>".encode("ascii")
        )
    objects.append(
        b"<< /Title (" + _escape(title) + b") /Author (" + _escape(author) + b") /Producer (eboxd sandbox) >>"
    )
    for index, placed in enumerate(pages):
        content_ref = 7 + 2 * index
        objects.append(
            (
                f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {_PAGE_WIDTH} {_PAGE_HEIGHT}] "
                f"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {content_ref} 0 R >>"
            ).encode("ascii")
        )
        stream = _content_stream(placed)
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode("ascii") + stream + b"endstream")
    pdf = _assemble(objects)
    return pdf if pad_to is None or len(pdf) >= pad_to else _padded(objects, pdf, pad_to)


def _padded(objects: Sequence[bytes], pdf: bytes, pad_to: int) -> bytes:
    """``objects`` plus one unreferenced stream of filler, ``pad_to`` bytes in all (a few more at most)."""
    filler = random.Random(hashlib.sha256(pdf).digest()).randbytes(pad_to)  # noqa: S311 - filler, not security

    def assemble(size: int) -> bytes:
        data = filler[: max(0, size)]
        return _assemble([*objects, f"<< /Length {len(data):08d} >>\nstream\n".encode("ascii") + data
                          + b"\nendstream"])

    size = pad_to - len(assemble(0))
    padded = assemble(size)
    return padded if len(padded) >= pad_to else assemble(size + pad_to - len(padded))  # startxref got longer


def _assemble(objects: Sequence[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode("ascii") + body + b"\nendobj\n"
    xref_at = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode("ascii")
    out += b"0000000000 65535 f \n"
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode("ascii")
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 5 0 R >>\n".encode("ascii")
    out += f"startxref\n{xref_at}\n%%EOF\n".encode("ascii")
    return bytes(out)
