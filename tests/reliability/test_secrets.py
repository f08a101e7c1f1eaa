"""Secrets never in logs, never in the database in plaintext.

Every flow that handles a secret runs for real at DEBUG: `eboxd init`, `enterprise add/certificate/
connect` (key generation, client assertion, token) against the e-Box sandbox, `exact connect` and
`yuki connect` against their sandboxes, Ponto connect (mTLS, PKCE) and an API call against the Ponto
sandbox, `eboxd serve` + `eboxd worker` polling, fetching and exporting to Exact and Yuki, an e-Box
token refreshed and an Exact token pair refreshed in process, `eboxd keys rotate --new-key`. Every
line they log — the processes' output, each CLI command's stdout and stderr, the in-process log
stream and pytest's caplog — and every text, JSON and binary column of every table are then searched
for every secret value the sandboxes issued or hold (private key PEM body lines, e-Box access tokens
and client assertions, Exact access/refresh tokens and client secret, Yuki access key, Ponto
tokens and client secret, each master key), as is and base64-encoded.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
import structlog
from cryptography.hazmat.primitives import serialization
from eboxd_exact.oauth import OAuthApp, authorize_url
from eboxd_exact.oauth import refresh_pair as exact_refresh
from eboxd_exact.sandbox import ExactSandboxServer, serve_exact_sandbox
from eboxd_yuki.sandbox import YukiSandboxServer, serve_yuki_sandbox
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from daemon import ebox
from daemon.banking.ponto import Pkce, PontoSettings, authorization_url, complete_connect, parse_pasted
from daemon.banking.ponto._client import PontoClient
from daemon.config import Config, load_config
from daemon.credentials import TokenStore
from daemon.db import create_db_engine
from daemon.db.models import Credential, Document, Enterprise, Export, OAuthToken
from daemon.enterprises import ebox_environment, load_credential, private_key_context
from daemon.poll import request_poll
from daemon.sandbox.ebox import EboxSandbox, serve_sandbox
from daemon.sandbox.ebox.token import TOKEN_PATH
from daemon.sandbox.httpkit import Request, Response
from daemon.sandbox.ponto import PontoSandbox, make_pki, serve_ponto_sandbox
from daemon.secrets import SecretBox
from tests.amqp_helpers import private_amqp_url
from tests.integration.ebox_side import expected_letters
from tests.integration.processes import Processes, base_env, purge_task_queues, wait_until
from tests.log_capture import eboxd_logs

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq]

IBAN = "BE68539007547034"


class OffsetClock:
    """Real time plus an offset: the Exact sandbox and an in-process refresh move to a token's expiry."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset


@dataclass
class World:
    """The sandboxes, one enterprise onboarded through the CLI, and everything it printed."""

    tmp: Path
    database_url: str
    amqp_url: str
    engine: Engine
    env: dict[str, str]
    ebox: EboxSandbox
    exact: ExactSandboxServer
    yuki: YukiSandboxServer
    ponto: PontoSandbox
    ponto_settings: PontoSettings
    exact_clock: OffsetClock
    number: str
    outputs: dict[str, str] = field(default_factory=dict)  # what each CLI command printed
    assertions: list[str] = field(default_factory=list)  # client assertions the e-Box token endpoint got
    processes: Processes | None = None

    @property
    def config(self) -> Config:
        return load_config(environ=self.env)

    @property
    def key_file(self) -> Path:
        return Path(self.env["EBOXD_SECRETS__KEY_FILE"])

    def secrets(self) -> SecretBox:
        return SecretBox.from_file(self.key_file)

    def cli(self, *args: str, extra_env: dict[str, str] | None = None, check: bool = True) -> str:
        """``eboxd -v ARGS`` as a process; its stdout and stderr recorded under the command."""
        done = subprocess.run([sys.executable, "-m", "daemon", "-v", *args], env={**self.env, **(extra_env or {})},
                              capture_output=True, text=True, timeout=180, check=False, cwd=self.tmp)
        name = f"eboxd {' '.join(args)} #{len(self.outputs)}"
        self.outputs[name] = f"{done.stdout}\n{done.stderr}"
        if check:
            assert done.returncode == 0, f"{name} → {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout


def _record_assertions(world: World) -> None:
    def observe(request: Request, _response: Response) -> None:
        if request.path == TOKEN_PATH:
            form = parse_qs(request.body.decode("ascii", "replace"))
            world.assertions.extend(form.get("client_assertion", []))

    world.ebox.observe(observe)


@pytest.fixture
def amqp_url() -> Iterator[str]:
    yield from private_amqp_url()


def build_world(database_url: str, amqp_url: str, tmp: Path) -> Iterator[World]:
    """Sandboxes up, configuration written, database migrated by `eboxd init` (stopped at the end)."""
    ebox_sandbox = serve_sandbox("127.0.0.1", 0, seed=23, enterprises=1)
    clock = OffsetClock()
    exact = serve_exact_sandbox("127.0.0.1", 0, seed=5, clock=clock)
    yuki = serve_yuki_sandbox("127.0.0.1", 0, seed=5)
    ponto = serve_ponto_sandbox(make_pki(tmp / "ponto-pki"), client_secret=base64.b64encode(os.urandom(18)).decode(),
                                sync_delay=0.1)
    try:
        secret_file = tmp / "ponto-client-secret"
        secret_file.write_text(ponto.state.client_secret)
        secret_file.chmod(0o600)
        data_dir = tmp / "data"
        env = base_env(database_url=database_url, amqp_url=amqp_url, exchange="eboxd.test.secrets",
                       sandbox_url=ebox_sandbox.url, key_file=data_dir / "master.key",
                       EBOXD_DAEMON__DATA_DIR=str(data_dir), EBOXD_LOGGING__LEVEL="debug",
                       EBOXD_EBOX__KEY_SIZE="2048", EBOXD_DOCUMENTS__DIRECTORY=str(tmp / "documents"),
                       EBOXD_PONTO__API_URL=ponto.url, EBOXD_PONTO__AUTHORIZE_URL=ponto.authorize_url,
                       EBOXD_PONTO__WEBHOOK_KEYS_URL=ponto.webhook_keys_url,
                       EBOXD_PONTO__CLIENT_ID=ponto.state.client_id, EBOXD_PONTO__CLIENT_SECRET_FILE=str(secret_file),
                       EBOXD_PONTO__CERTIFICATE_FILE=str(ponto.pki.client_cert_file),
                       EBOXD_PONTO__KEY_FILE=str(ponto.pki.client_key_file),
                       EBOXD_PONTO__CA_FILE=str(ponto.pki.ca_file))
        engine = create_db_engine(database_url)
        settings = PontoSettings.from_config(load_config(environ=env))
        world = World(tmp, database_url, amqp_url, engine, env, ebox_sandbox, exact, yuki, ponto, settings, clock,
                      ebox_sandbox.catalogue.enterprises[0].number)
        _record_assertions(world)
        try:
            yield world
        finally:
            if world.processes is not None:
                world.processes.stop()
            engine.dispose()
    finally:
        ponto.shutdown()
        yuki.shutdown()
        exact.shutdown()
        ebox_sandbox.shutdown()


def onboard(world: World) -> None:
    """The enterprise connected to its e-Box, Exact, Yuki (through the CLI) and Ponto (in process)."""
    seeded = world.ebox.catalogue.enterprises[0]
    world.cli("init")
    world.cli("enterprise", "add", world.number, "--name", seeded.name)
    world.cli("enterprise", "certificate", world.number, "-o", str(world.tmp / "cert.pem"))
    client_id = world.ebox.register_client((world.tmp / "cert.pem").read_bytes(), world.number)  # ChaMan's part
    world.cli("enterprise", "connect", world.number, "--client-id", client_id)

    app = world.exact.state.app
    response = httpx.get(authorize_url(OAuthApp(world.exact.url, app.client_id, app.client_secret,
                                                app.redirect_uris[0]), "state-1"))  # the person's consent
    code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
    world.cli("exact", "connect", "--enterprise", world.number, "--client-id", app.client_id, "--url", world.exact.url,
              "--redirect-uri", app.redirect_uris[0], "--code", code,
              extra_env={"EBOXD_EXACT_CLIENT_SECRET": app.client_secret})
    access_key = next(iter(world.yuki.state.keys))
    world.cli("yuki", "connect", "--enterprise", world.number, "--url", world.yuki.url, "--timeout", "10",
              "--administration", "Acme NV",
              extra_env={"EBOXD_YUKI_ACCESS_KEY": access_key})

    world.ponto.state.add_account(IBAN)
    pkce = Pkce.new()
    with httpx.Client(verify=world.ponto_settings.ssl_context(), follow_redirects=False) as browser:
        redirect = browser.get(authorization_url(world.ponto_settings, pkce)).headers["Location"]
    store = TokenStore(world.engine, world.secrets())
    complete_connect(world.engine, store, world.ponto_settings, world.number, parse_pasted(redirect, pkce), pkce)
    with PontoClient(world.ponto_settings, store, world.number) as client:
        assert client.request("GET", "/accounts")["data"]


def run_pipeline(world: World, exporters: tuple[str, ...]) -> None:
    """`eboxd serve` and `eboxd worker` poll the enterprise, fetch every letter and export each document
    with every exporter in ``exporters``; then both stop cleanly."""
    purge_task_queues(world.amqp_url)
    world.processes = Processes({**world.env, "EBOXD_BROKER__EVENTS_EXCHANGE": "eboxd.test.secrets"},
                                world.tmp / f"processes-{len(world.outputs)}")
    world.processes.serve()
    world.processes.worker(processes=1, threads=2)
    request_poll(world.engine)
    expected = len(expected_letters(world.ebox, [world.number]))

    def done() -> bool:
        with world.engine.connect() as conn:
            documents = conn.scalar(sa.select(sa.func.count()).select_from(Document)) or 0
            completed = dict(conn.execute(sa.select(Export.exporter, sa.func.count())
                                          .where(Export.status == "completed").group_by(Export.exporter)).all())
            fetched = conn.scalar(sa.text("SELECT count(*) FROM messages WHERE fetch_state = 'fetched'")) or 0
        return fetched == expected > 0 and documents > 0 and all(completed.get(e) == documents for e in exporters)

    def describe() -> str:
        with world.engine.connect() as conn:
            return str(conn.execute(sa.select(Export.exporter, Export.status, Export.last_error)).all()[:10])

    wait_until(done, timeout=120, what="every letter fetched and exported", processes=world.processes,
               describe=describe)
    codes = world.processes.stop()
    assert set(codes.values()) == {0}, f"{codes}\n{world.processes.logs()}"


# --- what to look for -------------------------------------------------------------------------------

def _variants(value: str | bytes) -> list[bytes]:
    raw = value.encode() if isinstance(value, str) else value
    return [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw).rstrip(b"=")]


def secret_values(world: World, old_keys: list[str] | None = None) -> dict[str, list[bytes]]:
    """Every secret the run produced, each with the forms it could leak in."""
    found: dict[str, list[bytes]] = {}
    secrets = world.secrets()
    with Session(world.engine) as session:
        enterprise = session.scalars(sa.select(Enterprise).where(Enterprise.number == world.number)).one()
        row = session.scalars(sa.select(Credential).where(Credential.enterprise_id == enterprise.id)).one()
        assert row.private_key_encrypted is not None
        pkcs8 = secrets.decrypt(row.private_key_encrypted, context=private_key_context(enterprise, row))
        key = load_credential(session, secrets, enterprise).private_key
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    body = [line for line in pem.splitlines() if line and not line.startswith(b"-----")]
    found["private key (PEM body lines)"] = body
    found["private key (DER)"] = [pkcs8, base64.b64encode(pkcs8)[:64], pkcs8[:64]]
    pkcs1 = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption())
    found["private key (PKCS#1)"] = [base64.b64encode(pkcs1)[:64]]
    found["private key (d)"] = [str(key.private_numbers().d).encode()[:40]]

    with world.ebox.state.lock:
        ebox_tokens = list(world.ebox.state.tokens)
    assert ebox_tokens, "the e-Box sandbox issued no token"
    for index, token in enumerate(ebox_tokens):
        found[f"e-Box access token {index}"] = _variants(token)
    assert world.assertions, "no client assertion reached the token endpoint"
    for index, assertion in enumerate(world.assertions):
        found[f"client assertion {index}"] = [assertion.encode(), assertion.rsplit(".", 1)[-1].encode()]

    exact = world.exact.state.oauth
    found["Exact client secret"] = _variants(world.exact.state.app.client_secret)
    for index, chain in enumerate(exact.chains):
        for kind, token in (("access", chain.access_token), ("refresh", chain.refresh_token)):
            found[f"Exact {kind} token {index}"] = _variants(token)
        for spent, token in enumerate(sorted(chain.spent)):
            found[f"Exact spent refresh token {index}.{spent}"] = _variants(token)
    for index, access_key in enumerate(world.yuki.state.keys):
        found[f"Yuki access key {index}"] = _variants(access_key)
    ponto = world.ponto.state
    found["Ponto client secret"] = _variants(ponto.client_secret)
    for index, token in enumerate([*ponto.access_tokens, *ponto.refresh_tokens]):
        found[f"Ponto token {index}"] = _variants(token)

    lines = [line.strip() for line in world.key_file.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    for index, line in enumerate([*lines, *(old_keys or [])]):
        raw = base64.urlsafe_b64decode(line + "=" * (-len(line) % 4))
        found[f"master key {index}"] = [line.encode(), base64.b64encode(raw), raw.hex().encode(), raw]
    return found


def database_dump(engine: Engine) -> dict[str, bytes]:
    """Every column of every table (reflected, so a table added later is covered too), as bytes."""
    metadata = sa.MetaData()
    metadata.reflect(engine)
    dump: dict[str, bytes] = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(sa.select(table)).mappings():
                for column, value in row.items():
                    if value is None or isinstance(value, int | float | dt.date | dt.datetime):
                        continue
                    if isinstance(value, bytes | memoryview):
                        data = bytes(value)
                    elif isinstance(value, dict | list):
                        data = json.dumps(value).encode()
                    else:
                        data = str(value).encode()
                    dump[f"{table.name}.{column}"] = dump.get(f"{table.name}.{column}", b"") + b"\x00" + data
    return dump


def leaks(haystacks: dict[str, bytes], secrets: dict[str, list[bytes]]) -> list[str]:
    return [f"{name} in {where}" for where, data in haystacks.items() for name, forms in secrets.items()
            if any(form and form in data for form in forms)]


@pytest.fixture
def world(database_url: str, amqp_url: str, tmp_path: Path) -> Iterator[World]:
    yield from build_world(database_url, amqp_url, tmp_path)


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """eboxd's own logging, at DEBUG, into a string (what the in-process flows log)."""
    with eboxd_logs() as stream:
        yield stream


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_no_secret_in_any_log_or_in_plaintext_in_the_database(world: World, log_stream: io.StringIO,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    onboard(world)
    run_pipeline(world, ("exact", "yuki"))

    # An e-Box token fetched in process, then again as after a 401 (the client drops the refused one).
    environment = ebox_environment(world.config)
    with Session(world.engine) as session:
        enterprise = session.scalars(sa.select(Enterprise).where(Enterprise.number == world.number)).one()
        credential = load_credential(session, world.secrets(), enterprise)
    with ebox.TokenProvider(environment) as tokens:
        first = tokens.get_token(credential)
        tokens.invalidate(credential, first)
        second = tokens.get_token(credential)
        assert first.value != second.value
        assert tokens.refresh_count == 2
    # The Exact pair refreshed once its access token is about to expire (the sandbox's clock too).
    world.exact_clock.offset = dt.timedelta(minutes=10)
    app = world.exact.state.app
    store = TokenStore(world.engine, world.secrets(), clock=world.exact_clock)
    with world.engine.connect() as conn:
        subject = conn.scalar(sa.select(OAuthToken.subject).where(OAuthToken.provider == "exact"))
    before = store.load("exact", subject)
    after = store.fresh("exact", subject, lambda refresh: exact_refresh(
        OAuthApp(world.exact.url, app.client_id, app.client_secret), refresh, clock=world.exact_clock),
        refresh_before=dt.timedelta(minutes=2))
    assert before is not None
    assert after.version == before.version + 1
    assert after.pair.refresh_token != before.pair.refresh_token
    old_keys = [line.strip() for line in world.key_file.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    world.cli("keys", "rotate", "--new-key")
    world.cli("enterprise", "show", world.number)
    world.cli("exporter", "list", "--enterprise", world.number)
    world.cli("doctor", check=False)  # checks the certificate and fetches a token; the broker may be elsewhere

    secrets = secret_values(world, old_keys)
    assert len(secrets) > 15
    assert world.processes is not None
    logs: dict[str, bytes] = {name: text.encode() for name, text in world.outputs.items()}
    logs.update({process.name: process.log.read_bytes() for process in world.processes.started})
    logs["in-process log stream"] = log_stream.getvalue().encode()
    logs["caplog"] = "\n".join(record.getMessage() + repr(record.msg) for record in caplog.records).encode()
    # The logs really are DEBUG logs of these flows (a scan of empty logs would prove nothing).
    every_log = b"\n".join(logs.values())
    for event in (b"ebox.token.issued", b"credentials.saved", b"credentials.refreshed", b'"level": "debug"',
                  b"yuki.authenticated"):
        assert event in every_log, event
    assert leaks(logs, secrets) == []

    dump = database_dump(world.engine)
    assert world.number.encode() in dump["enterprises.number"]  # the dump holds the rows, as text
    assert {"credentials.private_key_encrypted", "oauth_tokens.token_encrypted", "exporter_configs.settings"} <= \
        set(dump)
    assert leaks(dump, secrets) == []


def test_the_scan_finds_what_it_looks_for() -> None:
    """The scan itself: each form of a secret is found, also inside JSON and binary columns."""
    token = "tok_" + base64.urlsafe_b64encode(os.urandom(24)).decode()
    forms = {"t": _variants(token)}
    assert leaks({"log": f'{{"event": "x", "value": "{token}"}}'.encode()}, forms) == ["t in log"]
    assert leaks({"col": b"\x01" + base64.b64encode(token.encode())}, forms) == ["t in col"]
    assert leaks({"col": json.dumps({"k": token}).encode()}, forms) == ["t in col"]
    assert leaks({"log": b"nothing here"}, forms) == []



def test_a_token_response_quoted_whole_in_a_log_line_is_redacted(log_stream: io.StringIO) -> None:
    """Defence in depth: a body or form logged by mistake under an innocent key loses its secrets."""
    access, refresh, key = (base64.urlsafe_b64encode(os.urandom(24)).decode() for _ in range(3))
    log = structlog.get_logger("test")
    log.debug("provider.answer", body=json.dumps({"access_token": access, "refresh_token": refresh,
                                                   "expires_in": 600}))
    log.debug("provider.request", form=f"grant_type=refresh_token&refresh_token={refresh}&client_id=app")
    logging.getLogger("stdlib").debug("sent accessKey=%s to Yuki", key)
    text = log_stream.getvalue()
    assert leaks({"log": text.encode()}, {"access": _variants(access), "refresh": _variants(refresh),
                                          "key": _variants(key)}) == []
    assert text.count("[redacted]") == 4
    assert "grant_type=refresh_token" in text  # a name that is no secret stays readable
