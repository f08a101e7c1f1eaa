"""A Ponto Connect sandbox: a real HTTPS server on loopback that requires a client certificate
(mTLS, as Ibanity does on every call), with OAuth2 + PKCE, rotating refresh tokens, accounts,
synchronizations, paged transactions, signed webhooks and fault knobs.

::

    pki = make_pki(tmp_path)
    sandbox = serve_ponto_sandbox(pki)
    account = sandbox.state.add_account("BE68539007547034")
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from daemon.sandbox.httpkit import RunningServer, _Server
from daemon.sandbox.ponto.app import PontoState, build_app
from daemon.sandbox.ponto.pki import SandboxPki, make_pki

__all__ = ["PontoSandbox", "PontoState", "SandboxPki", "make_pki", "serve_ponto_sandbox"]


class _TlsServer(_Server):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A refused handshake (no or unknown client certificate) is the client's problem: no traceback."""


class PontoSandbox:
    """The running sandbox: ``url`` is its https origin (also the API base URL)."""

    def __init__(self, server: RunningServer, state: PontoState, pki: SandboxPki) -> None:
        self._server, self.state, self.pki = server, state, pki
        self.url = f"https://{server.host}:{server.port}"

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/oauth2/auth"

    @property
    def webhook_keys_url(self) -> str:
        return f"{self.url}/webhooks/keys"

    def shutdown(self) -> None:
        self._server.shutdown()

    def wait(self) -> None:
        self._server.wait()


def server_context(pki: SandboxPki) -> ssl.SSLContext:
    """TLS server context: our certificate, and a client certificate from the sandbox CA required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(pki.server_cert_file), str(pki.server_key_file))
    context.load_verify_locations(cafile=str(pki.ca_file))
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def serve_ponto_sandbox(pki: SandboxPki | Path, host: str = "127.0.0.1", port: int = 0,
                        **options: Any) -> PontoSandbox:
    """Start the sandbox (``pki`` or a directory to create one in); ``options`` go to :class:`PontoState`."""
    if isinstance(pki, Path):
        pki = make_pki(pki)
    state = PontoState(**options)
    holder: dict[str, str] = {}
    server = _TlsServer((host, port), build_app(state, lambda: holder["url"]))
    # The handshake runs in the request's thread (on first read), so a silent client blocks nobody.
    server.socket = server_context(pki).wrap_socket(server.socket, server_side=True,
                                                    do_handshake_on_connect=False)
    running = RunningServer(server)
    sandbox = PontoSandbox(running, state, pki)
    holder["url"] = sandbox.url
    return sandbox
