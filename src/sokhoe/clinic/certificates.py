"""A practitioner's signing certificate in a PKCS#12 file, and development certificates.

In the field a clinician's digital signature (*chữ ký số*) comes from a licensed certification
authority, usually through a remote-signing service; a PKCS#12 file (``.p12``/``.pfx``: the
certificate and its private key under a password) is the plain form a facility can also hold.
:func:`make_development_certificate` makes a self-signed one for the demo and the tests: it
says so in its subject (``O`` = :data:`DEVELOPMENT_ORGANIZATION`) and verification reports it,
since it proves nothing about who the holder is.
See: https://www.rfc-editor.org/rfc/rfc7292 (PKCS#12)
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

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
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name.strip()),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEVELOPMENT_ORGANIZATION),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,  # non-repudiation: the holder signs what they state
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
        .sign(key, hashes.SHA256())
    )
    data = pkcs12.serialize_key_and_certificates(
        name=b"sokhoe development certificate",
        key=key,
        cert=certificate,
        cas=None,
        encryption_algorithm=serialization.BestAvailableEncryption(password.encode()),
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(handle, "wb") as fh:
        fh.write(data)
    return out_path


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
