"""The ZIP bundle: safe unique names, manifest, BagIt checksums, a valid archive."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import zipfile
from pathlib import Path

import pytest
from eboxd_zip.bundle import build_bundle
from eboxd_zip.names import MAX_PATH
from sqlalchemy.orm import Session

from daemon.exports import export_documents
from daemon.store import FilesystemStore
from tests.plugins.conftest import seed_documents

NASTY = ["../../etc/passwd", "CON.pdf", "a/b\\c.pdf", "😀 factuur 😀.pdf", "x" * 300 + ".pdf", "CON.pdf",
         "nul", "..", "Ünïcødé Brief.PDF"]


@pytest.fixture
def bundle(engine, tmp_path: Path):
    store = FilesystemStore(tmp_path / "documents")
    enterprise, _ = seed_documents(engine, store, tmp_path, NASTY)
    with Session(engine) as session:
        docs = list(export_documents(session, store, enterprise.id))
    out = tmp_path / "out"
    out.mkdir()
    return build_bundle(docs, out, administration=enterprise.number), docs


def test_names_are_safe_unique_and_short(bundle) -> None:
    result, docs = bundle
    with zipfile.ZipFile(result.path) as zf:
        names = zf.namelist()
        assert zf.testzip() is None
    assert len(names) == len(set(names)) == len(docs) + 6
    for name in names:
        assert len(name) <= MAX_PATH
        assert ".." not in name.split("/")
        assert "\\" not in name
        assert all(c.isascii() and (c.isalnum() or c in "._-/") for c in name), name
        base = Path(name).name.split(".")[0].lower()
        assert base not in {"con", "nul", "prn", "aux"}
    assert result.path.name.startswith(f"{result.top}_{result.bundle_id}")


def test_unzip_accepts_it(bundle) -> None:
    result, _ = bundle
    assert subprocess.run(["unzip", "-t", str(result.path)], capture_output=True, check=False).returncode == 0


def test_manifest_and_bagit_checksums(bundle) -> None:
    result, docs = bundle
    with zipfile.ZipFile(result.path) as zf:
        top = result.top
        index = json.loads(zf.read(f"{top}/data/index.json"))
        rows = list(csv.DictReader(io.StringIO(zf.read(f"{top}/data/index.csv").decode("utf-8-sig")), delimiter=";"))
        manifest = zf.read(f"{top}/manifest-sha256.txt").decode().splitlines()
        for line in manifest:
            digest, path = line.split("  ")
            assert hashlib.sha256(zf.read(f"{top}/{path}")).hexdigest() == digest
        infos = zf.infolist()
    assert index["schema"] == "handover/1"
    assert index["bundle_id"] == result.bundle_id
    assert len(index["documents"]) == len(rows) == len(docs)
    paid = [d for d in index["documents"] if d["amount_incl_vat"] is not None]
    assert paid[0]["amount_incl_vat"] == 123.45
    assert paid[0]["structured_ref"] == "+++090/9337/55493+++"
    assert {r["original_file_name"] for r in rows} == set(NASTY)
    assert all(r["message_id"] and r["counterparty_name"] == "FOD Financiën" for r in rows)
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) and i.compress_type == zipfile.ZIP_STORED for i in infos)


def test_same_documents_same_payload_bytes(bundle, tmp_path: Path) -> None:
    result, docs = bundle
    again = build_bundle(list(reversed(docs)), tmp_path / "again.zip", administration=docs[0].enterprise_number)
    assert again.bundle_id == result.bundle_id
    with zipfile.ZipFile(result.path) as first, zipfile.ZipFile(again.path) as second:
        assert first.namelist() == second.namelist()
        for name in first.namelist():
            if not name.endswith("bag-info.txt"):  # the bagging date may differ
                assert first.read(name) == second.read(name)
    assert again.path.read_bytes() == result.path.read_bytes()  # same day: the very same bytes
    assert not list(tmp_path.glob("**/*.part"))


class _Shifting:
    """A document source that gives one more document on its second pass (a fetch landing mid-export)."""

    def __init__(self, docs: list) -> None:
        self.docs, self.passes = docs, 0

    def __iter__(self):
        self.passes += 1
        return iter(self.docs if self.passes == 1 else [*self.docs, self.docs[0]])


def test_documents_changing_between_passes_leave_no_bundle(bundle, tmp_path: Path) -> None:
    from daemon.plugins import ExportError  # noqa: PLC0415

    _, docs = bundle
    target = tmp_path / "changed.zip"
    with pytest.raises(ExportError, match="changed while the bundle was being written"):
        build_bundle(_Shifting(docs), target, administration=docs[0].enterprise_number)
    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_one_shot_iterator_gives_the_same_bundle(bundle, tmp_path: Path) -> None:
    result, docs = bundle
    again = build_bundle(iter(docs), tmp_path / "again.zip", administration=docs[0].enterprise_number)
    assert (again.bundle_id, again.documents, again.payload_bytes) == (result.bundle_id, len(docs),
                                                                        result.payload_bytes)


def test_bag_info_counts_the_payload(bundle) -> None:
    result, docs = bundle
    with zipfile.ZipFile(result.path) as zf:
        info = dict(line.split(": ", 1) for line in zf.read(f"{result.top}/bag-info.txt").decode().splitlines())
        payload = [i for i in zf.infolist() if i.filename.startswith(f"{result.top}/data/")]
        tags = zf.read(f"{result.top}/tagmanifest-sha256.txt").decode().splitlines()
        for line in tags:
            digest, name = line.split("  ")
            assert hashlib.sha256(zf.read(f"{result.top}/{name}")).hexdigest() == digest
    assert info["Payload-Oxum"] == f"{sum(i.file_size for i in payload)}.{len(docs) + 2}"
    assert info["External-Identifier"] == f"{result.top}_{result.bundle_id}"
    assert [line.split("  ")[1] for line in tags] == ["bag-info.txt", "bagit.txt", "manifest-sha256.txt"]


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path: Path) -> None:
    from eboxd_zip.bundle import atomic_file  # noqa: PLC0415

    target = tmp_path / "2024-05-01_fod_x_1a2b3c4d.pdf"
    leftover = tmp_path / f".{target.name}.k3j2l1.part"  # what a SIGKILLed worker leaves
    leftover.write_bytes(b"half a docu")
    unrelated = tmp_path / ".other.pdf.aaaa.part"
    unrelated.write_bytes(b"another document's")
    with atomic_file(target) as handle:
        handle.write(b"the whole document")
    assert target.read_bytes() == b"the whole document"
    assert not leftover.exists()
    assert unrelated.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, unrelated.name])
