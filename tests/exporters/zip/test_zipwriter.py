"""The streaming ZIP writer: readable by zipfile and unzip, central directory sorted, ZIP64 when needed."""

from __future__ import annotations

import random
import subprocess
import zipfile
from pathlib import Path

import pytest
from eboxd_zip import zipwriter
from eboxd_zip.zipwriter import StoredZipWriter, sorted_lines


def _write(path: Path, entries: list[tuple[str, bytes]], *, size_hint: bool = True) -> None:
    spool = path.parent / "spool"
    spool.mkdir(exist_ok=True)
    with path.open("w+b") as out:
        writer = StoredZipWriter(out, spool)
        for name, data in entries:
            with writer.open(name, len(data) if size_hint else None) as sink:
                for start in range(0, len(data), 7):  # in chunks, as documents are copied
                    sink(data[start:start + 7])
        writer.close()


def _unzip_ok(path: Path) -> bool:
    return subprocess.run(["unzip", "-t", "-qq", str(path)], capture_output=True, check=False).returncode == 0


def test_entries_read_back_sorted_with_their_bytes(tmp_path: Path) -> None:
    entries = [("b/2.pdf", b"second" * 100), ("a/1.pdf", b""), ("c.txt", "Grüße 😀\n".encode()), ("Z.bin", b"\x00\xff")]
    path = tmp_path / "out.zip"
    _write(path, entries)
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        assert zf.namelist() == sorted(name for name, _ in entries)  # central directory sorted
        assert {name: zf.read(name) for name, _ in entries} == dict(entries)
        infos = zf.infolist()
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) and i.compress_type == zipfile.ZIP_STORED for i in infos)
    assert all(i.external_attr >> 16 == 0o100644 and i.create_system == 3 for i in infos)
    assert sorted(infos, key=lambda i: i.header_offset)[0].filename == "b/2.pdf"  # local entries: written order
    assert _unzip_ok(path)


def test_unknown_sizes_get_zip64_local_headers(tmp_path: Path) -> None:
    path = tmp_path / "out.zip"
    _write(path, [("x.pdf", b"%PDF" * 1000), ("y.pdf", b"")], size_hint=False)
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        assert zf.read("x.pdf") == b"%PDF" * 1000
    assert _unzip_ok(path)


def test_more_entries_than_a_plain_zip_counts_use_zip64_end_records(tmp_path: Path) -> None:
    count = 0x10000 + 5  # the classic end record counts entries in 16 bits
    path = tmp_path / "many.zip"
    _write(path, [(f"d/{n:06d}", str(n).encode()) for n in range(count)])
    assert b"PK\x06\x06" in path.read_bytes()[-200:]  # the ZIP64 end record and its locator
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert len(names) == count
        assert zf.read("d/065540") == b"65540"
        assert zf.testzip() is None
    assert _unzip_ok(path)


def test_sorted_lines_merges_runs_spilled_to_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zipwriter, "_RUN_BYTES", 100)  # a run every few lines
    rng = random.Random(3)
    lines = [f"{rng.random()}\n".encode() for _ in range(1000)]
    assert list(sorted_lines(iter(lines), tmp_path)) == sorted(lines)
    assert list(sorted_lines(iter(lines[:3]), tmp_path)) == sorted(lines[:3])
    assert list(sorted_lines(iter([]), tmp_path)) == []
    assert list(tmp_path.iterdir()) == []  # the runs are gone
