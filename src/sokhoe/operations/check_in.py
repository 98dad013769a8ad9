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

**Knowing a number is not presence.** Neither the QR text nor a BHYT number is secret, so a
check-in of someone the facility has no relationship with registers the visit — the facility's
record number, a care row that lets it write the visit and read back what it writes — and
answers with what the desk already holds (the card's name, sex and birth date, the record's
id; ``meta.tag`` SUBSETTED), not the stored record. The history written elsewhere opens with
proof that the person is there or agrees: the one-time code sent to the phone on record
(``$presence-code``, ``$confirm-presence``), a share code, or break-the-glass. For the same
reason the card's numbers do not change a record the facility may not change: differences go
to a review Task.

A person registered from the card gets its address split into units with their codes
(:func:`sokhoe.registry.addresses.parse_address`), so their visits can be claimed and billed;
units the registry does not know stay as text, flagged for the desk to fix.
See: https://hl7.org/fhir/R4/operations.html
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sokhoe.access.care import OWN, RECORD, WINDOW, grant
from sokhoe.access.guard import GuardedRepository
from sokhoe.errors import Conflict, Forbidden, InvalidRequest, NotFound
from sokhoe.fhir.parameters import parameters_by_name, string_parameter
from sokhoe.fhir.patient_links import people_holding, surviving_patient
from sokhoe.fhir.repository import FhirRepository
from sokhoe.fhir.resources import format_instant, new_id
from sokhoe.messages import Message, message_of
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
    validate_cccd,
)
from sokhoe.mpi.links import queue_review, review_task
from sokhoe.mpi.matching import CERTAIN, PROBABLE, Candidate, Matcher
from sokhoe.registry.addresses import parse_address
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


SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
IDENTITY_TASKS = "https://fhir.sokhoe.vn/CodeSystem/mpi-task"
CHECK_IN_ROLES = frozenset(
    {"facility-admin", "doctor", "nurse", "receptionist", "commune-health-worker", "system"}
)


@dataclass(frozen=True)
class CheckIn:
    patient: StoredResource
    registered: bool
    disclosed: bool = True
    """False: the facility had no relationship with the person; ``view`` is its answer."""
    view: dict[str, Any] | None = None


def check_in(
    repo: GuardedRepository,
    body: Any,
    matcher: Matcher | None = None,
    today: date | None = None,
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
    cccd = string_parameter(params, "cccd")
    facility = string_parameter(params, "facility")
    mrn = string_parameter(params, "mrn")
    if qr is None and bhyt is None and cccd is None:
        raise InvalidRequest(
            Message(
                "$check-in needs a 'qr' (CCCD QR text), a 'cccd' (12-digit ID) or a 'bhyt' "
                "parameter"
            )
        )
    card = parse_cccd_qr(qr) if qr is not None else None
    if cccd is not None:
        try:
            cccd = validate_cccd(cccd)
        except ValueError as exc:
            raise InvalidRequest(message_of(exc), "cccd") from exc
    if bhyt is not None:
        try:
            bhyt = validate_bhyt(bhyt)
        except ValueError as exc:
            raise InvalidRequest(message_of(exc), "bhyt") from exc
    if facility is not None:
        facility = facility.upper()
        if not _FACILITY_CODE.fullmatch(facility):
            raise InvalidRequest(
                Message(
                    "facility must be a 5-character insurance facility code, got '%(code)s'",
                    code=facility,
                ),
                "facility",
            )
    if mrn is not None and facility is None:
        raise InvalidRequest(Message("'mrn' needs the 'facility' whose record number it is"), "mrn")
    own = repo.principal.facility
    if own is not None and facility not in (None, own):
        raise Forbidden(
            Message(
                "A caller of facility %(own)s cannot check in at %(there)s",
                own=own,
                there=str(facility),
            )
        )
    facility = facility or own
    day = today or repo.clock().date()
    with repo.snapshot() as tx:
        known = _find(repo, tx, card, bhyt, cccd) is not None
    if not known and card is None:
        raise NotFound(
            Message(
                "No person holds BHYT card %(number)s; scan the CCCD QR to register them",
                number=bhyt,
            )
            if bhyt is not None
            else Message(
                "No person holds ID %(number)s; scan the CCCD QR to register them",
                number=str(cccd),
            )
        )
    matched: str | None = None
    review: list[Candidate] = []
    patient = _patient_from_card(card, new_id()) if card is not None else {}
    if not known and matcher is not None:
        candidates = matcher.candidates(patient)
        certain = [c.id for c in candidates if c.grade == CERTAIN]
        matched = certain[0] if len(certain) == 1 else None
        review = [c for c in candidates if c.grade == PROBABLE][:3]
    owns = frozenset({"review-task"})
    with repo.operation(
        "check-in", interactions=["create", "update"], roles=CHECK_IN_ROLES, owns=owns
    ) as tx:  # decide again on what is committed now
        found = _find(repo, tx, card, bhyt, cccd) or (
            surviving_patient(tx, matched) if matched else None
        )
        if found is None:
            if card is None:
                raise NotFound(
                    Message("No person holds this number; scan the CCCD QR to register them")
                )
            _update_identifiers(patient, card, bhyt, facility, mrn, day)
            result = CheckIn(repo.update(patient, "Patient", patient["id"], tx=tx).resource, True)
        elif _may_change(repo, tx, found.id):
            content = dict(found.content or {})
            content["identifier"] = [dict(i) for i in content.get("identifier", [])]
            _update_identifiers(content, card, bhyt, facility, mrn, day)
            result = CheckIn(repo.update(content, "Patient", found.id, tx=tx).resource, False)
        else:
            result = _check_in_unrelated(repo, tx, found, card, bhyt, facility, mrn, day)
    if result.registered:
        for c in review:
            queue_review(repo, result.patient.id, c.id, c.probability, c.grade)
    return result


def _may_change(repo: GuardedRepository, tx: StoreSession, patient_id: str) -> bool:
    """Whether the caller already has a current relationship with the person (or is the
    platform): then the check-in may update the record as the desk says."""
    if repo.access is None:
        return True
    found = repo.standing(tx, patient_id)
    return found is not None and found.level == RECORD


def _check_in_unrelated(
    repo: GuardedRepository,
    tx: StoreSession,
    found: StoredResource,
    card: CccdCard | None,
    bhyt: str | None,
    facility: str | None,
    mrn: str | None,
    day: date,
) -> CheckIn:
    """Register the visit of someone the caller has no relationship with (see the module
    docstring): the facility's record number and a care row, nothing more."""
    content = dict(found.content or {})
    ids = [dict(i) for i in content.get("identifier", [])]
    proposed = [dict(i) for i in ids]
    _update_identifiers({"id": found.id, "identifier": proposed}, card, bhyt, None, None, day)
    if _differs(ids, proposed):  # the card says something the record does not: a person decides
        task = review_task(
            "review-identifiers",
            "Review identifiers",
            f"A check-in at facility {facility} presented identifiers the record does not hold",
            f"Patient/{found.id}",
            repo.clock(),
            [
                {
                    "type": {"text": "identifier"},
                    "valueString": f"{i.get('system')}|{i.get('value')}",
                }
                for i in proposed
                if i not in ids
            ],
        )
        repo.update(task, "Task", task["id"], tx=tx)
    if facility is not None:
        content["identifier"] = ids
        _update_identifiers(content, None, None, facility, mrn, day)
        found = repo.update(content, "Patient", found.id, tx=tx).resource
        now = repo.clock()
        policy = repo.policy
        level = RECORD if policy.check_in_opens_record else OWN
        grant(
            tx,
            found.id,
            f"facility:{facility}",
            "check-in",
            now,
            level=level,
            proven=False,
            until=now + WINDOW,
        )
        if level == RECORD:
            return CheckIn(found, False)
    return CheckIn(found, False, False, _desk_view(found, card, bhyt, facility))


def _differs(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> bool:
    return sorted(map(repr, before)) != sorted(map(repr, after))


def _desk_view(
    found: StoredResource, card: CccdCard | None, bhyt: str | None, facility: str | None
) -> dict[str, Any]:
    """What the desk may be shown: the record's id and what it presented itself."""
    view: dict[str, Any] = {
        "resourceType": "Patient",
        "id": found.id,
        "meta": {"lastUpdated": format_instant(found.last_updated), "tag": [SUBSETTED]},
        "identifier": [],
    }
    if card is not None:
        view["identifier"].append({"system": CCCD, "value": card.number})
        view["name"] = [split_vietnamese_name(card.full_name)]
        view["gender"] = card.sex
        view["birthDate"] = card.birth_date.isoformat()
    if bhyt is not None:
        view["identifier"].append({"system": BHYT, "value": bhyt})
    if facility is not None:
        for ident in (found.content or {}).get("identifier", []):
            if ident.get("system") == mrn_system(facility) and ident.get("use") != "old":
                view["identifier"].append(dict(ident))
    return view


def _find(
    repo: FhirRepository,
    tx: StoreSession,
    card: CccdCard | None,
    bhyt: str | None,
    cccd: str | None = None,
) -> StoredResource | None:
    """The one living person the card's identifiers point to (after following merges)."""
    keys: list[tuple[str, str]] = [(CCCD, cccd)] if cccd is not None else []
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
            Message(
                "Several records hold this identifier (%(records)s); link or merge them in the "
                "review queue first",
                records=", ".join(f"Patient/{p}" for p in sorted(people)),
            )
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
    if card.address:  # parsed into units and codes, or kept as text and flagged
        patient["address"] = [parse_address(card.address)]
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
        system = mrn_system(facility)
        current = next(
            (i["value"] for i in ids if i.get("system") == system and i.get("use") != "old"), None
        )  # a desk that sends no number keeps the one its facility gave the person
        value = mrn or current or _generated_mrn(facility, patient["id"])
        entry = _put(ids, system, value, today, use="usual")
        entry["assigner"] = {"identifier": {"system": FACILITY, "value": facility}}


def add_record_number(patient: dict[str, Any], facility: str, mrn: str | None, today: date) -> None:
    """Add (or bring back) ``facility``'s record number to ``patient``, in place."""
    _update_identifiers(patient, None, None, facility, mrn, today)


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
