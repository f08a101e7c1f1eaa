"""``eboxd exact connect`` / ``eboxd exact status``: connect an enterprise to an Exact division.

``connect`` runs OAuth2's authorization-code flow: it prints (and opens) Exact's consent page and
receives the code on a loopback callback (``--redirect-uri http://127.0.0.1:PORT/…``, as
registered in Exact's App Center), or takes a pasted code (``--paste``, or ``--code`` given up
front). It exchanges the code, reads the user's current division from ``current/Me`` (or checks
``--division`` against ``hrm/Divisions``), checks the document types, stores the token pair
encrypted in ``daemon.credentials`` and enables the ``exact`` exporter. The client secret comes
from ``$EBOXD_EXACT_CLIENT_SECRET`` or a hidden prompt and is stored encrypted; tokens are never
printed.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click
import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from daemon.cli._state import State, pass_state
from daemon.credentials import TokenPair, TokenStore
from daemon.enterprises import find_enterprise
from daemon.exports import disable_exporter, enable_exporter, exporter_configs
from daemon.plugins import PluginManager, SettingsError, get_plugin_manager, validate_settings
from daemon.secrets import SecretBox
from eboxd_exact.client import REGIONS, ExactClient, base_url_of
from eboxd_exact.errors import ExactError
from eboxd_exact.exporter import ExactExporter
from eboxd_exact.limits import governor_for
from eboxd_exact.oauth import PROVIDER, OAuthApp, authorize_url, exchange_code

__all__ = ["Connected", "connect", "connect_enterprise", "exact", "receive_code", "status"]

DEFAULT_REDIRECT = "http://127.0.0.1:8795/callback"


@click.group("exact")
def exact() -> None:
    """Exact Online: connect an enterprise to an Exact division."""


@dataclass(frozen=True)
class Connected:
    target: str
    division: int
    division_name: str
    user: str
    replaced: list[str]


def receive_code(app: OAuthApp, *, open_browser: Callable[[str], Any], timeout: float,
                 echo: Callable[[str], None] = click.echo) -> str:
    """Open the consent page and wait for Exact's redirect to the loopback ``redirect_uri``."""
    parts = urlsplit(app.redirect_uri)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost", "::1") or not parts.port:
        raise click.ClickException(f"--redirect-uri {app.redirect_uri} is not a loopback http://127.0.0.1:PORT/… "
                                   "address this command can listen on: use --paste")
    state = secrets.token_urlsafe(16)
    received: dict[str, str] = {}
    done = threading.Event()

    class Callback(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # no access log (the code is in the URL)
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path != (parts.path or "/") or ("code" not in query and "error" not in query):
                self.send_error(404)
                return
            received.update(query)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(b"eboxd: Exact Online answered; you can close this window.\n")
            done.set()

    try:
        server = HTTPServer((parts.hostname or "127.0.0.1", parts.port), Callback)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {parts.hostname}:{parts.port} for the callback: "
                                   f"{exc.strerror}; use --paste") from None
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        url = authorize_url(app, state)
        echo(f"Open this address to let eboxd use Exact Online (waiting {int(timeout)} s):\n  {url}")
        open_browser(url)
        if not done.wait(timeout):
            raise click.ClickException("no answer from Exact within the time limit (try --paste)")
    finally:
        server.shutdown()
        server.server_close()
    if received.get("state") != state:
        raise click.ClickException("the callback's state does not match this request: ignored")
    if "error" in received:
        raise click.ClickException(f"Exact refused: {received['error']} {received.get('error_description', '')}")
    return received["code"]


def code_from_paste(text: str) -> str:
    """The code from what was pasted: the code itself or the whole redirected address."""
    text = text.strip()
    if "code=" in text:
        values = parse_qs(urlsplit(text).query or text.partition("?")[2])
        if values.get("code"):
            return values["code"][-1]
    if not text:
        raise click.ClickException("no code given")
    return text


def connect_enterprise(engine: Engine, secret_box: SecretBox, manager: PluginManager, number: str,
                       settings: dict[str, Any], app: OAuthApp, code: str, *, division: int | None = None,
                       transport: httpx.BaseTransport | None = None,
                       clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> Connected:
    """Exchange ``code``, choose and check the division, store the tokens, enable the exporter."""
    exporter = manager.exporter("exact")
    if not isinstance(exporter, ExactExporter):
        raise click.ClickException("the exact exporter is not installed (or its plugin failed to load)")
    with Session(engine) as session:
        number = find_enterprise(session, number).number
    validate_settings(exporter, {**settings, "division": str(division or 1)})  # settings errors before Exact
    pair = exchange_code(app, code, clock=clock, transport=transport)
    with ExactClient(app.base_url, None, _fixed_token(pair), governor_for(f"{app.base_url}|{app.client_id}|connect"),
                     transport=transport) as client:
        me = client.me()
        client.division = int(me["CurrentDivision"])
        divisions = client.divisions()
        chosen = division or client.division
        if chosen not in divisions:
            listing = ", ".join(f"{c} {n}" for c, n in sorted(divisions.items())) or "none"
            raise click.ClickException(f"division {chosen} is not one this Exact user can open (divisions: {listing})")
        client.division = chosen
        client.document_types()  # the documents service is reachable with this consent
    settings = validate_settings(exporter, {**settings, "division": str(chosen)})
    TokenStore(engine, secret_box, clock=clock).save(number, PROVIDER, pair, details={
        "base_url": app.base_url, "division": chosen, "user": str(me.get("UserName") or ""),
        "connected_at": clock().isoformat()})
    with Session(engine) as session, session.begin():
        enterprise = find_enterprise(session, number)
        row = enable_exporter(session, secret_box, manager, enterprise, "exact", settings, check=False)
        target = row.target
        # One Exact division per enterprise (one token chain): connecting another replaces it.
        replaced = [c.target for c in exporter_configs(session, enterprise)
                    if c.exporter == "exact" and c.enabled and c.target != target]
        for old in replaced:
            disable_exporter(session, enterprise, "exact", old)
    return Connected(target, chosen, divisions[chosen], str(me.get("UserName") or ""), replaced)


def _fixed_token(pair: TokenPair) -> Callable[[int | None], tuple[str, int]]:
    def source(stale_version: int | None = None) -> tuple[str, int]:
        if stale_version is not None:
            raise ExactError("Exact refused the token it just issued")
        return pair.access_token, 0

    return source


@exact.command("connect")
@click.option("--enterprise", "number", required=True, help="Enterprise number.")
@click.option("--client-id", envvar="EBOXD_EXACT_CLIENT_ID", required=True,
              help="Client ID of the Exact App Center registration (default: $EBOXD_EXACT_CLIENT_ID).")
@click.option("--client-secret", envvar="EBOXD_EXACT_CLIENT_SECRET", prompt="Exact client secret", hide_input=True,
              help="Its client secret (default: $EBOXD_EXACT_CLIENT_SECRET, else a hidden prompt).")
@click.option("--redirect-uri", default=DEFAULT_REDIRECT, show_default=True,
              help="Redirect URI registered with the app; a loopback one is listened on.")
@click.option("--region", type=click.Choice(REGIONS), default="be", show_default=True, help="Exact host country.")
@click.option("--url", help="Another Exact host, e.g. the sandbox (http://127.0.0.1:8792).")
@click.option("--division", type=int, help="Division code (default: the user's current division in Exact).")
@click.option("--paste", is_flag=True, help="Paste the code (or the redirected address) instead of listening.")
@click.option("--code", help="An authorization code obtained already (single-use, about 3 minutes).")
@click.option("--no-browser", is_flag=True, help="Print the consent address without opening a browser.")
@click.option("--wait", type=click.FloatRange(5, 1800), default=300, show_default=True,
              help="Seconds to wait for the callback.")
@click.option("--journal", help="Purchase journal code: documents with an amount also get a purchase entry.")
@click.option("--gl-account", help="GUID of the general-ledger account for purchase entry lines.")
@click.option("--vat-code", help="VAT code for purchase entry lines.")
@click.option("--suppliers", help="e-Box sender to supplier VAT/CBE number: 'FOD Financiën=0308357159;RSZ=0206731645'.")
@pass_state
def connect(state: State, number: str, client_id: str, client_secret: str, redirect_uri: str, region: str,
            url: str | None, division: int | None, paste: bool, code: str | None, no_browser: bool, wait: float,
            journal: str | None, gl_account: str | None, vat_code: str | None, suppliers: str | None) -> None:
    """Authorize eboxd in Exact Online for an enterprise, then export its documents to a division."""
    base_url = (url or base_url_of(region)).rstrip("/")
    app = OAuthApp(base_url, client_id.strip(), client_secret.strip(), redirect_uri)
    settings: dict[str, Any] = {"client_id": app.client_id, "client_secret": app.client_secret, "region": region}
    for name, value in (("url", url), ("journal", journal), ("gl_account", gl_account), ("vat_code", vat_code),
                        ("suppliers", suppliers)):
        if value:
            settings[name] = value
    if code is None and paste:
        click.echo(f"Open this address, consent, and copy the code from the address Exact sends you to:\n  "
                   f"{authorize_url(app, secrets.token_urlsafe(16))}")
        code = click.prompt("Code (or the whole address)", hide_input=True)
    if code is not None:
        code = code_from_paste(code)
    else:
        code = receive_code(app, open_browser=(lambda _url: None) if no_browser else webbrowser.open, timeout=wait)
    try:
        done = connect_enterprise(state.engine(), state.secrets, get_plugin_manager(), number, settings, app, code,
                                  division=division)
    except (ExactError, SettingsError) as exc:
        raise click.ClickException(str(exc)) from None
    for old in done.replaced:
        click.echo(f"disabled the earlier Exact connection {old}", err=True)
    click.echo(f"exact connected for {number}: division {done.division} {done.division_name} as {done.user} "
               f"on {base_url} → {done.target}")


@exact.command("status")
@click.option("--enterprise", "number", required=True, help="Enterprise number.")
@pass_state
def status(state: State, number: str) -> None:
    """Show the enterprise's Exact connection: state, division, when the access token expires."""
    engine = state.engine()
    with Session(engine) as session:
        number = find_enterprise(session, number).number
    stored = TokenStore(engine, state.secrets).load(number, PROVIDER)
    if stored is None:
        raise click.ClickException(f"{number} is not connected to Exact Online: run `eboxd exact connect`")
    details = stored.details
    click.echo(f"{number}: {stored.state} — division {details.get('division')} on {details.get('base_url')} "
               f"as {details.get('user')}; token version {stored.version}, access token valid until "
               f"{stored.pair.expires_at.isoformat(timespec='seconds')}"
               + (f"; reason: {details['reason']}" if details.get("reason") else ""))
