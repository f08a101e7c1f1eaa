"""A ZIP writer whose memory does not grow with the number of entries.

``zipfile`` keeps a ``ZipInfo`` (~450 bytes) per entry until it writes the central directory;
for a 10,000-document bundle that alone is several MiB. This writer appends each entry's
central-directory record to a spool file instead and, on close, writes them sorted by name
(``sorted_lines``: sorted runs on disk, merged), so every tool lists the entries sorted while the
local entries stay in the order they were written. Entries are stored (no compression), dated
1980-01-01, mode 0644, made on Unix; ZIP64 records are added only where a size, an offset or the
entry count needs them.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import struct
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["StoredZipWriter", "sorted_lines"]

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_END64 = struct.Struct("<IQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<IIQI")
_LIMIT = 0xFFFFFFFF
_DOS_DATE = (1 << 5) | 1  # 1980-01-01, the earliest date a ZIP can hold
_MODE = 0o100644 << 16
_UNIX = 3 << 8
_UTF8 = 0x800
_RUN_BYTES = 1 << 19  # how much sorted_lines sorts in memory at once; the rest waits in runs on disk


def sorted_lines(lines: Iterable[bytes], spool: Path) -> Iterator[bytes]:
    """``lines`` (each ending in ``\\n``) in byte order, holding about ``_RUN_BYTES`` of them in memory."""
    runs: list[BinaryIO] = []
    chunk: list[bytes] = []
    held = 0
    with contextlib.ExitStack() as stack:
        for line in lines:
            chunk.append(line)
            held += len(line)
            if held >= _RUN_BYTES:
                runs.append(_write_run(stack, sorted(chunk), spool))
                chunk, held = [], 0
        if not runs:
            yield from sorted(chunk)
            return
        if chunk:
            runs.append(_write_run(stack, sorted(chunk), spool))
        yield from heapq.merge(*runs)


def _write_run(stack: contextlib.ExitStack, lines: list[bytes], spool: Path) -> BinaryIO:
    run = stack.enter_context(tempfile.TemporaryFile(dir=spool))  # noqa: SIM115  (closed by the stack)
    run.writelines(lines)
    run.seek(0)
    return run


class StoredZipWriter:
    """Writes stored entries into ``out`` (a seekable file, positioned at 0); ``close`` finishes it."""

    def __init__(self, out: BinaryIO, spool: Path) -> None:
        self._out = out
        self._spool = spool
        self._central = tempfile.TemporaryFile(dir=spool)  # noqa: SIM115  (closed by close(); unlinked already)
        self._count = 0

    def add_bytes(self, name: str, data: bytes) -> None:
        with self.open(name, len(data)) as sink:
            sink(data)

    @contextlib.contextmanager
    def open(self, name: str, size_hint: int | None) -> Iterator[_Sink]:
        """An entry to write in chunks (``sink(chunk)``); its header is completed on exit."""
        encoded, flags = _encode(name)
        zip64 = size_hint is None or size_hint >= _LIMIT
        offset = self._out.tell()
        extra = struct.pack("<HHQQ", 1, 16, 0, 0) if zip64 else b""
        self._out.write(_LOCAL.pack(0x04034B50, 45 if zip64 else 20, flags, 0, 0, _DOS_DATE, 0,
                                    _LIMIT if zip64 else 0, _LIMIT if zip64 else 0, len(encoded), len(extra)))
        self._out.write(encoded + extra)
        sink = _Sink(self._out)
        yield sink
        if sink.size >= _LIMIT and not zip64:
            raise ValueError(f"{name}: {sink.size} bytes, more than its declared size allows without ZIP64")
        end = self._out.tell()
        self._out.seek(offset + 14)
        if zip64:
            self._out.write(struct.pack("<I", sink.crc))
            self._out.seek(offset + _LOCAL.size + len(encoded) + 4)
            self._out.write(struct.pack("<QQ", sink.size, sink.size))
        else:
            self._out.write(struct.pack("<III", sink.crc, sink.size, sink.size))
        self._out.seek(end)
        record = [name, offset, sink.crc, sink.size]
        self._central.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
        self._count += 1

    def close(self) -> None:
        """Write the central directory (sorted by name) and the end records."""
        start = self._out.tell()
        self._central.seek(0)
        for line in sorted_lines(self._central, self._spool):
            name, offset, crc, size = json.loads(line)
            self._out.write(_central_record(name, offset, crc, size))
        self._central.close()
        end = self._out.tell()
        size, count = end - start, self._count
        if count >= 0xFFFF or start >= _LIMIT or size >= _LIMIT:
            self._out.write(_END64.pack(0x06064B50, _END64.size - 12, _UNIX | 45, 45, 0, 0, count, count, size,
                                        start))
            self._out.write(_LOCATOR64.pack(0x07064B50, 0, end, 1))
            self._out.write(_END.pack(0x06054B50, 0, 0, 0xFFFF, 0xFFFF, _LIMIT, _LIMIT, 0))
        else:
            self._out.write(_END.pack(0x06054B50, 0, 0, count, count, size, start, 0))


class _Sink:
    """Writes one entry's bytes, keeping its CRC-32 and size."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.crc = 0
        self.size = 0

    def __call__(self, chunk: bytes) -> None:
        self._out.write(chunk)
        self.crc = zlib.crc32(chunk, self.crc)
        self.size += len(chunk)


def _encode(name: str) -> tuple[bytes, int]:
    try:
        return name.encode("ascii"), 0
    except UnicodeEncodeError:
        return name.encode("utf-8"), _UTF8


def _central_record(name: str, offset: int, crc: int, size: int) -> bytes:
    encoded, flags = _encode(name)
    wide = [value for value in (size, size, offset) if value >= _LIMIT]  # the order ZIP64 prescribes
    extra = struct.pack(f"<HH{len(wide)}Q", 1, 8 * len(wide), *wide) if wide else b""
    version = 45 if wide else 20
    return _CENTRAL.pack(0x02014B50, _UNIX | version, version, flags, 0, 0, _DOS_DATE, crc,
                         min(size, _LIMIT), min(size, _LIMIT), len(encoded), len(extra), 0, 0, 0, _MODE,
                         min(offset, _LIMIT)) + encoded + extra
