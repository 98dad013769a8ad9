"""Referrals (*giấy chuyển tuyến*): a visit sends the patient to another facility.

A referral is a ``ServiceRequest`` of category *patient referral* (SNOMED CT 3457005) whose
``performer`` is the receiving facility's Organization and whose ``requester`` is the referring
one. Written when the referring visit is closed, in the same transaction, it is also what opens
the patient's record to the receiving facility: the door's care index turns it into a
relationship (``access/care.py``), never wider than the referring facility's own. The receiving
facility sees it in its queue (:func:`incoming`) until one of its visits is based on it.
See: https://hl7.org/fhir/R4/servicerequest.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sokhoe.access.guard import GuardedRepository
from sokhoe.clinic.records import find, text_of
from sokhoe.fhir.references import reference_id
from sokhoe.interop.claims.sources import FacilityRef
from sokhoe.mpi.identifiers import FACILITY

SNOMED: Final = "http://snomed.info/sct"
REFERRAL: Final = {"system": SNOMED, "code": "3457005", "display": "Patient referral"}
"""The category the door's care index reads (``access/care.py`` ``REFERRAL_CODES``)."""


def is_referral(resource: dict[str, Any]) -> bool:
    return any(
        c.get("system") == SNOMED and c.get("code") == REFERRAL["code"]
        for cat in resource.get("category", [])
        for c in cat.get("coding", [])
    )


@dataclass(frozen=True)
class Destination:
    code: str
    name: str


def destinations(repo: GuardedRepository, own: str) -> list[Destination]:
    """Facilities a patient may be referred to (every other facility of the registry)."""
    found = []
    for org in find(repo, "Organization", [("active", "true")], 1000):
        codes = [i["value"] for i in org.get("identifier", []) if i.get("system") == FACILITY]
        if codes and codes[0] != own:
            found.append(Destination(str(codes[0]), str(org.get("name", codes[0]))))
    return sorted(found, key=lambda d: d.name)


def referral(
    *,
    patient_id: str,
    patient_name: str,
    encounter_id: str,
    sender: FacilityRef,
    receiver: FacilityRef,
    reason: str,
    diagnosis: str | None,
    when: str,
) -> dict[str, Any]:
    """The ServiceRequest of a referral from ``sender`` to ``receiver``."""
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "category": [{"coding": [REFERRAL], "text": "Chuyển tuyến"}],
        "code": {"coding": [REFERRAL], "text": "Chuyển tuyến"},
        "subject": {"reference": f"Patient/{patient_id}", "display": patient_name},
        "encounter": {"reference": f"Encounter/{encounter_id}"},
        "authoredOn": when,
        "requester": {"reference": f"Organization/{sender.id}", "display": sender.name},
        "performer": [{"reference": f"Organization/{receiver.id}", "display": receiver.name}],
        "reasonCode": [{"text": reason}],
    }
    if diagnosis is not None:
        resource["reasonReference"] = [{"reference": diagnosis}]
    return resource


@dataclass(frozen=True)
class Incoming:
    """A referral to the caller's facility that no visit there has taken up yet."""

    id: str
    patient_id: str
    name: str
    sender: str
    reason: str
    authored: str | None


def incoming(repo: GuardedRepository, facility: FacilityRef) -> list[Incoming]:
    """Active referrals to ``facility``, newest first, not yet taken up by one of its visits."""
    found = find(
        repo,
        "ServiceRequest",
        [
            ("performer", f"Organization/{facility.id}"),
            ("category", f"{SNOMED}|{REFERRAL['code']}"),
            ("status", "active"),
            ("_sort", "-authored"),
        ],
        100,
    )
    if not found:
        return []
    taken = {
        ref
        for enc in find(
            repo,
            "Encounter",
            [
                ("based-on", ",".join(f"ServiceRequest/{r['id']}" for r in found)),
                ("service-provider", f"Organization/{facility.id}"),
            ],
            len(found) * 4,
        )
        for based in enc.get("basedOn", [])
        if (ref := reference_id(based, "ServiceRequest"))
    }
    return [
        Incoming(
            id=str(r["id"]),
            patient_id=reference_id(r.get("subject"), "Patient") or "",
            name=str((r.get("subject") or {}).get("display", "")),
            sender=str((r.get("requester") or {}).get("display", "")),
            reason=text_of((r.get("reasonCode") or [{}])[0]),
            authored=r.get("authoredOn"),
        )
        for r in found
        if str(r["id"]) not in taken
    ]


__all__ = [
    "REFERRAL",
    "Destination",
    "Incoming",
    "destinations",
    "incoming",
    "is_referral",
    "referral",
]
