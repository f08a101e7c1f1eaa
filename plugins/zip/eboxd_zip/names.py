"""Deterministic, safe file names: ``<date>_<sender ≤40>_<reference ≤30>_<8 hex>.<ext>``.

Only ``[a-z0-9._-]`` survives (NFKD → ASCII, lower case, other runs → ``-``), so no path
separator, no ``..``, no Windows reserved name (``con``, ``nul``, ``com1``…) can come through,
and the whole path stays within 120 characters. The content hash makes names unique; two
documents with the same content and metadata get ``-2``, ``-3``… in the order they are given.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata

__all__ = ["MAX_PATH", "UniqueNames", "document_name", "slug"]

MAX_PATH = 120
_OTHER = re.compile(r"[^a-z0-9]+")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
_EXTENSIONS = {"application/pdf": "pdf", "application/xml": "xml", "text/xml": "xml", "text/plain": "txt",
               "image/png": "png", "image/jpeg": "jpg", "text/html": "html"}


def slug(text: str | None, limit: int) -> str:
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode().lower()
    cleaned = _OTHER.sub("-", ascii_text)[:limit].strip("-")
    if not cleaned:
        return "unknown"
    return f"{cleaned}-x" if cleaned in _RESERVED else cleaned


def _extension(file_name: str | None, media_type: str | None) -> str:
    if media_type in _EXTENSIONS:
        return _EXTENSIONS[media_type]
    suffix = (file_name or "").rsplit(".", 1)[-1] if "." in (file_name or "") else ""
    ext = _OTHER.sub("", unicodedata.normalize("NFKD", suffix).encode("ascii", "ignore").decode().lower())[:8]
    return ext or "bin"


def document_name(date: dt.date | None, sender: str | None, reference: str | None, sha256: str,
                  file_name: str | None, media_type: str | None, *, folder_length: int = 0) -> str:
    """The base name of a document inside the bundle (``folder_length``: the path in front of it)."""
    ext = _extension(file_name, media_type)
    day = date.isoformat() if date else "undated"
    tail = f"_{sha256[:8]}.{ext}"
    room = MAX_PATH - folder_length - len(day) - len(tail) - 2 - 3  # two separators, room for "-99"
    sender_part = slug(sender, min(40, max(8, room // 2)))
    reference_part = slug(reference, min(30, max(8, room - len(sender_part))))
    return f"{day}_{sender_part}_{reference_part}{tail}"


class UniqueNames:
    """Hands out names never given before in this bundle (case-insensitively, for Windows).

    It keeps an 8-byte digest per name, not the name: a bundle of 10,000 documents costs well
    under a MiB. Two different names with the same digest would only give one a needless ``-2``.
    """

    def __init__(self) -> None:
        self._used: set[int] = set()

    def claim(self, path: str) -> str:
        stem, dot, ext = path.rpartition(".")
        candidate, n = path, 1
        while (key := _digest(candidate)) in self._used:
            n += 1
            candidate = f"{stem}-{n}{dot}{ext}"
        self._used.add(key)
        return candidate


def _digest(path: str) -> int:
    return int.from_bytes(hashlib.blake2b(path.lower().encode(), digest_size=8).digest(), "big")
