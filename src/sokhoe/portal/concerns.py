"""A citizen's concern about one access to their record: a review Task for the facility.

From "who looked at my record" the citizen reports an access that worries them, in their own
words. ``$report-concern`` (the only writer of such Tasks, ``access/writes.py``) opens a FHIR
Task addressed to the facility that made the access: ``owner`` its Organization, ``focus`` the
AuditEvent, ``for`` the patient, ``requester`` the citizen (the patient, or a guardian by
phone), ``description`` their text, and a summary of the access in ``input`` (the facility
cannot read the audit log). The Task belongs to that facility in the store, so its staff and
systems find it whatever their relationship with the patient is now::

    GET /fhir/Task?owner=Organization/{id}&code=https://fhir.sokhoe.vn/CodeSystem/access-concern|access-concern&status=requested

and record how the review went by updating its state (``status``, ``businessStatus``,
``note``, ``output``; nothing else of it). The citizen sees that state beside the access.
See: https://hl7.org/fhir/R4/task.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sokhoe.access.audit import agent_key
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.otp import normalise_phone
from sokhoe.access.writes import ACCESS_CONCERNS
from sokhoe.errors import Conflict, InvalidRequest, NotFound
from sokhoe.fhir.patient_links import linked_patient_ids
from sokhoe.fhir.resources import format_instant, new_id
from sokhoe.messages import Message
from sokhoe.portal.facilities import facilities

CODE: Final = "access-concern"
OWNS: Final = frozenset({"access-concern"})
MAX_TEXT: Final = 1000
OPEN: Final = frozenset({"draft", "requested", "received", "accepted", "ready", "in-progress"})
STATES: Final = {
    "requested": Message("Sent to the facility"),
    "received": Message("The facility received it"),
    "accepted": Message("The facility is looking into it"),
    "ready": Message("The facility is looking into it"),
    "in-progress": Message("The facility is looking into it"),
    "on-hold": Message("The facility is looking into it"),
    "completed": Message("The facility answered"),
    "rejected": Message("The facility closed it"),
    "cancelled": Message("Withdrawn"),
    "failed": Message("The facility closed it"),
}
"""Task.status as the citizen reads it."""


@dataclass(frozen=True)
class Concern:
    task_id: str
    seq: int
    status: str
    state: Message
    text: str
    reported: str
    answer: str | None
    """What the facility wrote back (the last note or output), if anything."""


def _seq(focus: dict[str, Any] | None) -> int | None:
    ref = str((focus or {}).get("reference", ""))
    number = ref.removeprefix("AuditEvent/")
    return int(number) if ref.startswith("AuditEvent/") and number.isdigit() else None


def _answer(task: dict[str, Any]) -> str | None:
    for item in reversed(task.get("output", [])):
        if item.get("valueString"):
            return str(item["valueString"])
    for note in reversed(task.get("note", [])):
        if note.get("text"):
            return str(note["text"])
    return None


def concerns(repo: GuardedRepository, patient_id: str) -> dict[int, Concern]:
    """The concerns reported about accesses to ``patient_id``'s record, by audit seq (read
    through the caller's door: a citizen sees their own record's and their children's)."""
    query = repo.parse_query(
        "Task",
        [
            ("patient", f"Patient/{patient_id}"),
            ("code", f"{ACCESS_CONCERNS}|{CODE}"),
            ("_count", "200"),
        ],
    )
    found: dict[int, Concern] = {}
    for match in repo.search(query).matches:
        task = match.content or {}
        seq = _seq(task.get("focus"))
        if seq is None:
            continue
        status = str(task.get("status", "requested"))
        found[seq] = Concern(
            match.id,
            seq,
            status,
            STATES.get(status, STATES["requested"]),
            str(task.get("description", "")),
            str(task.get("authoredOn", "")),
            _answer(task),
        )
    return found


def _summary(event: dict[str, Any]) -> str:
    """The access as the facility's staff read it (English field names, the log's values)."""
    agent = (event.get("agent") or [{}])[0]
    who = (agent.get("who") or {}).get("display", "?")
    role = ((agent.get("role") or [{}])[0]).get("text", "")
    things = [
        str((e.get("what") or {}).get("reference"))
        for e in event.get("entity", [])
        if (e.get("what") or {}).get("reference")
    ]
    kind = (event.get("subtype") or [event.get("type") or {}])[0].get("code", "")
    parts = [
        f"AuditEvent/{event.get('id')} at {event.get('recorded')}",
        f"by {who}" + (f" ({role})" if role else ""),
        f"{kind}: {', '.join(things)}" if things else str(kind),
    ]
    if event.get("outcomeDesc"):
        parts.append(f"reason: {event['outcomeDesc']}")
    return "; ".join(parts)


def _requester(repo: GuardedRepository, patient_id: str, own: bool) -> dict[str, Any]:
    if own:
        return {"reference": f"Patient/{patient_id}"}
    subject = repo.principal.subject
    try:
        phone = normalise_phone(subject)
    except ValueError:
        return {"type": "RelatedPerson", "display": "Người giám hộ"}
    return {
        "type": "RelatedPerson",
        "identifier": {"system": "https://fhir.sokhoe.vn/sid/phone", "value": phone},
        "display": "Người giám hộ",
    }


def report_concern(
    repo: GuardedRepository, patient_id: str, seq: int, text: str, *, own: bool = True
) -> dict[str, Any]:
    """Open the review Task for the access ``seq`` to ``patient_id``'s record (the caller's
    own record when ``own``, else a child's); returns the Task. The access must be to that
    record, made by someone else, and not already under review."""
    words = " ".join(text.split())
    if not words:
        raise InvalidRequest(Message("Write what worries you about this access."), "text")
    if len(words) > MAX_TEXT:
        raise InvalidRequest(Message("Write at most %(n)s characters.", n=str(MAX_TEXT)), "text")
    repo.require_patient(patient_id, "read")
    with repo.snapshot() as tx:
        people = linked_patient_ids(tx, patient_id)
    event = repo.auditor.event_for_patient(people, seq)
    if event is None:
        raise NotFound(Message("That access is not in your record's log."))
    agent = (event.get("agent") or [{}])[0]
    who = str(((agent.get("who") or {}).get("identifier") or {}).get("value", ""))
    kind = str(((agent.get("who") or {}).get("identifier") or {}).get("system", ""))
    if kind.endswith(("/phone", "/oidc-subject")) and f"citizen:{who}" == agent_key(repo.principal):
        raise InvalidRequest(Message("That access was your own."))
    site = (event.get("source") or {}).get("site")
    owner = facilities(repo, [site]).get(site) if site else None
    now = repo.clock()
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": new_id(),
        "status": "requested",
        "intent": "order",
        "priority": "routine",
        "code": {
            "coding": [
                {
                    "system": ACCESS_CONCERNS,
                    "code": CODE,
                    "display": "A citizen's concern about an access to their record",
                }
            ],
            "text": "Người dân báo điều bất thường về một lần hồ sơ được xem",
        },
        "description": words,
        "focus": {"reference": f"AuditEvent/{seq}"},
        "for": {"reference": f"Patient/{patient_id}"},
        "authoredOn": format_instant(now),
        "requester": _requester(repo, patient_id, own),
        "input": [{"type": {"text": "access"}, "valueString": _summary(event)}],
    }
    if owner is not None and owner.organization_id:
        task["owner"] = {
            "reference": f"Organization/{owner.organization_id}",
            "display": owner.name,
        }
    with repo.operation(
        "report-concern",
        resource_type="Task",
        patients=[patient_id],
        owns=OWNS,
        owner=site,
    ) as tx:
        query = repo.parse_query(
            "Task", [("focus", f"AuditEvent/{seq}"), ("code", f"{ACCESS_CONCERNS}|{CODE}")]
        )
        for match in tx.search(query).matches:
            if (match.content or {}).get("status") in OPEN:
                raise Conflict(
                    Message("You already reported this access; the facility is looking into it.")
                )
        return repo.update(task, "Task", task["id"], tx=tx).resource.content or {}


__all__ = ["CODE", "STATES", "Concern", "concerns", "report_concern"]
