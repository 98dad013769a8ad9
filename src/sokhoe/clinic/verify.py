"""Verifying a signature Provenance against the exact versions it names.

:func:`verify` is pure: given the Provenance and the resource versions its targets name, it
rebuilds the canonical form, compares the SHA-256 recorded at signing, and checks the
method's evidence — for a digital signature, the signature against the embedded certificate
and the signing time against the certificate's validity; for a TOTP confirmation, that the
confirmation record is about this very content. :func:`verify_signature` reads those versions
through the door (vread, confined to what the caller may see) and audits the verification.

A development certificate verifies, with a note saying it proves nothing about the signer;
checking a real certificate's chain and revocation (OCSP/CRL of a Vietnamese CA) is not done
here yet.
See: https://hl7.org/fhir/R4/provenance.html and https://hl7.org/fhir/R4/datatypes.html#Signature
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.signed import is_signature
from sokhoe.clinic.canonical import CANONICALIZATION, canonical_form, versioned_reference
from sokhoe.clinic.certificates import common_name, is_development
from sokhoe.clinic.provenance import Recorded, read_signature
from sokhoe.clinic.signing import PKCS12_METHOD, TOTP_METHOD
from sokhoe.errors import Forbidden, InvalidRequest
from sokhoe.fhir.resources import parse_instant
from sokhoe.messages import Message


@dataclass(frozen=True)
class Verification:
    """The answer: valid or not, and every reason it is not."""

    provenance: str | None
    valid: bool
    reasons: tuple[str, ...]
    method: str | None = None
    sha256: str | None = None
    """Recorded at signing."""
    recomputed: str | None = None
    """From the versions stored now."""
    signer: str | None = None
    targets: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            "provenance": self.provenance,
            "valid": self.valid,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "method": self.method,
            "sha256": self.sha256,
            "recomputed": self.recomputed,
            "signer": self.signer,
            "targets": list(self.targets),
        }

    def to_parameters(self) -> dict[str, Any]:
        """As the ``$verify-signature`` answer (a FHIR Parameters)."""
        params: list[dict[str, Any]] = [{"name": "valid", "valueBoolean": self.valid}]
        params += [{"name": "reason", "valueString": r} for r in self.reasons]
        params += [{"name": "note", "valueString": n} for n in self.notes]
        for name, value in (
            ("method", self.method),
            ("sha256", self.sha256),
            ("recomputed", self.recomputed),
            ("signer", self.signer),
        ):
            if value is not None:
                params.append({"name": name, "valueString": value})
        params += [{"name": "target", "valueReference": {"reference": t}} for t in self.targets]
        return {"resourceType": "Parameters", "parameter": params}


def _totp(recorded: Recorded, reasons: list[str]) -> None:
    try:
        record = orjson.loads(recorded.data or b"")
    except orjson.JSONDecodeError:
        reasons.append("The TOTP confirmation record is not readable")
        return
    if not isinstance(record, dict) or record.get("method") != TOTP_METHOD:
        reasons.append("The TOTP confirmation record is not one")
        return
    if record.get("sha256") != recorded.sha256:
        reasons.append("The TOTP confirmation record confirms other content than the one recorded")
    if recorded.time_step is None or record.get("timeStep") != recorded.time_step:
        reasons.append("The TOTP confirmation record and the evidence name different time steps")
    if record.get("account") != recorded.account:
        reasons.append("The TOTP confirmation record names another account")


def _pkcs12(recorded: Recorded, data: bytes, reasons: list[str], notes: list[str]) -> None:
    if recorded.certificate is None:
        reasons.append("The evidence holds no certificate")
        return
    try:
        cert = x509.load_der_x509_certificate(recorded.certificate)
    except ValueError:
        reasons.append("The certificate in the evidence is not readable")
        return
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        reasons.append("The certificate's key is not an RSA key")
        return
    try:
        key.verify(recorded.data or b"", data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        reasons.append(
            f"The signature does not match the signed content and the certificate of "
            f"{common_name(cert)}"
        )
    if recorded.when is not None:
        when = parse_instant(recorded.when)
        if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
            reasons.append(f"The certificate was not valid when it signed ({recorded.when})")
    if is_development(cert):
        notes.append(
            f"Signed with a development certificate ({common_name(cert)}): it proves nothing "
            "about who signed"
        )


def verify(provenance: dict[str, Any], resources: Sequence[dict[str, Any]]) -> Verification:
    """Check ``provenance`` against ``resources``, the versions its targets name (vread)."""
    reasons: list[str] = []
    notes: list[str] = []
    recorded = read_signature(provenance)
    pid = provenance.get("id") if isinstance(provenance.get("id"), str) else None
    if not is_signature(provenance):
        reasons.append("This Provenance records no signature")
    given: dict[str, dict[str, Any]] = {}
    for r in resources:
        try:
            given[versioned_reference(r)] = r
        except ValueError as exc:  # a stored version stripped of its version
            reasons.append(str(exc))
    missing = [t for t in recorded.targets if t not in given]
    reasons += [f"{t} is not available to verify" for t in missing]
    reasons += [f"{r} is not a target of the signature" for r in given if r not in recorded.targets]
    if not recorded.targets:
        reasons.append("The signature names no target")
    if recorded.canonicalization != CANONICALIZATION:
        reasons.append(f"Unknown canonical form {recorded.canonicalization!r}")
    recomputed = None
    try:
        canonical = canonical_form(list(given.values())) if given and not missing else None
    except ValueError as exc:  # two versions of one resource: no signature of ours
        reasons.append(str(exc))
        canonical = None
    if canonical is not None:
        recomputed = canonical.sha256
        if recomputed != recorded.sha256:
            reasons.append(
                f"The signed content changed: sha256 {recorded.sha256} was signed, the stored "
                f"versions give {recomputed}"
            )
        if recorded.data is None:
            reasons.append("The signature holds no data")
        elif recorded.method == TOTP_METHOD:
            _totp(recorded, reasons)
        elif recorded.method == PKCS12_METHOD:
            _pkcs12(recorded, canonical.data, reasons, notes)
        else:
            reasons.append(f"Unknown signature method {recorded.method!r}")
    return Verification(
        pid,
        not reasons,
        tuple(reasons),
        recorded.method,
        recorded.sha256,
        recomputed,
        recorded.signer,
        recorded.targets,
        tuple(notes),
    )


def _split(reference: str) -> tuple[str, str, int] | None:
    parts = reference.split("/")
    if len(parts) == 4 and parts[2] == "_history" and parts[3].isdigit():
        return parts[0], parts[1], int(parts[3])
    return None


def verify_signature(repo: GuardedRepository, provenance_id: str) -> Verification:
    """Verify ``Provenance/provenance_id`` against the versions it names, as the caller may
    see them (a version the caller may not read is refused with the reason)."""
    provenance = repo.read("Provenance", provenance_id).content or {}
    if not is_signature(provenance):
        raise InvalidRequest(Message("Provenance/%(id)s records no signature", id=provenance_id))
    access = repo.access
    found: list[dict[str, Any]] = []
    patients: set[str] = set()
    with repo.snapshot() as tx:
        for target in read_signature(provenance).targets:
            key = _split(target)
            version = tx.vread(*key) if key else None
            if key is None or version is None or version.content is None:
                continue
            if access is not None and not tx.visible_version(*key, access):
                who = [version.patient_id] if version.patient_id else []
                repo.record_refusal("operation", who, f"verify-signature: {target} not visible")
                raise Forbidden(
                    Message(
                        "You may not read %(target)s, which this signature covers", target=target
                    )
                )
            found.append(version.content)
            if version.patient_id:
                patients.add(version.patient_id)
    result = verify(provenance, found)
    repo.record_access(
        "operation", sorted(patients), [f"Provenance/{provenance_id}/$verify-signature"]
    )
    return result
