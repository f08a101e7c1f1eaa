"""The official e-Box OpenAPI (Swagger 2.0) contracts, vendored unchanged as package data.

See ``SOURCES.md`` in this folder for provenance and checksums.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = [
    "EVENT_SERVICE",
    "FEDERATION",
    "MESSAGE_REGISTRY",
    "spec_path",
    "spec_text",
]

MESSAGE_REGISTRY = "e-Box-Enterprise-swagger-v2.1-AP-Public.yaml"
"""Message Registry v2.1 (the DocConsumer contract)."""
FEDERATION = "ebox-federation-1.3.yaml"
"""Federation v1.3 (provider registry)."""
EVENT_SERVICE = "ebox-enterprise-event-api-1.1.1.yaml"
"""Enterprise e-Box Event Service v1.1.1 (two YAML documents: front matter, then the API)."""


def spec_path(name: str = MESSAGE_REGISTRY) -> Path:
    """Return the filesystem path of a vendored spec file."""
    return Path(str(resources.files(__name__).joinpath(name)))


def spec_text(name: str = MESSAGE_REGISTRY) -> str:
    """Return the text of a vendored spec file."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
