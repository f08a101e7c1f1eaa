"""The entry points: open a source, run the parser over its lines, hand out statements or movements."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from daemon.banking.coda.errors import CodaError
from daemon.banking.coda.model import Movement, Statement
from daemon.banking.coda.parser import Event, Parser
from daemon.banking.coda.reader import blocks

__all__ = ["Source", "iter_movements", "iter_statements", "parse_coda"]

Source = str | os.PathLike[str] | IO[bytes] | bytes


def _open(source: Source, name: str | None) -> tuple[IO[bytes], str, bool]:
    if isinstance(source, bytes):
        return io.BytesIO(source), name or "<bytes>", True
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            return path.open("rb"), name or str(path), True
        except OSError as exc:
            raise CodaError(str(path), None, None, "a readable file", exc.strerror) from None
    return source, name or str(getattr(source, "name", "<stream>")), False


def _run(source: Source, name: str | None, collect: bool) -> Iterator[Event]:
    stream, label, owned = _open(source, name)
    try:
        parser = Parser(label, collect=collect)
        try:
            yield from parser.run(blocks(stream))
        except CodaError:
            raise
        except (ValueError, IndexError, ArithmeticError, KeyError) as exc:  # defensive: never leak these
            raise CodaError(label, parser.line or None, None, "a well-formed record", f"{type(exc).__name__}: {exc}"
                            ) from None
    finally:
        if owned:
            stream.close()


def iter_statements(source: Source, *, name: str | None = None) -> Iterator[Statement]:
    """Each statement of a CODA file (path, binary stream or bytes), one at a time, complete with
    its movements and warnings. Raises :class:`CodaError` on malformed input."""
    for kind, item in _run(source, name, True):
        if kind == "statement":
            yield item


def iter_movements(source: Source, *, name: str | None = None,
                   on_statement: Callable[[Statement], None] | None = None) -> Iterator[tuple[Statement, Movement]]:
    """(statement, top-level movement) pairs as they are read, keeping only the movement being
    built in memory. The statement is complete (balances, trailer, warnings) only when
    ``on_statement`` is called with it, after its last movement."""
    for kind, item in _run(source, name, False):
        if kind == "movement":
            yield item
        elif on_statement is not None:
            on_statement(item)


def parse_coda(source: Source, *, name: str | None = None) -> list[Statement]:
    """Every statement of a CODA file, in a list."""
    return list(iter_statements(source, name=name))
