"""How a self-declared item is told apart from what a facility recorded, and how far its
verification went: the contract between the citizen's declaration (``portal/declaration``),
the station that verifies it (``clinic`` workspace) and every page that shows it.

Every resource a citizen declares carries the tag :data:`SELF_DECLARED` for good, and one tag
of :data:`VERIFICATION` saying where its check stands: ``unconfirmed`` when declared,
``confirmed`` or ``refuted`` once the commune station decided (signed, with a Provenance).
Where the resource type has its own field for it, that field agrees:

============================  =================  ===============  ====================
resource                      unconfirmed        confirmed        refuted
============================  =================  ===============  ====================
AllergyIntolerance            verificationStatus unconfirmed / confirmed / refuted
Condition                     verificationStatus unconfirmed / confirmed / refuted
Observation (social history,  status preliminary  final            entered-in-error
blood group, birth history)
FamilyMemberHistory           status partial      completed        entered-in-error
Immunization                  primarySource false, reportOrigin ``recall``; the tag only
Procedure (past operations)   status completed; the tag only
Patient (made by a citizen,   the tag only; its ID number is a declared one
``portal/patient.py``)        (``.../sid/cccd-declared``) until the station checks the card
============================  =================  ===============  ====================

The patient is the recorder (``recorder``/``asserter``/``performer`` as the type has it; the
guardian's ``RelatedPerson`` when a parent declares for a child), so no page ever presents a
declaration as a facility's finding. An item the citizen took back before the station decided
(sent again without it) keeps the tag ``unconfirmed`` and is ``entered-in-error`` in its own
field (``status``, or ``verificationStatus`` without ``clinicalStatus``): lists of waiting
items leave those out. Each item names the declaration it came from by its identifier
(``.../sid/declaration-item``, ``{QuestionnaireResponse id}#{key}``).
See: https://hl7.org/fhir/R4/resource.html#tag
"""

from __future__ import annotations

from typing import Any, Final, Literal

FLAGS: Final = "https://fhir.sokhoe.vn/CodeSystem/record-flag"
SELF_DECLARED: Final = {"system": FLAGS, "code": "self-declared", "display": "Tự khai báo"}
VERIFICATION: Final = "https://fhir.sokhoe.vn/CodeSystem/verification"
Verification = Literal["unconfirmed", "confirmed", "refuted"]
DISPLAYS: Final[dict[str, str]] = {
    "unconfirmed": "Chờ trạm y tế xác nhận",
    "confirmed": "Trạm y tế đã xác nhận",
    "refuted": "Trạm y tế không xác nhận",
}


def is_self_declared(resource: dict[str, Any]) -> bool:
    tags = (resource.get("meta") or {}).get("tag") or []
    return any(t.get("system") == FLAGS and t.get("code") == "self-declared" for t in tags)


def verification(resource: dict[str, Any]) -> Verification | None:
    """Where the check of a self-declared item stands; None for a facility's record."""
    if not is_self_declared(resource):
        return None
    for tag in (resource.get("meta") or {}).get("tag") or []:
        if tag.get("system") == VERIFICATION and tag.get("code") in DISPLAYS:
            code: Verification = tag["code"]
            return code
    return "unconfirmed"


def mark(resource: dict[str, Any], state: Verification) -> dict[str, Any]:
    """``resource`` tagged self-declared with its verification at ``state`` (other tags
    kept); the type's own status field is the caller's to set (see the table above)."""
    meta = dict(resource.get("meta") or {})
    tags = [
        t
        for t in meta.get("tag") or []
        if t.get("system") != VERIFICATION
        and not (t.get("system") == FLAGS and t.get("code") == "self-declared")
    ]
    tags += [
        dict(SELF_DECLARED),
        {"system": VERIFICATION, "code": state, "display": DISPLAYS[state]},
    ]
    meta["tag"] = tags
    return {**resource, "meta": meta}


__all__ = [
    "DISPLAYS",
    "FLAGS",
    "SELF_DECLARED",
    "VERIFICATION",
    "Verification",
    "is_self_declared",
    "mark",
    "verification",
]
