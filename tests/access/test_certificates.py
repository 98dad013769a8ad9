"""The one development-certificate builder, as the clinic and the claims use it."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from sokhoe.access.certificates import self_signed, write_private
from sokhoe.clinic.certificates import (
    common_name,
    is_development,
    load_pkcs12,
    make_development_certificate,
)
from sokhoe.interop.claims.signing import facility_key


def _signing_only(certificate: x509.Certificate) -> None:
    """An end-entity RSA-2048 certificate whose key signs and commits, and does nothing else."""
    key = certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
    assert certificate.issuer == certificate.subject
    basic = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca is False
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature and usage.value.content_commitment
    assert not (usage.value.key_encipherment or usage.value.key_cert_sign)


def test_the_builder_makes_a_signing_only_certificate_for_the_period_given() -> None:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Thử nghiệm")])
    start = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
    key, certificate = self_signed(subject, start, start + timedelta(days=10))
    _signing_only(certificate)
    assert certificate.subject == subject
    assert certificate.not_valid_before_utc == start
    assert certificate.not_valid_after_utc == start + timedelta(days=10)
    assert key.public_key().public_numbers() == certificate.public_key().public_numbers()


def test_clinician_and_facility_development_certificates_are_built_alike(tmp_path: Path) -> None:
    p12 = make_development_certificate("BS. Nguyễn Văn An", tmp_path / "an.p12", "mật khẩu")
    clinician = load_pkcs12(p12, "mật khẩu").certificate
    facility = facility_key(tmp_path, "01001", "Bệnh viện Đa khoa Hà Nội").certificate
    for certificate in (clinician, facility):
        _signing_only(certificate)
    assert is_development(clinician)
    assert common_name(facility) == "01001 (development, not registered)"
    for secret in (p12, tmp_path / "certs" / "01001.key"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_a_private_file_is_owner_only_even_over_a_wider_one(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "old.key"
    path.parent.mkdir()
    path.write_bytes(b"old")
    path.chmod(0o644)
    write_private(path, b"new key")
    assert path.read_bytes() == b"new key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
