"""A minimal exporter: copies each document into a folder (the example of docs/plugins.md)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from daemon.plugins import ExportDocument, Setting, SettingsError, hookimpl

SEEN: list[tuple[int, str]] = []  # what eboxd_export_finished reported, for the tests


class FolderExporter:
    name = "example"
    description = "copy documents into a folder"
    settings = (Setting("dir", "where to copy documents", required=True),)

    def validate(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        if not Path(settings["dir"]).is_absolute():
            raise SettingsError("example: dir must be absolute")
        return dict(settings)

    def target(self, settings: Mapping[str, Any]) -> str:
        return str(settings["dir"])

    def export(self, document: ExportDocument, settings: Mapping[str, Any]) -> dict[str, Any]:
        path = Path(settings["dir"]) / f"{document.sha256}.bin"
        with document.open() as source, path.open("wb") as sink:
            shutil.copyfileobj(source, sink)
        return {"path": str(path)}


@hookimpl
def eboxd_register_exporters(register: Callable[[Any], None]) -> None:
    register(FolderExporter())


@hookimpl
def eboxd_export_finished(document_id: int, exporter: str, target: str, status: str,
                          receipt: dict[str, Any] | None, error: str | None) -> None:
    SEEN.append((document_id, status))
