"""Exports: per-enterprise exporter configuration, the export ledger and what exporters receive."""

from __future__ import annotations

from daemon.exports.configs import (
    decrypt_settings,
    disable_exporter,
    enable_exporter,
    exporter_configs,
    public_settings,
    require_exporter,
)
from daemon.exports.documents import DocumentSelection, export_document_of, export_documents
from daemon.exports.ledger import ExportOutcome, retry_exports, run_export, schedule_exports

__all__ = [
    "DocumentSelection",
    "ExportOutcome",
    "decrypt_settings",
    "disable_exporter",
    "enable_exporter",
    "export_document_of",
    "export_documents",
    "exporter_configs",
    "public_settings",
    "require_exporter",
    "retry_exports",
    "run_export",
    "schedule_exports",
]
