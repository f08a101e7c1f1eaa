"""The hooks eboxd plugins implement (pluggy project ``eboxd``); these docstrings are the reference.

A plugin is a module (or object) with functions marked ``@hookimpl`` and named like the specs
below, published under the ``eboxd`` entry-point group. ``docs/plugins.md`` documents each hook
with its signature, and a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from daemon.plugins.exporters import Exporter
    from daemon.plugins.sandboxes import Sandbox

__all__ = ["PROJECT", "eboxd_export_finished", "eboxd_register_commands", "eboxd_register_exporters",
           "eboxd_register_sandboxes", "hookimpl", "hookspec"]

PROJECT = "eboxd"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def eboxd_register_exporters(register: Callable[[Exporter], None]) -> None:
    """Register exporters by calling ``register(exporter)`` once for each; the return value is ignored."""


@hookspec
def eboxd_export_finished(document_id: int, exporter: str, target: str, status: str,
                          receipt: dict[str, Any] | None, error: str | None) -> None:
    """Observe an export that just completed (``status="completed"``) or gave up (``"failed"``)."""


@hookspec
def eboxd_register_commands(register: Callable[[click.Command], None]) -> None:
    """Add commands (or groups) to the ``eboxd`` CLI by calling ``register(command)``; a name eboxd already
    uses is refused."""


@hookspec
def eboxd_register_sandboxes(register: Callable[[Sandbox], None]) -> None:
    """Register simulators of remote services for ``eboxd sandbox --with NAME`` by calling ``register(sandbox)``."""
