"""``eboxd bank ponto``: connect an enterprise to Ponto Connect, list its linked accounts, sync now."""

from __future__ import annotations

import datetime as dt

import click
from rich.table import Table
from sqlalchemy import select

from daemon.banking.ponto import (
    Pkce,
    PontoClient,
    PontoError,
    PontoSettings,
    authorization_url,
    complete_connect,
    parse_pasted,
    sync_account,
    wait_for_callback,
)
from daemon.cli._params import ENTERPRISE_NUMBER
from daemon.cli._state import State, pass_state
from daemon.cli.payment import console
from daemon.credentials import NeedsReconnect, TokenStore
from daemon.db.models import Enterprise, PontoAccount
from daemon.enterprises import parse_number
from daemon.payments.matching import match_payments

__all__ = ["ponto"]


@click.group()
def ponto() -> None:
    """Ponto Connect: bank transactions by API ([ponto] in the configuration)."""


def _settings(state: State) -> PontoSettings:
    return PontoSettings.from_config(state.config)


@ponto.command("connect")
@click.option("--enterprise", "number", required=True, type=ENTERPRISE_NUMBER,
              help="The enterprise whose accounts to link.")
@click.option("--paste", is_flag=True, help="Paste the code (or the redirected URL) instead of the loopback callback.")
@click.option("--timeout", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="Seconds to wait for the callback.")
@pass_state
def connect(state: State, number: str, paste: bool, timeout: float) -> None:
    """Print the authorization URL, receive the consent, store the tokens encrypted, link the accounts."""
    number = parse_number(number)
    settings = _settings(state)
    pkce = Pkce.new()
    click.echo("Open this URL, sign in to Ponto and choose the accounts to share:", err=True)
    click.echo(authorization_url(settings, pkce))
    try:
        if paste:
            code = parse_pasted(click.prompt("Code or redirected URL", err=True), pkce)
        else:
            click.echo(f"Waiting for the redirect to {settings.redirect_uri} …", err=True)
            code = wait_for_callback(settings.redirect_uri, pkce, timeout=timeout)
        engine = state.engine()
        accounts = complete_connect(engine, TokenStore(engine, state.secrets), settings, number, code, pkce)
    except (PontoError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    for item in accounts:
        attributes = item.get("attributes") or {}
        click.echo(f"linked {item['id']} {attributes.get('reference', '')} {attributes.get('description', '')}")


@ponto.command("accounts")
@pass_state
def accounts(state: State) -> None:
    """The linked Ponto accounts and their last sync."""
    table = Table("enterprise", "account", "IBAN", "last sync", "status", "next sync", "last error")
    query = (select(Enterprise.number, PontoAccount.account_id, PontoAccount.iban, PontoAccount.last_synced_at,
                    PontoAccount.last_sync_status, PontoAccount.next_sync_at, PontoAccount.last_error)
             .join(Enterprise, Enterprise.id == PontoAccount.enterprise_id).order_by(Enterprise.number))
    with state.engine().connect() as conn:
        for row in conn.execute(query):
            table.add_row(row.number, row.account_id, row.iban or "", str(row.last_synced_at or "never"),
                          row.last_sync_status or "", str(row.next_sync_at), row.last_error or "")
    console().print(table)


@ponto.command("sync")
@click.option("--enterprise", "number", required=True, type=ENTERPRISE_NUMBER,
              help="Sync every linked account of this enterprise now.")
@click.option("--no-request", is_flag=True, help="Only read transactions; do not ask Ponto to synchronize first.")
@pass_state
def sync(state: State, number: str, no_request: bool) -> None:
    """Synchronize and read the enterprise's linked accounts now, then match payments."""
    number = parse_number(number)
    settings, engine = _settings(state), state.engine()
    with engine.connect() as conn:
        ids = conn.scalars(select(PontoAccount.id).join(Enterprise, Enterprise.id == PontoAccount.enterprise_id)
                           .where(Enterprise.number == number, PontoAccount.enabled.is_(True))).all()
    if not ids:
        raise click.ClickException(f"no linked Ponto account for {number}: `eboxd bank ponto connect` first")
    try:
        with PontoClient(settings, TokenStore(engine, state.secrets), number) as client:
            for account_pk in ids:
                result = sync_account(engine, client, account_pk, overlap_days=settings.overlap_days,
                                      request_sync=not no_request, next_sync_at=dt.datetime.now(dt.UTC)
                                      + dt.timedelta(seconds=state.config.ponto.sync_interval_seconds))
                if result is not None:
                    click.echo(f"{result.account_id}: {result.status}, read {result.read}, new {result.inserted}, "
                               f"already from CODA {result.linked}")
    except (PontoError, NeedsReconnect) as exc:
        raise click.ClickException(str(exc)) from None
    banking = state.config.banking
    matched = match_payments(engine, window_days=banking.match_window_days,
                             confidence_threshold=banking.match_confidence_threshold)
    click.echo(f"matched: {matched.matched} paid, {matched.suggested} suggested, {matched.unmatched} unmatched")
