"""Database: engines, models, migrations and the session helpers the rest of eboxd uses."""

from __future__ import annotations

from daemon.db.engine import create_db_engine, is_sqlite
from daemon.db.migrate import current_revision, head_revision, upgrade

__all__ = ["create_db_engine", "current_revision", "head_revision", "is_sqlite", "upgrade"]
