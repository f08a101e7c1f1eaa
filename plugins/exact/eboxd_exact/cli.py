"""``eboxd exact connect`` / ``eboxd exact status``: connect an enterprise to an Exact division.

``connect`` runs OAuth2's authorization-code flow: it prints (and opens) Exact's consent page and
receives the code on a loopback callback (``--redirect-uri http://127.0.0.1:PORT/…``, as
registered in Exact's App Center), or takes a pasted code (``--paste``, or ``--code`` given up
front). It exchanges the code, reads the user from ``current/Me`` and the division (the user's
current one, or ``--division`` checked against ``hrm/Divisions``), checks the document types,
stores the token pair encrypted in ``daemon.credentials`` on the user's *connection* and enables
the ``exact`` exporter with that connection and the division. Exact keeps one token chain per user
and app, so the connection (host, app, user) is shared by every enterprise connected with that
user: a consent for one renews it for all. ``--same-as M --division D`` links another enterprise to
M's connection without a consent. The client secret comes from ``$EBOXD_EXACT_CLIENT_SECRET`` or a
hidden prompt and is stored encrypted; tokens are never printed.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click
import httpx
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from daemon.cli._secrets import warn_if_on_command_line
from daemon.cli._state import State, pass_state
from daemon.credentials import NeedsReconnect, TokenPair, TokenStore
from daemon.db.models import Enterprise, ExporterConfig
from daemon.enterprises import find_enterprise
from daemon.exports import decrypt_settings, disable_exporter, enable_exporter, exporter_configs
from daemon.plugins import PluginManager, SettingsError, get_plugin_manager, validate_settings
from daemon.secrets import SecretBox
from eboxd_exact.client import REGIONS, ExactClient, base_url_of
from eboxd_exact.errors import ExactError
from eboxd_exact.exporter import ExactExporter, connection_tokens
from eboxd_exact.limits import governor_for
from eboxd_exact.oauth import PROVIDER, OAuthApp, authorize_url, connection_subject, exchange_code, host_of

__all__ = ["Connected", "Linked", "connect", "connect_enterprise", "exact", "link_enterprise", "linked_enterprises",
           "receive_code", "status"]

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
    connection: str = ""
    shared_with: list[str] = field(default_factory=list)  # other enterprises on the same connection


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


@dataclass(frozen=True)
class Linked:
    """An enterprise's exporter configuration that uses an Exact connection."""

    number: str
    config: ExporterConfig


def linked_enterprises(session: Session, subject: str) -> list[Linked]:
    """The enterprises whose enabled ``exact`` configuration uses the connection ``subject``."""
    rows = session.execute(select(Enterprise.number, ExporterConfig)
                           .join(ExporterConfig, ExporterConfig.enterprise_id == Enterprise.id)
                           .where(ExporterConfig.exporter == "exact", ExporterConfig.enabled.is_(True))
                           .order_by(Enterprise.number)).all()
    return [Linked(number, config) for number, config in rows if (config.settings or {}).get("connection") == subject]


def _enabled_config(session: Session, enterprise: Enterprise) -> ExporterConfig | None:
    configs = [c for c in exporter_configs(session, enterprise) if c.exporter == "exact" and c.enabled]
    return configs[0] if configs else None


def _check_division(client: ExactClient, division: int | None) -> tuple[int, str]:
    """``division`` (default: the user's current one) if this user can open it; its name."""
    divisions = client.divisions()
    chosen = division or int(client.division or 0)
    if chosen not in divisions:
        listing = ", ".join(f"{c} {n}" for c, n in sorted(divisions.items())) or "none"
        raise click.ClickException(f"division {chosen} is not one this Exact user can open (divisions: {listing})")
    client.division = chosen
    client.document_types()  # the documents service is reachable for this division
    return chosen, divisions[chosen]


def _enable(engine: Engine, secret_box: SecretBox, manager: PluginManager, number: str,
            settings: dict[str, Any]) -> tuple[str, list[str], str | None]:
    """Enable the enterprise's ``exact`` configuration; (target, replaced targets, the connection it
    used before if no enterprise uses that one any more)."""
    with Session(engine) as session, session.begin():
        enterprise = find_enterprise(session, number)
        before = _enabled_config(session, enterprise)
        previous = (before.settings or {}).get("connection") if before is not None else None
        row = enable_exporter(session, secret_box, manager, enterprise, "exact", settings, check=False)
        target = row.target
        # One Exact division per enterprise: connecting another replaces it.
        replaced = [c.target for c in exporter_configs(session, enterprise)
                    if c.exporter == "exact" and c.enabled and c.target != target]
        for old in replaced:
            disable_exporter(session, enterprise, "exact", old)
        session.flush()
        orphan = previous if previous and previous != settings["connection"] \
            and not linked_enterprises(session, previous) else None
    return target, replaced, orphan


def connect_enterprise(engine: Engine, secret_box: SecretBox, manager: PluginManager, number: str,
                       settings: dict[str, Any], app: OAuthApp, code: str, *, division: int | None = None,
                       transport: httpx.BaseTransport | None = None,
                       clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> Connected:
    """Exchange ``code``, choose and check the division, store the tokens on the user's connection
    (shared with the enterprises connected by the same user), enable the exporter."""
    exporter = manager.exporter("exact")
    if not isinstance(exporter, ExactExporter):
        raise click.ClickException("the exact exporter is not installed (or its plugin failed to load)")
    with Session(engine) as session:
        number = find_enterprise(session, number).number
    placeholder = connection_subject(app.base_url, app.client_id, "-")
    validate_settings(exporter, {**settings, "division": str(division or 1), "connection": placeholder})
    pair = exchange_code(app, code, clock=clock, transport=transport)
    with ExactClient(app.base_url, None, _fixed_token(pair), governor_for(f"{app.base_url}|{app.client_id}|connect"),
                     transport=transport) as client:
        me = client.me()
        user = str(me.get("UserName") or me.get("UserID") or "")
        subject = connection_subject(app.base_url, app.client_id, str(me["UserID"]))
        # Exact keeps one chain per user and app: this consent has just killed the chain every
        # enterprise of the connection used, so its pair replaces theirs (and heals needs_reconnect)
        # at once — before anything else can fail, and leaving them without a live chain the
        # shortest time.
        TokenStore(engine, secret_box, clock=clock).save(PROVIDER, subject, pair, details={
            "base_url": app.base_url, "client_id": app.client_id, "user": user, "user_id": str(me["UserID"]),
            "label": f"{user} on {host_of(app.base_url)}", "connected_at": clock().isoformat()})
        client.division = int(me["CurrentDivision"])
        chosen, division_name = _check_division(client, division)
    settings = validate_settings(exporter, {**settings, "division": str(chosen), "connection": subject})
    return _finish(engine, secret_box, manager, number, settings, chosen, division_name, user)


def link_enterprise(engine: Engine, secret_box: SecretBox, manager: PluginManager, number: str, same_as: str, *,
                    division: int | None, extra: dict[str, Any] | None = None,
                    transport: httpx.BaseTransport | None = None,
                    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> Connected:
    """Connect ``number`` through the Exact connection of enterprise ``same_as`` — no consent, no
    new chain: same host, app and user, its own ``division`` (checked against what the user opens)."""
    exporter = manager.exporter("exact")
    if not isinstance(exporter, ExactExporter):
        raise click.ClickException("the exact exporter is not installed (or its plugin failed to load)")
    with Session(engine) as session:
        number = find_enterprise(session, number).number
        source = find_enterprise(session, same_as)
        config = _enabled_config(session, source)
        if config is None:
            raise click.ClickException(f"enterprise {source.number} has no Exact connection to share: "
                                       f"`eboxd exact connect --enterprise {source.number}` first")
        shared = decrypt_settings(secret_box, source.number, config)
    settings = {name: shared[name] for name in ("client_id", "client_secret", "connection", "region", "url", "timeout")
                if shared.get(name)}
    settings.update(extra or {})
    if division is None:  # the user's current division is most likely the other enterprise's: never guess
        raise click.ClickException("--same-as needs --division: each enterprise exports to its own division")
    app = exporter.app(settings)
    store = TokenStore(engine, secret_box, clock=clock)
    tokens = connection_tokens(store, app, settings["connection"], clock=clock, transport=transport,
                               reconnect_hint=f"run `eboxd exact connect --enterprise {source.number}`")
    with ExactClient(app.base_url, None, tokens, governor_for(f"{app.base_url}|{app.client_id}|connect"),
                     transport=transport) as client:
        me = client.me()
        if not settings["connection"].endswith("/" + str(me.get("UserID", "")).lower()):
            raise click.ClickException(f"the tokens of connection {settings['connection']} belong to another "
                                       "Exact user: reconnect it with `eboxd exact connect`")
        client.division = int(me["CurrentDivision"])
        chosen, division_name = _check_division(client, division)
    settings = validate_settings(exporter, {**settings, "division": str(chosen)})
    described = store.describe(PROVIDER, settings["connection"])
    user = str((described.details if described else {}).get("user") or "")
    return _finish(engine, secret_box, manager, number, settings, chosen, division_name, user)


def _finish(engine: Engine, secret_box: SecretBox, manager: PluginManager, number: str, settings: dict[str, Any],
            division: int, division_name: str, user: str) -> Connected:
    target, replaced, orphan = _enable(engine, secret_box, manager, number, settings)
    if orphan is not None:  # the enterprise moved to another Exact user: nobody needs the old tokens
        TokenStore(engine, secret_box).forget(PROVIDER, orphan)
    with Session(engine) as session:
        others = [linked.number for linked in linked_enterprises(session, settings["connection"])
                  if linked.number != number]
    return Connected(target, division, division_name, user, replaced, settings["connection"], others)


def _fixed_token(pair: TokenPair) -> Callable[[int | None], tuple[str, int]]:
    def source(stale_version: int | None = None) -> tuple[str, int]:
        if stale_version is not None:
            raise ExactError("Exact refused the token it just issued")
        return pair.access_token, 0

    return source


@exact.command("connect")
@click.option("--enterprise", "number", required=True, help="Enterprise number.")
@click.option("--same-as", help="Share the Exact connection (user, app, tokens) of this already connected enterprise: "
                                "no browser consent; needs --division.")
@click.option("--client-id", envvar="EBOXD_EXACT_CLIENT_ID",
              help="Client ID of the Exact App Center registration (default: $EBOXD_EXACT_CLIENT_ID).")
@click.option("--client-secret", envvar="EBOXD_EXACT_CLIENT_SECRET", callback=warn_if_on_command_line,
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
def connect(state: State, number: str, same_as: str | None, client_id: str | None, client_secret: str | None,
            redirect_uri: str, region: str, url: str | None, division: int | None, paste: bool, code: str | None,
            no_browser: bool, wait: float, journal: str | None, gl_account: str | None, vat_code: str | None,
            suppliers: str | None) -> None:
    """Authorize eboxd in Exact Online for an enterprise, then export its documents to a division.

    Exact keeps one token chain per user and app: enterprises connected with the same Exact user
    share it (connecting one again renews it for all). Connect further clients of that user with
    --same-as ENTERPRISE --division CODE, without a browser.
    """
    extra: dict[str, Any] = {}
    for name, value in (("journal", journal), ("gl_account", gl_account), ("vat_code", vat_code),
                        ("suppliers", suppliers)):
        if value:
            extra[name] = value
    try:
        if same_as is not None:
            if code or paste:
                raise click.UsageError("--same-as uses the other enterprise's consent: no --code or --paste")
            done = link_enterprise(state.engine(), state.secrets, get_plugin_manager(), number, same_as,
                                   division=division, extra=extra)
        else:
            done = _connect_with_consent(state, number, client_id, client_secret, redirect_uri, region, url, division,
                                         paste=paste, code=code, no_browser=no_browser, wait=wait, extra=extra)
    except (ExactError, SettingsError, NeedsReconnect) as exc:
        raise click.ClickException(str(exc)) from None
    for old in done.replaced:
        click.echo(f"disabled the earlier Exact connection {old}", err=True)
    click.echo(f"exact connected for {number}: division {done.division} {done.division_name} as {done.user} "
               f"→ {done.target}")
    if done.shared_with:
        click.echo(f"this Exact connection ({done.user}) also serves {len(done.shared_with)} other enterprise(s): "
                   f"{', '.join(done.shared_with[:10])}{' …' if len(done.shared_with) > 10 else ''}")


def _connect_with_consent(state: State, number: str, client_id: str | None, client_secret: str | None,
                          redirect_uri: str, region: str, url: str | None, division: int | None, *, paste: bool,
                          code: str | None, no_browser: bool, wait: float, extra: dict[str, Any]) -> Connected:
    if not client_id:
        raise click.UsageError("--client-id (or $EBOXD_EXACT_CLIENT_ID) is needed, unless --same-as")
    if not client_secret:
        client_secret = click.prompt("Exact client secret", hide_input=True)
    base_url = (url or base_url_of(region)).rstrip("/")
    app = OAuthApp(base_url, client_id.strip(), str(client_secret).strip(), redirect_uri)
    settings: dict[str, Any] = {"client_id": app.client_id, "client_secret": app.client_secret, "region": region,
                                **({"url": url} if url else {}), **extra}
    if code is None and paste:
        click.echo(f"Open this address, consent, and copy the code from the address Exact sends you to:\n  "
                   f"{authorize_url(app, secrets.token_urlsafe(16))}")
        code = click.prompt("Code (or the whole address)", hide_input=True)
    if code is not None:
        code = code_from_paste(code)
    else:
        code = receive_code(app, open_browser=(lambda _url: None) if no_browser else webbrowser.open, timeout=wait)
    return connect_enterprise(state.engine(), state.secrets, get_plugin_manager(), number, settings, app, code,
                              division=division)


@exact.command("status")
@click.option("--enterprise", "number", required=True, help="Enterprise number.")
@pass_state
def status(state: State, number: str) -> None:
    """Show the enterprise's Exact connection: state, division, user, the enterprises sharing it."""
    engine = state.engine()
    with Session(engine) as session:
        enterprise = find_enterprise(session, number)
        number = enterprise.number
        config = _enabled_config(session, enterprise)
        settings = dict(config.settings or {}) if config is not None else {}
        subject = str(settings.get("connection") or "")
        others = [linked.number for linked in linked_enterprises(session, subject) if linked.number != number] \
            if subject else []
    stored = TokenStore(engine, state.secrets).describe(PROVIDER, subject) if subject else None
    if stored is None:
        raise click.ClickException(f"{number} is not connected to Exact Online: run `eboxd exact connect`")
    details = stored.details
    click.echo(f"{number}: {stored.state} — division {settings.get('division')} on {details.get('base_url')} "
               f"as {details.get('user')}; token version {stored.version}, access token valid until "
               f"{stored.pair.expires_at.isoformat(timespec='seconds')}"
               + (f"; reason: {details['reason']}" if details.get("reason") else ""))
    click.echo(f"connection {stored.label} ({subject}), shared with {len(others)} other enterprise(s)"
               + (f": {', '.join(others)}" if others else ""))
