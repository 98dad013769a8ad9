"""Gather what one encounter's claim is made of, reading through the access door.

Every read and search goes through the :class:`~sokhoe.access.guard.GuardedRepository` the
export was given, so it is checked against the policy and audited like any other access.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sokhoe.access.care import REFERRAL_CODES
from sokhoe.errors import NotFound
from sokhoe.fhir.references import reference_id
from sokhoe.fhir.repository import FhirRepository
from sokhoe.mpi.identifiers import FACILITY
from sokhoe.search.index import DEFAULT_TZ

PAGE = 500
VIETNAM_TZ = DEFAULT_TZ
"""Asia/Ho_Chi_Minh (+07:00, no daylight saving): the claim's dates are local dates."""


@dataclass(frozen=True, slots=True)
class FacilityRef:
    """The facility an export is for: its Organization and insurance code (*mã CSKCB*)."""

    id: str
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Referral:
    """A referral (*giấy chuyển tuyến*, a ServiceRequest of category patient referral) between
    two facilities, as a claim names it: its id and the facility at the other end."""

    id: str
    facility: str
    """The insurance code of the other facility: the sender of a referral the visit is based
    on (``MA_NOI_DI``), the receiver of one it made (``MA_NOI_DEN``); "" when unknown."""


@dataclass
class EncounterRecord:
    """One visit with every resource its claim tables are built from."""

    facility: FacilityRef
    encounter: dict[str, Any]
    patient: dict[str, Any]
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Condition resources by id (those Encounter.diagnosis points to)."""
    medications: list[dict[str, Any]] = field(default_factory=list)
    observations: list[dict[str, Any]] = field(default_factory=list)
    imaging: list[dict[str, Any]] = field(default_factory=list)
    procedures: list[dict[str, Any]] = field(default_factory=list)
    practitioners: dict[str, dict[str, Any]] = field(default_factory=dict)
    facility_codes: dict[str, str] = field(default_factory=dict)
    """Organization id → facility code, for the card's registered facility (``MA_DKBD``)."""
    referred_by: Referral | None = None
    """The referral to this facility the visit is based on (``Encounter.basedOn``): the
    patient came by referral (*chuyển tuyến*)."""
    referred_to: Referral | None = None
    """The referral this visit made to another facility."""

    @property
    def id(self) -> str:
        return str(self.encounter["id"])


def search_all(
    repo: FhirRepository, resource_type: str, params: Sequence[tuple[str, str]]
) -> Iterator[dict[str, Any]]:
    """Every match of a search, page by page (stable order by id)."""
    offset = 0
    while True:
        query = repo.parse_query(
            resource_type,
            [*params, ("_count", str(PAGE)), ("_offset", str(offset)), ("_sort", "_id")],
            strict=True,
        )
        page = repo.search(query)
        for match in page.matches:
            if match.content is not None:
                yield match.content
        if len(page.matches) < PAGE:
            return
        offset += PAGE


def find_facility(repo: FhirRepository, code: str) -> FacilityRef:
    """The Organization whose identifier is the insurance facility code ``code``."""
    found = list(search_all(repo, "Organization", [("identifier", f"{FACILITY}|{code}")]))
    if not found:
        raise NotFound(f"No Organization has the facility code {code} ({FACILITY})")
    org = found[0]
    return FacilityRef(str(org["id"]), code, str(org.get("name", code)))


def local_datetime(value: str) -> datetime:
    """A FHIR dateTime as an aware datetime in Vietnam time (dates alone mean local midnight)."""
    if len(value) == 10:
        return datetime.fromisoformat(value).replace(tzinfo=VIETNAM_TZ)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=VIETNAM_TZ)
    return moment.astimezone(VIETNAM_TZ)


def encounters_on(repo: FhirRepository, facility: FacilityRef, day: date) -> list[dict[str, Any]]:
    """Encounters at ``facility`` whose period starts on the local date ``day``, by start."""
    start = datetime.combine(day, datetime.min.time(), VIETNAM_TZ)
    end = start + timedelta(days=1)
    params = [
        ("service-provider", f"Organization/{facility.id}"),
        ("date", f"le{end.isoformat()}"),
        ("date", f"ge{start.isoformat()}"),
    ]
    found = []
    for enc in search_all(repo, "Encounter", params):
        begun = (enc.get("period") or {}).get("start")
        if isinstance(begun, str) and local_datetime(begun).date() == day:
            found.append(enc)
    return sorted(found, key=lambda e: (e["period"]["start"], e["id"]))


def _read(repo: FhirRepository, resource_type: str, rid: str) -> dict[str, Any] | None:
    try:
        return repo.read(resource_type, rid).content
    except NotFound:
        return None


def _is_referral(request: dict[str, Any]) -> bool:
    """A referral to another facility, as the door reads one (``access/care.py``), and not
    withdrawn or written in error."""
    return request.get("status") not in ("revoked", "entered-in-error") and any(
        c.get("code") in REFERRAL_CODES
        for category in request.get("category", [])
        for c in category.get("coding") or []
    )


def _facility_code(repo: FhirRepository, reference: Any) -> str:
    oid = reference_id(reference, "Organization")
    org = (_read(repo, "Organization", oid) if oid else None) or {}
    codes = [
        str(i.get("value", "")) for i in org.get("identifier", []) if i.get("system") == FACILITY
    ]
    return codes[0] if codes else ""


def _referred_by(
    repo: FhirRepository, facility: FacilityRef, encounter: dict[str, Any]
) -> Referral | None:
    """The referral to ``facility`` the visit is based on, if any: one read per
    ``basedOn`` (a visit is based on one request or a few)."""
    here = f"Organization/{facility.id}"
    for based in encounter.get("basedOn", []):
        rid = reference_id(based, "ServiceRequest")
        request = _read(repo, "ServiceRequest", rid) if rid else None
        if request is None or not _is_referral(request):
            continue
        if any(p.get("reference") == here for p in request.get("performer", [])):
            return Referral(str(request["id"]), _facility_code(repo, request.get("requester")))
    return None


def _referred_to(repo: FhirRepository, encounter: dict[str, Any]) -> Referral | None:
    """The referral the visit made, written at its closing (``clinic/referrals.py``)."""
    by_visit = [("encounter", f"Encounter/{encounter['id']}")]
    for request in search_all(repo, "ServiceRequest", by_visit):
        if _is_referral(request):
            performer = (request.get("performer") or [{}])[0]
            return Referral(str(request["id"]), _facility_code(repo, performer))
    return None


def gather(
    repo: FhirRepository, facility: FacilityRef, encounter: dict[str, Any]
) -> EncounterRecord:
    """Read the patient, diagnoses, orders, results and people of one encounter."""
    patient_id = reference_id(encounter.get("subject"), "Patient")
    patient = _read(repo, "Patient", patient_id) if patient_id else None
    record = EncounterRecord(facility, encounter, patient or {})
    for dx in encounter.get("diagnosis", []):
        cid = reference_id(dx.get("condition"), "Condition")
        if cid and cid not in record.conditions:
            condition = _read(repo, "Condition", cid)
            if condition is not None:
                record.conditions[cid] = condition
    by_encounter = [("encounter", f"Encounter/{encounter['id']}")]
    record.medications = list(search_all(repo, "MedicationRequest", by_encounter))
    record.observations = list(search_all(repo, "Observation", by_encounter))
    record.imaging = list(search_all(repo, "ImagingStudy", by_encounter))
    record.procedures = list(search_all(repo, "Procedure", by_encounter))
    people = [p.get("individual") for p in encounter.get("participant", [])]
    people += [m.get("requester") for m in record.medications]
    for ref in people:
        pid = reference_id(ref, "Practitioner")
        if pid and pid not in record.practitioners:
            practitioner = _read(repo, "Practitioner", pid)
            if practitioner is not None:
                record.practitioners[pid] = practitioner
    for ident in record.patient.get("identifier", []):
        oid = reference_id(ident.get("assigner"), "Organization")
        if oid and oid not in record.facility_codes:
            org = _read(repo, "Organization", oid) or {}
            for org_ident in org.get("identifier", []):
                if org_ident.get("system") == FACILITY:
                    record.facility_codes[oid] = str(org_ident.get("value", ""))
    record.referred_by = _referred_by(repo, facility, encounter)
    record.referred_to = _referred_to(repo, encounter)
    return record
