"""eboxd's Exact Online exporter, a plugin distribution of its own (entry-point group ``eboxd``).

It registers, exactly as a third-party plugin does: the ``exact`` exporter
(``eboxd_register_exporters``), the ``eboxd exact connect`` command (``eboxd_register_commands``)
and an Exact Online sandbox for ``eboxd sandbox --with exact`` (``eboxd_register_sandboxes``).
Modules: ``oauth`` (authorization code, refresh), ``client`` (REST/OData), ``limits`` (rate
limits, error circuit breaker), ``odata`` (shared by both ends), ``errors``, ``exporter``, ``cli``,
``sandbox`` with ``sandbox_oauth`` and ``sandbox_entities``. Tokens live in
``daemon.credentials``, not in the settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from daemon.plugins import hookimpl
from eboxd_exact.exporter import ExactExporter

if TYPE_CHECKING:
    from eboxd_exact.sandbox import ExactSandboxServer

__all__ = ["ExactExporter", "ExactPlugin", "ExactSandboxPlugin", "eboxd_register_commands",
           "eboxd_register_exporters", "eboxd_register_sandboxes"]


class ExactSandboxPlugin:
    name = "exact"
    description = "Exact Online: OAuth2 with rotating tokens, documents, accounts, rate limits, faults"
    default_port = 8792

    def start(self, host: str, port: int, *, seed: int) -> ExactSandboxServer:
        from eboxd_exact.sandbox import serve_exact_sandbox  # noqa: PLC0415 - only `eboxd sandbox` needs it

        return serve_exact_sandbox(host, port, seed=seed)


class ExactPlugin:
    """The plugin as an object holding one exporter (tests give it one with a token store, a clock)."""

    def __init__(self, exporter: ExactExporter | None = None) -> None:
        self.exporter = exporter or ExactExporter()

    @hookimpl
    def eboxd_register_exporters(self, register: Callable[[Any], None]) -> None:
        register(self.exporter)

    @hookimpl
    def eboxd_register_commands(self, register: Callable[[Any], None]) -> None:
        from eboxd_exact.cli import exact  # noqa: PLC0415 - the CLI (and its imports) only when asked

        register(exact)

    @hookimpl
    def eboxd_register_sandboxes(self, register: Callable[[Any], None]) -> None:
        register(ExactSandboxPlugin())


_default = ExactPlugin()


@hookimpl
def eboxd_register_exporters(register: Callable[[Any], None]) -> None:
    _default.eboxd_register_exporters(register)


@hookimpl
def eboxd_register_commands(register: Callable[[Any], None]) -> None:
    _default.eboxd_register_commands(register)


@hookimpl
def eboxd_register_sandboxes(register: Callable[[Any], None]) -> None:
    _default.eboxd_register_sandboxes(register)
