"""Per-enterprise exporter configuration: enable, disable, list; secret settings encrypted."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.db.models import Enterprise, ExporterConfig
from daemon.plugins.exporters import Exporter, SettingsError, validate_settings
from daemon.plugins.manager import PluginManager
from daemon.secrets import SecretBox

__all__ = ["decrypt_settings", "disable_exporter", "enable_exporter", "exporter_configs", "public_settings",
           "require_exporter", "rotate_settings_secrets", "settings_context"]

_SECRET = "__encrypted__"


def settings_context(enterprise_number: str, exporter: str, target: str, setting: str) -> str:
    """Associated data binding an encrypted setting to its row and name."""
    return f"exporter:{enterprise_number}:{exporter}:{target}:{setting}"


def require_exporter(manager: PluginManager, name: str) -> Exporter:
    exporter = manager.exporter(name)
    if exporter is None:
        known = ", ".join(sorted(manager.exporters())) or "none installed"
        raise SettingsError(f"no exporter named {name!r} (exporters: {known})")
    return exporter


def enable_exporter(session: Session, secrets: SecretBox, manager: PluginManager, enterprise: Enterprise,
                    name: str, given: Mapping[str, Any], *, check: bool = True) -> ExporterConfig:
    """Validate the settings with the plugin (and try the target), then save them enabled."""
    exporter = require_exporter(manager, name)
    settings = validate_settings(exporter, given)
    if check and callable(getattr(exporter, "check", None)):
        exporter.check(settings)  # type: ignore[attr-defined]
    target = exporter.target(settings)
    stored = dict(settings)
    for setting in exporter.settings:
        if setting.secret and setting.name in stored:
            sealed = secrets.encrypt(str(stored[setting.name]).encode(),
                                     context=settings_context(enterprise.number, name, target, setting.name))
            stored[setting.name] = {_SECRET: base64.b64encode(sealed).decode()}
    row = session.scalars(select(ExporterConfig).where(
        ExporterConfig.enterprise_id == enterprise.id, ExporterConfig.exporter == name,
        ExporterConfig.target == target)).first()
    if row is None:
        row = ExporterConfig(enterprise_id=enterprise.id, exporter=name, target=target)
        session.add(row)
    row.settings = stored
    row.enabled = True
    session.flush()
    return row


def disable_exporter(session: Session, enterprise: Enterprise, name: str, target: str | None = None) -> int:
    """Disable the enterprise's configurations of ``name`` (one ``target``, or all); how many changed."""
    query = select(ExporterConfig).where(ExporterConfig.enterprise_id == enterprise.id,
                                         ExporterConfig.exporter == name, ExporterConfig.enabled.is_(True))
    if target is not None:
        query = query.where(ExporterConfig.target == target)
    rows = session.scalars(query).all()
    for row in rows:
        row.enabled = False
    session.flush()
    return len(rows)


def exporter_configs(session: Session, enterprise: Enterprise | None = None) -> list[ExporterConfig]:
    query = select(ExporterConfig).order_by(ExporterConfig.enterprise_id, ExporterConfig.exporter,
                                            ExporterConfig.target)
    if enterprise is not None:
        query = query.where(ExporterConfig.enterprise_id == enterprise.id)
    return list(session.scalars(query))


def decrypt_settings(secrets: SecretBox, enterprise_number: str, config: ExporterConfig) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, stored in (config.settings or {}).items():
        value = stored
        if isinstance(stored, dict) and _SECRET in stored:
            context = settings_context(enterprise_number, config.exporter, config.target, name)
            value = secrets.decrypt(base64.b64decode(stored[_SECRET]), context=context).decode()
        values[name] = value
    return values


def rotate_settings_secrets(session: Session, secrets: SecretBox) -> tuple[int, int]:
    """Re-encrypt every secret setting under the current master key (``eboxd keys rotate``);
    (re-encrypted, already current)."""
    rotated = kept = 0
    rows = session.execute(select(ExporterConfig, Enterprise.number)
                           .join(Enterprise, Enterprise.id == ExporterConfig.enterprise_id)).all()
    for config, number in rows:
        settings = dict(config.settings or {})
        changed = False
        for name, stored in settings.items():
            if not (isinstance(stored, dict) and _SECRET in stored):
                continue
            sealed = base64.b64decode(stored[_SECRET])
            if secrets.is_current(sealed):
                kept += 1
                continue
            context = settings_context(number, config.exporter, config.target, name)
            fresh = secrets.encrypt(secrets.decrypt(sealed, context=context), context=context)
            settings[name] = {_SECRET: base64.b64encode(fresh).decode()}
            rotated += 1
            changed = True
        if changed:
            config.settings = settings  # a new dict: the JSON column sees the change
    session.flush()
    return rotated, kept


def public_settings(config: ExporterConfig) -> dict[str, Any]:
    """Settings fit for printing: secrets masked."""
    return {name: "***" if isinstance(value, dict) and _SECRET in value else value
            for name, value in (config.settings or {}).items()}
