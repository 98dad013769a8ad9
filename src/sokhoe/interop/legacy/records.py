"""Rows as FHIR content: the Patient of a patient-list row, the Encounter and Conditions of a
visit row.

These functions are pure: the importer finds the existing resources and ids, these decide the
content. The content depends only on the row and on what is stored, never on the clock or the
order of rows, so re-importing an unchanged file produces identical content and the repository
makes no new version (``same_content``).

Empty cells never erase: a column left blank keeps what the record already has.
See: https://hl7.org/fhir/R4/patient.html, https://hl7.org/fhir/R4/encounter.html
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date
from typing import Any

from sokhoe.interop.legacy.fields import RowFields
from sokhoe.interop.legacy.mapping import fold
from sokhoe.mpi.identifiers import (
    BHXH,
    BHYT,
    CCCD,
    FACILITY,
    PRACTITIONER,
    bhxh_of_bhyt,
    mrn_system,
)
from sokhoe.operations.check_in import split_vietnamese_name
from sokhoe.registry.terminology_icd10 import ICD10_SYSTEM, ICD10_VI, icd10_entry

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CLASS_DISPLAY = {"AMB": "ambulatory", "IMP": "inpatient encounter", "EMER": "emergency"}
ETHNICITY_EXTENSION = "https://fhir.sokhoe.vn/StructureDefinition/ethnicity"
ETHNICITY_SYSTEM = "https://fhir.sokhoe.vn/CodeSystem/ethnicity"
"""The 54 ethnic groups (*dân tộc*) with the 2-digit codes of the statistics office, as in the
insurance field ``MA_DANTOC`` (code list unconfirmed here: names are kept as text)."""
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CLINICAL_STATUS = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


def visit_system(facility: str) -> str:
    """Visit numbers of one facility (the same system HL7 v2 PV1-19 uses)."""
    return f"https://fhir.sokhoe.vn/sid/visit/{facility}"


def visit_diagnosis_system(facility: str) -> str:
    """Diagnoses imported for a visit: ``{visit number}/{ICD-10 code}`` identifies one, so a
    re-import updates the Condition instead of recording the diagnosis twice."""
    return f"https://fhir.sokhoe.vn/sid/visit-diagnosis/{facility}"


# -- patients ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PatientRow:
    mrn: str
    name: dict[str, Any] | None
    birth_date: str | None
    gender: str | None
    cccd: str | None
    bhyt: str | None
    phone: str | None
    address: dict[str, Any] | None
    ethnicity: dict[str, Any] | None


def read_patient(f: RowFields) -> PatientRow:
    """The row's patient fields, or :class:`RowError` with every problem."""
    mrn = f.text("mrn", required=True)
    full_name = f.text("full_name")
    birth = f.when("birth_date", year_only=True)
    gender = f.coded("sex")
    cccd = f.identifier("cccd")
    bhyt = f.identifier("bhyt")
    phone = f.phone("phone")
    province, ward = f.place()
    line = f.text("address_line")
    address: dict[str, Any] | None = None
    if line or province:
        address = {"use": "home"}
        if line:
            address["line"] = [line]
        if ward is not None:
            address["city"] = ward.name
        if province is not None:
            address["state"] = province.name
        address["country"] = "VN"
        address["text"] = ", ".join(
            x for x in (line, ward.name if ward else None, province.name if province else None) if x
        )
    f.check()
    if cccd and gender in ("male", "female") and birth:
        _cross_check_cccd(f, cccd, gender, int(birth[:4]))
    ethnicity = f.text("ethnicity")
    return PatientRow(
        mrn=mrn or "",
        name=split_vietnamese_name(full_name) if full_name else None,
        birth_date=birth,
        gender=gender,
        cccd=cccd,
        bhyt=bhyt,
        phone=phone,
        address=address,
        ethnicity=_ethnicity(ethnicity) if ethnicity else None,
    )


def _cross_check_cccd(f: RowFields, cccd: str, gender: str, year: int) -> None:
    """The CCCD encodes sex and birth year: a mismatch is worth a warning, not a refusal
    (either the ID or the demographics were typed wrong in the old system)."""
    from sokhoe.mpi.identifiers import cccd_sex_and_year

    sex, born = cccd_sex_and_year(cccd)
    if (sex, born) != (gender, year):
        f.warnings.append(
            f"CCCD {cccd} encodes {sex} born {born}, the row says {gender} born {year}"
        )


def _ethnicity(value: str) -> dict[str, Any]:
    if value.isdigit() and len(value) <= 2:
        concept: dict[str, Any] = {"coding": [{"system": ETHNICITY_SYSTEM, "code": value.zfill(2)}]}
    else:
        concept = {"text": value}
    return {"url": ETHNICITY_EXTENSION, "valueCodeableConcept": concept}


def patient_content(
    existing: dict[str, Any] | None,
    row: PatientRow,
    facility: str,
    today: date,
    *,
    authoritative: bool,
) -> dict[str, Any]:
    """The Patient after this row: ``existing`` (stored content) with the row applied.

    ``authoritative``: the patient is this facility's (found by its record number, or new),
    so the row's demographics replace the stored ones; a person found by CCCD who was
    registered elsewhere only gains the record number and the fields still missing.
    """
    patient: dict[str, Any] = (
        copy.deepcopy(existing) if existing else {"resourceType": "Patient", "active": True}
    )
    ids: list[dict[str, Any]] = patient.setdefault("identifier", [])
    mrn = put_identifier(ids, mrn_system(facility), row.mrn, today, use="usual")
    mrn["assigner"] = {"identifier": {"system": FACILITY, "value": facility}}
    if row.cccd:
        put_identifier(ids, CCCD, row.cccd, today, use="official")
    if row.bhyt:
        put_identifier(ids, BHYT, row.bhyt, today)
        put_identifier(ids, BHXH, bhxh_of_bhyt(row.bhyt), today)
    _set(patient, "gender", row.gender, authoritative)
    _set(patient, "birthDate", row.birth_date, authoritative)
    if row.name is not None:
        names = patient.get("name", [])
        if not names:
            patient["name"] = [row.name]
        elif authoritative:
            at = next((i for i, n in enumerate(names) if n.get("use") == "official"), 0)
            names[at] = row.name
    if row.phone is not None:
        telecom = patient.get("telecom", [])
        if not any(t.get("value") == row.phone for t in telecom):
            phones = [t for t in telecom if t.get("system") == "phone"]
            if authoritative or not phones:
                rest = [t for t in telecom if t.get("system") != "phone"]
                patient["telecom"] = [
                    *rest,
                    {"system": "phone", "value": row.phone, "use": "mobile"},
                ]
    if row.address is not None:
        addresses = patient.get("address", [])
        homes = [a for a in addresses if a.get("use") in (None, "home")]
        if authoritative or not homes:
            patient["address"] = [
                *(a for a in addresses if a.get("use") not in (None, "home")),
                row.address,
            ]
    if row.ethnicity is not None:
        others = [e for e in patient.get("extension", []) if e.get("url") != ETHNICITY_EXTENSION]
        mine = [e for e in patient.get("extension", []) if e.get("url") == ETHNICITY_EXTENSION]
        if authoritative or not mine:
            patient["extension"] = [*others, row.ethnicity]
    return patient


def demographic_conflicts(stored: dict[str, Any], row: PatientRow) -> list[str]:
    """How the person a CCCD found differs from the row, where both say something: the birth
    date (or year) and the family name (accents and case ignored, as people type them)."""
    out: list[str] = []
    born = str(stored.get("birthDate", ""))
    if born and row.birth_date:
        n = min(len(born), len(row.birth_date), 10)
        if born[:n] != row.birth_date[:n]:
            out.append(f"birth date is {born}, not {row.birth_date}")
    families = [fold(str(n.get("family", ""))) for n in stored.get("name", []) if n.get("family")]
    family = fold(str((row.name or {}).get("family", "")))
    if families and family and family not in families:
        out.append(f"family name is not {(row.name or {}).get('family')}")
    return out


def _set(resource: dict[str, Any], key: str, value: str | None, authoritative: bool) -> None:
    if value is not None and (authoritative or key not in resource):
        resource[key] = value


def put_identifier(
    ids: list[dict[str, Any]], system: str, value: str, today: date, *, use: str | None = None
) -> dict[str, Any]:
    """Make ``value`` the current identifier of ``system``: one already there is kept (and
    brought back into use); a different current one is closed (``use: old``, period end),
    never deleted, as ``$check-in`` does."""
    for ident in ids:
        if ident.get("system") == system and ident.get("value") == value:
            if ident.get("use") == "old":
                ident.pop("use")
                (ident.get("period") or {}).pop("end", None)
                if not ident.get("period"):
                    ident.pop("period", None)
            if use and "use" not in ident:
                ident["use"] = use
            return ident
    for ident in ids:
        if ident.get("system") == system and ident.get("use") != "old":
            ident["use"] = "old"
            ident["period"] = {**(ident.get("period") or {}), "end": today.isoformat()}
    entry: dict[str, Any] = {"system": system, "value": value}
    if use:
        entry = {"use": use, **entry}
    ids.append(entry)
    return entry


def current_identifier(resource: dict[str, Any], system: str) -> str | None:
    for ident in resource.get("identifier", []):
        if ident.get("system") == system and ident.get("use") != "old":
            return str(ident.get("value"))
    return None


# -- visits --------------------------------------------------------------------------------
@dataclass(frozen=True)
class VisitRow:
    mrn: str
    visit_number: str
    start: str | None
    end: str | None
    klass: str
    diagnoses: tuple[str, ...]
    """ICD-10 codes, the main one first (dotted, upper case), without repeats."""
    reason: str | None
    department: str | None
    doctor: str | None


def read_visit(f: RowFields) -> VisitRow:
    """The row's visit fields, or :class:`RowError` with every problem."""
    mrn = f.text("patient_mrn", required=True)
    visit = f.text("visit_number", required=True)
    start = f.when("start")
    end = f.when("end")
    klass = f.coded("class") or "AMB"
    codes: list[str] = []
    for target in ("diagnosis_primary", "diagnosis_secondary"):
        for raw in (f.text(target) or "").replace(",", ";").split(";"):
            code = normalise_icd10(raw)
            if code and code not in codes:
                codes.append(code)
    if start and end:
        timed = len(start) > 10 and len(end) > 10  # both local times with the same offset
        if (end < start) if timed else (end[:10] < start[:10]):
            f.fail("end", f"the visit ends ({end}) before it starts ({start})")
    f.check()
    return VisitRow(
        mrn=mrn or "",
        visit_number=visit or "",
        start=start,
        end=end,
        klass=klass,
        diagnoses=tuple(codes),
        reason=f.text("reason"),
        department=f.text("department"),
        doctor=f.text("doctor"),
    )


def normalise_icd10(raw: str) -> str:
    """``j069`` -> ``J06.9``; an unknown code is returned upper-cased for the record to refuse
    with its own message."""
    text = raw.strip().upper()
    if not text:
        return ""
    entry = icd10_entry(text)
    return entry.code if entry is not None else text


def practitioner_reference(code: str, practitioner_id: str | None) -> dict[str, Any]:
    """The registered Practitioner, or a logical reference by licence number."""
    ref: dict[str, Any] = {"identifier": {"system": PRACTITIONER, "value": code}}
    if practitioner_id is not None:
        ref = {"reference": f"Practitioner/{practitioner_id}", **ref}
    return ref


def encounter_content(
    row: VisitRow,
    facility: str,
    *,
    encounter_id: str,
    patient_id: str,
    organization_id: str,
    condition_ids: dict[str, str],
    doctor: dict[str, Any] | None,
    existing: dict[str, Any] | None,
) -> dict[str, Any]:
    """The visit as an Encounter. A historical outpatient or emergency visit, or any visit
    with an end, is ``finished``; an inpatient stay without an end is still ``in-progress``."""
    encounter = copy.deepcopy(existing) if existing else {}
    ended = row.end is not None or row.klass in ("AMB", "EMER")
    visit_id = {"system": visit_system(facility), "value": row.visit_number}
    others = [
        i for i in encounter.get("identifier", []) if i.get("system") != visit_system(facility)
    ]
    encounter.update(
        {
            "resourceType": "Encounter",
            "id": encounter_id,
            "identifier": [*others, visit_id],
            "status": "finished" if ended else "in-progress",
            "class": {"system": ACT_CODE, "code": row.klass, "display": CLASS_DISPLAY[row.klass]},
            "subject": {"reference": f"Patient/{patient_id}"},
            "serviceProvider": {"reference": f"Organization/{organization_id}"},
        }
    )
    period = {k: v for k, v in (("start", row.start), ("end", row.end)) if v}
    _own(encounter, "period", period or None)
    _own(encounter, "reasonCode", [{"text": row.reason}] if row.reason else None)
    _own(
        encounter,
        "location",
        [{"location": {"display": row.department}}] if row.department else None,
    )
    _own(
        encounter,
        "participant",
        [
            {
                "type": [{"coding": [{"system": PARTICIPATION, "code": "ATND"}]}],
                "individual": doctor,
            }
        ]
        if doctor
        else None,
    )
    diagnoses = [
        {"condition": {"reference": f"Condition/{condition_ids[code]}"}, "rank": rank}
        for rank, code in enumerate(row.diagnoses, start=1)
    ]
    _own(encounter, "diagnosis", diagnoses or None)
    return encounter


def _own(resource: dict[str, Any], key: str, value: Any) -> None:
    """Elements the import owns: set from the row, or removed when the row has none."""
    if value is None:
        resource.pop(key, None)
    else:
        resource[key] = value


def condition_content(
    row: VisitRow,
    facility: str,
    code: str,
    *,
    condition_id: str,
    encounter_id: str,
    patient_id: str,
) -> dict[str, Any]:
    """One diagnosis of the visit (the main one is rank 1 on the Encounter)."""
    entry = icd10_entry(code)
    coding: dict[str, Any] = {"system": ICD10_SYSTEM, "code": code}
    if entry is not None:
        coding["display"] = ICD10_VI.get(entry.code, entry.display)
    condition: dict[str, Any] = {
        "resourceType": "Condition",
        "id": condition_id,
        "identifier": [
            {"system": visit_diagnosis_system(facility), "value": f"{row.visit_number}/{code}"}
        ],
        "clinicalStatus": {"coding": [{"system": CLINICAL_STATUS, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": VERIFICATION_STATUS, "code": "confirmed"}]},
        "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": "encounter-diagnosis"}]}],
        "code": {"coding": [coding]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "encounter": {"reference": f"Encounter/{encounter_id}"},
    }
    if row.start:
        condition["recordedDate"] = row.start
    return condition


def withdrawn(condition: dict[str, Any]) -> dict[str, Any]:
    """A diagnosis an earlier import recorded that the corrected row no longer has: kept, but
    marked entered in error (FHIR does not delete clinical facts silently)."""
    content = {k: v for k, v in condition.items() if k not in ("meta", "clinicalStatus")}
    content["verificationStatus"] = {
        "coding": [{"system": VERIFICATION_STATUS, "code": "entered-in-error"}]
    }
    return content
