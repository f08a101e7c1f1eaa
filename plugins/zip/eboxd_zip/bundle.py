"""Writing the hand-over bundle: a BagIt bag inside one ZIP, streamed and written atomically.

Document bytes are copied from the store in 64 KiB chunks straight into the ZIP (``ZIP_STORED``:
PDFs are already compressed), so memory stays flat whatever the number of documents; only their
metadata is held. Entries are sorted and dated 1980-01-01 with mode 0644, so the bytes depend on
the documents only (and ``bag-info.txt``'s bagging date). The ZIP is written to a temporary file
in the target directory, synced, then renamed over the target: readers never see half a bundle.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from daemon.plugins import ExportDocument, ExportError
from eboxd_zip.manifest import FOLDER, Entry, index_csv, index_json
from eboxd_zip.names import UniqueNames, document_name, slug

__all__ = ["BundleResult", "atomic_file", "build_bundle", "period_of"]

CHUNK = 1 << 16
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class BundleResult:
    path: Path
    bundle_id: str
    top: str
    documents: int
    payload_bytes: int
    entries: tuple[str, ...]  # paths of the documents inside data/


def period_of(dates: list[dt.date]) -> str:
    if not dates:
        return "empty"
    first, last = min(dates), max(dates)
    if (first.year, first.month) == (last.year, last.month):
        return f"{first:%Y-%m}"
    if first.year == last.year and (first.month - 1) // 3 == (last.month - 1) // 3:
        return f"{first.year}-Q{(first.month - 1) // 3 + 1}"
    if first.year == last.year:
        return f"{first.year}"
    return f"{first.isoformat()}_{last.isoformat()}"


def _date(doc: ExportDocument) -> dt.date | None:
    when = doc.published_at or doc.received_at
    return when.date() if when else None


def plan(documents: Iterable[ExportDocument], administration: str) -> tuple[str, str, list[Entry]]:
    docs = sorted(documents, key=lambda d: (_date(d) or dt.date.min, d.document_id))
    period = period_of([d for d in (_date(doc) for doc in docs) if d is not None])
    top = f"{slug(administration, 40)}_{period}"
    names = UniqueNames()
    prefix = len(f"{top}/data/{FOLDER}/")
    entries = []
    for doc in docs:
        reference = doc.payment.reference if doc.payment and doc.payment.reference else doc.subject
        name = document_name(_date(doc), doc.sender, reference, doc.sha256, doc.file_name, doc.media_type,
                             folder_length=prefix)
        entries.append(Entry(doc, names.claim(f"{FOLDER}/{name}")))
    return top, period, entries


def _info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.create_system = 3
    info.external_attr = 0o100644 << 16
    info.compress_type = zipfile.ZIP_STORED
    return info


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[BinaryIO]:
    """A temporary file next to ``target``, renamed over it on success, removed on failure."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "w+b") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def build_bundle(documents: Iterable[ExportDocument], output: Path, *, administration: str,
                 progress: Callable[[ExportDocument], None] | None = None) -> BundleResult:
    """Write the bag of ``documents`` to ``output`` (a ``.zip`` file, or a directory: then the
    bundle gets its standard name ``<administration>_<period>_<8 hex>.zip`` in it)."""
    top, period, entries = plan(documents, administration)
    payload = [(f"data/{e.path}", e.document.sha256, e.document.size or 0) for e in entries]
    csv_bytes = index_csv(entries)
    payload.append(("data/index.csv", hashlib.sha256(csv_bytes).hexdigest(), len(csv_bytes)))
    bundle_id = hashlib.sha256("".join(f"{h}  {p}\n" for p, h, _ in sorted(payload)).encode()).hexdigest()[:8]
    json_bytes = index_json(entries, bundle_id=bundle_id, period=period, administration=administration)
    payload.append(("data/index.json", hashlib.sha256(json_bytes).hexdigest(), len(json_bytes)))
    manifest = "".join(f"{h}  {p}\n" for p, h, _ in sorted(payload)).encode()
    oxum = f"{sum(size for _, _, size in payload)}.{len(payload)}"
    tags = {
        "bagit.txt": b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
        "bag-info.txt": (f"Source-Organization: eboxd\nBagging-Date: {dt.date.today().isoformat()}\n"
                         f"External-Identifier: {top}_{bundle_id}\nPayload-Oxum: {oxum}\n").encode(),
        "manifest-sha256.txt": manifest,
    }
    tags["tagmanifest-sha256.txt"] = "".join(
        f"{hashlib.sha256(tags[n]).hexdigest()}  {n}\n" for n in sorted(tags)).encode()
    small = {**{f"{top}/{n}": b for n, b in tags.items()},
             f"{top}/data/index.csv": csv_bytes, f"{top}/data/index.json": json_bytes}
    by_path = {f"{top}/data/{e.path}": e for e in entries}
    target = output / f"{top}_{bundle_id}.zip" if output.is_dir() else output
    with atomic_file(target) as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name in sorted({*small, *by_path}):
            if name in small:
                zf.writestr(_info(name), small[name])
            else:
                _copy_document(zf, name, by_path[name].document)
                if progress is not None:
                    progress(by_path[name].document)
    return BundleResult(target, bundle_id, top, len(entries), sum(size for _, _, size in payload),
                        tuple(e.path for e in entries))


def _copy_document(zf: zipfile.ZipFile, name: str, doc: ExportDocument) -> None:
    digest = hashlib.sha256()
    with doc.open() as source, zf.open(_info(name), "w", force_zip64=(doc.size or 0) > 2**31) as sink:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            sink.write(chunk)
    if digest.hexdigest() != doc.sha256:
        raise ExportError(f"document {doc.document_id}: stored content does not match its SHA-256")
