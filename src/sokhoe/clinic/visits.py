"""Today's visits at one facility: starting a visit at the desk, the queue by room, its states.

A visit is an ``Encounter`` of the facility (``serviceProvider``), in a room (a ``Location`` the
facility's registry keeps), with the payer the desk chose. Its state in the queue follows the
Encounter's status and its signature:

======================  ==========================================
Encounter.status        queue state
======================  ==========================================
arrived / planned       waiting (*chờ khám*)
in-progress             in visit (*đang khám*)
finished, not signed    to sign (*chờ ký*)
finished, signed        done (*xong*)
======================  ==========================================

The queue lists what the door lets the caller search: only the facility's own Encounters of
the day, however many other facilities wrote that day. The patient's name shown is the one
the desk registered the visit under (``Encounter.subject.display``): a facility that only
knows someone's card number has no right to read their record, but the desk saw the card.
See: https://hl7.org/fhir/R4/encounter.html
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Literal

from sokhoe.access.guard import GuardedRepository
from sokhoe.clinic.records import find
from sokhoe.clinic.referrals import Incoming, incoming
from sokhoe.clinic.signatures import signatures
from sokhoe.errors import Conflict, InvalidRequest
from sokhoe.fhir.references import codings, reference_id
from sokhoe.fhir.resources import format_instant
from sokhoe.interop.claims.sources import FacilityRef, encounters_on, find_facility
from sokhoe.messages import Message
from sokhoe.store.ports import StoredResource

State = Literal["waiting", "in-visit", "to-sign", "done"]
STATES: Final[tuple[State, ...]] = ("waiting", "in-visit", "to-sign", "done")
Payer = Literal["insurance", "self-pay"]
PAYER_EXTENSION: Final = "https://fhir.sokhoe.vn/StructureDefinition/encounter-payer"
"""Who pays the visit as the desk recorded it: ``insurance`` (BHYT) or ``self-pay``
(*dịch vụ / tự chi trả*); the bill and the insurance export read it."""
ROOM_TYPE: Final = {
    "system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
    "code": "ro",
}
ENCOUNTER_CLASS: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
AMBULATORY_CLASS: Final = {"system": ENCOUNTER_CLASS, "code": "AMB", "display": "ambulatory"}
EMERGENCY_CLASS: Final = {"system": ENCOUNTER_CLASS, "code": "EMER", "display": "emergency"}
EMERGENCY_PRIORITY: Final = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActPriority",
            "code": "EM",
            "display": "emergency",
        }
    ]
}


@dataclass(frozen=True)
class Room:
    id: str
    name: str


@dataclass(frozen=True)
class QueueEntry:
    encounter_id: str
    patient_id: str
    name: str
    room: str | None
    state: State
    arrived: str | None
    payer: str | None
    number: int
    """The visit's order of arrival today (*số thứ tự*)."""
    emergency: bool = False
    """An emergency visit (*cấp cứu*): called before everyone waiting."""


@dataclass(frozen=True)
class Queue:
    facility: FacilityRef
    day: date
    entries: list[QueueEntry]
    rooms: list[Room]
    referred: list[Incoming]
    """Referrals to the facility waiting to be taken up (*chuyển đến*)."""

    def in_room(self, room_id: str | None) -> list[QueueEntry]:
        return [e for e in self.entries if e.room == room_id]

    def count(self, state: State) -> int:
        return sum(1 for e in self.entries if e.state == state)

    @property
    def next_waiting(self) -> QueueEntry | None:
        """The first emergency waiting, else the first to arrive."""
        waiting = [e for e in self.entries if e.state == "waiting"]
        return next((e for e in waiting if e.emergency), waiting[0] if waiting else None)


def rooms(repo: GuardedRepository, facility: FacilityRef) -> list[Room]:
    """The facility's examination rooms, by name."""
    found = find(repo, "Location", [("organization", f"Organization/{facility.id}")], 100)
    rooms_ = [
        Room(str(loc["id"]), str(loc.get("name", "")))
        for loc in found
        if any(c.get("code") == "ro" for c in codings(loc.get("physicalType")))
        and loc.get("status", "active") == "active"
    ]
    return sorted(rooms_, key=lambda r: r.name)


def state_of(encounter: dict[str, Any], signed: bool) -> State:
    status = encounter.get("status")
    if status == "in-progress":
        return "in-visit"
    if status == "finished":
        return "done" if signed else "to-sign"
    return "waiting"


def payer_of(encounter: dict[str, Any]) -> str | None:
    for ext in encounter.get("extension", []):
        if ext.get("url") == PAYER_EXTENSION:
            return str(ext.get("valueCode"))
    return None


def queue(repo: GuardedRepository, facility_code: str, day: date) -> Queue:
    """The facility's visits of ``day`` (local date), in order of arrival, and the referrals
    to it no visit has taken up yet; a closed visit is done once its signature is recorded."""
    facility = find_facility(repo, facility_code)
    found = encounters_on(repo, facility, day)
    closed = [str(e["id"]) for e in found if e.get("status") == "finished"]
    signed = set(signatures(repo, closed)) if closed else set()
    entries = []
    for number, enc in enumerate(found, start=1):
        patient = reference_id(enc.get("subject"), "Patient") or ""
        room = next(
            (reference_id(loc.get("location"), "Location") for loc in enc.get("location", [])), None
        )
        entries.append(
            QueueEntry(
                encounter_id=str(enc["id"]),
                patient_id=patient,
                name=str((enc.get("subject") or {}).get("display", "")),
                room=room,
                state=state_of(enc, str(enc["id"]) in signed),
                arrived=(enc.get("period") or {}).get("start"),
                payer=payer_of(enc),
                number=number,
                emergency=(enc.get("class") or {}).get("code") == EMERGENCY_CLASS["code"],
            )
        )
    return Queue(facility, day, entries, rooms(repo, facility), incoming(repo, facility))


def start_visit(
    repo: GuardedRepository,
    *,
    facility_code: str,
    patient_id: str,
    patient_name: str,
    room_id: str | None,
    payer: Payer,
    now: datetime,
    reason: str | None = None,
    referral: str | None = None,
    emergency: bool = False,
) -> dict[str, Any]:
    """Register the visit at the desk: an ambulatory Encounter, ``arrived``, in ``room_id``
    (an emergency one, class ``EMER`` and priority ``EM``, when ``emergency``: the claim then
    takes the emergency route).

    The door decides the write (the facility needs a relationship with the person, which the
    check-in just made); a second visit of the same person still waiting today is refused, so
    a double click at the desk does not queue them twice. ``referral`` is the id of the
    referral (``ServiceRequest``) the visit takes up: the visit is ``basedOn`` it.
    """
    if payer not in ("insurance", "self-pay"):
        raise InvalidRequest(
            Message("payer must be insurance or self-pay, got '%(payer)s'", payer=payer), "payer"
        )
    facility = find_facility(repo, facility_code)
    if room_id is not None and room_id not in {r.id for r in rooms(repo, facility)}:
        raise InvalidRequest(Message("Choose one of the facility's rooms"), "room")
    for enc in encounters_on(repo, facility, now.date()):
        if reference_id(enc.get("subject"), "Patient") == patient_id and enc.get("status") in (
            "arrived",
            "planned",
            "in-progress",
        ):
            raise Conflict(Message("%(name)s is already in today's queue", name=patient_name))
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "extension": [{"url": PAYER_EXTENSION, "valueCode": payer}],
        "status": "arrived",
        "class": dict(EMERGENCY_CLASS if emergency else AMBULATORY_CLASS),
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": format_instant(now)},
        "serviceProvider": {"reference": f"Organization/{facility.id}", "display": facility.name},
    }
    if emergency:
        encounter["priority"] = copy.deepcopy(EMERGENCY_PRIORITY)
    if patient_name.strip():  # none when the desk typed only the ID of someone new here
        encounter["subject"]["display"] = patient_name.strip()
    if room_id is not None:
        encounter["location"] = [{"location": {"reference": f"Location/{room_id}"}}]
    if reason:
        encounter["reasonCode"] = [{"text": reason}]
    if referral:
        encounter["basedOn"] = [{"reference": f"ServiceRequest/{referral}"}]
    return _content(repo.create(encounter, "Encounter").resource)


def set_status(
    repo: GuardedRepository, encounter_id: str, status: str, now: datetime
) -> dict[str, Any]:
    """Move a visit along (``in-progress`` when the doctor calls the patient in, ``finished``
    when closed); the door refuses another facility's visit and any signed, frozen one."""
    stored = repo.read("Encounter", encounter_id)
    enc = dict(stored.content or {})
    allowed = {"in-progress": ("arrived", "planned", "in-progress"), "finished": ("in-progress",)}
    if enc.get("status") not in allowed.get(status, ()):
        raise Conflict(
            Message(
                "A visit that is %(now)s cannot become %(next)s",
                now=str(enc.get("status")),
                next=status,
            )
        )
    enc["status"] = status
    period = dict(enc.get("period") or {})
    if status == "finished":
        period["end"] = format_instant(now)
    enc["period"] = period
    saved = repo.update(enc, "Encounter", encounter_id, if_match=f'W/"{stored.version_id}"')
    return _content(saved.resource)


def _content(stored: StoredResource) -> dict[str, Any]:
    return dict(stored.content or {})


__all__ = [
    "PAYER_EXTENSION",
    "STATES",
    "Queue",
    "QueueEntry",
    "Room",
    "queue",
    "rooms",
    "set_status",
    "start_visit",
    "state_of",
]
