"""Throwaway PKI for the Ponto sandbox and its tests: a CA, a server certificate for loopback and a
client certificate (the one Ibanity's portal would issue), written as PEM files."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["SandboxPki", "make_pki"]


@dataclass(frozen=True)
class SandboxPki:
    ca_file: Path
    server_cert_file: Path
    server_key_file: Path
    client_cert_file: Path
    client_key_file: Path


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _cert(subject: str, key: rsa.RSAPrivateKey, issuer: x509.Name | None, signer: rsa.RSAPrivateKey,
          *, ca: bool, usage: list[x509.ObjectIdentifier] | None = None,
          ips: list[str] | None = None) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False),
                                        critical=True)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    if ips is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips)]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def make_pki(directory: Path, *, hosts: tuple[str, ...] = ("127.0.0.1", "::1")) -> SandboxPki:
    """Create a CA, a server certificate for ``localhost`` and ``hosts``, and a client certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, server_key, client_key = _key(), _key(), _key()
    ca = _cert("eboxd Ponto sandbox CA", ca_key, None, ca_key, ca=True)
    server = _cert("localhost", server_key, ca.subject, ca_key, ca=False, usage=[ExtendedKeyUsageOID.SERVER_AUTH],
                   ips=list(hosts))
    client = _cert("eboxd Ponto sandbox client", client_key, ca.subject, ca_key, ca=False,
                   usage=[ExtendedKeyUsageOID.CLIENT_AUTH])
    pki = SandboxPki(directory / "ca.pem", directory / "server.pem", directory / "server.key",
                     directory / "client.pem", directory / "client.key")
    pki.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.server_cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    pki.client_cert_file.write_bytes(client.public_bytes(serialization.Encoding.PEM))
    _write_key(pki.server_key_file, server_key)
    _write_key(pki.client_key_file, client_key)
    return pki
