"""Bundles over 20 MB split into parts (``…_part1of3.zip``): a Belgian intake mailbox takes at
most 20 MB a mail (accounting spec §4).

Each part is a complete bag of its own (index, manifests, ``Bag-Count: 1 of 3``) holding
consecutive documents in date order, so the accountant can file each mail on its own. A first
pass adds up what each document costs a bundle, counted from above (its bytes, index rows,
manifest line and ZIP headers), and keeps only where the parts begin; then each part is written
by ``build_bundle`` from its stretch of the same documents. A document larger than the limit
gets a part of its own: PDFs are not cut.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from daemon.plugins import ExportDocument
from eboxd_zip.bundle import BundleResult, build_bundle, longest_top, named, reiterable
from eboxd_zip.manifest import Entry, csv_row, json_row

__all__ = ["PART_LIMIT", "build_bundles", "part_bounds"]

PART_LIMIT = 20_000_000
"""Bytes of one ZIP at most (the mailbox's 20 MB)."""

FIXED_COST = 8 * 1024
"""What a bundle costs besides its documents, at most: tag files, index headers, their entries
and manifest lines, the ZIP end records."""


def entry_cost(doc: ExportDocument, path: str, administration: str) -> int:
    """The bytes ``doc`` adds to a bundle, at most."""
    entry = Entry(doc, path)
    name = len(f"{longest_top(administration)}/data/{path}".encode())
    index = len(csv_row(entry).encode()) + len(json_row(entry).encode()) + 2  # a comma and a newline
    manifest = len(f"{doc.sha256}  data/{path}\n".encode())
    headers = (30 + 20 + name) + (46 + 28 + name)  # local and central, with room for ZIP64 fields
    return (doc.size or 0) + index + manifest + headers


def part_bounds(documents: Iterable[ExportDocument], administration: str, limit: int) -> list[tuple[int, int]]:
    """Where each part begins and ends (positions in ``documents``), in order."""
    bounds: list[tuple[int, int]] = []
    start, used, count = 0, FIXED_COST, 0
    for position, (doc, path) in enumerate(named(documents, administration)):
        cost = entry_cost(doc, path, administration)
        if used + cost > limit and position > start:
            bounds.append((start, position))
            start, used = position, FIXED_COST
        used += cost
        count = position + 1
    bounds.append((start, count))
    return bounds


class _Stretch:
    """Documents ``start`` to ``stop`` (exclusive) of a source that can be iterated again."""

    def __init__(self, documents: Iterable[ExportDocument], start: int, stop: int) -> None:
        self._documents, self._start, self._stop = documents, start, stop

    def __iter__(self) -> Iterator[ExportDocument]:
        for position, doc in enumerate(self._documents):
            if position >= self._stop:
                return
            if position >= self._start:
                yield doc


def _stretch(documents: Iterable[ExportDocument], start: int, stop: int) -> Iterable[ExportDocument]:
    """The source's own ``window(start, stop)`` if it has one (``DocumentSelection``: OFFSET and
    LIMIT), else a stretch that reads the source from its beginning."""
    window = getattr(documents, "window", None)
    return window(start, stop) if callable(window) else _Stretch(documents, start, stop)


def build_bundles(documents: Iterable[ExportDocument], output: Path, *, administration: str,
                  progress: Callable[[ExportDocument], None] | None = None,
                  limit: int | None = None) -> list[BundleResult]:
    """One bundle at ``output`` if it fits in ``limit`` bytes (default ``PART_LIMIT``; 0: no limit),
    else parts: ``output`` a file ``x.zip`` gives ``x_part1of3.zip``…; a folder, the standard
    names with ``_part1of3``…"""
    documents = reiterable(documents)
    limit = PART_LIMIT if limit is None else limit
    if limit <= 0:
        return [build_bundle(documents, output, administration=administration, progress=progress)]
    bounds = part_bounds(documents, administration, limit)
    if len(bounds) == 1:
        return [build_bundle(documents, output, administration=administration, progress=progress)]
    results = []
    for number, (start, stop) in enumerate(bounds, 1):
        part = (number, len(bounds))
        target = output if output.is_dir() else output.with_name(
            f"{output.stem}_part{number}of{len(bounds)}{output.suffix}")
        results.append(build_bundle(_stretch(documents, start, stop), target, administration=administration,
                                    progress=progress, part=part))
    return results
