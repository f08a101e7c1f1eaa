"""What a plugin sandbox is: a local simulator of a plugin's remote service, for ``eboxd sandbox``.

A plugin registers one through ``eboxd_register_sandboxes``; ``eboxd sandbox --with NAME[:PORT]``
starts it beside the e-Box sandbox, and tests start it on a free loopback port.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["RunningSandbox", "Sandbox"]


@runtime_checkable
class RunningSandbox(Protocol):
    url: str

    def summary(self) -> str:
        """One line for the operator: where it listens, the credentials it accepts."""
        ...

    def shutdown(self) -> None: ...


@runtime_checkable
class Sandbox(Protocol):
    name: str  # what `--with` takes, e.g. "yuki"
    description: str
    default_port: int

    def start(self, host: str, port: int, *, seed: int) -> RunningSandbox:
        """Serve on ``host:port`` (0: a free port) in a background thread."""
        ...
