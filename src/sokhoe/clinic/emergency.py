"""The unidentified emergency patient: a temporary record now, joined to the person later.

Someone brought in unconscious, without papers, cannot wait for a name. The desk registers a
*temporary* record (*hồ sơ tạm*) at once: a Patient whose name and facility record number are
marked ``temp``, tagged :data:`UNIDENTIFIED`, with what was seen (sex, an estimated age, what
helps recognise them), and the emergency visit starts on it — everything the staff write goes
into that record.

When the person is identified (their chip-ID card, a relative, the fingerprint of a returning
patient), a doctor finds the real record the usual way (scan the card, type the ID or a name)
and joins the temporary record to it: the patient index's merge (``mpi/links.py``), so nothing
is rewritten, the temporary record becomes inactive with a ``replaced-by`` link, searches of
the person follow the link, and the merge can be undone. The merge needs the same right to the
real record as any other access — presence proven, or break-the-glass with a reason — because
knowing someone's ID number must never be a way into their history (``access/care.py``).
See: https://hl7.org/fhir/R4/patient.html#links and
https://hl7.org/fhir/R4/datatypes.html#HumanName (``use`` = ``temp``)
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from sokhoe.access.guard import GuardedRepository
from sokhoe.clinic.records import find
from sokhoe.clinic.visits import rooms, start_visit
from sokhoe.errors import Forbidden, InvalidRequest
from sokhoe.fhir.references import reference_id
from sokhoe.interop.claims.sources import find_facility
from sokhoe.messages import Message
from sokhoe.mpi.identifiers import mrn_system
from sokhoe.mpi.links import Agent, merge

Sex = Literal["male", "female", "unknown"]
FLAGS: Final = "https://fhir.sokhoe.vn/CodeSystem/record-flag"
UNIDENTIFIED: Final = {
    "system": FLAGS,
    "code": "unidentified",
    "display": "Unidentified emergency patient (temporary record)",
}
"""The tag of a temporary record: what the desk's list of people to identify searches for."""
FEATURES: Final = "https://fhir.sokhoe.vn/StructureDefinition/identifying-features"
"""What the staff saw that may help identify the person (clothing, where found, marks)."""
TEMPORARY_NAME: Final = "Chưa rõ danh tính"
"""The name a temporary record carries in the record itself (data, so always Vietnamese)."""
IDENTIFY_ROLES: Final = frozenset({"doctor", "facility-admin"})
"""Who may join a temporary record to the person: a merge of records, a clinical judgement."""
_MAX_AGE: Final = 120
_MAX_FEATURES: Final = 500


@dataclass(frozen=True)
class Arrival:
    """What the staff can tell of someone they cannot identify."""

    sex: Sex = "unknown"
    age: int | None = None
    """Estimated age in years, if any."""
    features: str = ""


@dataclass(frozen=True)
class Temporary:
    """A temporary record awaiting identification, as the desk lists it."""

    patient_id: str
    number: str
    sex: str
    age: int | None
    features: str
    registered: str


def _number(now: datetime) -> str:
    """``CC-0612-1405-7k2q``: readable at the bedside (day, time), unique by its random tail."""
    alphabet = "0123456789abcdefghijkmnpqrstuvwxyz"
    tail = "".join(secrets.choice(alphabet) for _ in range(4))
    return f"CC-{now:%d%m-%H%M}-{tail}"


def _check(arrival: Arrival) -> None:
    if arrival.sex not in ("male", "female", "unknown"):
        raise InvalidRequest(Message("sex must be male, female or unknown"), "sex")
    if arrival.age is not None and not 0 <= arrival.age <= _MAX_AGE:
        raise InvalidRequest(
            Message("The estimated age must be between 0 and %(most)s", most=str(_MAX_AGE)), "age"
        )
    if len(arrival.features) > _MAX_FEATURES:
        raise InvalidRequest(
            Message("Describe the person in at most %(most)s characters", most=str(_MAX_FEATURES)),
            "features",
        )


def temporary_patient(facility_code: str, arrival: Arrival, now: datetime) -> dict[str, Any]:
    """The temporary Patient: a ``temp`` name and record number, the tag, an estimated birth
    year (``birthDate`` at year precision, as R4 allows) when an age was estimated."""
    number = _number(now)
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "meta": {"tag": [UNIDENTIFIED]},
        "identifier": [{"use": "temp", "system": mrn_system(facility_code), "value": number}],
        "active": True,
        "name": [{"use": "temp", "text": f"{TEMPORARY_NAME} {number}"}],
        "gender": arrival.sex,
    }
    if arrival.age is not None:
        patient["birthDate"] = str(now.year - arrival.age)
    if arrival.features.strip():
        patient["extension"] = [{"url": FEATURES, "valueString": arrival.features.strip()}]
    return patient


def register_unidentified(
    repo: GuardedRepository,
    *,
    facility_code: str,
    arrival: Arrival,
    room_id: str | None,
    now: datetime,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Register the temporary record and start its emergency visit; (Patient, Encounter).

    The room is checked before anything is written, so a bad form leaves no orphan record.
    The visit is fee-paying until someone produces an insurance card (the desk can change it).
    """
    _check(arrival)
    facility = find_facility(repo, facility_code)
    if room_id is not None and room_id not in {r.id for r in rooms(repo, facility)}:
        raise InvalidRequest(Message("Choose one of the facility's rooms"), "room")
    content = temporary_patient(facility_code, arrival, now)
    patient = repo.create(content, "Patient").resource.content or {}
    encounter = start_visit(
        repo,
        facility_code=facility_code,
        patient_id=str(patient["id"]),
        patient_name=str(content["name"][0]["text"]),
        room_id=room_id,
        payer="self-pay",
        now=now,
        emergency=True,
    )
    return patient, encounter


def is_temporary(patient: dict[str, Any]) -> bool:
    return any(
        t.get("system") == FLAGS and t.get("code") == UNIDENTIFIED["code"]
        for t in (patient.get("meta") or {}).get("tag", [])
    )


def merged_into(patient: dict[str, Any]) -> str | None:
    """The record a merged one now lives in (its ``replaced-by`` link), if any."""
    for link in patient.get("link", []):
        if link.get("type") == "replaced-by":
            return reference_id(link.get("other"), "Patient")
    return None


def temporary_number(patient: dict[str, Any]) -> str:
    for ident in patient.get("identifier", []):
        if ident.get("use") == "temp":
            return str(ident.get("value", ""))
    return ""


def waiting(repo: GuardedRepository, facility_code: str, now: datetime) -> list[Temporary]:
    """The facility's temporary records still to identify (merged ones are inactive)."""
    found = find(
        repo,
        "Patient",
        [
            ("_tag", f"{FLAGS}|{UNIDENTIFIED['code']}"),
            ("active", "true"),
            ("identifier", f"{mrn_system(facility_code)}|"),
            ("_sort", "-_lastUpdated"),
        ],
        50,
    )
    out = []
    for p in found:
        year = str(p.get("birthDate", ""))[:4]
        features = next(
            (e.get("valueString", "") for e in p.get("extension", []) if e.get("url") == FEATURES),
            "",
        )
        out.append(
            Temporary(
                patient_id=str(p["id"]),
                number=temporary_number(p),
                sex=str(p.get("gender", "unknown")),
                age=now.year - int(year) if year.isdigit() else None,
                features=features,
                registered=str((p.get("meta") or {}).get("lastUpdated", "")),
            )
        )
    return out


def identify(
    repo: GuardedRepository,
    temporary_id: str,
    person_id: str,
    agent: Agent,
    reason: str = "",
    *,
    glass: str | None = None,
) -> dict[str, Any]:
    """Join the temporary record to the person's record (the survivor); the merge Provenance.

    Only the facility that registered the temporary record identifies it (its record number
    is the facility's), and only into a record that is not temporary itself: two unidentified
    people are not the same person because nobody knows either of them. ``glass`` is an
    emergency reason that opens the *person's* record when it is not open to the facility yet;
    the temporary record is checked without it, so breaking the glass never reaches another
    facility's temporary record.
    """
    temporary = repo.read("Patient", temporary_id).content or {}
    if not is_temporary(temporary):
        raise InvalidRequest(
            Message("Only a temporary record of an unidentified patient can be identified"),
            "patient",
        )
    facility = repo.principal.facility
    if facility is not None and not any(
        i.get("use") == "temp" and i.get("system") == mrn_system(facility)
        for i in temporary.get("identifier", [])
    ):
        raise Forbidden(
            Message("Only the facility that registered the temporary record can identify it")
        )
    acting = repo.for_caller(repo.principal, break_glass=glass, audit_reads=True) if glass else repo
    person = acting.read("Patient", person_id).content or {}
    if is_temporary(person):
        raise InvalidRequest(
            Message("Choose the person's own record, not another temporary one"), "person"
        )
    why = f"Identified: temporary record {temporary_number(temporary)}"
    if reason.strip():
        why = f"{why} ({reason.strip()})"
    return merge(acting, temporary_id, person_id, agent, why, roles=IDENTIFY_ROLES)


__all__ = [
    "FEATURES",
    "IDENTIFY_ROLES",
    "UNIDENTIFIED",
    "Arrival",
    "Temporary",
    "identify",
    "is_temporary",
    "merged_into",
    "register_unidentified",
    "temporary_number",
    "temporary_patient",
    "waiting",
]
