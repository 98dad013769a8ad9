"""The facility's XML digital signature (``CHUKYDONVI``) and its certificate.

Why: Decree 188/2025 art. 69(9) makes the cost data of insured visits electronically
authenticated from 1 January 2026; the social-insurance agency's guide asks for an XML
signature with SHA-256 made with the certificate the facility registered on the portal, placed
in ``<CHUKYDONVI>`` at the end of the file. We make an enveloped XMLDSig signature (RSA-SHA256,
SHA-256 digests, the reference is the whole document) with ``signxml``, canonicalised with
Canonical XML 1.0 rather than signxml's default 1.1, because .NET's ``SignedXml`` (what most
Vietnamese hospital systems sign with, and presumably what verifies them) does not implement
1.1 (unconfirmed for the portal itself).
Whether the portal's XSD wants exactly this profile is unconfirmed (the digest notes the
agency's guide is ambiguous about the signed scope).

For development and demos a self-signed certificate per facility is generated under
``<var_dir>/certs/<CODE>.pem`` and ``.key`` when none is given; production passes the
registered certificate and key (or, better, a signing service; not implemented here). The
certificate is built by :func:`sokhoe.access.certificates.self_signed`, shared with the
clinicians' development certificates.

See: https://www.w3.org/TR/xmldsig-core1/
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree  # type: ignore[import-untyped]  # no lxml-stubs in the environment
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.signer import XMLSigner
from signxml.verifier import XMLVerifier

from sokhoe.access import certificates

DS_NS = "http://www.w3.org/2000/09/xmldsig#"


@dataclass(frozen=True)
class SigningKey:
    """A certificate (PEM) and its private key (PEM), and where they came from."""

    cert_pem: bytes
    key_pem: bytes
    generated: bool = False
    """True when :func:`facility_key` made a development certificate just now."""
    cert_path: Path | None = None

    @cached_property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @cached_property
    def private_key(self) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
        """Loaded once: loading checks the RSA key, which costs ~80 ms each time."""
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError(f"unsupported signing key type {type(key).__name__}: use RSA or EC")
        return key


def load_key(cert: Path, key: Path) -> SigningKey:
    """A certificate and private key from PEM files (checked to belong together)."""
    signing = SigningKey(cert.read_bytes(), key.read_bytes(), cert_path=cert)
    public = signing.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    registered = signing.certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if public != registered:
        raise ValueError(f"the key {key} does not belong to the certificate {cert}")
    return signing


def self_signed(code: str, name: str, now: datetime | None = None) -> SigningKey:
    """A development certificate for facility ``code`` (RSA 2048, valid 3 years)."""
    now = now or datetime.now(UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name[:64] or code),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{code} (development, not registered)"),
        ]
    )
    private, cert = certificates.self_signed(
        subject, now - timedelta(days=1), now + timedelta(days=3 * 365)
    )
    key_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return SigningKey(cert.public_bytes(serialization.Encoding.PEM), key_pem, generated=True)


def facility_key(var_dir: Path, code: str, name: str) -> SigningKey:
    """The development certificate of ``code`` under ``var_dir/certs``, made on first use."""
    folder = var_dir / "certs"
    cert_path, key_path = folder / f"{code}.pem", folder / f"{code}.key"
    if cert_path.exists() and key_path.exists():
        return load_key(cert_path, key_path)
    signing = self_signed(code, name)
    certificates.write_private(key_path, signing.key_pem)
    cert_path.write_bytes(signing.cert_pem)
    return SigningKey(signing.cert_pem, signing.key_pem, generated=True, cert_path=cert_path)


def signature_placeholder() -> etree._Element:
    """Where signxml puts the signature: an empty ``ds:Signature Id="placeholder"``."""
    element = etree.Element(f"{{{DS_NS}}}Signature", nsmap={"ds": DS_NS})
    element.set("Id", "placeholder")
    return element


def sign(document: etree._Element, key: SigningKey) -> etree._Element:
    """Sign ``document`` (which holds a :func:`signature_placeholder`), enveloped.

    RSA PKCS#1 v1.5 signatures are deterministic, so the same document and key give the same
    bytes: exports are reproducible.
    """
    signer = XMLSigner(
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0,
    )
    signed: etree._Element = signer.sign(document, key=key.private_key, cert=key.cert_pem.decode())
    return signed


def verify(data: bytes, cert_pem: bytes) -> etree._Element:
    """Check the signature of ``data`` against ``cert_pem``; return what was signed.

    Raises ``signxml.exceptions.InvalidSignature`` (or a subclass) when the file was changed
    after signing or was signed with another key.
    """
    result = XMLVerifier().verify(data, x509_cert=cert_pem.decode())
    if isinstance(result, list):
        result = result[0]
    signed: etree._Element = result.signed_xml
    return signed
