"""Text plumbing shared by the readers: normalisation, lines, cells, accent folding, masking."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Cell", "Line", "cells", "fold", "mask", "normalise", "split_lines"]

_SPACES = re.compile(r"[\u00a0\u2000-\u200a\u202f\u205f\u3000]")
_DASHES = re.compile(r"[\u2010-\u2015\u2212]")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u2032": "'"})
_CELL_GAP = re.compile(r"\t+| {2,}|\s*\|\s*")


@functools.lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    return unicodedata.normalize("NFD", char)[0].lower()[:1] or char


def fold(text: str) -> str:
    """Lower case without accents, one character for one (so offsets stay valid)."""
    if text.isascii():
        return text.lower()
    return "".join(map(_fold_char, text))


def normalise(text: str) -> str:
    """NFC; exotic spaces, dashes and quotes made plain; ``\\r\\n`` and ``\\r`` made ``\\n``."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")
    text = _SPACES.sub(" ", text)
    text = _DASHES.sub("-", text)
    return text.translate(_QUOTES)


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the document: ``text`` as printed, ``folded`` for matching labels (same length)."""

    index: int
    text: str
    folded: str


def split_lines(text: str) -> list[Line]:
    """The normalised, right-stripped lines of ``text``, blank ones included (they keep the layout)."""
    return [Line(index, line.rstrip(), fold(line.rstrip())) for index, line in enumerate(normalise(text).split("\n"))]


@dataclass(frozen=True, slots=True)
class Cell:
    """A column of a table row (text between runs of 2+ spaces, tabs or ``|``)."""

    start: int
    end: int
    text: str


def cells(text: str) -> list[Cell]:
    """Split a line into table cells; a line of prose is one cell."""
    out: list[Cell] = []
    position = 0
    for gap in [*_CELL_GAP.finditer(text), None]:
        end = len(text) if gap is None else gap.start()
        chunk = text[position:end]
        if chunk.strip():
            offset = len(chunk) - len(chunk.lstrip())
            out.append(Cell(position + offset, end, chunk.strip()))
        if gap is not None:
            position = gap.end()
    return out


def mask(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` with each ``(start, end)`` span blanked out by spaces (offsets unchanged)."""
    spans = list(spans)
    if not spans:
        return text
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)
