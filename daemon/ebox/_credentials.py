"""The OAuth client credential: a ChaMan client ID and the RSA key whose certificate it holds."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import rsa

from ._certificates import ClientIdentity, load_private_key, public_key_fingerprint

__all__ = ["Credential"]


@dataclass(frozen=True, slots=True)
class Credential:
    """``client_id`` + private key. ``repr()`` shows the client ID and key fingerprint only.

    The client ID is opaque (``self_service_chaman_<digits>_<suffix>`` or URN style).
    """

    client_id: str
    private_key: rsa.RSAPrivateKey = field(repr=False, compare=False)
    fingerprint: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.client_id or not self.client_id.strip():
            raise ValueError("client_id is empty")
        if not isinstance(self.private_key, rsa.RSAPrivateKey):
            raise TypeError(f"private_key must be an RSA private key, got {type(self.private_key).__name__}")
        object.__setattr__(self, "fingerprint", public_key_fingerprint(self.private_key))

    @classmethod
    def from_pkcs8(cls, client_id: str, key_bytes: bytes, *, passphrase: bytes | None = None) -> Credential:
        """Build from stored PKCS#8 (PEM or DER) key bytes."""
        return cls(client_id, load_private_key(key_bytes, passphrase=passphrase))

    @classmethod
    def from_identity(cls, client_id: str, identity: ClientIdentity) -> Credential:
        return cls(client_id, identity.private_key)

    def __repr__(self) -> str:
        return f"Credential(client_id={self.client_id!r}, key_fingerprint={self.fingerprint[:16]}…)"
