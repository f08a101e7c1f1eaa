"""eboxd's Yuki exporter, a plugin distribution of its own (entry-point group ``eboxd``).

It registers, exactly as a third-party plugin does: the ``yuki`` exporter
(``eboxd_register_exporters``), the ``eboxd yuki connect`` command (``eboxd_register_commands``)
and a Yuki sandbox for ``eboxd sandbox --with yuki`` (``eboxd_register_sandboxes``).
Modules: ``soap`` (envelopes and faults, shared by both ends), ``client``, ``errors``,
``exporter``, ``cli``, ``sandbox``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from daemon.plugins import hookimpl
from eboxd_yuki.exporter import YukiExporter

if TYPE_CHECKING:
    from eboxd_yuki.sandbox import YukiSandboxServer

__all__ = ["YukiExporter", "YukiSandboxPlugin", "eboxd_register_commands", "eboxd_register_exporters",
           "eboxd_register_sandboxes"]


class YukiSandboxPlugin:
    name = "yuki"
    description = "Yuki Archive SOAP service: sessions, daily limit, faults, a record of uploads"
    default_port = 8791

    def start(self, host: str, port: int, *, seed: int) -> YukiSandboxServer:
        from eboxd_yuki.sandbox import serve_yuki_sandbox  # noqa: PLC0415 - only `eboxd sandbox` needs it

        return serve_yuki_sandbox(host, port, seed=seed)


@hookimpl
def eboxd_register_exporters(register: Callable[[Any], None]) -> None:
    register(YukiExporter())


@hookimpl
def eboxd_register_commands(register: Callable[[Any], None]) -> None:
    from eboxd_yuki.cli import yuki  # noqa: PLC0415 - the CLI (and its imports) only when asked

    register(yuki)


@hookimpl
def eboxd_register_sandboxes(register: Callable[[Any], None]) -> None:
    register(YukiSandboxPlugin())
