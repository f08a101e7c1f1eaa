"""``eboxd yuki connect``: check an access key and an administration, then enable the exporter.

Registered through ``eboxd_register_commands``. The key is read from a hidden prompt (or
``$EBOXD_YUKI_ACCESS_KEY``), never echoed, and stored encrypted by the exporter configuration.
"""

from __future__ import annotations

import click
from sqlalchemy.orm import Session

from daemon.cli._secrets import warn_if_on_command_line
from daemon.cli._state import State, pass_state
from daemon.enterprises import find_enterprise
from daemon.exports import disable_exporter, enable_exporter, exporter_configs
from daemon.plugins import get_plugin_manager
from eboxd_yuki.client import REGIONS, Administration, YukiClient, base_url_of
from eboxd_yuki.errors import InvalidAccessKey, YukiError

__all__ = ["connect", "discover", "yuki"]


@click.group("yuki")
def yuki() -> None:
    """Yuki: connect an enterprise to a Yuki administration."""


def discover(access_key: str, regions: list[str], url: str | None,
             timeout: float) -> tuple[str, list[Administration], int]:
    """The region the key works in, the administrations it sees (in every domain), how many domains."""
    refused = []
    for region in regions:
        with YukiClient(access_key, region=region, base_url=url, timeout=timeout) as client:
            try:
                domains = client.domains()
            except InvalidAccessKey:
                refused.append(client.base_url)
                continue
            if len(domains) <= 1:
                return region, client.administrations(), len(domains)
        administrations = []
        for domain in domains:
            with YukiClient(access_key, region=region, base_url=url, domain=domain.id, timeout=timeout) as client:
                administrations += [Administration(a.id, a.name, a.domain_id or domain.id)
                                    for a in client.administrations()]
        return region, administrations, len(domains)
    raise click.ClickException(f"Invalid access key: refused by {' and '.join(refused)}")


def _choose(administrations: list[Administration], wanted: str | None) -> Administration:
    listing = "; ".join(f"{a.name} ({a.id})" for a in administrations) or "none"
    if wanted:
        matches = [a for a in administrations if wanted in (a.id, a.name) or a.name.lower() == wanted.lower()]
        if len(matches) != 1:
            raise click.ClickException(f"administration {wanted!r} is {'ambiguous' if matches else 'not found'} "
                                       f"for this key (administrations: {listing})")
        return matches[0]
    if len(administrations) != 1:
        raise click.ClickException(f"this key sees {len(administrations)} administrations: choose one with "
                                   f"--administration (administrations: {listing})")
    return administrations[0]


@yuki.command("connect")
@click.option("--enterprise", "number", required=True, help="Enterprise number.")
@click.option("--access-key", envvar="EBOXD_YUKI_ACCESS_KEY", prompt="Yuki access key", hide_input=True,
              callback=warn_if_on_command_line,
              help="Yuki web-service access key (default: $EBOXD_YUKI_ACCESS_KEY, else a hidden prompt).")
@click.option("--administration", help="Administration ID or name (needed when the key sees several).")
@click.option("--region", type=click.Choice(REGIONS), help="Country of the Yuki account (default: try be, then nl).")
@click.option("--url", help="Another Yuki host, e.g. the sandbox (http://127.0.0.1:8791).")
@click.option("--folder", help="Default folder: an ID or purchase, to-be-handled (default 7), other.")
@click.option("--folders", help="Per e-Box message type: FIN-TAX-ASSESSMENT=purchase,NSSO-CONTRIBUTIONS=1.")
@click.option("--timeout", type=click.FloatRange(1, 300), default=30, show_default=True, help="Seconds per call.")
@pass_state
def connect(state: State, number: str, access_key: str, administration: str | None, region: str | None,
            url: str | None, folder: str | None, folders: str | None, timeout: float) -> None:
    """Check an access key and an administration with Yuki, then export the enterprise's documents there."""
    access_key = access_key.strip()
    regions = [region] if region else (["be"] if url else list(REGIONS))
    try:
        found_region, administrations, domains = discover(access_key, regions, url, timeout)
    except YukiError as exc:
        raise click.ClickException(str(exc)) from None
    chosen = _choose(administrations, administration)
    settings = {"access_key": access_key, "administration": chosen.id, "region": found_region,
                "timeout": str(timeout)}
    if domains > 1 and chosen.domain_id:
        settings["domain"] = chosen.domain_id
    for name, value in (("url", url), ("folder", folder), ("folders", folders)):
        if value:
            settings[name] = value
    with Session(state.engine()) as session, session.begin():
        enterprise = find_enterprise(session, number)
        row = enable_exporter(session, state.secrets, get_plugin_manager(), enterprise, "yuki", settings)
        enterprise_number, target = enterprise.number, row.target
        # One Yuki administration per enterprise: connecting to another one replaces the earlier.
        replaced = [c.target for c in exporter_configs(session, enterprise)
                    if c.exporter == "yuki" and c.enabled and c.target != target]
        for old in replaced:
            disable_exporter(session, enterprise, "yuki", old)
    for old in replaced:
        click.echo(f"disabled the earlier Yuki connection {old}", err=True)
    click.echo(f"yuki connected for {enterprise_number}: administration {chosen.name} ({chosen.id}) on "
               f"{url or base_url_of(found_region)} → {target}")
