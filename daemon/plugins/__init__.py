"""eboxd's plugins (pluggy): exporters and observers, loaded from the ``eboxd`` entry-point group.

Write a plugin: ``from daemon.plugins import hookimpl`` and implement hooks of
``daemon.plugins.hookspecs``; see docs/plugins.md.
"""

from __future__ import annotations

from daemon.plugins.exporters import (
    ExportDeferred,
    ExportDocument,
    Exporter,
    ExportError,
    PaymentSummary,
    PermanentExportError,
    Setting,
    SettingsError,
    service_url,
    validate_settings,
)
from daemon.plugins.hookspecs import hookimpl, hookspec
from daemon.plugins.manager import PluginFailure, PluginInfo, PluginManager, get_plugin_manager

__all__ = [
    "ExportDeferred",
    "ExportDocument",
    "ExportError",
    "Exporter",
    "PaymentSummary",
    "PermanentExportError",
    "PluginFailure",
    "PluginInfo",
    "PluginManager",
    "Setting",
    "SettingsError",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "service_url",
    "validate_settings",
]
