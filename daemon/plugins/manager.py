"""The typed face of pluggy for the rest of eboxd: loading plugins, one method per hook.

Entry points of the ``eboxd`` group are loaded here, one by one, so that a plugin that fails to
import, has a hook without a spec, or raises inside a hook is reported by its distribution name
and skipped, and the others (and the daemon) carry on. ``EBOXD_DISABLE_PLUGINS`` (comma-separated
entry-point or distribution names, or ``*``) keeps plugins from loading at all.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy
import structlog

from daemon.plugins import hookspecs
from daemon.plugins.exporters import EXPORTER_NAME, Exporter
from daemon.plugins.sandboxes import Sandbox

__all__ = ["DEFAULT_PLUGINS", "DISABLE_ENV", "PluginFailure", "PluginInfo", "PluginManager", "get_plugin_manager"]

log = structlog.get_logger(__name__)

DISABLE_ENV = "EBOXD_DISABLE_PLUGINS"
ENTRY_POINT_GROUP = "eboxd"
DEFAULT_PLUGINS: tuple[str, ...] = ()
"""Modules inside eboxd registered as plugins, through the same hooks as third parties."""


@dataclass(frozen=True)
class PluginInfo:
    name: str  # the entry-point or module name pluggy knows it by
    distribution: str | None  # None: built into eboxd
    version: str | None
    source: str  # where it was loaded from: a file path or "built-in"


@dataclass(frozen=True)
class PluginFailure:
    name: str
    distribution: str | None
    stage: str  # load, register, hook
    error: str

    def __str__(self) -> str:
        who = self.distribution or self.name
        return f"plugin {who!r} ({self.stage}): {self.error}"


class PluginManager:
    """eboxd's plugin manager: a pluggy manager with error isolation and typed hook calls."""

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._infos: dict[str, PluginInfo] = {}
        self.failures: list[PluginFailure] = []
        self._exporters: dict[str, Exporter] | None = None
        self._lock = threading.RLock()

    # -- loading ------------------------------------------------------------------------------

    def load(self, *, entry_points: bool = True, disabled: Iterable[str] | None = None) -> PluginManager:
        """Register the built-in plugins and (unless ``entry_points=False``) the installed ones."""
        blocked = set(disabled if disabled is not None else _disabled_from_env())
        for module_name in DEFAULT_PLUGINS:
            module = __import__(module_name, fromlist=["_"])
            self.register(module, name=module_name)
        if entry_points and "*" not in blocked:
            for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
                dist = ep.dist.name if ep.dist is not None else None
                if ep.name in blocked or (dist is not None and dist in blocked):
                    self._pm.set_blocked(ep.name)
                    log.info("plugins.disabled", plugin=ep.name, distribution=dist)
                    continue
                self._load_entry_point(ep, dist)
        self._pm.check_pending()  # every plugin left registered passed this one by one
        log.debug("plugins.loaded", plugins=[info.name for info in self._infos.values()],
                  failures=[str(failure) for failure in self.failures])
        return self

    def _load_entry_point(self, ep: metadata.EntryPoint, dist: str | None) -> None:
        if self._pm.has_plugin(ep.name) or self._pm.is_blocked(ep.name):
            return
        try:
            plugin = ep.load()
        except Exception as exc:
            self._fail(ep.name, dist, "load", exc)
            return
        version = ep.dist.version if ep.dist is not None else None
        self.register(plugin, name=ep.name, distribution=dist, version=version)

    def register(self, plugin: Any, *, name: str | None = None, distribution: str | None = None,
                 version: str | None = None) -> bool:
        """Register one plugin object or module; False (and a recorded failure) if pluggy refuses it."""
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        try:
            self._pm.register(plugin, name=name)
            self._pm.check_pending()  # a hook without a spec: a misspelt hook name
        except Exception as exc:
            if self._pm.is_registered(plugin):
                self._pm.unregister(plugin)
            self._fail(name, distribution, "register", exc)
            return False
        source = getattr(plugin, "__file__", None) if isinstance(plugin, ModuleType) else None
        self._infos[name] = PluginInfo(name, distribution, version, source or ("built-in" if distribution is None
                                                                               else type(plugin).__module__))
        self._exporters = None
        return True

    def unregister(self, name: str) -> None:
        self._pm.unregister(name=name)
        self._infos.pop(name, None)
        self._exporters = None

    def _fail(self, name: str, dist: str | None, stage: str, exc: BaseException) -> None:
        failure = PluginFailure(name, dist, stage, f"{type(exc).__name__}: {exc}")
        self.failures.append(failure)
        log.error("plugins.failed", plugin=name, distribution=dist, stage=stage, error=failure.error)

    def check_pending(self) -> None:
        """Raise if a registered plugin implements a hook eboxd has no spec for."""
        self._pm.check_pending()

    def plugins(self) -> list[PluginInfo]:
        return sorted(self._infos.values(), key=lambda info: info.name)

    def _distribution_of(self, impl: pluggy.HookImpl) -> str | None:
        info = self._infos.get(impl.plugin_name)
        return info.distribution if info else None

    # -- hooks, one typed method each ---------------------------------------------------------

    def exporters(self) -> dict[str, Exporter]:
        """Every registered exporter by name (``eboxd_register_exporters``), built once."""
        with self._lock:
            if self._exporters is None:
                self._exporters = self._collect_exporters()
            return dict(self._exporters)

    def exporter(self, name: str) -> Exporter | None:
        return self.exporters().get(name)

    def _collect_exporters(self) -> dict[str, Exporter]:
        found: dict[str, Exporter] = {}
        # Each plugin's impl called on its own: a raising plugin loses its exporters, no one else's.
        for impl in reversed(self._pm.hook.eboxd_register_exporters.get_hookimpls()):
            def register(exporter: Exporter, _impl: pluggy.HookImpl = impl) -> None:
                problem = _exporter_problem(exporter, found)
                if problem:
                    self._fail(_impl.plugin_name, self._distribution_of(_impl), "register", ValueError(problem))
                    return
                found[exporter.name] = exporter
            try:
                impl.function(register=register)
            except Exception as exc:
                self._fail(impl.plugin_name, self._distribution_of(impl), "hook", exc)
        return found

    def commands(self) -> dict[str, Any]:
        """Commands plugins add to the CLI (``eboxd_register_commands``), by name; a duplicate is refused."""
        import click  # noqa: PLC0415 - only the CLI asks

        return self._collect_named("eboxd_register_commands", lambda command: (
            None if isinstance(command, click.Command) and command.name
            else f"{command!r} is not a named click command"))

    def sandboxes(self) -> dict[str, Sandbox]:
        """Simulators plugins offer to ``eboxd sandbox --with`` (``eboxd_register_sandboxes``), by name."""
        return self._collect_named("eboxd_register_sandboxes", lambda sandbox: (
            None if isinstance(sandbox, Sandbox) and isinstance(sandbox.name, str) and EXPORTER_NAME.match(sandbox.name)
            else f"{sandbox!r} is not a sandbox (needs name, description, default_port, start)"))

    def _collect_named(self, hook: str, problem_of: Any) -> dict[str, Any]:
        """Call a register-callback hook per plugin, isolating errors; keep valid items by ``.name``."""
        found: dict[str, Any] = {}
        for impl in reversed(getattr(self._pm.hook, hook).get_hookimpls()):
            def register(item: Any, _impl: pluggy.HookImpl = impl) -> None:
                problem = problem_of(item) or (f"{item.name!r} is already registered by another plugin"
                                               if item.name in found else None)
                if problem:
                    self._fail(_impl.plugin_name, self._distribution_of(_impl), "register", ValueError(problem))
                    return
                found[item.name] = item
            try:
                impl.function(register=register)
            except Exception as exc:
                self._fail(impl.plugin_name, self._distribution_of(impl), "hook", exc)
        return found

    def export_finished(self, *, document_id: int, exporter: str, target: str, status: str,
                        receipt: dict[str, Any] | None, error: str | None) -> None:
        """Tell observers (``eboxd_export_finished``); an observer raising is logged, never propagated."""
        for impl in reversed(self._pm.hook.eboxd_export_finished.get_hookimpls()):
            try:
                impl.function(document_id=document_id, exporter=exporter, target=target, status=status,
                              receipt=receipt, error=error)
            except Exception as exc:
                self._fail(impl.plugin_name, self._distribution_of(impl), "hook", exc)


def _exporter_problem(exporter: Any, found: dict[str, Exporter]) -> str | None:
    if not isinstance(exporter, Exporter):
        return f"{exporter!r} is not an exporter (needs name, description, settings, target, validate, export)"
    if not isinstance(exporter.name, str) or not EXPORTER_NAME.match(exporter.name):
        return f"exporter name {exporter.name!r} must match {EXPORTER_NAME.pattern}"
    if exporter.name in found:
        return f"exporter {exporter.name!r} is already registered by another plugin"
    return None


def _disabled_from_env() -> Sequence[str]:
    return [item.strip() for item in os.environ.get(DISABLE_ENV, "").split(",") if item.strip()]


_default: PluginManager | None = None
_default_lock = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The process's plugin manager, loaded from entry points on first use."""
    global _default  # noqa: PLW0603  (one manager per process, like pluggy's users do)
    with _default_lock:
        if _default is None:
            _default = PluginManager().load()
        return _default
