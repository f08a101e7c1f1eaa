"""Bundles over the mailbox limit split into parts: each part a whole bag within the limit,
every document in exactly one part, parts in date order."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest
from eboxd_zip.parts import FIXED_COST, build_bundles
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from daemon.exports import DocumentSelection
from daemon.store import FilesystemStore
from tests.plugins.conftest import seed_documents

COUNT = 12


@pytest.fixture
def selection(engine: Engine, tmp_path: Path):
    store = FilesystemStore(tmp_path / "documents")
    enterprise, ids = seed_documents(engine, store, tmp_path, [f"brief {i}.pdf" for i in range(COUNT)])
    with Session(engine) as session:
        yield DocumentSelection(session, store, enterprise.id), enterprise.number, ids


def _read(path: Path) -> tuple[dict, dict[str, str]]:
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        [index] = [n for n in zf.namelist() if n.endswith("/data/index.json")]
        [info] = [n for n in zf.namelist() if n.endswith("/bag-info.txt")]
        bag_info = dict(line.split(": ", 1) for line in zf.read(info).decode().splitlines())
        return json.loads(zf.read(index)), bag_info


def test_a_bundle_over_the_limit_is_split_into_whole_bags(selection, tmp_path: Path) -> None:
    documents, number, ids = selection
    limit = FIXED_COST + 3 * 2600  # about three of these small documents a part
    written: list[int] = []
    results = build_bundles(documents, tmp_path / "bundle.zip", administration=number, limit=limit,
                            progress=lambda doc: written.append(doc.document_id))
    parts = len(results)
    assert parts > 2
    assert [r.path.name for r in results] == [f"bundle_part{n}of{parts}.zip" for n in range(1, parts + 1)]
    seen: list[int] = []
    last_date = ""
    for n, result in enumerate(results, 1):
        assert result.path.stat().st_size <= limit
        index, bag_info = _read(result.path)
        assert bag_info["Bag-Count"] == f"{n} of {parts}"
        assert index["bundle_id"] == result.bundle_id
        dates = sorted(doc["document_date"] for doc in index["documents"])
        assert dates[0] >= last_date  # consecutive documents in date order
        last_date = dates[-1]
        seen += [doc["document_id"] for doc in index["documents"]]
        assert subprocess.run(["unzip", "-tqq", str(result.path)], check=False).returncode == 0
    assert sorted(seen) == sorted(ids)  # every document in exactly one part
    assert sorted(written) == sorted(ids)  # the progress saw each once
    assert sum(r.documents for r in results) == COUNT


def test_a_document_larger_than_the_limit_gets_a_part_of_its_own(selection, tmp_path: Path) -> None:
    documents, number, ids = selection
    out = tmp_path / "parts"
    out.mkdir()
    results = build_bundles(documents, out, administration=number, limit=FIXED_COST + 100)
    assert [r.documents for r in results] == [1] * COUNT
    assert all(r.path.parent == out and r.path.name.endswith(f"_part{n}of{COUNT}.zip")
               for n, r in enumerate(results, 1))
    assert sorted(_read(r.path)[0]["documents"][0]["document_id"] for r in results) == sorted(ids)


def test_a_bundle_within_the_limit_stays_one_file(selection, tmp_path: Path) -> None:
    documents, number, _ = selection
    [result] = build_bundles(documents, tmp_path / "bundle.zip", administration=number)
    assert result.path == tmp_path / "bundle.zip"
    assert result.documents == COUNT
    assert "Bag-Count" not in _read(result.path)[1]


def test_a_list_is_split_the_same_way_as_a_database_selection(selection, tmp_path: Path) -> None:
    documents, number, _ = selection
    limit = FIXED_COST + 3 * 2600
    from_database = build_bundles(documents, tmp_path / "db.zip", administration=number, limit=limit)
    from_list = build_bundles(list(reversed(list(documents))), tmp_path / "list.zip", administration=number,
                              limit=limit)
    assert [(r.bundle_id, r.documents) for r in from_list] == [(r.bundle_id, r.documents) for r in from_database]
    assert build_bundles(documents, tmp_path / "whole.zip", administration=number, limit=0)[0].documents == COUNT
