"""Bytes to record text: blocks of whole lines decoded at once, line ends normalised and a BOM removed.

Reading 64 KiB at a time and decoding a block in one call (when it is ASCII, as most CODA
files are) costs a fraction of decoding line by line, and the parser reads the block's text in
place rather than as a list of lines; memory stays one block whatever the file size.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

__all__ = ["RECORD_LENGTH", "WHITESPACE", "Block", "blocks", "decode_line"]

RECORD_LENGTH = 128
WHITESPACE = " \t\n\r\x0b\x0c"  # what bytes.strip() removes: a line of only these is blank
_BOM = b"\xef\xbb\xbf"
_BLOCK_SIZE = 1 << 16  # 64 KiB: ~500 records per call, a small fixed buffer

# (text, raw): whole lines, each ending in LF without CR; ``raw`` is the block's bytes when they
# are those of ``text`` character for character (ASCII, LF only), so that a run of records can be
# hashed without encoding it again; else None.
Block = tuple[str, bytes | None]


def decode_line(raw: bytes) -> str:
    """UTF-8 when the line is valid UTF-8, else cp1252, else latin-1 (0x81, 0x8D… are undefined in cp1252).

    Some cp1252 text is also valid UTF-8 ("Â" + no-break space): a record is 128 characters, so
    when only the cp1252 reading has that length, it is the right one.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
    if len(text) != RECORD_LENGTH and len(raw) == RECORD_LENGTH:
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
    return text


def _decoded(chunk: bytes) -> Block:
    """The lines of ``chunk`` (whole lines separated by LF, the last one without its LF), each
    ending in LF without its trailing CR characters."""
    chunk += b"\n"
    try:
        text = chunk.decode("ascii")  # one pass: no isascii() first
    except UnicodeDecodeError:
        pass
    else:
        if "\r" not in text:
            return text, chunk
        return "\n".join([line.rstrip("\r") for line in text.split("\n")]), None  # the last "line" is empty
    return "\n".join([decode_line(line.rstrip(b"\r")) for line in chunk[:-1].split(b"\n")]) + "\n", None


def blocks(stream: IO[bytes]) -> Iterator[Block]:
    """Every line of the stream, in blocks of consecutive lines (so line numbers follow on), split
    on LF like iterating a binary file (a last line without LF is a line)."""
    parts: list[bytes] = []  # the line being read, when it spans several reads
    at_start = True  # the first line may start with a UTF-8 byte order mark
    while data := stream.read(_BLOCK_SIZE):
        end = data.rfind(b"\n")
        if end < 0:
            parts.append(data)
            continue
        parts.append(data[:end])
        chunk, parts = b"".join(parts), [data[end + 1:]]
        if at_start:
            chunk, at_start = chunk.removeprefix(_BOM), False
        yield _decoded(chunk)
    rest = b"".join(parts)
    if rest:
        yield _decoded(rest.removeprefix(_BOM) if at_start else rest)
