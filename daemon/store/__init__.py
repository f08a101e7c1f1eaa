"""Where documents live: content-addressed by SHA-256, on a filesystem or in the database."""

from __future__ import annotations

from daemon.store.documents import (
    DatabaseStore,
    DocumentStore,
    FilesystemStore,
    StoreError,
    create_store,
    sha256_of,
    sweep_staging,
    unavailable,
)

__all__ = [
    "DatabaseStore", "DocumentStore", "FilesystemStore", "StoreError", "create_store", "sha256_of", "sweep_staging",
    "unavailable",
]
