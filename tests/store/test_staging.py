"""Partial downloads a killed worker left behind are swept at the next worker start; nothing else."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from daemon.store import FilesystemStore, sweep_staging


def test_only_partial_files_older_than_a_fetch_can_run_are_removed(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path / "documents")
    staging = store.staging()
    stale, fresh, other = staging / "stale.part", staging / "fresh.part", staging / "notes.txt"
    for path in (stale, fresh, other):
        path.write_bytes(b"partial")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    os.utime(other, (an_hour_ago, an_hour_ago))
    source = tmp_path / "letter.pdf"
    source.write_bytes(b"%PDF-1.4 stored")
    key = store.put(source, hashlib.sha256(b"%PDF-1.4 stored").hexdigest())

    assert sweep_staging(store, older_than_seconds=1200) == 1
    assert not stale.exists()
    assert fresh.exists()  # may be a download in progress in another worker
    assert other.exists()
    assert store.exists(key)
    assert sweep_staging(store, older_than_seconds=1200) == 0


def test_a_store_that_cannot_be_swept_is_left_alone(tmp_path: Path) -> None:
    blocked = tmp_path / "documents"
    blocked.write_text("a file where the store's directory should be")
    assert sweep_staging(FilesystemStore(blocked), older_than_seconds=0) == 0
    assert blocked.read_text().startswith("a file")
