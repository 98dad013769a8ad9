"""A citizen lets a facility see their record by showing a short-lived share code.

The citizen asks for a code in their own account (``$share``) and shows it, or its QR, at the
desk; the facility enters it (``$redeem-share``) within :data:`CODE_LIFETIME`. The permission is
a FHIR Consent: *proposed* while the code waits, *active* once redeemed, naming the facility
(by its insurance code) and the period it may read the record. Only a hash of the code is
stored, so the Consent itself cannot be replayed as a code.

The citizen withdraws any of their consents (a share code waiting or redeemed, a restriction)
with :func:`revoke_consent`: the Consent becomes *inactive*, and in the same transaction the
care index drops the rows it made (``access/care.py``), so a facility that redeemed the code
loses access with the next request, and an unused code can no longer be redeemed.
See: https://hl7.org/fhir/R4/consent.html
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sokhoe.access.guard import GuardedRepository
from sokhoe.errors import Conflict, Forbidden, InvalidRequest, NotFound
from sokhoe.fhir.resources import format_instant, new_id, parse_instant
from sokhoe.mpi.identifiers import FACILITY, validate_facility_code
from sokhoe.registry.sensitivity import ACT_CODE, SENSITIVE
from sokhoe.store.ports import StoreSession

CODE_LIFETIME = timedelta(minutes=15)
DEFAULT_DAYS = 30
MAX_DAYS = 365
SHARE_HASH = "https://fhir.sokhoe.vn/sid/share-code-sha256"
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
"""No 0/O or 1/I: the code is read aloud and typed at a desk."""


@dataclass(frozen=True)
class Share:
    code: str
    consent_id: str
    expires: datetime


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().replace("-", "").encode()).hexdigest()


def _privacy_consent(patient_id: str) -> dict[str, Any]:
    """What every consent of this module says: a privacy consent (LOINC 59284-0)."""
    return {
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
    }


OWNS = frozenset({"privacy-consent"})
"""Privacy Consents are written by these operations only (``access/writes.py``)."""


def _citizen(repo: GuardedRepository, what: str) -> None:
    if repo.principal.kind != "citizen":
        raise Forbidden(f"Only the patient (or their guardian) {what}")


def create_share(repo: GuardedRepository, patient_id: str, days: int = DEFAULT_DAYS) -> Share:
    """A new code for ``patient_id``: the caller's own record or a child's (a citizen)."""
    _citizen(repo, "makes a share code")
    if not 1 <= days <= MAX_DAYS:
        raise InvalidRequest(f"days must be between 1 and {MAX_DAYS}", "days")
    code = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    now = repo.clock()
    consent: dict[str, Any] = {
        "resourceType": "Consent",
        "id": new_id(),
        "identifier": [{"system": SHARE_HASH, "value": _hash(code)}],
        "status": "proposed",
        **_privacy_consent(patient_id),
        "dateTime": format_instant(now),
        "policyRule": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}
            ]
        },
        "provision": {
            "type": "permit",
            "period": {
                "start": format_instant(now),
                "end": format_instant(now + timedelta(days=days)),
            },
        },
    }
    with repo.operation("share", patients=[patient_id], owns=OWNS) as tx:
        repo.update(consent, "Consent", consent["id"], tx=tx)
    return Share(f"{code[:4]}-{code[4:]}", consent["id"], now + CODE_LIFETIME)


def redeem_share(repo: GuardedRepository, code: str) -> dict[str, Any]:
    """Activate the Consent behind ``code`` for the caller's facility; returns it. The
    facility may then read the record until the consent ends (``access/care.py``)."""
    facility = repo.principal.facility
    if facility is None:
        raise Forbidden("A share code is redeemed for a facility; sign in as its staff")
    try:
        facility = validate_facility_code(facility)
    except ValueError as exc:
        raise InvalidRequest(str(exc), "facility") from exc
    if len(code.strip().replace("-", "")) != 8:
        raise InvalidRequest("A share code has 8 characters, e.g. ABCD-EFGH", "code")
    with repo.operation("redeem-share", interactions=["read"], owns=OWNS) as tx:
        query = repo.parse_query(
            "Consent", [("identifier", f"{SHARE_HASH}|{_hash(code)}")], strict=True
        )
        found = tx.search(query).matches
        if not found or found[0].content is None:
            raise NotFound("No such share code; ask the patient for a new one")
        consent = dict(found[0].content)
        if consent.get("status") in ("inactive", "rejected"):
            raise Conflict("The patient withdrew this share code; ask them for a new one")
        if consent.get("status") != "proposed":
            raise Conflict("This share code was already used; ask the patient for a new one")
        issued = parse_instant(consent["dateTime"])
        now = repo.clock()
        if now > issued + CODE_LIFETIME:
            raise Conflict("This share code has expired; ask the patient for a new one")
        period = consent["provision"]["period"]
        length = parse_instant(period["end"]) - parse_instant(period["start"])
        consent["status"] = "active"
        consent["provision"] = {
            "type": "permit",
            "period": {"start": format_instant(now), "end": format_instant(now + length)},
            "actor": [
                {
                    "role": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "IRCP",
                            }
                        ]
                    },
                    "reference": {"identifier": {"system": FACILITY, "value": facility}},
                }
            ],
        }
        consent.pop("meta", None)
        return repo.update(consent, "Consent", consent["id"], tx=tx).resource.content or {}


def restrict_category(
    repo: GuardedRepository,
    patient_id: str,
    category: str,
    treating: list[str],
    replaces: Sequence[str] = (),
) -> dict[str, Any]:
    """Keep resources labelled ``category`` for the ``treating`` facilities only (a Consent:
    deny for the label, with a nested permit for those facilities).

    ``replaces``: the patient's earlier Consents this one takes the place of (a restriction
    whose facilities change), withdrawn in the same transaction, so the record is never open
    between the two."""
    _citizen(repo, "restricts their record")
    if category not in SENSITIVE:
        raise InvalidRequest(
            f"category must be one of {', '.join(sorted(SENSITIVE))}, got '{category}'", "category"
        )
    try:
        facilities = [validate_facility_code(f) for f in treating]
    except ValueError as exc:
        raise InvalidRequest(str(exc), "facility") from exc
    consent: dict[str, Any] = {
        "resourceType": "Consent",
        "id": new_id(),
        "status": "active",
        **_privacy_consent(patient_id),
        "dateTime": format_instant(repo.clock()),
        "policyRule": {"coding": [{"system": ACT_CODE, "code": "OPTOUT"}]},
        "provision": {
            "type": "deny",
            "securityLabel": [
                {"system": ACT_CODE, "code": category, "display": SENSITIVE[category]}
            ],
            **(
                {
                    "provision": [
                        {
                            "type": "permit",
                            "actor": [
                                {
                                    "role": {
                                        "coding": [
                                            {
                                                "system": "http://terminology.hl7.org/"
                                                "CodeSystem/v3-ParticipationType",
                                                "code": "PRCP",
                                            }
                                        ]
                                    },
                                    "reference": {"identifier": {"system": FACILITY, "value": f}},
                                }
                                for f in facilities
                            ],
                        }
                    ]
                }
                if facilities
                else {}
            ),
        },
    }
    with repo.operation("restrict", patients=[patient_id], owns=OWNS) as tx:
        for old in replaces:
            _withdraw(repo, tx, patient_id, old)
        return repo.update(consent, "Consent", consent["id"], tx=tx).resource.content or {}


def revoke_consent(
    repo: GuardedRepository, patient_id: str, *consent_ids: str
) -> list[dict[str, Any]]:
    """Withdraw ``patient_id``'s privacy Consents (see the module docstring), all in one
    transaction; returns them as they now stand. Only the patient (or their guardian)
    withdraws their consents."""
    _citizen(repo, "withdraws their consents")
    if not consent_ids:
        raise InvalidRequest("Name the consent to withdraw", "consent")
    with repo.operation("revoke-consent", patients=[patient_id], owns=OWNS) as tx:
        return [_withdraw(repo, tx, patient_id, cid) for cid in dict.fromkeys(consent_ids)]


WITHDRAWABLE = frozenset({"proposed", "active"})


def _withdraw(
    repo: GuardedRepository, tx: StoreSession, patient_id: str, consent_id: str
) -> dict[str, Any]:
    found = tx.read("Consent", consent_id)
    content = found.content if found is not None and not found.deleted else None
    mine = (content or {}).get("patient", {}).get("reference") == f"Patient/{patient_id}"
    if content is None or not mine or OWNS.isdisjoint({_kind(content)}):
        raise NotFound(f"Patient/{patient_id} has no consent {consent_id}")
    if content.get("status") not in WITHDRAWABLE:
        raise Conflict(f"Consent/{consent_id} has already ended")
    consent = dict(content)
    consent["status"] = "inactive"
    consent.pop("meta", None)
    return repo.update(consent, "Consent", consent_id, tx=tx).resource.content or {}


def _kind(content: dict[str, Any]) -> str:
    scope = (content.get("scope") or {}).get("coding", [])
    privacy = any(c.get("code") == "patient-privacy" for c in scope)
    return "privacy-consent" if privacy else ""
