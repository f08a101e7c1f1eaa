"""Writing the hand-over bundle: a BagIt bag inside one ZIP, streamed and written atomically.

Memory stays flat whatever the number of documents: the documents are read twice, one at a
time. The first pass names them and spools their ``index.csv`` / ``index.json`` rows and
manifest lines to temporary files (sorted on disk by ``sorted_lines``); the second copies each
document's bytes from the store in 64 KiB chunks into the ZIP (``ZIP_STORED``: PDFs are already
compressed), checking its SHA-256. What is held per document is an 8-byte name digest.

The bytes depend on the documents only (and ``bag-info.txt``'s bagging date): names are derived
from each document's date, sender, reference and hash; entries are dated 1980-01-01 with mode
0644; the central directory and the manifests are sorted by name; a list of documents is put in
(date, SHA-256) order first. The ZIP is written to a temporary file in the target directory,
synced, then renamed over the target: readers never see half a bundle.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from daemon.plugins import ExportDocument, ExportError
from eboxd_zip.manifest import CSV_BOM, FOLDER, JSON_TAIL, Entry, csv_header, csv_row, json_head, json_row
from eboxd_zip.names import UniqueNames, document_name, slug
from eboxd_zip.zipwriter import StoredZipWriter, sorted_lines

__all__ = ["BundleResult", "atomic_file", "build_bundle", "document_path", "longest_top", "named", "period_of",
           "reiterable"]

CHUNK = 1 << 16
_LONGEST_PERIOD = len("2024-01-01_2024-12-31")


@dataclass(frozen=True)
class BundleResult:
    path: Path
    bundle_id: str
    top: str
    documents: int
    payload_bytes: int


def period_of(first: dt.date | None, last: dt.date | None) -> str:
    if first is None or last is None:
        return "empty"
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


def longest_top(administration: str) -> str:
    """A stand-in for the bundle's top folder as long as it can be (the period spanning years)."""
    return f"{slug(administration, 40)}_{'x' * _LONGEST_PERIOD}"


def document_path(doc: ExportDocument, administration: str, names: UniqueNames | None = None) -> str:
    """The document's path inside ``data/`` (``government-letters/<name>``).

    Its length is kept within ``MAX_PATH`` for the longest possible top folder, so a document
    gets the same name whatever period the bundle around it covers.
    """
    reference = doc.payment.reference if doc.payment and doc.payment.reference else doc.subject
    prefix = len(f"{longest_top(administration)}/data/{FOLDER}/")
    name = document_name(_date(doc), doc.sender, reference, doc.sha256, doc.file_name, doc.media_type,
                         folder_length=prefix)
    path = f"{FOLDER}/{name}"
    return names.claim(path) if names is not None else path


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[BinaryIO]:
    """A temporary file next to ``target``, renamed over it on success, removed on failure.

    A process killed while writing leaves its temporary file behind; the next write of the same
    target (the redelivered export) removes it, so the folder ends up clean.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    for leftover in target.parent.glob(f".{glob.escape(target.name)}.*.part"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
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


class _Hashed:
    """A spool file that keeps the SHA-256 and size of what is written to it."""

    def __init__(self, stack: contextlib.ExitStack, spool: Path, name: str) -> None:
        self.file: BinaryIO = stack.enter_context((spool / name).open("w+b"))
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.sha256.update(data)
        self.size += len(data)

    def rewind(self) -> BinaryIO:
        self.file.seek(0)
        return self.file


@dataclass
class _Survey:
    """What the first pass learns: counts, dates, and the order the second pass must see again."""

    count: int = 0
    payload_bytes: int = 0
    first: dt.date | None = None
    last: dt.date | None = None
    order: str = ""


@dataclass
class _Indexes:
    """The spooled ``index.csv``, ``index.json`` and ``manifest-sha256.txt``."""

    csv: _Hashed
    json: _Hashed
    manifest: _Hashed
    bundle_id: str
    period: str


def named(docs: Iterable[ExportDocument], administration: str) -> Iterator[tuple[ExportDocument, str]]:
    """Each document with its path; the same sequence of documents gets the same paths."""
    names = UniqueNames()
    for doc in docs:
        yield doc, document_path(doc, administration, names)


def _order_digest(order: Any, doc: ExportDocument) -> None:
    order.update(f"{doc.document_id}:{doc.sha256}\n".encode())


def _survey(documents: Iterable[ExportDocument], administration: str, rows: BinaryIO) -> _Survey:
    """First pass: one spooled line per document (path first, so a byte sort is a path sort)."""
    survey = _Survey()
    order = hashlib.sha256()
    for doc, path in named(documents, administration):
        entry = Entry(doc, path)
        rows.write(json.dumps([path, doc.sha256, csv_row(entry), json_row(entry)], ensure_ascii=False).encode()
                   + b"\n")
        _order_digest(order, doc)
        survey.count += 1
        survey.payload_bytes += doc.size or 0
        day = _date(doc)
        if day is not None:
            survey.first = day if survey.first is None else min(survey.first, day)
            survey.last = day if survey.last is None else max(survey.last, day)
    survey.order = order.hexdigest()
    return survey


def _spool_indexes(stack: contextlib.ExitStack, spool: Path, rows: BinaryIO, survey: _Survey,
                   administration: str) -> _Indexes:
    """The index files and the payload manifest, from the first pass's rows sorted by path."""
    manifest, csv_file = _Hashed(stack, spool, "manifest"), _Hashed(stack, spool, "csv")
    json_rows = _Hashed(stack, spool, "json-rows")
    csv_file.write(CSV_BOM + csv_header().encode())
    rows.seek(0)
    for n, line in enumerate(sorted_lines(rows, spool)):
        path, sha, csv_line, json_line = json.loads(line)
        manifest.write(f"{sha}  data/{path}\n".encode())
        csv_file.write(csv_line.encode())
        json_rows.write(f"{',' if n else ''}{json_line}\n".encode())
    manifest.write(f"{csv_file.sha256.hexdigest()}  data/index.csv\n".encode())
    bundle_id = manifest.sha256.copy().hexdigest()[:8]  # the documents and their index, not the bagging date
    period = period_of(survey.first, survey.last)
    index_json = _Hashed(stack, spool, "index.json")
    index_json.write(json_head(bundle_id=bundle_id, period=period, administration=administration).encode())
    shutil.copyfileobj(json_rows.rewind(), index_json, CHUNK)
    index_json.write(JSON_TAIL.encode())
    manifest.write(f"{index_json.sha256.hexdigest()}  data/index.json\n".encode())
    return _Indexes(csv_file, index_json, manifest, bundle_id, period)


def reiterable(documents: Iterable[ExportDocument]) -> Iterable[ExportDocument]:
    """``documents`` as something to iterate more than once, in a stable order: a one-shot
    iterator is read into a list; a list is put in (date, SHA-256, id) order; a source that
    queries again (``DocumentSelection``) keeps its own order."""
    if isinstance(documents, Iterator):
        documents = list(documents)
    if isinstance(documents, Sequence):
        documents = sorted(documents, key=lambda d: (_date(d) or dt.date.min, d.sha256, d.document_id))
    return documents


def build_bundle(documents: Iterable[ExportDocument], output: Path, *, administration: str,
                 progress: Callable[[ExportDocument], None] | None = None, part: tuple[int, int] | None = None,
                 ) -> BundleResult:
    """Write the bag of ``documents`` to ``output`` (a ``.zip`` file, or a directory: then the
    bundle gets its standard name ``<administration>_<period>_<8 hex>.zip`` in it; with ``part``
    ``(n, of)``, ``…_part<n>of<of>.zip``, and ``bag-info.txt`` says which part of the group it is).

    ``documents`` is iterated twice and must give the same documents in the same order both
    times (a list, or a source that queries again); a one-shot iterator is read into a list.
    """
    documents = reiterable(documents)
    output.parent.mkdir(parents=True, exist_ok=True)
    # The spool goes to the system's temporary folder, never the target folder: a process killed
    # mid-write must not leave it among the accountant's files.
    with tempfile.TemporaryDirectory(prefix="eboxd-bundle-") as tmp, contextlib.ExitStack() as stack:
        spool = Path(tmp)
        rows = stack.enter_context((spool / "rows").open("w+b"))
        survey = _survey(documents, administration, rows)
        indexes = _spool_indexes(stack, spool, rows, survey, administration)
        top = f"{slug(administration, 40)}_{indexes.period}"
        payload_bytes = survey.payload_bytes + indexes.csv.size + indexes.json.size
        tags = {
            "bagit.txt": b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
            "bag-info.txt": (f"Source-Organization: eboxd\nBagging-Date: {dt.date.today().isoformat()}\n"
                             f"External-Identifier: {top}_{indexes.bundle_id}\n"
                             f"Payload-Oxum: {payload_bytes}.{survey.count + 2}\n"
                             + (f"Bag-Group-Identifier: {top}\nBag-Count: {part[0]} of {part[1]}\n" if part else "")
                             ).encode(),
        }
        suffix = f"_part{part[0]}of{part[1]}" if part else ""
        target = output / f"{top}_{indexes.bundle_id}{suffix}.zip" if output.is_dir() else output
        with atomic_file(target) as handle:
            writer = StoredZipWriter(handle, spool)
            for name, data in tags.items():
                writer.add_bytes(f"{top}/{name}", data)
            order = hashlib.sha256()
            for doc, path in named(documents, administration):
                _copy_document(writer, f"{top}/data/{path}", doc)
                _order_digest(order, doc)
                if progress is not None:
                    progress(doc)
            if order.hexdigest() != survey.order:
                raise ExportError("the documents changed while the bundle was being written; run the export again")
            for name, spooled in (("data/index.csv", indexes.csv), ("data/index.json", indexes.json),
                                  ("manifest-sha256.txt", indexes.manifest)):
                with writer.open(f"{top}/{name}", spooled.size) as sink:
                    source = spooled.rewind()
                    while chunk := source.read(CHUNK):
                        sink(chunk)
            tag_sums = {**{name: hashlib.sha256(data).hexdigest() for name, data in tags.items()},
                        "manifest-sha256.txt": indexes.manifest.sha256.hexdigest()}
            writer.add_bytes(f"{top}/tagmanifest-sha256.txt",
                             "".join(f"{tag_sums[name]}  {name}\n" for name in sorted(tag_sums)).encode())
            writer.close()
    return BundleResult(target, indexes.bundle_id, top, survey.count, payload_bytes)


def _copy_document(writer: StoredZipWriter, name: str, doc: ExportDocument) -> None:
    digest = hashlib.sha256()
    with doc.open() as source, writer.open(name, doc.size) as sink:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            sink(chunk)
    if digest.hexdigest() != doc.sha256:
        raise ExportError(f"document {doc.document_id}: stored content does not match its SHA-256")
