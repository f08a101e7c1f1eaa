"""TLS of every outgoing HTTPS client (e-Box, Exact, Yuki, Ponto): one place that builds it.

Verification is always on — the server's chain against certifi's CAs (what httpx uses by default)
and its host name — and nothing here can turn it off. What can widen the set of trusted CAs is
explicit and logged at WARNING: a configured ``ca_file`` (Ponto's sandbox, a test PKI) and the
environment's ``$SSL_CERT_FILE`` / ``$SSL_CERT_DIR``, which httpx would otherwise honour silently
(at INFO when they name OpenSSL's own system store).
"""

from __future__ import annotations

import os
import ssl
import threading
from pathlib import Path

import certifi
import httpx
import structlog

from daemon.errors import ConfigError

__all__ = ["ENVIRONMENT_CA_VARIABLES", "certificate_problem", "client_context", "describe_http_error"]

log = structlog.get_logger(__name__)

ENVIRONMENT_CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR")

_logged: set[tuple[str, str]] = set()
_logged_lock = threading.Lock()


def _system_stores() -> frozenset[Path]:
    """OpenSSL's own trust store (on Debian /etc/ssl/certs and its bundle): many hosts point
    $SSL_CERT_FILE/$SSL_CERT_DIR there, which adds nothing the administrator did not trust already."""
    paths = ssl.get_default_verify_paths()
    return frozenset(Path(p).resolve() for p in (paths.openssl_cafile, paths.openssl_capath) if p)


def _log_once(client: str, origin: str, location: Path) -> None:
    """Clients are made per call; one line per process and CA source is enough to be seen."""
    key = (origin, str(location))
    with _logged_lock:
        if key in _logged:
            return
        _logged.add(key)
    if location.resolve() in _system_stores():
        log.info("tls.system_ca_trusted", client=client, origin=origin, ca=str(location))
        return
    log.warning("tls.extra_ca_trusted", client=client, origin=origin, ca=str(location),
                note="HTTPS clients trust certificates signed by these CAs in addition to the public ones")


def _load(context: ssl.SSLContext, client: str, origin: str, location: str) -> None:
    path = Path(location).expanduser()
    try:
        if path.is_dir():
            context.load_verify_locations(capath=str(path))
        else:
            context.load_verify_locations(cafile=str(path))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{client}: {origin} {path}: cannot load the CA certificates: {exc}") from None
    _log_once(client, origin, path)


def client_context(client: str, *, ca_file: str = "") -> ssl.SSLContext:
    """A context for ``client`` (a name for logs and errors, e.g. ``"ebox"``) that verifies the server:
    certifi's CAs, plus ``ca_file`` and the environment's CA variables when set (each logged)."""
    context = ssl.create_default_context(cafile=certifi.where())
    for variable in ENVIRONMENT_CA_VARIABLES:
        if os.environ.get(variable):
            _load(context, client, f"${variable}", os.environ[variable])
    if ca_file:
        _load(context, client, "ca_file", ca_file)
    # create_default_context sets both; stated here so a change of defaults cannot pass unnoticed.
    if context.verify_mode is not ssl.CERT_REQUIRED or not context.check_hostname:
        raise RuntimeError("TLS verification must stay on")
    return context


def certificate_problem(error: BaseException) -> str | None:
    """The certificate verification failure behind ``error`` (an httpx error wraps the ssl one), or None."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return str(current.verify_message or current.reason or current)
        if "CERTIFICATE_VERIFY_FAILED" in str(current):
            return str(current)
        current = current.__cause__ or current.__context__
    return None


def describe_http_error(error: httpx.HTTPError) -> str:
    """What to say about a failed call: a certificate failure in words, anything else by its type."""
    problem = certificate_problem(error)
    if problem is not None:
        return f"TLS certificate verification failed ({problem})"
    return type(error).__name__
