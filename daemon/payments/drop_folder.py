"""The CODA drop folder that ``eboxd serve`` watches (``[banking] coda_drop_dir``).

A bank connector, an SFTP upload or a person puts CODA files in the folder; each complete file is
imported (:func:`~daemon.payments.bank_import.import_coda_file`: every movement stored once under
its dedupe key, ``match_payments`` queued through the outbox in the same transaction when
something new was stored), then moved to ``processed/``, or to ``rejected/`` beside a
``<name>.reason.txt`` that names the file, line and columns the parser refused.

Which files are complete:

* names starting with ``.`` or ``~`` and names ending in ``.part``, ``.partial``, ``.tmp``,
  ``.crdownload`` or ``.filepart`` are never read: write under such a name, then rename (atomic);
* any other regular file is read once it has not been modified for ``settle_seconds`` (for
  writers that cannot rename), and, if its last record is not a trailer (record 9), only once
  unmodified for ``INCOMPLETE_GRACE_SECONDS``: a slow writer that paused is not mistaken for a
  malformed file (a file cut in the middle of a record reads as a wrong amount or date), while a
  truly truncated one is still rejected in the end (``specs/banking.md`` §1.1). Directories and
  symbolic links are ignored.

Nothing is lost or imported twice, whenever the process dies: the import is idempotent (movement
dedupe keys), so a file found again after a crash between import and move is imported again
without effect and then moved; the move links the file under its new name (never replacing
another file: ``name-2.cod``, ``name-3.cod``… on collision), writes the reason if any, and only
then unlinks the original, so a crash mid-move leaves the file in the folder (found again, its
link recognised) and never nowhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
from sqlalchemy import Engine

from daemon.banking.coda import CodaError
from daemon.payments.bank_import import ImportResult, import_coda_file

__all__ = ["INCOMPLETE_SUFFIXES", "PROCESSED", "REJECTED", "CodaDropFolder", "DropResult"]

log = structlog.get_logger(__name__)

PROCESSED = "processed"
REJECTED = "rejected"
INCOMPLETE_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".filepart")
REASON_SUFFIX = ".reason.txt"
# A file whose import failed for another reason than its content (database down, unreadable)
# stays in the folder and is tried again after this long, not at every scan.
RETRY_AFTER_FAILURE_SECONDS = 60.0
# A file not ending with a trailer record (9) is left alone until unmodified this long.
INCOMPLETE_GRACE_SECONDS = 300.0


@dataclass(frozen=True)
class DropResult:
    """What happened to one file: ``outcome`` is ``imported`` (new movements stored),
    ``duplicate`` (every movement was known already), ``rejected`` (not a valid CODA file) or
    ``failed`` (left in the folder, tried again later)."""

    name: str
    outcome: str
    sha256: str
    moved_to: Path | None
    detail: str


class CodaDropFolder:
    def __init__(self, engine: Engine, directory: str | os.PathLike[str], *, settle_seconds: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.directory = Path(directory)
        self.processed = self.directory / PROCESSED
        self.rejected = self.directory / REJECTED
        self.settle_seconds = settle_seconds
        self._clock = clock
        self._retry_at: dict[str, tuple[tuple[int, int], float]] = {}  # name → (size, mtime_ns), when

    def ensure_directories(self) -> None:
        for directory in (self.directory, self.processed, self.rejected):
            directory.mkdir(parents=True, exist_ok=True)

    def ready_files(self) -> list[Path]:
        """Complete files waiting in the folder, oldest first."""
        now = self._clock()
        ready: list[tuple[int, str, Path]] = []
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if not _looks_complete(entry.name) or not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    stat = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # moved away meanwhile (another node)
                if now - stat.st_mtime < self.settle_seconds:
                    continue  # possibly still being written
                if now - stat.st_mtime < INCOMPLETE_GRACE_SECONDS and not _ends_with_trailer(Path(entry.path)):
                    continue  # no record 9 yet: possibly a writer that paused
                retry = self._retry_at.get(entry.name)
                if retry is not None and retry[0] == (stat.st_size, stat.st_mtime_ns) and now < retry[1]:
                    continue
                ready.append((stat.st_mtime_ns, entry.name, Path(entry.path)))
        return [path for *_, path in sorted(ready)]

    def scan(self, should_stop: Callable[[], bool] = lambda: False,
             on_result: Callable[[DropResult], None] = lambda _: None) -> list[DropResult]:
        """Import and move every complete file; returns what happened to each (and tells
        ``on_result`` as it goes, so an error in a later file does not hide the earlier ones)."""
        self.ensure_directories()
        results = []
        for path in self.ready_files():
            if should_stop():
                break
            result = self.process(path)
            if result is not None:
                on_result(result)
                results.append(result)
        return results

    def process(self, path: Path) -> DropResult | None:
        """Import one file and move it; None if it vanished first (another node took it)."""
        try:
            stat = path.stat()
            digest = _sha256(path)
        except FileNotFoundError:
            return None
        try:
            imported = import_coda_file(self.engine, path, name=path.name)
        except CodaError as error:
            target = self._move_unless_gone(path, self.rejected, reason=_reason(error, digest, self._clock()))
            if target is None:
                return None
            log.warning("coda_drop.rejected", file=path.name, moved_to=str(target), sha256=digest, error=str(error))
            return DropResult(path.name, "rejected", digest, target, str(error))
        except Exception as exc:
            # Not the file's fault (database down, file unreadable): keep it and try again later.
            self._retry_at[path.name] = ((stat.st_size, stat.st_mtime_ns),
                                         self._clock() + RETRY_AFTER_FAILURE_SECONDS)
            log.exception("coda_drop.failed", file=path.name, sha256=digest,
                          retry_in_seconds=RETRY_AFTER_FAILURE_SECONDS)
            return DropResult(path.name, "failed", digest, None, f"{type(exc).__name__}: {exc}")
        self._retry_at.pop(path.name, None)
        target = self._move_unless_gone(path, self.processed)
        if target is None:
            return None
        outcome = "duplicate" if imported.movements and not imported.inserted else "imported"
        log.info("coda_drop.imported", file=path.name, moved_to=str(target), sha256=digest, outcome=outcome,
                 statements=imported.statements, movements=imported.movements, inserted=imported.inserted,
                 warnings=len(imported.warnings))
        return DropResult(path.name, outcome, digest, target, _summary(imported))

    def _move_unless_gone(self, path: Path, directory: Path, reason: str | None = None) -> Path | None:
        try:
            return self._move(path, directory, reason)
        except FileNotFoundError:
            if path.exists():
                raise
            return None  # another node moved it meanwhile; its import was deduplicated with ours

    def _move(self, path: Path, directory: Path, reason: str | None = None) -> Path:
        """Move ``path`` into ``directory`` under a name no other file has, the reason beside it."""
        directory.mkdir(parents=True, exist_ok=True)
        stem, suffix = _split_name(path.name)
        for number in itertools.count(1):
            target = directory / (path.name if number == 1 else f"{stem}-{number}{suffix}")
            try:
                os.link(path, target)
            except FileExistsError:
                if not os.path.samefile(path, target):
                    continue
                # the same file: an earlier move was interrupted after linking it
            except FileNotFoundError:
                raise  # the file itself is gone: see _move_unless_gone
            except OSError:
                # No hard links on this filesystem (FAT, some network shares): check, then rename.
                if target.exists():
                    continue
                if reason is not None:
                    _write_reason(target, reason)
                path.rename(target)
                _fsync_directory(directory)
                return target
            if reason is not None:
                _write_reason(target, reason)
            _fsync_directory(directory)
            path.unlink()
            _fsync_directory(path.parent)
            return target
        raise AssertionError("unreachable")  # pragma: no cover - itertools.count never ends


def _looks_complete(name: str) -> bool:
    return not name.startswith((".", "~")) and not name.lower().endswith(INCOMPLETE_SUFFIXES)


def _ends_with_trailer(path: Path) -> bool:
    """Whether the last non-blank line is a CODA record 9 (only the file's end is read)."""
    try:
        with path.open("rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - 1024))
            tail = file.read()
    except OSError:
        return True  # let the import report it
    lines = [line for line in tail.splitlines() if line.strip()]
    return bool(lines) and lines[-1].startswith(b"9")


def _split_name(name: str) -> tuple[str, str]:
    stem, dot, suffix = name.rpartition(".")
    return (stem, f".{suffix}") if dot and stem else (name, "")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _summary(result: ImportResult) -> str:
    return (f"{result.statements} statements, {result.movements} movements, {result.inserted} new, "
            f"{len(result.warnings)} warnings")


def _reason(error: CodaError, digest: str, now: float) -> str:
    """The text of ``<name>.reason.txt``: the parser's message, then each part on its own line."""
    columns = "-" if error.columns is None else (
        str(error.columns[0]) if error.columns[0] == error.columns[1] else f"{error.columns[0]}-{error.columns[1]}")
    when = dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    lines = [f"rejected: {error}", f"file: {error.file}", f"line: {'-' if error.line is None else error.line}",
             f"columns: {columns}", f"expected: {error.expected}",
             f"got: {'-' if error.got is None else repr(error.got)}", f"sha256: {digest}", f"rejected_at: {when}",
             "Correct the file (or ask the bank for a new one) and drop it in the folder again."]
    return "\n".join(lines) + "\n"


def _write_reason(target: Path, reason: str) -> None:
    reason_file = target.with_name(target.name + REASON_SUFFIX)
    temporary = reason_file.with_name(f".{reason_file.name}.tmp")
    temporary.write_text(reason, encoding="utf-8")
    temporary.replace(reason_file)


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable: without it a power cut can undo the move after we reported it."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some filesystems cannot fsync a directory; the rename is still atomic
    finally:
        os.close(descriptor)
