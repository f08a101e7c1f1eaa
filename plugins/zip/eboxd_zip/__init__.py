"""eboxd's ZIP bundle exporter, a plugin distribution of its own (entry-point group ``eboxd``).

It registers through ``eboxd_register_exporters`` exactly as a third-party plugin does. The
daemon drops each document into ``<dir>/<enterprise number>/`` (a one-document bag, or the bare
file with ``layout = files``); ``eboxd export zip`` writes a whole period into one bundle (parts of at most 20 MB
when it is larger).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from daemon.plugins import ExportDocument, Setting, SettingsError, hookimpl
from eboxd_zip.bundle import BundleResult, atomic_file, build_bundle, document_path
from eboxd_zip.parts import build_bundles

__all__ = ["ZipExporter", "eboxd_register_exporters"]

LAYOUTS = ("zip", "files")


class ZipExporter:
    name = "zip"
    description = "ZIP hand-over bundles (BagIt, index.csv + index.json) in a folder for the accountant"
    settings = (
        Setting("dir", "folder the documents are dropped into, one sub-folder per enterprise", required=True),
        Setting("layout", "zip: one bag per document; files: the bare documents", default="zip"),
    )

    def validate(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        directory = Path(str(settings["dir"])).expanduser()
        if not directory.is_absolute():
            raise SettingsError(f"zip: dir must be an absolute path, got {settings['dir']!r}")
        layout = str(settings.get("layout", "zip"))
        if layout not in LAYOUTS:
            raise SettingsError(f"zip: layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        return {"dir": str(directory), "layout": layout}

    def target(self, settings: Mapping[str, Any]) -> str:
        return str(settings["dir"])

    def check(self, settings: Mapping[str, Any]) -> None:
        directory = Path(settings["dir"])
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with atomic_file(directory / ".eboxd-write-test") as handle:
                handle.write(b"ok\n")
            (directory / ".eboxd-write-test").unlink()
        except OSError as exc:
            raise SettingsError(f"zip: cannot write into {directory}: {exc.strerror or exc}") from None

    def export(self, document: ExportDocument, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Same document, same file name: a redelivery replaces the file, never adds a copy."""
        folder = Path(settings["dir"]) / document.enterprise_number
        path = document_path(document, document.enterprise_number)
        if settings.get("layout") == "files":
            target = folder / path
            with document.open() as source, atomic_file(target) as sink:
                shutil.copyfileobj(source, sink, 1 << 16)
            return {"path": str(target)}
        result = build_bundle([document], folder / f"{Path(path).stem}.zip", administration=document.enterprise_number)
        return {"path": str(result.path), "entry": path}

    def bundle(self, documents: Iterable[ExportDocument], output: Path, *, administration: str,
               progress: Callable[[ExportDocument], None] | None = None,
               limit: int | None = None) -> list[BundleResult]:
        """``eboxd export zip``: many documents into one bundle, or parts of at most ``limit``
        bytes (default 20 MB; 0: one bundle whatever its size)."""
        return build_bundles(documents, output, administration=administration, progress=progress, limit=limit)


@hookimpl
def eboxd_register_exporters(register: Callable[[Any], None]) -> None:
    register(ZipExporter())
