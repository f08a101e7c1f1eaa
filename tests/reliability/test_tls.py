"""TLS of every outgoing client: against a real HTTPS server on loopback whose certificate the client
does not trust, each one (e-Box token endpoint and API, the poller's shared client, Exact API and
token endpoint, Yuki, Ponto API and token endpoint, Ponto's webhook key fetch) refuses with an error
that names the certificate, and the server sees no request. The same server is reached once its CA
is trusted explicitly (so the refusals are the certificate's doing), and such a CA is logged.
A static check keeps every ``httpx.Client`` on :func:`daemon.tls.client_context` and finds no way
of turning verification off."""

from __future__ import annotations

import ast
import datetime as dt
import io
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from eboxd_exact.client import ExactClient
from eboxd_exact.errors import ExactUnavailable
from eboxd_exact.limits import RateGovernor
from eboxd_exact.oauth import OAuthApp
from eboxd_exact.oauth import refresh_pair as exact_refresh
from eboxd_yuki.client import YukiClient
from eboxd_yuki.errors import YukiUnavailable

from daemon import ebox, tls
from daemon.banking.ponto import PontoSettings
from daemon.banking.ponto._client import PontoClient
from daemon.banking.ponto._errors import PontoUnavailable, WebhookRefused
from daemon.banking.ponto._oauth import refresh_pair as ponto_refresh
from daemon.banking.ponto._webhooks import WebhookVerifier
from daemon.config import load_config
from daemon.credentials import TokenPair, TokenStore
from daemon.db import create_db_engine, upgrade
from daemon.errors import ConfigError
from daemon.poll import EboxAccess
from daemon.sandbox.ebox import EboxSandbox, serve_sandbox
from daemon.sandbox.ponto import SandboxPki, make_pki
from daemon.secrets import SecretBox
from daemon.tls import client_context
from tests.log_capture import eboxd_logs

REPO = Path(__file__).resolve().parents[2]
NUMBER = "0403170701"
NO_RETRY = ebox.RetryPolicy(max_attempts=2, initial_delay=0, max_delay=0)  # a retry would show as a 2nd try


@dataclass
class HttpsServer:
    url: str
    pki: SandboxPki
    requests: list[str] = field(default_factory=list)
    handshakes_failed: list[str] = field(default_factory=list)


def _handler(server: HttpsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            server.requests.append(f"{self.command} {self.path}")
            body = json.dumps({"access_token": "a", "refresh_token": "r", "expires_in": 600, "keys": []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def log_message(self, *_args: object) -> None:
            pass

    return Handler


class _TlsHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext,
                 record: HttpsServer) -> None:
        super().__init__(address, handler)
        self.context, self.record = context, record

    def get_request(self) -> tuple[ssl.SSLSocket, object]:  # type: ignore[override]
        sock, address = self.socket.accept()
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def finish_request(self, request: ssl.SSLSocket, client_address: object) -> None:  # type: ignore[override]
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError) as exc:  # the client hung up on our certificate
            self.record.handshakes_failed.append(type(exc).__name__)
            return
        super().finish_request(request, client_address)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> SandboxPki:
    """A CA of the test's own (trusted by nobody) and a loopback server certificate it signed."""
    return make_pki(tmp_path_factory.mktemp("untrusted-pki"))


@pytest.fixture
def https(pki: SandboxPki, monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpsServer]:
    for variable in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(variable, raising=False)  # the machine's own trust settings are not under test
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pki.server_cert_file), str(pki.server_key_file))
    record = HttpsServer("", pki)
    server = _TlsHttpServer(("127.0.0.1", 0), _handler(record), context, record)
    record.url = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield record
    server.shutdown()
    server.server_close()


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Every log line of the test as eboxd renders it (JSON, DEBUG and up), as from a fresh process."""
    tls._logged.clear()  # an extra CA is logged once per process
    with eboxd_logs() as stream:
        yield stream


def _refused(error: BaseException, https: HttpsServer) -> None:
    """The error names the certificate, and no HTTP request reached the server."""
    text = " ".join(str(e) for e in _chain(error))
    assert "certificate" in text.lower(), text
    assert https.requests == [], https.requests


def _chain(error: BaseException) -> list[BaseException]:
    chain, current = [], error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


@pytest.fixture(scope="module")
def ebox_sandbox() -> Iterator[EboxSandbox]:
    sandbox = serve_sandbox("127.0.0.1", 0, seed=3, enterprises=1)
    yield sandbox
    sandbox.shutdown()


@pytest.fixture(scope="module")
def credential(ebox_sandbox: EboxSandbox) -> ebox.Credential:
    seeded = ebox_sandbox.catalogue.enterprises[0]
    identity = ebox.generate_identity(seeded.name, seeded.number, key_size=2048)
    return ebox.Credential.from_identity(ebox_sandbox.register_client(identity.certificate_pem(), seeded.number),
                                         identity)


# --- e-Box ------------------------------------------------------------------------------------------

def test_ebox_token_endpoint_refuses_an_untrusted_certificate(https: HttpsServer, credential: ebox.Credential) -> None:
    environment = ebox.resolve_environment("sandbox", base_url=https.url)
    with ebox.TokenProvider(environment, retry=NO_RETRY, sleep=lambda _s: None) as tokens, \
            pytest.raises(ebox.EboxConnectionError) as caught:
        tokens.get_token(credential)
    _refused(caught.value, https)
    assert caught.value.attempts == 1  # a certificate failure is not retried


def test_ebox_api_refuses_an_untrusted_certificate(https: HttpsServer, ebox_sandbox: EboxSandbox,
                                                   credential: ebox.Credential) -> None:
    """A real token from the e-Box sandbox, then the Message Registry on the untrusted server."""
    environment = ebox.Environment("custom", token_url=ebox.resolve_environment(
        "sandbox", base_url=ebox_sandbox.url).token_url, registry_url=https.url + "/REST/registry/")
    with ebox.EboxClient(credential, environment, retry=NO_RETRY, sleep=lambda _s: None) as client:
        assert client.tokens.get_token(credential).value  # the token endpoint is reachable
        with pytest.raises(ebox.EboxError) as caught:
            client.summary()
    _refused(caught.value, https)


def test_the_pollers_shared_client_refuses_an_untrusted_certificate(https: HttpsServer, credential: ebox.Credential,
                                                                    tmp_path: Path) -> None:
    config = load_config(environ={"EBOXD_EBOX__SANDBOX_URL": https.url, "EBOXD_DAEMON__DATA_DIR": str(tmp_path)})
    access = EboxAccess(config, SecretBox([b"k" * 32]))
    try:
        with pytest.raises(ebox.EboxError) as caught:
            access.tokens.get_token(credential)
    finally:
        access.close()
    _refused(caught.value, https)


# --- Exact and Yuki ---------------------------------------------------------------------------------

def test_exact_api_and_token_endpoint_refuse_an_untrusted_certificate(https: HttpsServer) -> None:
    governor = RateGovernor("tls-test", clock=lambda: dt.datetime.now(dt.UTC), sleep=lambda _s: None)
    with ExactClient(https.url, 1, lambda stale_version=None: ("token", 1), governor, timeout=5) as client, \
            pytest.raises(ExactUnavailable) as caught:
        client.me()
    _refused(caught.value, https)
    assert "TLS certificate verification failed" in str(caught.value)
    with pytest.raises(ExactUnavailable) as caught:
        exact_refresh(OAuthApp(https.url, "client", "secret"), "refresh-token")
    _refused(caught.value, https)
    assert "TLS certificate verification failed" in str(caught.value)


def test_yuki_refuses_an_untrusted_certificate(https: HttpsServer) -> None:
    with YukiClient("access-key-tls", base_url=https.url, timeout=5) as client, \
            pytest.raises(YukiUnavailable) as caught:
        client.call("GetAdministrations", {})
    _refused(caught.value, https)


# --- Ponto ------------------------------------------------------------------------------------------

def _ponto(https: HttpsServer, *, ca_file: str = "") -> PontoSettings:
    return PontoSettings(api_url=https.url, authorize_url=https.url + "/authorize",
                         webhook_keys_url=https.url + "/webhooks/keys", client_id="client", client_secret="secret",
                         certificate_file=str(https.pki.client_cert_file), key_file=str(https.pki.client_key_file),
                         ca_file=ca_file, timeout_seconds=5)


def test_ponto_api_token_endpoint_and_webhook_keys_refuse_an_untrusted_certificate(https: HttpsServer,
                                                                                   tmp_path: Path) -> None:
    settings = _ponto(https)
    with pytest.raises(PontoUnavailable) as caught:
        ponto_refresh(settings, "refresh-token")
    _refused(caught.value, https)
    assert "TLS certificate verification failed" in str(caught.value)

    engine = create_db_engine(f"sqlite:///{tmp_path / 'eboxd.db'}")
    upgrade(engine)
    try:
        store = TokenStore(engine, SecretBox([b"k" * 32]))
        now = dt.datetime.now(dt.UTC)
        store.save("ponto", NUMBER, TokenPair("access", "refresh", now + dt.timedelta(hours=1), now))
        sleeps: list[float] = []
        with PontoClient(settings, store, NUMBER, sleep=sleeps.append) as client, \
                pytest.raises(PontoUnavailable) as caught:
            client.request("GET", "/accounts")
        _refused(caught.value, https)
        assert sleeps == []  # refused at once, not retried as if the network had hiccupped

        verifier = WebhookVerifier(settings, engine)
        with pytest.raises(httpx.ConnectError) as fetch_error:
            verifier._fetch_keys()
        _refused(fetch_error.value, https)
        with pytest.raises(WebhookRefused) as refused:
            verifier._key("some-key-id")
        assert refused.value.reason == "keys_unavailable"
        assert "certificate" in str(refused.value).lower()
    finally:
        engine.dispose()
    deadline = time.monotonic() + 5  # the server thread notes a refused handshake after the client hung up
    while not https.handshakes_failed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert https.handshakes_failed, "the server saw no handshake: the clients did not even connect"


# --- an extra CA: explicit, effective, logged --------------------------------------------------------

def test_a_ponto_ca_file_is_trusted_and_logged(https: HttpsServer, logs: io.StringIO) -> None:
    pair = ponto_refresh(_ponto(https, ca_file=str(https.pki.ca_file)), "refresh-token")
    assert pair.access_token == "a"
    assert https.requests == ["POST /oauth2/token"]  # the same server, reached once its CA is trusted
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    [line] = [line for line in lines if line["event"] == "tls.extra_ca_trusted"]
    assert line["level"] == "warning"
    assert line["client"] == "ponto"
    assert line["origin"] == "ca_file"
    assert line["ca"] == str(https.pki.ca_file)


def test_ssl_cert_file_is_honoured_only_explicitly_and_logged(https: HttpsServer, credential: ebox.Credential,
                                                              logs: io.StringIO,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx alone would read $SSL_CERT_FILE silently; eboxd's context reads it and says so."""
    monkeypatch.setenv("SSL_CERT_FILE", str(https.pki.ca_file))
    with httpx.Client(verify=client_context("ebox")) as http:
        assert http.get(https.url + "/ping").status_code == 200
    assert https.requests == ["GET /ping"]
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert [(line["level"], line["client"], line["origin"]) for line in lines
            if line["event"] == "tls.extra_ca_trusted"] == [("warning", "ebox", "$SSL_CERT_FILE")]


def test_ssl_cert_file_naming_the_system_store_is_noted_without_a_warning(logs: io.StringIO,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Many hosts set $SSL_CERT_FILE to OpenSSL's own bundle: nothing is added that the system did not
    trust already, so every process start need not warn about it."""
    system = ssl.get_default_verify_paths()
    monkeypatch.setenv("SSL_CERT_FILE", system.openssl_cafile)
    monkeypatch.setenv("SSL_CERT_DIR", system.openssl_capath)
    client_context("ebox")
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    tls_lines = [(line["level"], line["event"], line["origin"]) for line in lines if line["event"].startswith("tls.")]
    assert sorted(tls_lines) == [("info", "tls.system_ca_trusted", "$SSL_CERT_DIR"),
                                 ("info", "tls.system_ca_trusted", "$SSL_CERT_FILE")]


def test_a_ca_file_that_cannot_be_read_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ponto: ca_file .*missing\.pem: cannot load"):
        client_context("ponto", ca_file=str(tmp_path / "missing.pem"))


# --- static: no path turns verification off ----------------------------------------------------------

def _client_sources() -> list[Path]:
    """eboxd's and its plugins' code that calls out; the simulators (servers, not clients) excluded."""
    files = list((REPO / "daemon").rglob("*.py")) + list((REPO / "plugins").glob("*/eboxd_*/*.py"))
    return [path for path in files if "sandbox" not in path.relative_to(REPO).as_posix()]


_WEAKENING = ("CERT_NONE", "_create_unverified_context", "check_hostname", "verify_mode", "CERT_OPTIONAL")
_CONTEXT_CALLS = ("client_context", "ssl_context")


def _call_name(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def test_no_code_path_disables_verification() -> None:
    problems = []
    sources = _client_sources()
    assert len(sources) > 100, "the scan found too few files"
    for path in sources:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        where = path.relative_to(REPO)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute | ast.Name) and _call_name(node) in _WEAKENING \
                    and path.name != "tls.py":
                problems.append(f"{where}:{node.lineno}: {_call_name(node)}")
            if not isinstance(node, ast.Call):
                continue
            name = _call_name(node.func)
            owner = node.func.value.id if isinstance(node.func, ast.Attribute) and \
                isinstance(node.func.value, ast.Name) else ""
            verify = next((kw.value for kw in node.keywords if kw.arg == "verify"), None)
            if isinstance(verify, ast.Constant) and verify.value is not True:
                problems.append(f"{where}:{node.lineno}: verify={verify.value!r}")
            if owner == "httpx" and name in ("Client", "AsyncClient") and not (
                    isinstance(verify, ast.Call) and _call_name(verify.func) in _CONTEXT_CALLS):
                problems.append(f"{where}:{node.lineno}: httpx.{name} without verify=client_context(…)")
            if owner == "httpx" and name in ("get", "post", "put", "delete", "request", "stream"):
                problems.append(f"{where}:{node.lineno}: httpx.{name} (a client without eboxd's TLS context)")
            if owner == "ssl" and name in ("create_default_context", "SSLContext") and path.name != "tls.py":
                problems.append(f"{where}:{node.lineno}: ssl.{name} outside daemon/tls.py")
    assert problems == [], "\n".join(problems)
