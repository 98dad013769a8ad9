"""``Patient/$check-in``: find or register a person at reception from the CCCD QR or BHYT card.

The reception desk scans the QR on the chip citizen ID card (or types the health-insurance card
number). The platform looks the person up by the identifiers the card carries (the 12-digit
personal ID, the old 9-digit ID, the social-insurance number inside the BHYT card), follows a
merge to the surviving record, and otherwise registers the person. Either way the facility's
own medical record number is added, so the same person checked in at two facilities is one
Patient with two facility record numbers. Identifiers are never overwritten: a re-issued
number closes the old one (``use: old`` with a period end) and adds the new one.

Everything happens in one write transaction, so two desks scanning the same new card at once
cannot register the person twice on SQLite (whose writers are serialised).
See: https://hl7.org/fhir/R4/operations.html
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sokhoe.errors import Conflict, InvalidRequest, NotFound
from sokhoe.fhir.parameters import parameters_by_name, string_parameter
from sokhoe.fhir.patient_links import people_holding, surviving_patient
from sokhoe.fhir.repository import FhirRepository
from sokhoe.fhir.resources import new_id
from sokhoe.mpi.cccd_qr import CccdCard, parse_cccd_qr
from sokhoe.mpi.identifiers import (
    BHXH,
    BHYT,
    CCCD,
    CMND,
    FACILITY,
    bhxh_of_bhyt,
    mrn_system,
    validate_bhyt,
)
from sokhoe.mpi.links import queue_review
from sokhoe.mpi.matching import CERTAIN, PROBABLE, Candidate, Matcher
from sokhoe.store.ports import StoredResource, StoreSession

DEFINITION: dict[str, Any] = {
    "resourceType": "OperationDefinition",
    "id": "Patient-check-in",
    "url": "https://fhir.sokhoe.vn/OperationDefinition/Patient-check-in",
    "name": "PatientCheckIn",
    "status": "active",
    "kind": "operation",
    "code": "check-in",
    "resource": ["Patient"],
    "system": False,
    "type": True,
    "instance": False,
    "description": "Find or register a person from the CCCD QR text or a BHYT card number and "
    "record the facility's medical record number. 200 when found, 201 when registered.",
    "parameter": [
        {"name": "qr", "use": "in", "min": 0, "max": "1", "type": "string"},
        {"name": "bhyt", "use": "in", "min": 0, "max": "1", "type": "string"},
        {"name": "facility", "use": "in", "min": 0, "max": "1", "type": "string"},
        {"name": "mrn", "use": "in", "min": 0, "max": "1", "type": "string"},
        {"name": "return", "use": "out", "min": 1, "max": "1", "type": "Patient"},
    ],
}
"""What the operation takes and returns (published in the CapabilityStatement)."""

_FACILITY_CODE = re.compile(r"[0-9A-Z]{5}")
_MRN_NAMESPACE = uuid.UUID("6f1c2d1e-3a53-4e0e-9a43-6d3f2c0b5a11")


@dataclass(frozen=True)
class CheckIn:
    patient: StoredResource
    registered: bool


def check_in(
    repo: FhirRepository, body: Any, matcher: Matcher | None = None, today: date | None = None
) -> CheckIn:
    """Run the operation on a ``Parameters`` body.

    When no record carries the card's identifiers, ``matcher`` is asked before registering:
    a *certain* match (the person was registered without an ID, or with a typo) receives the
    card's identifiers instead of a second record being made; *probable* ones are queued for
    review beside the new record.
    """
    params = parameters_by_name(body)
    qr = string_parameter(params, "qr")
    bhyt = string_parameter(params, "bhyt")
    facility = string_parameter(params, "facility")
    mrn = string_parameter(params, "mrn")
    if qr is None and bhyt is None:
        raise InvalidRequest("$check-in needs a 'qr' (CCCD QR text) or a 'bhyt' parameter")
    card = parse_cccd_qr(qr) if qr is not None else None
    if bhyt is not None:
        try:
            bhyt = validate_bhyt(bhyt)
        except ValueError as exc:
            raise InvalidRequest(str(exc), "bhyt") from exc
    if facility is not None:
        facility = facility.upper()
        if not _FACILITY_CODE.fullmatch(facility):
            raise InvalidRequest(
                f"facility must be a 5-character insurance facility code, got '{facility}'",
                "facility",
            )
    if mrn is not None and facility is None:
        raise InvalidRequest("'mrn' needs the 'facility' whose record number it is", "mrn")
    day = today or repo.clock().date()
    with repo.store.begin() as tx:
        known = _find(repo, tx, card, bhyt) is not None
    if not known and card is None:
        raise NotFound(f"No person holds BHYT card {bhyt}; scan the CCCD QR to register them")
    matched: str | None = None
    review: list[Candidate] = []
    patient = _patient_from_card(card, new_id()) if card is not None else {}
    if not known and matcher is not None:
        candidates = matcher.candidates(patient)
        certain = [c.id for c in candidates if c.grade == CERTAIN]
        matched = certain[0] if len(certain) == 1 else None
        review = [c for c in candidates if c.grade == PROBABLE][:3]
    with repo.store.begin(write=True) as tx:  # decide again on what is committed now
        found = _find(repo, tx, card, bhyt) or (surviving_patient(tx, matched) if matched else None)
        if found is None:
            if card is None:
                raise NotFound(f"No person holds BHYT card {bhyt}")
            _update_identifiers(patient, card, bhyt, facility, mrn, day)
            result = CheckIn(repo.update(patient, "Patient", patient["id"], tx=tx).resource, True)
        else:
            content = dict(found.content or {})
            content["identifier"] = [dict(i) for i in content.get("identifier", [])]
            _update_identifiers(content, card, bhyt, facility, mrn, day)
            result = CheckIn(repo.update(content, "Patient", found.id, tx=tx).resource, False)
    if result.registered:
        for c in review:
            queue_review(repo, result.patient.id, c.id, c.probability, c.grade)
    return result


def _find(
    repo: FhirRepository, tx: StoreSession, card: CccdCard | None, bhyt: str | None
) -> StoredResource | None:
    """The one living person the card's identifiers point to (after following merges)."""
    keys: list[tuple[str, str]] = []
    if card is not None:
        keys.append((CCCD, card.number))
        if card.old_number:
            keys.append((CMND, card.old_number))
    if bhyt is not None:
        keys += [(BHYT, bhyt), (BHXH, bhxh_of_bhyt(bhyt))]
    people: dict[str, StoredResource] = {}
    for system, value in keys:
        people = people_holding(repo, tx, system, value)
        if people:
            break  # the strongest identifier that finds someone decides
    if len(people) > 1:
        raise Conflict(
            "Several records hold this identifier ("
            + ", ".join(f"Patient/{p}" for p in sorted(people))
            + "); link or merge them in the review queue first"
        )
    return next(iter(people.values()), None)


def split_vietnamese_name(full: str) -> dict[str, Any]:
    """``Nguyễn Thị Minh Khai`` -> family ``Nguyễn``, given ``[Thị, Minh, Khai]``.

    Vietnamese names are written family name first and the given name last; FHIR keeps the
    order of ``given``, so the middle names stay before the given name.
    """
    parts = full.split()
    name: dict[str, Any] = {"use": "official", "text": full}
    if len(parts) >= 2:
        name["family"] = parts[0]
        name["given"] = parts[1:]
    else:
        name["given"] = parts
    return name


def _patient_from_card(card: CccdCard, pid: str) -> dict[str, Any]:
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "active": True,
        "identifier": [],
        "name": [split_vietnamese_name(card.full_name)],
        "gender": card.sex,
        "birthDate": card.birth_date.isoformat(),
    }
    if card.address:
        patient["address"] = [{"use": "home", "text": card.address, "country": "VN"}]
    return patient


def _update_identifiers(
    patient: dict[str, Any],
    card: CccdCard | None,
    bhyt: str | None,
    facility: str | None,
    mrn: str | None,
    today: date,
) -> None:
    """Add what the card and desk say, closing (not deleting) values they replace."""
    ids: list[dict[str, Any]] = patient.setdefault("identifier", [])
    if card is not None:
        start = card.issued.isoformat() if card.issued else None
        _put(ids, CCCD, card.number, today, use="official", start=start)
        if card.old_number and not _has(ids, CMND, card.old_number):
            ids.append({"use": "old", "system": CMND, "value": card.old_number})
    if bhyt is not None:
        _put(ids, BHYT, bhyt, today)
        _put(ids, BHXH, bhxh_of_bhyt(bhyt), today)
    if facility is not None:
        value = mrn or _generated_mrn(facility, patient["id"])
        entry = _put(ids, mrn_system(facility), value, today, use="usual")
        entry["assigner"] = {"identifier": {"system": FACILITY, "value": facility}}


def _has(ids: list[dict[str, Any]], system: str, value: str) -> bool:
    return any(i.get("system") == system and i.get("value") == value for i in ids)


def _put(
    ids: list[dict[str, Any]],
    system: str,
    value: str,
    today: date,
    *,
    use: str | None = None,
    start: str | None = None,
) -> dict[str, Any]:
    """Make ``value`` the current identifier of ``system``; earlier current ones become old."""
    for ident in ids:
        if ident.get("system") == system and ident.get("value") == value:
            if ident.get("use") == "old":  # the number came back into use
                ident.pop("use")
                if use:
                    ident["use"] = use
                ident.get("period", {}).pop("end", None)
                if not ident.get("period"):
                    ident.pop("period", None)
            return ident
    for ident in ids:
        if ident.get("system") == system and ident.get("use") != "old":
            ident["use"] = "old"
            ident["period"] = {**ident.get("period", {}), "end": today.isoformat()}
    entry: dict[str, Any] = {"system": system, "value": value}
    if use:
        entry = {"use": use, **entry}
    if start:
        entry["period"] = {"start": start}
    ids.append(entry)
    return entry


def _generated_mrn(facility: str, patient_id: str) -> str:
    """A stable record number for facilities whose desk did not send their own."""
    return uuid.uuid5(_MRN_NAMESPACE, f"{facility}/{patient_id}").hex[:10].upper()
