"""`eboxd keys rotate --new-key`: every secret at rest is re-encrypted under the new master key, the
old key alone decrypts nothing any more, and with the old key removed from the key file the daemon
still polls the e-Box sandbox and exports to ZIP, Exact and Yuki, and Ponto still answers.

Ciphertexts are found by their shape in every binary column and inside every JSON value of every
table (reflected), so a table holding secrets that rotation forgets fails here without this test
having to know about it."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from daemon.banking.ponto._client import PontoClient
from daemon.credentials import TokenStore, token_context
from daemon.db.models import Credential, Enterprise, ExporterConfig, OAuthToken
from daemon.enterprises import private_key_context
from daemon.exports.configs import settings_context
from daemon.secrets import SecretBox, SecretError
from tests.amqp_helpers import private_amqp_url
from tests.reliability.test_secrets import World, build_world, onboard, run_pipeline

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq]

_VERSION = 1
_HEADER = 1 + 4 + 12 + 16  # version, key id, nonce, tag: the shortest ciphertext


def key_id(line: str) -> bytes:
    """The 4-byte id a ciphertext names its key by (as daemon.secrets computes it)."""
    raw = base64.urlsafe_b64decode(line + "=" * (-len(line) % 4))
    return hashlib.sha256(b"eboxd-key-id:" + raw).digest()[:4]


def _as_ciphertext(value: Any, ids: set[bytes]) -> bytes | None:
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, str) and len(value) >= 44:
        try:
            value = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
    if isinstance(value, bytes) and len(value) >= _HEADER and value[0] == _VERSION and value[1:5] in ids:
        return value
    return None


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, str) and value[:1] in "{[":
        with contextlib.suppress(ValueError):  # text that only starts like JSON
            value = json.loads(value)
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    else:
        yield path, value


def ciphertexts(engine: Engine, ids: set[bytes]) -> dict[str, bytes]:
    """Every value in the database that is an eboxd ciphertext under one of the keys ``ids``, by where it is."""
    metadata = sa.MetaData()
    metadata.reflect(engine)
    found: dict[str, bytes] = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            key_columns = [column.name for column in table.primary_key.columns]
            for row in conn.execute(sa.select(table)).mappings():
                row_key = ",".join(str(row[name]) for name in key_columns)
                for column, value in row.items():
                    for path, leaf in _walk(value, f"{table.name}[{row_key}].{column}"):
                        sealed = _as_ciphertext(leaf, ids)
                        if sealed is not None:
                            found[path] = sealed
    return found


def decrypt_every_known_secret(engine: Engine, secrets: SecretBox) -> int:
    """Decrypt the private keys, token pairs and secret exporter settings with ``secrets``; how many."""
    done = 0
    with Session(engine) as session:
        for credential, enterprise in session.execute(sa.select(Credential, Enterprise).join(Enterprise)):
            secrets.decrypt(credential.private_key_encrypted, context=private_key_context(enterprise, credential))
            done += 1
        for row in session.scalars(sa.select(OAuthToken)):
            secrets.decrypt(row.token_encrypted, context=token_context(row.id, row.provider, row.subject, row.version))
            done += 1
        for config, number in session.execute(sa.select(ExporterConfig, Enterprise.number).join(Enterprise)):
            for name, stored in (config.settings or {}).items():
                if isinstance(stored, dict) and "__encrypted__" in stored:
                    secrets.decrypt(base64.b64decode(stored["__encrypted__"]),
                                    context=settings_context(number, config.exporter, config.target, name))
                    done += 1
    return done


def _key_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


@pytest.fixture
def amqp_url() -> Iterator[str]:
    yield from private_amqp_url()


@pytest.fixture
def world(database_url: str, amqp_url: str, tmp_path: Path) -> Iterator[World]:
    yield from build_world(database_url, amqp_url, tmp_path)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_rotation_reencrypts_everything_and_the_daemon_keeps_working_with_the_new_key_only(world: World) -> None:
    onboard(world)
    world.cli("exporter", "enable", "zip", "--enterprise", world.number, "--dir", str(world.tmp / "drop"))
    [old] = _key_lines(world.key_file)
    old_box = SecretBox.from_file(world.key_file)
    before = ciphertexts(world.engine, {key_id(old)})
    tables = {where.split("[", 1)[0] for where in before}
    assert tables == {"credentials", "oauth_tokens", "exporter_configs"}, before.keys()
    assert len(before) == decrypt_every_known_secret(world.engine, old_box) == 5  # key, 2 pairs, 2 settings

    printed = world.cli("keys", "rotate", "--new-key")
    new, also_old = _key_lines(world.key_file)
    assert also_old == old
    assert f"{len(before)} secret(s) re-encrypted under the current key, 0 already were" in printed
    assert ciphertexts(world.engine, {key_id(old)}) == {}, "left under the old key"
    after = ciphertexts(world.engine, {key_id(new)})
    assert after.keys() == before.keys()
    assert all(after[where] != before[where] for where in before)

    world.key_file.write_text(f"# the new key only\n{new}\n")
    new_box = SecretBox.from_file(world.key_file)
    assert decrypt_every_known_secret(world.engine, new_box) == len(before)
    with pytest.raises(SecretError, match="not configured any more"):
        decrypt_every_known_secret(world.engine, SecretBox([base64.urlsafe_b64decode(old + "=")]))
    assert "0 secret(s) re-encrypted under the current key, 5 already were" in world.cli("keys", "rotate")

    # The daemon with only the new key: poll, fetch, export everywhere (Exact's tokens and Yuki's
    # access key decrypt), and Ponto's stored pair still authorises a call.
    run_pipeline(world, ("zip", "exact", "yuki"))
    assert any(path.is_file() for path in (world.tmp / "drop").rglob("*"))
    with PontoClient(world.ponto_settings, TokenStore(world.engine, new_box), world.number) as client:
        assert client.request("GET", "/accounts")["data"]
