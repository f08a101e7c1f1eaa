"""The ZIP bundle: safe unique names, manifest, BagIt checksums, a valid archive."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
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


@pytest.mark.skipif(shutil.which("unzip") is None, reason="unzip not installed")
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
    assert again.entries == result.entries
    assert again.bundle_id == result.bundle_id
    assert not list(tmp_path.glob("**/*.part"))
