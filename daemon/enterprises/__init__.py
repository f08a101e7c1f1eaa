"""Enterprises and their e-Box connection: registry, keys and certificates, connecting."""

from __future__ import annotations

from daemon.enterprises.connection import connect_enterprise, ebox_environment, explain, open_client, open_client_by_id
from daemon.enterprises.keys import (
    KeyOptions,
    create_csr,
    import_certificate,
    issue_certificate,
    load_credential,
    private_key_context,
)
from daemon.enterprises.registry import (
    EnterpriseError,
    add_enterprise,
    credential_of,
    display,
    find_enterprise,
    list_enterprises,
    parse_number,
    remove_enterprise,
)

__all__ = [
    "EnterpriseError",
    "KeyOptions",
    "add_enterprise",
    "connect_enterprise",
    "create_csr",
    "credential_of",
    "display",
    "ebox_environment",
    "explain",
    "find_enterprise",
    "import_certificate",
    "issue_certificate",
    "list_enterprises",
    "load_credential",
    "open_client",
    "open_client_by_id",
    "parse_number",
    "private_key_context",
    "remove_enterprise",
]
