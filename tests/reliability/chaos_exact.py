"""Exact Online as the chaos run's second export target (issue #11): the set-up, the faults and
the ground-truth check, against the Exact sandbox running in the test process.

One Exact user and app; the first Exact enterprise is connected as ``eboxd exact connect`` does
(consent, code exchange, division check), the others share its connection as ``--same-as`` does,
each with a division of its own. Faults: one at a time, every :data:`FAULT_EVERY` seconds while
exports run, a document or attachment stored but the answer lost (connection dropped, or later
than the exporter's timeout) or a 503 — the "created in Exact, our side failed" path. Documents
are counted in the sandbox by the exporter's marker, never by our ledger.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import httpx
import sqlalchemy as sa
from eboxd_exact.cli import connect_enterprise
from eboxd_exact.exporter import marker_of
from eboxd_exact.oauth import OAuthApp, authorize_url
from eboxd_exact.sandbox import ExactSandbox, ExactSandboxServer
from sqlalchemy.orm import Session

from daemon.db.models import Enterprise, Export
from daemon.exports import enable_exporter
from daemon.plugins import ExportDocument, PluginManager
from daemon.secrets import SecretBox

__all__ = ["EXACT_TIMEOUT", "ExactCheck", "ExactFaults", "check_exact", "connect_exact", "reconciled_exports"]

EXACT_TIMEOUT = 2  # the exporter's ``timeout`` setting: a "slow" fault answers a second later
FAULT_EVERY = 2.0  # seconds between faults (one pending at a time)
FIRST_DIVISION = 300_000  # the sandbox's own two divisions are left alone
# Stored in Exact, then the answer lost; or refused before anything was stored.
FAULTS: tuple[tuple[str, str, int, float], ...] = (  # kind, entity (POST), status, seconds
    ("reset_after_store", "Documents", 500, 0.0),
    ("slow", "Documents", 500, EXACT_TIMEOUT + 1.0),
    ("reset_after_store", "DocumentAttachments", 500, 0.0),
    ("status", "DocumentAttachments", 503, 0.0),
)
_MARKER = re.compile(r"\[eboxd (exp-[0-9a-f]{12})\]$")


def connect_exact(engine: sa.Engine, secrets: SecretBox, exact: ExactSandboxServer,
                  numbers: list[str]) -> dict[str, int]:
    """Connect ``numbers`` to Exact, each its own new division; enterprise number → division."""
    divisions = {number: FIRST_DIVISION + index for index, number in enumerate(numbers)}
    with exact.state._lock:
        for number, division in divisions.items():
            exact.state.divisions[division] = f"Chaos {number}"
            exact.state.accounts[division] = []
    app = exact.state.app
    oauth = OAuthApp(exact.url, app.client_id, app.client_secret, app.redirect_uris[0])
    consent = httpx.get(authorize_url(oauth, "chaos"))
    code = parse_qs(urlsplit(consent.headers["Location"]).query)["code"][0]
    manager = PluginManager().load()
    settings = {"client_id": app.client_id, "client_secret": app.client_secret, "url": exact.url,
                "timeout": str(EXACT_TIMEOUT)}
    first = connect_enterprise(engine, secrets, manager, numbers[0], settings, oauth, code,
                               division=divisions[numbers[0]])
    # What `--same-as` stores, without its three checking calls each (Exact's limits are per division).
    with Session(engine) as session, session.begin():
        for number in numbers[1:]:
            enterprise = session.scalars(sa.select(Enterprise).where(Enterprise.number == number)).one()
            enable_exporter(session, secrets, manager, enterprise, "exact",
                            {**settings, "connection": first.connection, "division": str(divisions[number])},
                            check=False)
    return divisions


@dataclass
class ExactFaults:
    """Injects one fault at a time into the sandbox; ``fired()`` by kind at the end."""

    exact: ExactSandboxServer
    injected: list[str] = field(default_factory=list)
    last: float = 0.0

    def _pending(self) -> int:
        with self.exact.state._lock:
            return len(self.exact.state._knobs)

    def tick(self, now: float) -> None:
        if now - self.last < FAULT_EVERY or self._pending():
            return
        kind, entity, status, seconds = FAULTS[len(self.injected) % len(FAULTS)]
        self.exact.state.fail_next(kind, entity=entity, method="POST", status=status, seconds=seconds)
        self.injected.append(f"{kind}:{entity}")
        self.last = now

    def fired(self) -> Counter[str]:
        fired = Counter(self.injected)
        if self.injected and self._pending():
            fired[self.injected[-1]] -= 1  # the last one was never met
        return +fired


@dataclass
class ExactCheck:
    documents: int = 0  # documents of Exact enterprises, each expected once in its division
    lost: int = 0
    duplicated: int = 0
    details: list[str] = field(default_factory=list)


def check_exact(exact: ExactSandbox, divisions: dict[str, int], docs: list[ExportDocument]) -> ExactCheck:
    """Every document of an Exact enterprise once in its own division (by marker), with its one
    attachment holding its bytes; nothing in a division that is not its enterprise's."""
    check = ExactCheck()
    wanted = {marker_of(doc): doc for doc in docs if doc.enterprise_number in divisions}
    check.documents = len(wanted)
    with exact._lock:
        documents = [(str(d["ID"]), int(d["Division"]), str(d["Subject"])) for d in exact.documents]
        attached: dict[str, list[str]] = {}
        for attachment in exact.attachments:
            attached.setdefault(str(attachment["Document"]), []).append(
                hashlib.sha256(attachment["_data"]).hexdigest())
    copies: dict[str, list[list[str]]] = {}  # marker → each Exact document's attachments (SHA-256)
    strays = []
    for exact_id, division, subject in documents:
        match = _MARKER.search(subject)
        doc = wanted.get(match.group(1)) if match else None
        if match is None or doc is None or divisions[doc.enterprise_number] != division:
            strays.append((division, subject))
            continue
        copies.setdefault(match.group(1), []).append(attached.get(exact_id, []))
    # Delivered: an Exact document (with its marker) carrying the document's bytes. Anything more is a duplicate.
    missing = [marker for marker, doc in wanted.items()
               if not any(doc.sha256 in shas for shas in copies.get(marker, []))]
    twice = {marker: found for marker, found in copies.items() if len(found) > 1 or len(found[0]) > 1}
    check.lost = len(missing)
    check.duplicated = len(strays) + sum(len(found) - 1 + sum(max(len(shas) - 1, 0) for shas in found)
                                         for found in twice.values())
    if missing or strays or twice:
        check.details.append(f"exact: not delivered (no Exact document with an attachment of its bytes) documents "
                             f"{sorted(wanted[m].document_id for m in missing)[:5]}, in twice or with several "
                             f"attachments {sorted(wanted[m].document_id for m in twice)[:5]}, in no or another "
                             f"enterprise's division {strays[:5]}")
    return check


def reconciled_exports(engine: sa.Engine) -> int:
    """Completed Exact exports that found their document already in Exact (an earlier attempt made it)."""
    with engine.connect() as conn:
        receipts = conn.execute(sa.select(Export.receipt).where(Export.exporter == "exact",
                                                                Export.status == "completed")).scalars()
        return sum(1 for receipt in receipts if receipt and receipt.get("reconciled"))
