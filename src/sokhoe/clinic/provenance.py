"""A signature recorded as a FHIR Provenance, and read back.

Circular 13/2025/TT-BYT asks to keep, per signature, the signer, their role, the method, the
exact version signed, the time and the evidence. In FHIR R4 that is a Provenance:

- ``target``: the versioned reference of every signed resource (what was signed, exactly);
- ``recorded`` and ``signature.when``: when;
- ``agent``: who (the Practitioner, or the staff member's name), their ``role``, and the
  facility they signed for (``onBehalfOf``);
- ``activity``: ``sign``, ``amend`` or ``verify`` (a station's decision on what a citizen
  declared, ``clinic/verification.py``) in :data:`SIGNATURE_ACTIVITY`;
- ``signature``: an ASTM E1762 author's signature whose ``data`` is the signature itself (or,
  for a TOTP confirmation, the confirmation record), over the canonical form in
  ``targetFormat`` application/fhir+json;
- the :data:`EVIDENCE` extension: the method, the SHA-256 of the canonical form, how it was
  made canonical, and the method's evidence (the certificate, or the TOTP time step — never
  the code).

See: https://hl7.org/fhir/R4/provenance.html and https://hl7.org/fhir/R4/datatypes.html#Signature
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sokhoe.access.signed import AUTHOR_SIGNATURE, SIGNATURE_ACTIVITY, SIGNATURE_TYPE_SYSTEM
from sokhoe.clinic.canonical import CANONICALIZATION, Canonical
from sokhoe.fhir.resources import format_instant, new_id

if TYPE_CHECKING:
    from datetime import datetime

    from sokhoe.clinic.signing import Evidence

EVIDENCE = "https://fhir.sokhoe.vn/StructureDefinition/signature-evidence"
STAFF_ROLE = "https://fhir.sokhoe.vn/CodeSystem/staff-role"
TARGET_FORMAT = "application/fhir+json"
ACTIVITIES = {
    "sign": "Ký hồ sơ (sign)",
    "amend": "Ký bản sửa đổi (sign an amendment)",
    "verify": "Ký xác nhận thông tin người dân tự khai (verify a declaration)",
}
SIGNATURE_TYPE = {
    "system": SIGNATURE_TYPE_SYSTEM,
    "code": AUTHOR_SIGNATURE,
    "display": "Author's Signature",
}


@dataclass(frozen=True)
class Agent:
    """Who signed, in what role, for which facility (FHIR References)."""

    who: dict[str, Any]
    role: str | None = None
    on_behalf_of: dict[str, Any] | None = None


def signature_provenance(
    activity: str,
    canonical: Canonical,
    evidence: Evidence,
    agent: Agent,
    when: datetime,
    *,
    reason: str | None = None,
    revised: Sequence[str] = (),
) -> dict[str, Any]:
    """The Provenance recording one signature; ``revised`` are the versioned references an
    amendment replaced (``entity`` role ``revision``)."""
    instant = format_instant(when)
    agent_entry: dict[str, Any] = {
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                    "code": "author",
                }
            ]
        },
        "who": agent.who,
    }
    if agent.role:
        agent_entry["role"] = [{"coding": [{"system": STAFF_ROLE, "code": agent.role}]}]
    if agent.on_behalf_of:
        agent_entry["onBehalfOf"] = agent.on_behalf_of
    signature: dict[str, Any] = {
        "type": [SIGNATURE_TYPE],
        "when": instant,
        "who": agent.who,
        "targetFormat": TARGET_FORMAT,
        "sigFormat": evidence.sig_format,
        "data": base64.b64encode(evidence.data).decode(),
    }
    if agent.on_behalf_of:
        signature["onBehalfOf"] = agent.on_behalf_of
    details: list[dict[str, Any]] = [
        {"url": "method", "valueCode": evidence.method},
        {"url": "sha256", "valueString": canonical.sha256},
        {"url": "canonicalization", "valueString": CANONICALIZATION},
    ]
    if evidence.certificate is not None:
        details.append(
            {
                "url": "certificate",
                "valueBase64Binary": base64.b64encode(evidence.certificate).decode(),
            }
        )
    if evidence.time_step is not None:
        details.append({"url": "timeStep", "valueInteger": evidence.time_step})
    if evidence.account is not None:
        details.append({"url": "account", "valueString": evidence.account})
    provenance: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": new_id(),
        "extension": [{"url": EVIDENCE, "extension": details}],
        "target": [{"reference": ref} for ref in canonical.references],
        "recorded": instant,
        "activity": {
            "coding": [
                {"system": SIGNATURE_ACTIVITY, "code": activity, "display": ACTIVITIES[activity]}
            ]
        },
        "agent": [agent_entry],
        "signature": [signature],
    }
    if reason:
        provenance["reason"] = [{"text": reason}]
    if revised:
        provenance["entity"] = [{"role": "revision", "what": {"reference": ref}} for ref in revised]
    return provenance


@dataclass(frozen=True)
class Recorded:
    """What a signature Provenance says, read back for verification."""

    targets: tuple[str, ...]
    method: str | None
    sha256: str | None
    canonicalization: str | None
    certificate: bytes | None
    time_step: int | None
    account: str | None
    when: str | None
    sig_format: str | None
    data: bytes | None
    signer: str | None


def _b64(text: Any) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None


def read_signature(provenance: dict[str, Any]) -> Recorded:
    """The parts of ``provenance`` a verification needs (None where absent or malformed)."""
    details: dict[str, Any] = {}
    for ext in provenance.get("extension", []):
        if isinstance(ext, dict) and ext.get("url") == EVIDENCE:
            for sub in ext.get("extension", []):
                if isinstance(sub, dict) and isinstance(sub.get("url"), str):
                    value = next((v for k, v in sub.items() if k.startswith("value")), None)
                    details[sub["url"]] = value
    signatures = [s for s in provenance.get("signature", []) if isinstance(s, dict)]
    signature = signatures[0] if signatures else {}
    who = signature.get("who") if isinstance(signature.get("who"), dict) else {}
    step = details.get("timeStep")
    return Recorded(
        targets=tuple(
            str(t.get("reference"))
            for t in provenance.get("target", [])
            if isinstance(t, dict) and t.get("reference")
        ),
        method=details.get("method") if isinstance(details.get("method"), str) else None,
        sha256=details.get("sha256") if isinstance(details.get("sha256"), str) else None,
        canonicalization=details.get("canonicalization"),
        certificate=_b64(details.get("certificate")),
        time_step=step if isinstance(step, int) else None,
        account=details.get("account") if isinstance(details.get("account"), str) else None,
        when=signature.get("when") if isinstance(signature.get("when"), str) else None,
        sig_format=signature.get("sigFormat"),
        data=_b64(signature.get("data")),
        signer=(who or {}).get("display") or (who or {}).get("reference"),
    )
