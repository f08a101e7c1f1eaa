"""Start the e-Box sandbox: :func:`serve_sandbox` returns a running :class:`EboxSandbox`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from types import TracebackType
from typing import Any

from daemon.sandbox.ebox import knobs
from daemon.sandbox.ebox.admin import ADMIN_PATH
from daemon.sandbox.ebox.app import EboxApp
from daemon.sandbox.ebox.clients import register_client
from daemon.sandbox.ebox.providers import FEDERATION_PATH
from daemon.sandbox.ebox.seed import Catalogue, SeedLetter
from daemon.sandbox.ebox.state import FaultRule, SandboxState, Settings
from daemon.sandbox.ebox.token import TOKEN_PATH
from daemon.sandbox.httpkit import Request, Response, RunningServer, start_server

__all__ = ["EboxSandbox", "describe", "serve_sandbox"]


class EboxSandbox:
    """A running e-Box sandbox: URLs, the state, and the knobs as methods."""

    def __init__(self, state: SandboxState, server: RunningServer) -> None:
        self.state = state
        self._server = server
        self.url = server.url
        """Base URL, e.g. ``http://127.0.0.1:8765`` (no trailing slash)."""

    def observe(self, callback: Callable[[Request, Response], None]) -> None:
        """Call ``callback`` with every request and response of this sandbox."""
        self._server.observe(callback)

    # URLs ---------------------------------------------------------------------------------
    @property
    def token_url(self) -> str:
        """``<url>/REST/oauth/v5/token``: also the ``aud`` the assertions must carry."""
        return self.url + TOKEN_PATH

    @property
    def providers_url(self) -> str:
        """Provider registry: ``<url>/REST/ebox/enterprise/federation/v1/messageProviders``."""
        return f"{self.url}{FEDERATION_PATH}/messageProviders"

    @property
    def admin_url(self) -> str:
        return self.url + ADMIN_PATH

    def registry_url(self, provider_id: str = "nsso") -> str:
        """Message Registry base URL of a provider (NSSO by default), no trailing slash."""
        return self.url + self.state.providers[provider_id].base_path

    @property
    def catalogue(self) -> Catalogue:
        """The seed catalogue (enterprises, letters, expected payment fields)."""
        return self.state.catalogue

    # Knobs --------------------------------------------------------------------------------
    def register_client(self, certificate_pem: str | bytes, enterprise_number: str, *,
                        scopes: Iterable[str] | None = None, activated: bool = True,
                        mandates: Iterable[str] = (), client_id: str | None = None) -> str:
        """Register a client as ChaMan would; returns ``self_service_chaman_…``."""
        return register_client(self.state, certificate_pem, enterprise_number, scopes=scopes,
                               activated=activated, mandates=mandates, client_id=client_id)

    def publish(self, enterprise_number: str, *, kind: str | None = None, language: str | None = None) -> SeedLetter:
        """Publish a new letter now."""
        return knobs.publish(self.state, enterprise_number, kind=kind, language=language)

    def add_fault(self, kind: str, **options: Any) -> FaultRule:
        """Inject faults (the kinds of :mod:`daemon.sandbox.ebox.faults`)."""
        return knobs.add_fault(self.state, kind, **options)

    def clear_faults(self) -> None:
        knobs.clear_faults(self.state)

    def set_maintenance(self, provider_id: str, enabled: bool = True, *, duration: int = 3600) -> None:
        knobs.set_maintenance(self.state, provider_id, enabled, duration=duration)

    def expire_tokens(self, client_ids: Iterable[str] | None = None) -> int:
        return knobs.expire_tokens(self.state, client_ids)

    def advance_clock(self, seconds: float) -> None:
        knobs.advance_clock(self.state, seconds)

    def reset(self, *, clients: bool = False) -> None:
        """Back to the seeded state (registered clients kept unless ``clients=True``)."""
        self.state.reset(clients=clients)

    def requests(self) -> list[dict[str, Any]]:
        """The request log (admin calls excluded)."""
        with self.state.lock:
            return list(self.state.requests)

    # Lifecycle ----------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop the server (idempotent)."""
        self._server.shutdown()

    def wait(self) -> None:
        """Block until shut down (foreground runs)."""
        self._server.wait()

    def __enter__(self) -> EboxSandbox:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.shutdown()

    def describe(self) -> dict[str, Any]:
        """Overview for the CLI banner (same as ``GET /_sandbox``)."""
        return describe(self.state, self.url)


def describe(state: SandboxState, origin: str) -> dict[str, Any]:
    """Overview of a sandbox as seen from ``origin`` (``http://host:port``)."""
    return {
        "url": origin,
        "tokenUrl": origin + TOKEN_PATH,
        "providersUrl": f"{origin}{FEDERATION_PATH}/messageProviders",
        "registries": {pid: origin + p.base_path for pid, p in state.providers.items() if p.served},
        "enterprises": [{"enterpriseNumber": e.number, "name": e.name, "language": e.language}
                        for e in state.catalogue.enterprises],
        "seed": state.seed,
        "anchor": state.catalogue.anchor.isoformat(),
        "settings": {"tokenLifetime": state.settings.token_lifetime,
                     "maxAssertionLifetime": state.settings.max_assertion_lifetime,
                     "clockSkew": state.settings.clock_skew,
                     "environment": state.settings.environment},
    }


def serve_sandbox(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    seed: int = 0,
    enterprises: int = 3,
    anchor: date | None = None,
    token_lifetime: int = 600,
    max_assertion_lifetime: int = 300,
    clock_skew: int = 30,
    letters: int | None = None,
    pdf_size: int | None = None,
) -> EboxSandbox:
    """Start the e-Box sandbox on ``host:port`` (0 = a free port) in a background thread.

    The content is deterministic for a given ``seed`` and ``anchor`` (default: today). ``letters``
    (most recent letters per e-Box) and ``pdf_size`` (bytes per PDF) shape it for load tests.
    Call ``.shutdown()`` (or use it as a context manager) to stop it.
    """
    settings = Settings(token_lifetime=token_lifetime, max_assertion_lifetime=max_assertion_lifetime,
                        clock_skew=clock_skew)
    state = SandboxState(seed, anchor=anchor, enterprises=enterprises, settings=settings, letters=letters,
                         pdf_size=pdf_size)
    app = EboxApp(state, lambda request: describe(state, request.base_url))
    return EboxSandbox(state, start_server(app, host, port))
