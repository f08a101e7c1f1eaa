"""Secrets at rest: AES-256-GCM under a master key that never enters the database.

Each ciphertext is bound to what it protects (the ``context``, used as associated data), so a
value copied into another row or column fails to decrypt instead of silently working. The key
file holds one or more keys, newest first: the first encrypts, any decrypts, and
``eboxd keys rotate`` re-encrypts everything under the first.

Where the master key comes from, in order: ``$CREDENTIALS_DIRECTORY/eboxd-master-key`` (systemd
``LoadCredential=``), ``[secrets] key_file``, ``<data_dir>/master.key`` (created by ``eboxd init``).
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from daemon.config import Config
from daemon.errors import EboxdError

__all__ = [
    "CREDENTIAL_NAME",
    "SecretBox",
    "SecretError",
    "create_key_file",
    "master_key_path",
    "new_key_line",
    "prepend_key",
]

CREDENTIAL_NAME = "eboxd-master-key"
_VERSION = b"\x01"
_KEY_ID_BYTES = 4
_NONCE_BYTES = 12


class SecretError(EboxdError):
    """A master key is missing or malformed, or a ciphertext cannot be decrypted."""

    exit_code = 2


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"eboxd-key-id:" + key).digest()[:_KEY_ID_BYTES]


class SecretBox:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise SecretError("no master key")
        for key in keys:
            if len(key) != 32:
                raise SecretError(f"a master key must be 32 bytes, got {len(key)}")
        self._keys = {_key_id(key): AESGCM(key) for key in keys}
        self._current = _key_id(keys[0])

    def __repr__(self) -> str:
        return f"<SecretBox keys={len(self._keys)}>"

    def encrypt(self, plaintext: bytes, *, context: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self._current].encrypt(nonce, plaintext, context.encode())
        return _VERSION + self._current + nonce + sealed

    def decrypt(self, token: bytes, *, context: str) -> bytes:
        if len(token) < 1 + _KEY_ID_BYTES + _NONCE_BYTES + 16 or token[:1] != _VERSION:
            raise SecretError(f"{context}: not an eboxd ciphertext")
        key_id = token[1 : 1 + _KEY_ID_BYTES]
        nonce = token[1 + _KEY_ID_BYTES : 1 + _KEY_ID_BYTES + _NONCE_BYTES]
        aead = self._keys.get(key_id)
        if aead is None:
            raise SecretError(f"{context}: encrypted with a master key that is not configured any more")
        try:
            return aead.decrypt(nonce, token[1 + _KEY_ID_BYTES + _NONCE_BYTES :], context.encode())
        except InvalidTag:
            raise SecretError(f"{context}: ciphertext does not authenticate (altered, or from another row)") from None

    def is_current(self, token: bytes) -> bool:
        """True when ``token`` is already encrypted under the first (current) key."""
        return token[1 : 1 + _KEY_ID_BYTES] == self._current

    @classmethod
    def from_file(cls, path: Path) -> SecretBox:
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError:
            raise SecretError(f"master key file {path} does not exist: run `eboxd init` or set "
                              "[secrets] key_file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretError(f"cannot read master key file {path}: {exc}") from None
        keys = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            try:
                key = base64.urlsafe_b64decode(line.encode() + b"=" * (-len(line) % 4))
            except ValueError:
                raise SecretError(f"{path}:{number}: not a base64url key") from None
            if len(key) != 32:
                raise SecretError(f"{path}:{number}: a master key must be 32 bytes, got {len(key)}")
            keys.append(key)
        if not keys:
            raise SecretError(f"{path}: no key in the file")
        return cls(keys)

    @classmethod
    def from_config(cls, config: Config) -> SecretBox:
        return cls.from_file(master_key_path(config))


def master_key_path(config: Config) -> Path:
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / CREDENTIAL_NAME).exists():
        return Path(credentials) / CREDENTIAL_NAME
    if config.secrets.key_file:
        return Path(config.secrets.key_file).expanduser()
    return config.data_dir / "master.key"


def new_key_line() -> str:
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode().rstrip("=")


def create_key_file(path: Path) -> bool:
    """Create a key file with one fresh key, readable by its owner only; False if it exists."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write("# eboxd master key(s), newest first. Keep a copy: without it no secret can be read.\n")
        file.write(new_key_line() + "\n")
    return True


def prepend_key(path: Path) -> None:
    """Put a fresh key first in ``path`` (rotation step one); older keys stay for decryption."""
    lines = path.read_text(encoding="ascii").splitlines()
    comments = [line for line in lines if line.strip().startswith("#")]
    keys = [line for line in lines if line.strip() and not line.strip().startswith("#")]
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write("\n".join([*comments, new_key_line(), *keys]) + "\n")
    temporary.replace(path)
