"""Document stores. A document's key is ``sha256:<hex>``: storing the same bytes twice is a no-op,
and every ``put`` checks the bytes against the hash it is given before they become visible."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Protocol

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from daemon.config import Config
from daemon.db.models import DocumentBlob
from daemon.errors import EboxdError

__all__ = [
    "DatabaseStore", "DocumentStore", "FilesystemStore", "StoreError", "create_store", "sha256_of", "sweep_staging",
    "unavailable",
]

_CHUNK = 1 << 16

# An OS error while writing a document → a bounded reason for metrics, logs and the message's error.
_REASONS = {
    errno.ENOSPC: "disk_full", errno.EDQUOT: "disk_full", errno.EROFS: "read_only",
    errno.EACCES: "permission_denied", errno.EPERM: "permission_denied",
}
_EXPLAINED = {
    "disk_full": "is full", "read_only": "is read-only", "permission_denied": "is not writable by eboxd",
    "store_unavailable": "is unavailable",
}


class StoreError(EboxdError):
    """The document store refused a document (hash mismatch, disk full, read-only).

    ``reason`` is one of ``disk_full``, ``read_only``, ``permission_denied``, ``store_unavailable``,
    ``hash_mismatch``, ``bad_key``: a bounded label for metrics."""

    def __init__(self, message: str, *, reason: str = "store_unavailable") -> None:
        super().__init__(message)
        self.reason = reason


def unavailable(exc: OSError, root: object, doing: str) -> StoreError:
    """The store error for an OS error met while ``doing`` something in the store at ``root`` (a path,
    or the store)."""
    reason = _REASONS.get(exc.errno or 0, "store_unavailable")
    where = f" ({exc.filename})" if exc.filename else ""
    return StoreError(f"document store {root} {_EXPLAINED[reason]}: cannot {doing}: "
                      f"{exc.strerror or exc}{where}", reason=reason)


def _discard(path: Path) -> None:
    """Remove a file that is not wanted; on a read-only store that may fail, and must not hide why."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _key(sha256: str) -> str:
    return f"sha256:{sha256}"


def _hex(key: str) -> str:
    if not key.startswith("sha256:") or len(key) != 71:
        raise StoreError(f"not a document key: {key!r}", reason="bad_key")
    return key[7:]


class DocumentStore(Protocol):
    def staging(self) -> Path:
        """A private directory for downloads in progress (same filesystem where it matters)."""
        ...

    def put(self, source: Path, sha256: str) -> str:
        """Store ``source`` (which is consumed) under its hash; returns the key."""
        ...

    @contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        ...

    def exists(self, key: str) -> bool:
        ...


class FilesystemStore:
    """``<root>/ab/cd/<sha256>``, written by rename so a reader never sees half a document."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"FilesystemStore({str(self.root)!r})"

    def staging(self) -> Path:
        path = self.root / ".staging"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def _path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, source: Path, sha256: str) -> str:
        actual = sha256_of(source)
        if actual != sha256:
            _discard(source)
            raise StoreError(f"{source.name}: content hash {actual} differs from the expected {sha256}",
                             reason="hash_mismatch")
        target = self._path(sha256)
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if target.exists():
                source.unlink()
            else:
                os.replace(source, target)
        except OSError as exc:
            _discard(source)
            raise unavailable(exc, self.root, f"store document {sha256[:12]}…") from exc
        return _key(sha256)

    @contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        with self._path(_hex(key)).open("rb") as file:
            yield file

    def exists(self, key: str) -> bool:
        return self._path(_hex(key)).exists()


class DatabaseStore:
    """Contents in the ``document_blobs`` table: every node sees every document."""

    def __init__(self, engine: Engine, staging_root: Path) -> None:
        self.engine = engine
        self.staging_root = staging_root

    def __repr__(self) -> str:
        return f"DatabaseStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def staging(self) -> Path:
        self.staging_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.staging_root

    def put(self, source: Path, sha256: str) -> str:
        content = source.read_bytes()
        _discard(source)
        actual = hashlib.sha256(content).hexdigest()
        if actual != sha256:
            raise StoreError(f"{source.name}: content hash {actual} differs from the expected {sha256}",
                             reason="hash_mismatch")
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        with self.engine.begin() as tx:
            tx.execute(insert(DocumentBlob).values(sha256=sha256, size=len(content), content=content)
                       .on_conflict_do_nothing(index_elements=["sha256"]))
        return _key(sha256)

    @contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        with self.engine.connect() as conn:
            content = conn.execute(select(DocumentBlob.content).where(DocumentBlob.sha256 == _hex(key))).scalar()
        if content is None:
            raise FileNotFoundError(key)
        with tempfile.SpooledTemporaryFile(max_size=1 << 20) as buffer:
            buffer.write(content)
            buffer.seek(0)
            yield buffer  # type: ignore[misc]

    def exists(self, key: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(DocumentBlob.sha256).where(DocumentBlob.sha256 == _hex(key))).first() is not None


def sweep_staging(store: DocumentStore, older_than_seconds: float, *, now: float | None = None) -> int:
    """Delete the downloads a killed worker left in ``store``'s staging area (``*.part`` files older
    than ``older_than_seconds``: longer than a fetch may run, so none is in progress); how many.
    A store that cannot be swept now (read-only, missing) is left for the next start."""
    cutoff = (time.time() if now is None else now) - older_than_seconds
    removed = 0
    with contextlib.suppress(OSError):
        for part in store.staging().glob("*.part"):
            with contextlib.suppress(OSError):
                if part.stat().st_mtime < cutoff:
                    part.unlink()
                    removed += 1
    return removed


def create_store(config: Config, engine: Engine) -> DocumentStore:
    if config.documents.store == "database":
        return DatabaseStore(engine, config.data_dir / "staging")
    return FilesystemStore(config.documents_dir)


def copy_out(store: DocumentStore, key: str, target: BinaryIO) -> None:
    with store.open(key) as source:
        shutil.copyfileobj(source, target, _CHUNK)
