"""The e-Box side of the integration tests: every request the sandbox answers, with the enterprise
it was made for, and what a consumer of the sandbox must end up with.

A listing request (``GET …/ebox/messages``) is held open for a moment inside the observer, so the
client is waiting for a known interval; a poll run lists its providers one after the other, so two
listing intervals of one enterprise that overlap mean two poll runs of that enterprise at once.
The hold must stay well under the client's timeout, or a retry could overlap its own first try.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass

from daemon.sandbox.ebox import EboxSandbox, SeedLetter
from daemon.sandbox.ebox.token import TOKEN_PATH
from daemon.sandbox.httpkit import Request, Response

_MESSAGE_PATH = re.compile(r"/ebox/messages(?:/(?P<message>[^/]+)(?P<rest>/.*)?)?$")
_CONTENT_REST = re.compile(r"/attachments/(?P<attachment>[^/]+)/content$")


@dataclass(frozen=True)
class Exchange:
    """One request the sandbox answered. ``started``/``ended`` (monotonic) bound a stretch of time
    during which the client was waiting for the answer; ``at`` is the wall clock at the start."""

    kind: str  # token, providers, listing, attachments, content, payment, message, other
    method: str
    path: str
    status: int
    enterprise: str | None
    message_id: str | None
    attachment_id: str | None
    truncated: bool
    delay: float
    started: float
    ended: float
    at: dt.datetime

    def succeeded(self, client_timeout: float) -> bool:
        """The client got the whole answer: 2xx, not cut off, not slower than its timeout."""
        return 200 <= self.status < 300 and not self.truncated and self.delay < client_timeout


def _classify(path: str) -> tuple[str, str | None, str | None]:
    if path == TOKEN_PATH:
        return "token", None, None
    if "/federation/" in path:
        return "providers", None, None
    match = _MESSAGE_PATH.search(path)
    if match is None:
        return "other", None, None
    message, rest = match.group("message"), match.group("rest") or ""
    if message is None:
        return "listing", None, None
    if content := _CONTENT_REST.fullmatch(rest):
        return "content", message, content.group("attachment")
    kind = {"": "message", "/attachments": "attachments", "/paymentData": "payment"}.get(rest, "other")
    return kind, message, None


class SandboxRecorder:
    """Records every request of a sandbox; holds each listing request ``listing_hold`` seconds."""

    def __init__(self, sandbox: EboxSandbox, *, listing_hold: float = 0.05) -> None:
        self.sandbox = sandbox
        self.listing_hold = listing_hold
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        sandbox.observe(self._observe)

    def _enterprise(self, request: Request) -> str | None:
        on_behalf = request.header("On-Behalf-Of-Enterprise-Number")
        if on_behalf:
            return on_behalf
        token = (request.header("Authorization") or "").partition(" ")[2].strip()
        state = self.sandbox.state
        with state.lock:
            issued = state.tokens.get(token)
            client = state.clients.get(issued.client_id) if issued else None
        return client.enterprise_number if client else None

    def _observe(self, request: Request, response: Response) -> None:
        started, at = time.monotonic(), dt.datetime.now(dt.UTC)
        kind, message_id, attachment_id = _classify(request.path)
        if kind == "listing" and self.listing_hold:
            time.sleep(self.listing_hold)  # the client waits meanwhile: see the module docstring
        exchange = Exchange(kind, request.method, request.path, response.status, self._enterprise(request),
                            message_id, attachment_id, response.truncate_to is not None, response.delay,
                            started, time.monotonic(), at)
        with self._lock:
            self._exchanges.append(exchange)

    def exchanges(self, kind: str | None = None) -> list[Exchange]:
        with self._lock:
            return [e for e in self._exchanges if kind is None or e.kind == kind]


def concurrent_polls(recorder: SandboxRecorder) -> list[tuple[str, Exchange, Exchange]]:
    """Pairs of listing requests of one enterprise that were in flight at the same time."""
    by_enterprise: dict[str | None, list[Exchange]] = defaultdict(list)
    for exchange in recorder.exchanges("listing"):
        by_enterprise[exchange.enterprise].append(exchange)
    overlaps = []
    for enterprise, listings in by_enterprise.items():
        listings.sort(key=lambda e: e.started)
        for earlier, later in itertools.pairwise(listings):
            if later.started < earlier.ended:
                overlaps.append((str(enterprise), earlier, later))
    return overlaps


def assert_no_concurrent_polls(recorder: SandboxRecorder) -> None:
    overlaps = concurrent_polls(recorder)
    assert overlaps == [], f"{len(overlaps)} listings overlapped another of the same enterprise, e.g. " + "; ".join(
        f"{number}: {a.path} {a.started:.3f}-{a.ended:.3f} and {b.path} {b.started:.3f}-{b.ended:.3f}"
        for number, a, b in overlaps[:3])


def expected_letters(sandbox: EboxSandbox, numbers: list[str]) -> dict[str, SeedLetter]:
    """What a consumer of the e-Box must end up with: every letter (seeded or published since) of
    an onboarded enterprise at a provider that is served and not deactivated."""
    state = sandbox.state
    with state.lock:
        letters = [*state.catalogue.letters, *state.published]
        active = {pid for pid, p in state.providers.items() if p.served and p.deactivation_date is None}
    return {letter.message_id: letter for letter in letters
            if letter.provider_id in active and letter.enterprise_number in numbers}
