from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from daemon import ebox


@pytest.fixture(scope="module")
def identity() -> ebox.ClientIdentity:
    return ebox.generate_identity("ACME NV", "0403.170.701", key_size=2048, valid_days=730)


def test_default_key_size_is_3072():
    assert ebox.DEFAULT_KEY_SIZE == 3072
    assert ebox.generate_private_key().key_size == 3072


def test_weak_keys_are_refused():
    with pytest.raises(ebox.WeakKey, match="at least 2048"):
        ebox.generate_private_key(1024)


def test_self_signed_certificate_recipe(identity):
    cert = identity.certificate
    subject = cert.subject
    assert subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "BE"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "ACME NV"
    ous = [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    assert ous == ["urn:be:fgov:kbo-bce:organization:cbe-number:0403170701"]
    assert cert.issuer == cert.subject
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).critical
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    # Self-signature verifies with the embedded key.
    cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256())
    now = datetime.now(UTC)
    assert cert.not_valid_before_utc <= now
    assert identity.not_valid_after_utc.tzinfo is not None
    assert timedelta(days=729) < identity.not_valid_after_utc - now <= timedelta(days=730)


def test_subject_rejects_bad_input():
    with pytest.raises(ebox.InvalidEnterpriseNumber):
        ebox.build_subject("ACME NV", "0403.170.702")
    with pytest.raises(ebox.CertificateError, match="company_name"):
        ebox.build_subject("  ", "0403.170.701")
    name = ebox.build_subject("ACME NV", "0403170701", environment_tag="ACC", common_name="acme-app")
    ous = [a.value for a in name.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    assert ous[1] == "ACC"
    assert name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "acme-app"


def test_csr_is_for_the_same_key_and_subject(identity):
    csr = x509.load_pem_x509_csr(identity.csr_pem())
    assert csr.is_signature_valid
    assert csr.subject == identity.certificate.subject
    assert ebox.public_key_fingerprint(csr.public_key()) == identity.fingerprint


def _ca_sign(csr: x509.CertificateSigningRequest, *, days: int = 365) -> x509.Certificate:
    ca_key = ebox.generate_private_key(2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_name)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=days))
        .sign(ca_key, hashes.SHA256())
    )


def test_imported_ca_signed_certificate_matching_the_key(identity):
    signed = _ca_sign(x509.load_pem_x509_csr(identity.csr_pem()))
    pem = signed.public_bytes(serialization.Encoding.PEM)
    der = signed.public_bytes(serialization.Encoding.DER)
    for blob in (pem, der, signed):
        cert = ebox.verify_certificate_matches_key(blob, identity.private_key)
        assert cert.serial_number == signed.serial_number
    swapped = identity.with_certificate(pem)
    assert swapped.certificate.issuer != swapped.certificate.subject
    assert swapped.fingerprint == identity.fingerprint


def test_imported_certificate_for_another_key_is_refused(identity):
    other = ebox.generate_identity("Other BV", "0403170701", key_size=2048)
    with pytest.raises(ebox.CertificateKeyMismatch, match="another key"):
        ebox.verify_certificate_matches_key(other.certificate_pem(), identity.private_key)
    with pytest.raises(ebox.CertificateKeyMismatch):
        identity.with_certificate(other.certificate)
    with pytest.raises(ebox.CertificateKeyMismatch):
        ebox.ClientIdentity(identity.private_key, other.certificate)


def test_expired_certificate_is_refused(identity):
    later = identity.not_valid_after_utc + timedelta(seconds=1)
    with pytest.raises(ebox.CertificateError, match="expired"):
        ebox.verify_certificate_matches_key(identity.certificate, identity.private_key, now=later)


def test_garbage_certificate_and_key():
    with pytest.raises(ebox.CertificateError, match="cannot load the certificate"):
        ebox.load_certificate(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with pytest.raises(ebox.CertificateError, match="cannot load the private key"):
        ebox.load_private_key(b"not a key")


def test_pkcs8_round_trip_plain_and_encrypted(identity):
    plain = identity.private_key_pkcs8()
    assert plain.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert ebox.public_key_fingerprint(ebox.load_private_key(plain)) == identity.fingerprint
    encrypted = identity.private_key_pkcs8(passphrase=b"s3cret")
    assert encrypted.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(ebox.CertificateError):
        ebox.load_private_key(encrypted, passphrase=b"wrong")
    credential = ebox.Credential.from_pkcs8("client-1", encrypted, passphrase=b"s3cret")
    assert credential.fingerprint == identity.fingerprint
    der = identity.private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert ebox.load_private_key(der).key_size == 2048


def test_trusted_load_skips_only_the_rsa_consistency_check(identity):
    plain = identity.private_key_pkcs8()
    key = ebox.load_private_key(plain, trusted=True)
    assert ebox.public_key_fingerprint(key) == identity.fingerprint
    credential = ebox.Credential("client-1", key)
    assert credential.fingerprint == identity.fingerprint
    with pytest.raises(ebox.CertificateError, match="cannot load the private key"):
        ebox.load_private_key(b"not a key", trusted=True)
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ebox.CertificateError):
        ebox.load_private_key(weak.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()), trusted=True)


def test_weak_imported_key_is_refused():
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = weak.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ebox.WeakKey):
        ebox.load_private_key(pem)


def test_reprs_never_include_key_material(identity):
    pem_body = identity.private_key_pkcs8().decode().splitlines()[1]
    numbers = identity.private_key.private_numbers()
    credential = ebox.Credential.from_identity("client-1", identity)
    for text in (repr(identity), str(identity), repr(credential), str(credential)):
        assert pem_body not in text
        assert str(numbers.d)[:20] not in text
        assert "PRIVATE" not in text
    assert "0403170701" in repr(identity)
    assert "client-1" in repr(credential)


def test_credential_equality_and_validation(identity, private_key):
    a = ebox.Credential("c", identity.private_key)
    b = ebox.Credential("c", ebox.load_private_key(identity.private_key_pkcs8()))
    assert a == b
    assert hash(a) == hash(b)
    assert a != ebox.Credential("c", private_key)
    with pytest.raises(ValueError, match="client_id"):
        ebox.Credential(" ", private_key)
