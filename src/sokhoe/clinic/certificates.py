"""A practitioner's signing certificate in a PKCS#12 file, and development certificates.

In the field a clinician's digital signature (*chữ ký số*) comes from a licensed certification
authority, usually through a remote-signing service; a PKCS#12 file (``.p12``/``.pfx``: the
certificate and its private key under a password) is the plain form a facility can also hold.
:func:`make_development_certificate` makes a self-signed one for the demo and the tests: it
says so in its subject (``O`` = :data:`DEVELOPMENT_ORGANIZATION`) and verification reports it,
since it proves nothing about who the holder is. The certificate itself is built by
:func:`sokhoe.access.certificates.self_signed`, shared with the claims signing.
See: https://www.rfc-editor.org/rfc/rfc7292 (PKCS#12)
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from sokhoe.access.certificates import self_signed, write_private

DEVELOPMENT_ORGANIZATION = "sokhoe development certificate - not a legal signature"
VALIDITY = timedelta(days=730)
"""Two years, as the brief for the demo asks; real certificates carry their CA's validity."""


@dataclass(frozen=True)
class SigningCredential:
    """An RSA private key and its certificate, as loaded from a PKCS#12 file."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate


def make_development_certificate(
    name: str, out_path: Path, password: str, now: datetime | None = None
) -> Path:
    """Write a self-signed RSA-2048 certificate and key for practitioner ``name`` (the CN),
    valid two years, as a PKCS#12 file under ``password`` (readable by its owner only)."""
    if not name.strip():
        raise ValueError("A development certificate needs the practitioner's name")
    if not password:
        raise ValueError("A PKCS#12 file needs a password")
    start = (now or datetime.now(UTC)) - timedelta(minutes=5)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name.strip()),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEVELOPMENT_ORGANIZATION),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        ]
    )
    key, certificate = self_signed(subject, start, start + VALIDITY)
    data = pkcs12.serialize_key_and_certificates(
        name=b"sokhoe development certificate",
        key=key,
        cert=certificate,
        cas=None,
        encryption_algorithm=serialization.BestAvailableEncryption(password.encode()),
    )
    return write_private(out_path, data)


def load_pkcs12(path: Path, password: str) -> SigningCredential:
    """The key and certificate in a PKCS#12 file; ValueError says what is wrong."""
    try:
        key, certificate, _ = pkcs12.load_key_and_certificates(path.read_bytes(), password.encode())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path.name} cannot be opened: wrong password or not PKCS#12") from exc
    if certificate is None or not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path.name} must hold an RSA private key and its certificate")
    return SigningCredential(key, certificate)


def common_name(certificate: x509.Certificate) -> str:
    found = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(found[0].value) if found else certificate.subject.rfc4514_string()


def is_development(certificate: x509.Certificate) -> bool:
    found = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return any(a.value == DEVELOPMENT_ORGANIZATION for a in found)


def certificate_b64(certificate: x509.Certificate) -> str:
    """Base64 of the DER certificate (FHIR ``base64Binary``)."""
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()
