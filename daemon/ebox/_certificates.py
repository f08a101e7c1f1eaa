"""RSA keys, self-signed certificates and CSRs for ChaMan onboarding (pure functions, no storage).

The recipe follows platform.md §10: no ``backend=``, timezone-aware datetimes, expiry read through
``not_valid_after_utc``. The subject carries the legal name and the CBE number in the legacy
``OU=urn:be:fgov:kbo-bce:organization:cbe-number:<cbe>`` form (ebox.md §3.4).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ._cbe import EnterpriseNumber, parse_enterprise_number
from ._errors import CertificateError, CertificateKeyMismatch, WeakKey

__all__ = [
    "DEFAULT_KEY_SIZE",
    "MIN_KEY_SIZE",
    "ClientIdentity",
    "build_subject",
    "create_csr",
    "create_self_signed_certificate",
    "generate_identity",
    "generate_private_key",
    "load_certificate",
    "load_private_key",
    "private_key_to_pkcs8",
    "public_key_fingerprint",
    "verify_certificate_matches_key",
]

DEFAULT_KEY_SIZE = 3072
MIN_KEY_SIZE = 2048
CBE_OU_PREFIX = "urn:be:fgov:kbo-bce:organization:cbe-number:"


def _check_key_size(bits: int) -> None:
    if bits < MIN_KEY_SIZE:
        raise WeakKey(f"RSA keys must have at least {MIN_KEY_SIZE} bits, got {bits}")


def generate_private_key(key_size: int = DEFAULT_KEY_SIZE) -> rsa.RSAPrivateKey:
    """A fresh RSA key (public exponent 65537); ``key_size`` ≥ 2048."""
    _check_key_size(key_size)
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


def private_key_to_pkcs8(key: rsa.RSAPrivateKey, *, passphrase: bytes | None = None) -> bytes:
    """PEM-encoded PKCS#8 bytes, encrypted with ``passphrase`` when given (store these, never log)."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def load_private_key(data: bytes, *, passphrase: bytes | None = None, trusted: bool = False) -> rsa.RSAPrivateKey:
    """Load a PEM or DER private key; reject non-RSA and weak keys.

    ``trusted`` skips OpenSSL's consistency check of the RSA key (~50 ms for 2048 bits, most of the
    cost of loading): only for keys that were checked before and come back unaltered, such as the
    ones eboxd generated and reads back through authenticated encryption.
    """
    try:
        if data.lstrip().startswith(b"-----"):
            key = serialization.load_pem_private_key(data, password=passphrase, unsafe_skip_rsa_key_validation=trusted)
        else:
            key = serialization.load_der_private_key(data, password=passphrase, unsafe_skip_rsa_key_validation=trusted)
    except (ValueError, TypeError) as exc:
        # The underlying message says "bad decrypt"/"could not deserialize": no key material in it.
        raise CertificateError(f"cannot load the private key: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateError(f"expected an RSA private key, got {type(key).__name__}")
    _check_key_size(key.key_size)
    return key


def public_key_fingerprint(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    """SHA-256 (hex) of the SubjectPublicKeyInfo DER: safe to log, identifies the key."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def build_subject(
    company_name: str,
    enterprise_number: str | EnterpriseNumber,
    *,
    common_name: str | None = None,
    environment_tag: str | None = None,
    locality: str | None = None,
    state: str | None = None,
) -> x509.Name:
    """``C=BE, O=<name>, OU=urn:…:cbe-number:<cbe>[, OU=ACC|PRD], CN=<common name>[, L, ST]``."""
    if not company_name.strip():
        raise CertificateError("company_name is empty")
    cbe = parse_enterprise_number(enterprise_number)
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, company_name.strip()),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, CBE_OU_PREFIX + cbe.canonical),
    ]
    if environment_tag:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, environment_tag))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, (common_name or f"eboxd {cbe.canonical}")[:64]))
    if locality:
        attrs.append(x509.NameAttribute(NameOID.LOCALITY_NAME, locality))
    if state:
        attrs.append(x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, state))
    return x509.Name(attrs)


def create_self_signed_certificate(
    key: rsa.RSAPrivateKey,
    subject: x509.Name,
    *,
    valid_days: int = 365,
    now: datetime | None = None,
) -> x509.Certificate:
    """A self-signed end-entity certificate for ``key`` (SHA-256, not a CA, digitalSignature)."""
    _check_key_size(key.key_size)
    if valid_days < 1:
        raise CertificateError("valid_days must be at least 1")
    start = (now or datetime.now(UTC)).astimezone(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - timedelta(minutes=5))
        .not_valid_after(start + timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def create_csr(key: rsa.RSAPrivateKey, subject: x509.Name) -> x509.CertificateSigningRequest:
    """A PKCS#10 request for ``key``, to have a CA sign the same subject."""
    _check_key_size(key.key_size)
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())


def load_certificate(data: bytes) -> x509.Certificate:
    """Load a PEM or DER certificate."""
    try:
        if data.lstrip().startswith(b"-----"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise CertificateError(f"cannot load the certificate: {exc}") from None


def verify_certificate_matches_key(
    certificate: x509.Certificate | bytes, key: rsa.RSAPrivateKey, *, now: datetime | None = None
) -> x509.Certificate:
    """Check an imported (CA-signed) certificate belongs to ``key`` and is currently valid."""
    cert = load_certificate(certificate) if isinstance(certificate, bytes) else certificate
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise CertificateKeyMismatch(f"the certificate holds a {type(public).__name__}, not an RSA key")
    if public_key_fingerprint(public) != public_key_fingerprint(key):
        raise CertificateKeyMismatch(
            f"the certificate (serial {cert.serial_number:x}, subject {cert.subject.rfc4514_string()}) "
            "was issued for another key"
        )
    _check_key_size(public.key_size)
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    if moment >= cert.not_valid_after_utc:
        raise CertificateError(f"the certificate expired on {cert.not_valid_after_utc.isoformat()}")
    if moment < cert.not_valid_before_utc:
        raise CertificateError(f"the certificate is not valid before {cert.not_valid_before_utc.isoformat()}")
    return cert


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """An RSA key and its certificate: what an enterprise uploads to ChaMan.

    ``repr()`` shows the subject, fingerprint and expiry only, never key material.
    """

    private_key: rsa.RSAPrivateKey = field(repr=False)
    certificate: x509.Certificate = field(repr=False)

    def __post_init__(self) -> None:
        verify_certificate_matches_key(self.certificate, self.private_key, now=self.not_valid_before_utc)

    @property
    def not_valid_before_utc(self) -> datetime:
        return self.certificate.not_valid_before_utc

    @property
    def not_valid_after_utc(self) -> datetime:
        return self.certificate.not_valid_after_utc

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the public key (hex)."""
        return public_key_fingerprint(self.private_key)

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def private_key_pkcs8(self, *, passphrase: bytes | None = None) -> bytes:
        return private_key_to_pkcs8(self.private_key, passphrase=passphrase)

    def csr_pem(self) -> bytes:
        """A CSR for the same key and subject, for a CA-signed certificate."""
        csr = create_csr(self.private_key, self.certificate.subject)
        return csr.public_bytes(serialization.Encoding.PEM)

    def with_certificate(self, certificate: x509.Certificate | bytes) -> ClientIdentity:
        """Swap in an imported CA-signed certificate after checking it matches the key."""
        cert = verify_certificate_matches_key(certificate, self.private_key)
        return ClientIdentity(self.private_key, cert)

    def __repr__(self) -> str:
        return (
            f"ClientIdentity(subject={self.subject!r}, fingerprint={self.fingerprint[:16]}…, "
            f"not_valid_after_utc={self.not_valid_after_utc.isoformat()})"
        )


def generate_identity(
    company_name: str,
    enterprise_number: str | EnterpriseNumber,
    *,
    key_size: int = DEFAULT_KEY_SIZE,
    valid_days: int = 365,
    common_name: str | None = None,
    environment_tag: str | None = None,
) -> ClientIdentity:
    """Generate a key and a self-signed certificate for ``company_name`` / ``enterprise_number``."""
    subject = build_subject(company_name, enterprise_number, common_name=common_name, environment_tag=environment_tag)
    key = generate_private_key(key_size)
    return ClientIdentity(key, create_self_signed_certificate(key, subject, valid_days=valid_days))
