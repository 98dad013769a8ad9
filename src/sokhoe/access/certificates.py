"""Self-signed development certificates: the one builder the clinic and the claims share.

Two parts of the platform sign with an X.509 certificate: a clinician signs a visit
(``clinic/certificates.py``, a PKCS#12 file per practitioner) and a facility signs its
insurance XML (``interop/claims/signing.py``, PEM files per facility). In the field both come
from a licensed certification authority; for demos and tests each makes a self-signed one,
and both want the same kind: RSA-2048, SHA-256, an end-entity certificate (not a CA) whose
key may sign and commit to what it signs (non-repudiation) and nothing else. That builder
lives here, beside the other key material of the access layer (``access/kek.py``), so that
neither the clinic nor the claims package imports the other; each keeps its own subject,
validity and file format.
See: https://www.rfc-editor.org/rfc/rfc5280#section-4.2.1.3 (key usage)
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_SIZE = 2048

_SIGNING_ONLY = x509.KeyUsage(
    digital_signature=True,
    content_commitment=True,  # non-repudiation: the holder signs what they state
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def self_signed(
    subject: x509.Name, not_before: datetime, not_after: datetime
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A new RSA key and a certificate for it, issued by ``subject`` to itself, valid from
    ``not_before`` to ``not_after``, usable for signatures only."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_SIGNING_ONLY, critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def write_private(path: Path, data: bytes) -> Path:
    """Write ``data`` (a private key, a PKCS#12 file) readable by its owner only, from the
    moment the file exists: made with mode 0600, not chmod-ed after the key is in it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(handle, 0o600)  # a file that was already there keeps no wider mode
    with os.fdopen(handle, "wb") as fh:
        fh.write(data)
    return path


__all__ = ["KEY_SIZE", "self_signed", "write_private"]
