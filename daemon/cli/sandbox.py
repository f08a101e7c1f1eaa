"""``eboxd sandbox``: the local e-Box simulator for demos, integrators and tests, and with
``--with NAME[:PORT]`` the simulators plugins register (``eboxd_register_sandboxes``, e.g. yuki);
``eboxd sandbox ponto`` runs the Ponto Connect sandbox (HTTPS, client certificate required)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import click
import httpx

from daemon.cli._state import State, pass_state
from daemon.enterprises import parse_number
from daemon.plugins.sandboxes import RunningSandbox, Sandbox

__all__ = ["COMMANDS"]


def _stop(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@click.group(invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Listen address (keep it on loopback).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default: the port of [ebox] sandbox_url).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the generated letters.")
@click.option("--enterprises", type=click.IntRange(1, 1000), default=3, show_default=True,
              help="How many seeded e-Boxes.")
@click.option("--fault", "faults", multiple=True, metavar="KIND[:RATE[:X]]",
              help="Inject faults: error:0.1:502, throttle:0.2:5, slow:1:2.5, truncate:1, corrupt:1, "
                   "expired_token:0.5, malformed_json:0.1, invalid_utf8:0.1, missing_field:0.1:receiptDate, "
                   "unknown_fields:1, huge_attachment:0.1:157286400 (repeatable).")
@click.option("--maintenance", multiple=True, metavar="PROVIDER", help="Put a provider in maintenance.")
@click.option("--with", "extras", multiple=True, metavar="NAME[:PORT]",
              help="Also run a plugin's sandbox, e.g. yuki (default port: the plugin's); repeatable.")
@click.pass_context
def sandbox(ctx: click.Context, host: str, port: int | None, seed: int, enterprises: int,
            faults: tuple[str, ...], maintenance: tuple[str, ...], extras: tuple[str, ...]) -> None:
    """Run the e-Box sandbox (token server, Message Registry, providers) in the foreground."""
    if ctx.invoked_subcommand is not None:
        return
    wanted = _plugin_sandboxes(extras)
    from daemon.sandbox.ebox import serve_sandbox  # noqa: PLC0415 - only this command needs the simulator
    from daemon.sandbox.ebox.knobs import parse_fault_spec  # noqa: PLC0415

    state: State = ctx.obj
    if port is None:
        port = urlsplit(state.config.ebox.sandbox_url).port or 8790
    try:
        server = serve_sandbox(host, port, seed=seed, enterprises=enterprises)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    others: list[RunningSandbox] = []
    try:
        for spec in faults:
            kind, options = parse_fault_spec(spec)
            server.add_fault(kind, **options)
        for provider in maintenance:
            server.set_maintenance(provider)
        seeded = ", ".join(f"{e['enterpriseNumber']} ({e['name']})" for e in server.describe()["enterprises"])
        click.echo(f"e-Box sandbox on {server.url} (admin {server.admin_url}); e-Boxes: {seeded}", err=True)
        for plugin_sandbox, plugin_port in wanted:
            try:
                others.append(plugin_sandbox.start(host, plugin_port, seed=seed))
            except OSError as exc:
                raise click.ClickException(f"{plugin_sandbox.name}: cannot listen on {host}:{plugin_port}: "
                                           f"{exc.strerror}") from None
            click.echo(others[-1].summary(), err=True)
        signal.signal(signal.SIGTERM, _stop)
        server.wait()
    except KeyboardInterrupt:
        pass
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        for other in others:
            other.shutdown()
        server.shutdown()


def _plugin_sandboxes(extras: tuple[str, ...]) -> list[tuple[Sandbox, int]]:
    """``--with NAME[:PORT]`` → (sandbox, port) pairs, checked before anything starts."""
    if not extras:
        return []
    from daemon.plugins import get_plugin_manager  # noqa: PLC0415

    available = get_plugin_manager().sandboxes()
    wanted: list[tuple[Sandbox, int]] = []
    for extra in extras:
        name, _, port_text = extra.partition(":")
        found = available.get(name)
        if found is None:
            raise click.BadParameter(f"no plugin sandbox {name!r} (installed: {', '.join(available) or 'none'})",
                                     param_hint="--with")
        if port_text and not (port_text.isdigit() and int(port_text) <= 65535):
            raise click.BadParameter(f"bad port in {extra!r}", param_hint="--with")
        wanted.append((found, int(port_text) if port_text else found.default_port))
    return wanted


@sandbox.command("register-client")
@click.option("--enterprise", "number", required=True, help="The enterprise the client reads.")
@click.option("--certificate", type=click.Path(exists=True, dir_okay=False), required=True,
              help="The certificate made by `eboxd enterprise certificate`.")
@click.option("--url", help="Sandbox base URL (default: [ebox] sandbox_url).")
@click.option("--mandate", "mandates", multiple=True, help="Service provider: may also read this enterprise.")
@click.option("--without-scope", is_flag=True, help="Register without the DocConsumer scope (to see the error).")
@click.option("--not-activated", is_flag=True, help="The e-Box has not accepted Document Consumer access.")
@pass_state
def register_client(state: State, number: str, certificate: str, url: str | None, mandates: tuple[str, ...],
                    without_scope: bool, not_activated: bool) -> None:
    """Register a certificate and print the client ID, as ChaMan would."""
    body: dict[str, object] = {
        "certificatePem": Path(certificate).read_text(), "enterpriseNumber": parse_number(number),
        "activated": not not_activated, "mandates": [parse_number(m) for m in mandates],
    }
    if without_scope:
        body["scopes"] = []
    base = (url or state.config.ebox.sandbox_url).rstrip("/")
    try:
        response = httpx.post(f"{base}/_sandbox/clients", json=body, timeout=10)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"sandbox not reachable at {base}: {exc} (start it with `eboxd sandbox`)") from None
    if response.status_code != 201:
        raise click.ClickException(f"sandbox refused the registration: {response.text}")
    click.echo(json.loads(response.text)["clientId"])


@sandbox.command("publish")
@click.option("--enterprise", "number", required=True, help="The e-Box that receives the letter.")
@click.option("--kind", help="Letter kind (as in the sandbox catalogue), default: the sandbox chooses.")
@click.option("--language", type=click.Choice(["fr", "nl", "de"]), help="Language of the letter.")
@click.option("--url", help="Sandbox base URL (default: [ebox] sandbox_url).")
@pass_state
def publish(state: State, number: str, kind: str | None, language: str | None, url: str | None) -> None:
    """Publish a new letter in a sandbox e-Box now, and print its message id."""
    body = {"enterpriseNumber": parse_number(number), **({"kind": kind} if kind else {}),
            **({"language": language} if language else {})}
    base = (url or state.config.ebox.sandbox_url).rstrip("/")
    try:
        response = httpx.post(f"{base}/_sandbox/messages", json=body, timeout=10)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"sandbox not reachable at {base}: {exc} (start it with `eboxd sandbox`)") from None
    if response.status_code not in (200, 201):
        raise click.ClickException(f"sandbox refused to publish: {response.text}")
    click.echo(response.json().get("messageId", response.text))


@sandbox.command("ponto")
@click.option("--host", default="127.0.0.1", show_default=True, help="Listen address (keep it on loopback).")
@click.option("--port", type=click.IntRange(0, 65535), default=8791, show_default=True, help="Port.")
@click.option("--pki-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the throwaway CA and certificates go (default: <data_dir>/ponto-sandbox).")
@click.option("--account", "ibans", multiple=True, help="IBAN of a seeded account (repeatable; default one).")
@click.option("--transactions", type=click.IntRange(0, 100_000), default=25, show_default=True,
              help="Transactions per account, arriving with the first synchronization.")
@click.option("--sync-delay", type=float, default=2.0, show_default=True, help="Seconds until a sync succeeds.")
@click.option("--fault", "faults", multiple=True, metavar="STATUS:COUNT",
              help="The next COUNT API calls answer STATUS (429 or a 5xx); repeatable.")
@pass_state
def ponto_sandbox(state: State, host: str, port: int, pki_dir: Path | None, ibans: tuple[str, ...],
                  transactions: int, sync_delay: float, faults: tuple[str, ...]) -> None:
    """Run the Ponto Connect sandbox and print the [ponto] settings that point eboxd at it."""
    from decimal import Decimal  # noqa: PLC0415

    from daemon.sandbox.ponto import make_pki, serve_ponto_sandbox  # noqa: PLC0415 - only this command

    directory = pki_dir or state.config.data_dir / "ponto-sandbox"
    pki = make_pki(directory)
    try:
        server = serve_ponto_sandbox(pki, host, port, sync_delay=sync_delay)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    try:
        for iban in ibans or ("BE68539007547034",):
            account = server.state.add_account(iban)
            for i in range(transactions):
                server.state.stage_transaction(account, Decimal(-(i + 1)) * Decimal("1.25"), remittance=f"sandbox {i}")
        for spec in faults:
            status, _, count = spec.partition(":")
            if not (status.isdigit() and (count or "1").isdigit()):
                raise click.BadParameter(f"expected STATUS:COUNT, got {spec!r}", param_hint="--fault")
            server.state.fail_next(int(status), int(count or 1))
        (directory / "client-secret").write_text(server.state.client_secret)
        (directory / "client-secret").chmod(0o600)
        click.echo(f"Ponto sandbox on {server.url} (client certificate required)", err=True)
        settings = {"enabled": True, "api_url": server.url, "authorize_url": server.authorize_url,
                    "webhook_keys_url": server.webhook_keys_url, "client_id": server.state.client_id,
                    "client_secret_file": str(directory / "client-secret"),
                    "certificate_file": str(pki.client_cert_file), "key_file": str(pki.client_key_file),
                    "ca_file": str(pki.ca_file)}
        click.echo("[ponto]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in settings.items()))
        signal.signal(signal.SIGTERM, _stop)
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


COMMANDS = [sandbox]
