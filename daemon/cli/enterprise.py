"""``eboxd enterprise``: onboarding an enterprise, as enFact's users do by hand in ChaMan."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.orm import Session

from daemon.cli._params import ENTERPRISE_NUMBER
from daemon.cli._state import State, pass_state
from daemon.db.models import Enterprise, utcnow
from daemon.enterprises import (
    KeyOptions,
    add_enterprise,
    connect_enterprise,
    create_csr,
    credential_of,
    display,
    find_enterprise,
    import_certificate,
    issue_certificate,
    list_enterprises,
    remove_enterprise,
)

__all__ = ["COMMANDS"]


def _session(state: State) -> Session:
    return Session(state.engine(), expire_on_commit=False)


def _key_options(state: State) -> KeyOptions:
    settings = state.config.ebox
    return KeyOptions(settings.environment, settings.key_size, settings.certificate_days)


def _write(path: str | None, data: bytes, what: str) -> None:
    if path in (None, "-"):
        click.echo(data.decode(), nl=False)
        return
    target = Path(path)
    target.write_bytes(data)
    click.echo(f"{what} written to {target}", err=True)


def _provider_number(session: Session, company: Enterprise) -> str:
    provider = session.get(Enterprise, company.access_via_id)
    return display(provider.number) if provider else "?"


@click.group()
def enterprise() -> None:
    """Enterprises and their e-Box connection."""


@enterprise.command("add")
@click.argument("number", type=ENTERPRISE_NUMBER)
@click.option("--name", required=True, help="Company name (also put in the certificate subject).")
@pass_state
def add(state: State, number: str, name: str) -> None:
    """Register an enterprise by its CBE/KBO number, in any common notation."""
    with _session(state) as session, session.begin():
        created = add_enterprise(session, number, name)
    click.echo(f"enterprise {display(created.number)} ({created.name}) added; next: "
               f"`eboxd enterprise certificate {created.number} -o cert.pem`, upload it in ChaMan")


@enterprise.command("certificate")
@click.argument("number", type=ENTERPRISE_NUMBER)
@click.option("-o", "--output", help="Write the certificate (or CSR) here instead of standard output.")
@click.option("--renew", is_flag=True, help="Rotate: a new key and certificate replace the current ones.")
@click.option("--csr", "csr_path", help="Write a certificate signing request for the key, for a CA.")
@click.option("--import", "import_path", type=click.Path(exists=True, dir_okay=False),
              help="Install the certificate a CA signed for our CSR (checked against the key).")
@pass_state
def certificate(state: State, number: str, output: str | None, renew: bool, csr_path: str | None,
                import_path: str | None) -> None:
    """Make the key and self-signed certificate to upload in ChaMan (the key never leaves eboxd)."""
    if sum(bool(x) for x in (renew, csr_path, import_path)) > 1:
        raise click.UsageError("--renew, --csr and --import are exclusive")
    secrets = state.secrets
    with _session(state) as session, session.begin():
        company = find_enterprise(session, number)
        if csr_path:
            _write(csr_path, create_csr(session, secrets, company, _key_options(state)), "certificate signing request")
            return
        if import_path:
            cert = import_certificate(session, secrets, company, Path(import_path).read_bytes())
            click.echo(f"certificate installed for {display(company.number)}, valid until "
                       f"{cert.not_valid_after_utc:%Y-%m-%d}; upload it in ChaMan if not done yet")
            return
        pem, new = issue_certificate(session, secrets, company, _key_options(state), renew=renew)
        expiry = credential_of(session, company).certificate_not_after  # type: ignore[union-attr]
    _write(output, pem, "certificate")
    verb = "new certificate" if new else "existing certificate (use --renew to rotate)"
    click.echo(f"{verb} for {display(company.number)}, valid until {expiry:%Y-%m-%d}", err=True)


@enterprise.command("connect")
@click.argument("number", type=ENTERPRISE_NUMBER)
@click.option("--client-id", help="The client ID ChaMan gave for the uploaded certificate.")
@click.option("--via", help="Service-provider mode: read this e-Box with that enterprise's credential.")
@pass_state
def connect(state: State, number: str, client_id: str | None, via: str | None) -> None:
    """Store the ChaMan client ID, obtain a token and show the e-Box summary."""
    if bool(client_id) == bool(via):
        raise click.UsageError("give exactly one of --client-id or --via")
    secrets = state.secrets
    with _session(state) as session, session.begin():
        company = find_enterprise(session, number)
        provider = find_enterprise(session, via) if via else None
        summary = connect_enterprise(session, state.config, secrets, company, client_id=client_id, via=provider)
    last = summary.last_receipt_date.isoformat() if summary.last_receipt_date else "-"
    click.echo(f"connected to the e-Box of {display(company.number)} ({company.name}): "
               f"{summary.number_of_messages} messages, {summary.number_of_unread_messages} unread, "
               f"last received {last}")


@enterprise.command("list")
@pass_state
def list_command(state: State) -> None:
    """All enterprises with their connection state."""
    table = Table("number", "name", "enabled", "client id", "certificate until", "connected")
    with _session(state) as session:
        for company, credential in list_enterprises(session):
            via = f"via {_provider_number(session, company)}" if company.access_via_id else ""
            table.add_row(
                display(company.number), Text(company.name), "yes" if company.enabled else "no",
                via or (credential.client_id if credential and credential.client_id else "-"),
                f"{credential.certificate_not_after:%Y-%m-%d}" if credential and credential.certificate_not_after
                else "-",
                f"{credential.connected_at:%Y-%m-%d %H:%M}" if credential and credential.connected_at else "-",
            )
    Console(width=140).print(table)


@enterprise.command("show")
@click.argument("number", type=ENTERPRISE_NUMBER)
@pass_state
def show(state: State, number: str) -> None:
    """One enterprise in detail (never the key)."""
    with _session(state) as session:
        company = find_enterprise(session, number)
        credential = credential_of(session, company)
        lines = [("number", display(company.number)), ("name", company.name),
                 ("enabled", "yes" if company.enabled else "no")]
        if company.access_via_id:
            lines.append(("reads via", _provider_number(session, company)))
        if credential:
            days = (credential.certificate_not_after - utcnow()).days if credential.certificate_not_after else None
            lines += [("environment", credential.environment), ("client id", credential.client_id or "-"),
                      ("key fingerprint", credential.key_fingerprint or "-"),
                      ("certificate until", f"{credential.certificate_not_after:%Y-%m-%d} ({days} days)"
                       if credential.certificate_not_after else "- (CSR pending)"),
                      ("connected", f"{credential.connected_at:%Y-%m-%d %H:%M:%S}"
                       if credential.connected_at else "never")]
    for label, value in lines:
        click.echo(f"{label:>18}: {value}")


def _set_enabled(state: State, number: str, enabled: bool) -> None:
    with _session(state) as session, session.begin():
        company = find_enterprise(session, number)
        company.enabled = enabled
    click.echo(f"enterprise {display(company.number)} {'enabled' if enabled else 'disabled'}")


@enterprise.command("disable")
@click.argument("number", type=ENTERPRISE_NUMBER)
@pass_state
def disable(state: State, number: str) -> None:
    """Stop polling this enterprise; nothing is deleted."""
    _set_enabled(state, number, False)


@enterprise.command("enable")
@click.argument("number", type=ENTERPRISE_NUMBER)
@pass_state
def enable(state: State, number: str) -> None:
    """Resume polling this enterprise."""
    _set_enabled(state, number, True)


@enterprise.command("remove")
@click.argument("number", type=ENTERPRISE_NUMBER)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def remove(state: State, number: str, yes: bool) -> None:
    """Delete the enterprise, its key and its records from eboxd (stored documents stay on disk)."""
    with _session(state) as session, session.begin():
        company = find_enterprise(session, number)
        if not yes:
            click.confirm(f"remove {display(company.number)} ({company.name}) and its key?", abort=True)
        remove_enterprise(session, company)
    click.echo(f"enterprise {display(company.number)} removed")


COMMANDS = [enterprise]
