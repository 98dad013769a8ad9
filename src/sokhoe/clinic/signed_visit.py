"""A visit as it is signed: the Encounter and the resources written for it.

What a clinician signs at the end of a visit is its record (*hồ sơ bệnh án* of the visit): the
Encounter, what was observed, diagnosed, ordered, done and prescribed during it (every resource
whose ``encounter`` or ``context`` search parameter names the Encounter), and the Appointment
it came from. Only what the facility that owns the visit wrote is part of it: another
facility's resource naming the visit is theirs to sign, and freezing it would take it from
them.
See: https://hl7.org/fhir/R4/encounter.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.rights import is_platform
from sokhoe.errors import Forbidden, Gone, InvalidRequest, NotFound
from sokhoe.fhir.searchparams import registry
from sokhoe.messages import Message
from sokhoe.mpi.identifiers import FACILITY
from sokhoe.search.fhirpath import parse_reference
from sokhoe.store.ports import StoredResource, StoreSession

VISIT_PARTS: tuple[tuple[str, str], ...] = (
    ("Observation", "encounter"),
    ("Condition", "encounter"),
    ("ServiceRequest", "encounter"),
    ("Procedure", "encounter"),
    ("MedicationRequest", "encounter"),
    ("MedicationAdministration", "context"),
    ("DiagnosticReport", "encounter"),
    ("CarePlan", "encounter"),
    ("ClinicalImpression", "encounter"),
    ("Composition", "encounter"),
    ("DocumentReference", "encounter"),
    ("NutritionOrder", "encounter"),
    ("RiskAssessment", "encounter"),
    ("QuestionnaireResponse", "encounter"),
    ("DeviceRequest", "encounter"),
    ("Appointment", "supporting-info"),
)
"""(type, search parameter naming the Encounter) of the resources a visit's record holds."""
for _type, _param in VISIT_PARTS:  # a typo here would silently leave a type unsigned
    if registry().get(_type, _param) is None:  # pragma: no cover - checked at import
        raise RuntimeError(f"{_type} has no search parameter {_param}")

MAX_PARTS = 5000
"""More resources than this in one visit is not a visit: refuse rather than sign a part."""


@dataclass(frozen=True)
class SignedVisit:
    """The current versions of one visit's record."""

    encounter: StoredResource
    patient_id: str
    facility: str | None
    """The insurance code (*mã CSKCB*) of the facility the visit belongs to, if known."""
    resources: tuple[StoredResource, ...]
    """The Encounter first, then the rest, each once."""

    @property
    def contents(self) -> list[dict[str, Any]]:
        return [r.content for r in self.resources if r.content is not None]


def facility_code(tx: StoreSession, reference: dict[str, Any] | None) -> str | None:
    """The facility code of an Organization reference (by identifier or by reading it)."""
    if not isinstance(reference, dict):
        return None
    ident = reference.get("identifier")
    if isinstance(ident, dict) and ident.get("system") == FACILITY and ident.get("value"):
        return str(ident["value"])
    rtype, rid = parse_reference(str(reference.get("reference") or ""))
    if rtype != "Organization" or rid is None:
        return None
    org = tx.read("Organization", rid)
    for found in (org.content or {}).get("identifier", []) if org else []:
        if isinstance(found, dict) and found.get("system") == FACILITY and found.get("value"):
            return str(found["value"])
    return None


def load_visit(repo: GuardedRepository, tx: StoreSession, encounter_id: str) -> SignedVisit:
    """The visit of ``Encounter/encounter_id`` as stored now, read in ``tx``."""
    encounter = tx.read("Encounter", encounter_id)
    if encounter is None:
        raise NotFound(Message("%(ref)s is not known", ref=f"Encounter/{encounter_id}"))
    if encounter.deleted or encounter.content is None:
        raise Gone(Message("%(ref)s was deleted", ref=f"Encounter/{encounter_id}"))
    if encounter.patient_id is None:
        raise InvalidRequest(
            Message("Encounter/%(id)s names no patient", id=encounter_id), "Encounter.subject"
        )
    facility = encounter.owner or facility_code(tx, encounter.content.get("serviceProvider"))
    hands = {encounter.owner, facility}
    found: dict[tuple[str, str], StoredResource] = {}
    for rtype, param in VISIT_PARTS:
        query = repo.parse_query(rtype, [(param, f"Encounter/{encounter_id}")])
        ids = tx.search_ids(query, MAX_PARTS + 1)
        if len(ids) + len(found) > MAX_PARTS:
            raise InvalidRequest(
                Message("Encounter/%(id)s has too many resources to sign", id=encounter_id)
            )
        for r in tx.read_many([(rtype, i) for i in ids]):
            found[(r.resource_type, r.id)] = r
    for ref in encounter.content.get("appointment", []):
        kind, rid = parse_reference(str((ref or {}).get("reference") or ""))
        appointment = tx.read("Appointment", rid) if kind == "Appointment" and rid else None
        if appointment is not None:
            found[("Appointment", appointment.id)] = appointment
    parts = [
        r
        for _, r in sorted(found.items())
        if not r.deleted
        and r.content is not None
        and r.patient_id == encounter.patient_id
        and r.owner in hands
    ]
    return SignedVisit(encounter, encounter.patient_id, facility, (encounter, *parts))


def require_signer(repo: GuardedRepository, visit: SignedVisit) -> None:
    """Only the facility a visit belongs to signs it (the platform may too): a doctor of
    another facility, even one that may read the patient's record, never signs it."""
    principal = repo.principal
    if is_platform(principal):
        return
    if principal.facility is None or principal.facility != visit.facility:
        owner = f"facility {visit.facility}" if visit.facility else "the platform"
        raise Forbidden(
            Message(
                "Encounter/%(id)s belongs to %(owner)s; only its own clinicians sign it",
                id=visit.encounter.id,
                owner=str(owner),
            )
        )
