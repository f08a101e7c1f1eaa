"""``eboxd keys``: the master key that encrypts secrets at rest."""

from __future__ import annotations

import os

import click
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from daemon.cli._state import State, pass_state
from daemon.credentials import rotate_token_secrets
from daemon.db.models import Credential, Enterprise
from daemon.enterprises import private_key_context
from daemon.exports.configs import rotate_settings_secrets
from daemon.secrets import CREDENTIAL_NAME, SecretBox, master_key_path, prepend_key

__all__ = ["COMMANDS"]


@click.group()
def keys() -> None:
    """The master key(s) encrypting private keys and tokens at rest."""


@keys.command("rotate")
@click.option("--new-key", is_flag=True, help="First put a new key at the head of the key file.")
@pass_state
def rotate(state: State, new_key: bool) -> None:
    """Re-encrypt every stored secret under the first key of the key file."""
    path = master_key_path(state.config)
    if new_key:
        if path.name == CREDENTIAL_NAME and os.environ.get("CREDENTIALS_DIRECTORY"):
            raise click.ClickException(f"{path} is a systemd credential (read-only): add the key to the file "
                                       "it is loaded from, then run `eboxd keys rotate` without --new-key")
        prepend_key(path)
    secrets = SecretBox.from_file(path)
    rotated = kept = 0
    with Session(state.engine()) as session, session.begin():
        rows = session.execute(
            select(Credential, Enterprise).join(Enterprise, Enterprise.id == Credential.enterprise_id)
            .where(Credential.private_key_encrypted.is_not(None))
        ).all()
        for credential, enterprise in rows:
            token = credential.private_key_encrypted
            assert token is not None
            if secrets.is_current(token):
                kept += 1
                continue
            context = private_key_context(enterprise, credential)
            fresh = secrets.encrypt(secrets.decrypt(token, context=context), context=context)
            session.execute(update(Credential).where(Credential.id == credential.id)
                            .values(private_key_encrypted=fresh))
            rotated += 1
        # Exporter settings marked secret (access keys) and OAuth token pairs of connected services.
        for rotate_more in (rotate_settings_secrets, rotate_token_secrets):
            more_rotated, more_kept = rotate_more(session, secrets)
            rotated += more_rotated
            kept += more_kept
    note = " (new key added: restart eboxd, keep the old key until every node has restarted)" if new_key else ""
    click.echo(f"{rotated} secret(s) re-encrypted under the current key, {kept} already were; key file {path}{note}")


COMMANDS = [keys]
