"""The e-Box Enterprise sandbox: token server, Message Registry v2.1 DPs, provider registry.

Public surface: :func:`serve_sandbox`, :class:`EboxSandbox`, the seed catalogue types and the
scope names. Everything else is private to the sandbox.
"""

from __future__ import annotations

from daemon.sandbox.ebox.seed import Catalogue, Enterprise, ExpectedPayment, SeedLetter, build_catalogue
from daemon.sandbox.ebox.server import EboxSandbox, serve_sandbox
from daemon.sandbox.ebox.state import DOC_CONSUMER_SCOPE, LEGACY_SCOPES, REGISTRY_SCOPE

__all__ = [
    "DOC_CONSUMER_SCOPE",
    "LEGACY_SCOPES",
    "REGISTRY_SCOPE",
    "Catalogue",
    "EboxSandbox",
    "Enterprise",
    "ExpectedPayment",
    "SeedLetter",
    "build_catalogue",
    "serve_sandbox",
]
