"""An enterprise's key and certificate for ChaMan: generate, renew, CSR, import. The private key is
stored encrypted (``daemon.secrets``) and leaves the database only to sign client assertions."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.orm import Session

from daemon import ebox
from daemon.db.models import Credential, Enterprise, utcnow
from daemon.enterprises.registry import EnterpriseError, credential_of, display
from daemon.secrets import SecretBox

__all__ = ["KeyOptions", "create_csr", "import_certificate", "issue_certificate", "load_credential",
           "private_key_context", "stored_credential"]


class KeyOptions:
    def __init__(self, environment: str, key_size: int = 3072, days: int = 730) -> None:
        self.environment = environment
        self.key_size = key_size
        self.days = days


def private_key_context(enterprise: Enterprise, credential: Credential) -> str:
    """Associated data binding a ciphertext to its row: a key moved elsewhere will not decrypt."""
    return _key_context(enterprise.number, credential.kind)


def _key_context(number: str, kind: str) -> str:
    return f"credential:{number}:{kind}:private_key"


def _decrypt_key(secrets: SecretBox, number: str, kind: str, encrypted: bytes) -> rsa.RSAPrivateKey:
    pkcs8 = secrets.decrypt(encrypted, context=_key_context(number, kind))
    # Generated here and authenticated by the decryption: no need to re-check the key at every poll.
    return ebox.load_private_key(pkcs8, trusted=True)


def _stored_key(secrets: SecretBox, enterprise: Enterprise, credential: Credential) -> rsa.RSAPrivateKey:
    assert credential.private_key_encrypted is not None
    return _decrypt_key(secrets, enterprise.number, credential.kind, credential.private_key_encrypted)


def _store_key(secrets: SecretBox, enterprise: Enterprise, credential: Credential, key: rsa.RSAPrivateKey) -> None:
    credential.private_key_encrypted = secrets.encrypt(ebox.private_key_to_pkcs8(key),
                                                       context=private_key_context(enterprise, credential))
    credential.key_fingerprint = ebox.public_key_fingerprint(key)


def _credential_for_update(session: Session, enterprise: Enterprise, environment: str) -> Credential:
    credential = credential_of(session, enterprise)
    if credential is None:
        credential = Credential(enterprise_id=enterprise.id, kind="ebox", environment=environment)
        session.add(credential)
    elif credential.environment != environment:
        raise EnterpriseError(f"the key of {display(enterprise.number)} was made for the {credential.environment} "
                              f"environment, this eboxd is configured for {environment}: use --renew")
    return credential


def issue_certificate(session: Session, secrets: SecretBox, enterprise: Enterprise, options: KeyOptions, *,
                      renew: bool = False) -> tuple[bytes, bool]:
    """The self-signed certificate to upload in ChaMan, and whether it is new.

    Without ``renew`` an existing certificate is returned again (idempotent); with it, a new key
    replaces the old one and the client must upload the new certificate.
    """
    credential = credential_of(session, enterprise)
    if credential is not None and credential.certificate_pem and not renew:
        if credential.environment != options.environment:
            raise EnterpriseError(f"the certificate of {display(enterprise.number)} is for the "
                                  f"{credential.environment} environment: use --renew to make one for "
                                  f"{options.environment}")
        return credential.certificate_pem.encode(), False
    if credential is not None and renew:
        credential.environment = options.environment
        credential.rotated_at = utcnow()
    credential = _credential_for_update(session, enterprise, options.environment)
    identity = ebox.generate_identity(enterprise.name, enterprise.number, key_size=options.key_size,
                                      valid_days=options.days, environment_tag=options.environment)
    _store_key(secrets, enterprise, credential, identity.private_key)
    credential.certificate_pem = identity.certificate_pem().decode()
    credential.certificate_not_after = identity.not_valid_after_utc
    credential.connected_at = None
    session.flush()
    return identity.certificate_pem(), True


def create_csr(session: Session, secrets: SecretBox, enterprise: Enterprise, options: KeyOptions) -> bytes:
    """A certificate signing request for the enterprise's key (made now if it has none)."""
    credential = _credential_for_update(session, enterprise, options.environment)
    if credential.private_key_encrypted is None:
        _store_key(secrets, enterprise, credential, ebox.generate_private_key(options.key_size))
        session.flush()
    key = _stored_key(secrets, enterprise, credential)
    subject = ebox.build_subject(enterprise.name, enterprise.number, environment_tag=options.environment)
    return ebox.create_csr(key, subject).public_bytes(serialization.Encoding.PEM)


def import_certificate(session: Session, secrets: SecretBox, enterprise: Enterprise, pem: bytes) -> x509.Certificate:
    """Install a CA-signed certificate after checking that it belongs to our key and is valid now."""
    credential = credential_of(session, enterprise)
    if credential is None or credential.private_key_encrypted is None:
        raise EnterpriseError(f"{display(enterprise.number)} has no key yet: run `eboxd enterprise certificate "
                              f"{enterprise.number} --csr req.pem` and have the CSR signed first")
    try:
        certificate = ebox.load_certificate(pem)
        ebox.verify_certificate_matches_key(certificate, _stored_key(secrets, enterprise, credential))
    except ebox.CertificateError as exc:
        raise EnterpriseError(f"certificate refused: {exc}") from None
    credential.certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    credential.certificate_not_after = certificate.not_valid_after_utc
    credential.connected_at = None
    session.flush()
    return certificate


def load_credential(session: Session, secrets: SecretBox, enterprise: Enterprise) -> ebox.Credential:
    credential = credential_of(session, enterprise)
    return stored_credential(secrets, enterprise.number, credential.kind if credential else "ebox",
                             credential.client_id if credential else None,
                             credential.private_key_encrypted if credential else None)


def stored_credential(secrets: SecretBox, number: str, kind: str, client_id: str | None,
                      private_key_encrypted: bytes | None) -> ebox.Credential:
    """The e-Box credential of ``number`` from its stored columns, or why it cannot be used yet."""
    if private_key_encrypted is None:
        raise EnterpriseError(f"{display(number)} has no key: run `eboxd enterprise certificate "
                              f"{number}` and upload the certificate in ChaMan")
    if not client_id:
        raise EnterpriseError(f"{display(number)} has no ChaMan client ID: run `eboxd enterprise "
                              f"connect {number} --client-id …`")
    return ebox.Credential(client_id, _decrypt_key(secrets, number, kind, private_key_encrypted))
