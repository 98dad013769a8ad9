"""Who looked at my record (*ai đã xem hồ sơ của tôi*): the audit chain in plain words.

The 2019 workshop promised that a patient can see who looked at their record. The rows come
from the audit log the door writes (``AuditLog.for_patient``, the same as
``GET /fhir/Patient/{id}/$access-log``), once the door allowed the caller the record; this
module only says each row the way a resident reads it: who (a name and a role, or a
facility's system), which facility (its name in the registry), when (Vietnam's time), what
(viewed test results, wrote a diagnosis, printed a prescription…, from the action and the
resource types the row names) and why (care at the facility, the citizen's share code, an
emergency with the clinician's reason, …).

The citizen's own views are left out, in the log's query (so pages and totals stay exact):
every page of the portal they open is itself audited, and listing those would bury the few
accesses by others that the page is there to show. Their own changes to sharing are listed on
the sharing page and confirmed by SMS; where they are signed in, on the devices page.

Why an access was allowed is not in the row (the door records what was done, and the reason
only for an emergency or an operation); it is read back from the record: the citizen's share
codes (Consents, also withdrawn ones, with the time they ended), referrals in the care index,
the commune health worker's role, and otherwise care at that facility.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from sokhoe.access.audit import agent_key
from sokhoe.access.guard import GuardedRepository
from sokhoe.fhir.patient_links import linked_patient_ids
from sokhoe.fhir.resources import parse_instant
from sokhoe.messages import Message
from sokhoe.mpi.identifiers import FACILITY
from sokhoe.portal.concerns import Concern, concerns
from sokhoe.portal.facilities import Facility, facilities
from sokhoe.store.ports import CareRow

PER_PAGE: Final = 20
LOCAL: Final = "Asia/Ho_Chi_Minh"

ROLES: Final = {
    "doctor": Message("doctor"),
    "nurse": Message("nurse"),
    "receptionist": Message("receptionist"),
    "pharmacist": Message("pharmacist"),
    "commune-health-worker": Message("commune health worker"),
    "facility-admin": Message("facility administrator"),
    "system-admin": Message("platform administrator"),
    "analyst": Message("analyst"),
    "insurance-appraiser": Message("insurance appraiser"),
    "registry-admin": Message("registry administrator"),
}
"""Staff roles as the citizen reads them."""

NOUNS: Final = {
    "Observation": Message("results and measurements"),
    "DiagnosticReport": Message("test results"),
    "Condition": Message("a diagnosis"),
    "AllergyIntolerance": Message("allergies"),
    "MedicationRequest": Message("a prescription"),
    "MedicationDispense": Message("medicines handed over"),
    "MedicationStatement": Message("medicines taken"),
    "Immunization": Message("vaccinations"),
    "Encounter": Message("a visit"),
    "Procedure": Message("a procedure"),
    "ImagingStudy": Message("imaging"),
    "DocumentReference": Message("a document"),
    "ServiceRequest": Message("an order or referral"),
    "Patient": Message("personal details"),
    "Consent": Message("sharing permissions"),
    "Provenance": Message("a signature"),
    "Claim": Message("an insurance claim"),
    "QuestionnaireResponse": Message("a health declaration"),
    "FamilyMemberHistory": Message("family history"),
    "RelatedPerson": Message("family links"),
    "Appointment": Message("an appointment"),
    "Task": Message("a request"),
}
"""What a resource type is, as the object of a verb (``viewed %(what)s``)."""
RECORD: Final = Message("the record")

VERBS: Final = {
    "read": Message("viewed %(what)s", what=RECORD),
    "search": Message("searched the record"),
    "create": Message("wrote %(what)s", what=RECORD),
    "update": Message("changed %(what)s", what=RECORD),
    "delete": Message("deleted %(what)s", what=RECORD),
    "print": Message("printed %(what)s", what=RECORD),
    "export": Message("downloaded the record"),
    "consent": Message("changed who may see the record"),
    "operation": Message("opened the record"),
}
"""Each kind of access, with the generic object; the row's resource types replace it."""

OPERATIONS: Final = {
    "check-in": Message("checked you in for a visit"),
    "confirm-presence": Message("confirmed you were at the desk"),
    "redeem-share": Message("entered your share code"),
    "prescribe": Message("issued a prescription"),
    "dispense": Message("handed over medicines"),
    "cancel-prescription": Message("cancelled a prescription"),
    "merge": Message("joined two copies of your record"),
    "unmerge": Message("separated two records"),
    "resolve-review": Message("checked two similar records"),
    "queue-review": Message("checked two similar records"),
    "confirm-guardian": Message("confirmed a parent or guardian"),
    "legacy-import": Message("imported older records"),
    "share": Message("made a share code"),
    "restrict": Message("changed who may see the record"),
    "revoke-consent": Message("changed who may see the record"),
    "report-concern": Message("reported a concern"),
}

CARE: Final = Message("care at this facility")
SHARED: Final = Message("your share code")
REFERRED: Final = Message("you were referred there")
COMMUNE: Final = Message("the health station where you live")
PLATFORM: Final = Message("the platform's own work")
GUARDIAN: Final = Message("a parent or guardian of the child")
PRESENT: Final = Message("you read out the code sent to your phone")
REFUSED: Final = Message("refused: nothing was shown")
CONNECTED: Final = Message("an app connected to this health book")


@dataclass(frozen=True)
class Access:
    """One row of the log, as the citizen reads it."""

    seq: int
    when: datetime
    who: str
    """A person's name, or empty (a system, the platform)."""
    actor: Message
    """The role (``doctor``), or what kind of agent it was (a facility's system…)."""
    facility: Facility | None
    what: tuple[Message, ...]
    why: Message
    glass: bool
    denied: bool
    concern: Concern | None
    citizen_app: bool = False
    """An app a citizen connected (their own doing: no concern to report to a facility)."""


@dataclass(frozen=True)
class Day:
    day: date
    accesses: list[Access]


@dataclass(frozen=True)
class LogPage:
    days: list[Day]
    total: int
    page: int
    pages: int


def _local(moment: datetime) -> datetime:
    return moment.astimezone(ZoneInfo(LOCAL))


def _kind(event: dict[str, Any]) -> str:
    code = str((event.get("type") or {}).get("code", ""))
    sub = str(((event.get("subtype") or [{}])[0]).get("code", ""))
    if code == "110113":
        return "break-the-glass"
    if code == "110137":
        return "consent"
    if code == "110106":
        return "print" if sub == "print" else "export"
    return {
        "read": "read",
        "vread": "read",
        "history-instance": "read",
        "search-type": "search",
        "create": "create",
        "update": "update",
        "delete": "delete",
    }.get(sub, "operation")


def _refs(event: dict[str, Any]) -> list[str]:
    """What the row names besides its patient (the entity in the Patient role)."""
    return [
        str((e.get("what") or {}).get("reference"))
        for e in event.get("entity", [])
        if (e.get("what") or {}).get("reference") and (e.get("role") or {}).get("code") != "1"
    ]


def _operation(event: dict[str, Any]) -> str | None:
    """The ``$operation`` a row belongs to: named in its entities or its reason."""
    for ref in _refs(event):
        if "/" not in ref:
            return ref.lstrip("$")
    reason = str(event.get("outcomeDesc", ""))
    if reason.startswith("$"):
        return reason[1:].split(":", 1)[0].split(" ", 1)[0]
    return None


def what_was_done(event: dict[str, Any]) -> tuple[Message, ...]:
    """The access in plain words: a verb for the action, an object per resource type."""
    kind = _kind(event)
    types = list(dict.fromkeys(r.split("/", 1)[0] for r in _refs(event) if "/" in r))
    if kind == "break-the-glass":
        kind = "read" if types else "operation"
    op = _operation(event) if kind in ("operation", "create", "update", "delete") else None
    if op in OPERATIONS:
        return (OPERATIONS[op],)  # the operation says it better than what it wrote
    if kind == "operation":
        kind = "read" if types else "operation"
    verb = VERBS[kind]
    if "what" not in verb.params:
        return (verb,)
    nouns = [NOUNS[t] for t in types if t in NOUNS] or [RECORD]
    return tuple(Message(verb.msgid, what=noun) for noun in nouns)


def _agent(event: dict[str, Any]) -> tuple[str, str, str | None]:
    """(kind of agent: staff, client, citizen or anonymous; display; role)."""
    agent = (event.get("agent") or [{}])[0]
    who = agent.get("who") or {}
    system = str((who.get("identifier") or {}).get("system", ""))
    role = ((agent.get("role") or [{}])[0]).get("text")
    kind = "anonymous"
    if system.endswith("/user"):
        kind = "staff"
    elif system.endswith("/client"):
        kind = "client"
    elif system.endswith(("/phone", "/oidc-subject")):
        kind = "citizen"
    return kind, str(who.get("display", "")), str(role) if role else None


def _app(event: dict[str, Any]) -> str | None:
    """The name of the app that acted for the person (SMART App Launch), if one did: the
    agent the audit adds beside the person (``access/audit.py``)."""
    for agent in (event.get("agent") or [])[1:]:
        who = agent.get("who") or {}
        if str((who.get("identifier") or {}).get("system", "")).endswith("/app"):
            return str(who.get("display") or (who.get("identifier") or {}).get("value"))
    return None


@dataclass(frozen=True)
class _Basis:
    """What the record says about why facilities could see it."""

    shares: dict[str, list[tuple[datetime, datetime]]]
    referred: set[str]


def _basis(repo: GuardedRepository, patient_id: str, rows: Sequence[CareRow]) -> _Basis:
    query = repo.parse_query("Consent", [("patient", f"Patient/{patient_id}"), ("_count", "500")])
    shares: dict[str, list[tuple[datetime, datetime]]] = {}
    for match in repo.search(query).matches:
        consent = match.content or {}
        provision = consent.get("provision") or {}
        if provision.get("type") != "permit" or consent.get("status") not in ("active", "inactive"):
            continue
        period = provision.get("period") or {}
        if not period.get("start") or not period.get("end"):
            continue
        start, end = parse_instant(period["start"]), parse_instant(period["end"])
        if consent.get("status") == "inactive":
            ended = match.last_updated
            end = min(end, ended if ended.tzinfo else ended.replace(tzinfo=UTC))
        for actor in provision.get("actor", []):
            ident = (actor.get("reference") or {}).get("identifier") or {}
            if ident.get("system") == FACILITY and ident.get("value"):
                shares.setdefault(str(ident["value"]), []).append((start, end))
    referred = {
        r.grantee.split(":", 1)[1]
        for r in rows
        if r.source == "referral" and r.grantee.startswith("facility:")
    }
    return _Basis(shares, referred)


def why(event: dict[str, Any], basis: _Basis) -> Message:
    """Why the access was allowed, as far as the record tells (see the module docstring)."""
    if event.get("outcome") not in (None, "0"):
        return REFUSED
    kind, _, role = _agent(event)
    glass = _kind(event) == "break-the-glass" or any(
        c.get("code") == "ETREAT"
        for p in event.get("purposeOfEvent", [])
        for c in p.get("coding", [])
    )
    if glass:
        text = next((p.get("text") for p in event.get("purposeOfEvent", []) if p.get("text")), "")
        reason = str(text or event.get("outcomeDesc", "")).removeprefix("break-the-glass: ")
        return Message("emergency, break-the-glass: %(reason)s", reason=reason)
    if kind == "citizen":
        return CONNECTED if _app(event) else GUARDIAN
    site = (event.get("source") or {}).get("site")
    if not site:
        return PLATFORM
    op = _operation(event)
    if op == "redeem-share":
        return SHARED
    if op == "confirm-presence":
        return PRESENT
    when = parse_instant(str(event.get("recorded")))
    if any(start <= when < end for start, end in basis.shares.get(site, [])):
        return SHARED
    if role == "commune-health-worker":
        return COMMUNE
    if site in basis.referred:
        return REFERRED
    return CARE


def _actor(kind: str, role: str | None, facility: Facility | None) -> Message:
    if kind == "staff" and role in ROLES:
        return ROLES[role]
    if kind == "client" and facility is not None:
        return Message("the system of %(facility)s", facility=facility.name)
    if kind in ("client", "staff"):
        return Message("the health book platform")
    if kind == "citizen":
        return Message("a parent or guardian")
    return Message("unknown")


def access_log(repo: GuardedRepository, patient_id: str, page: int = 1) -> LogPage:
    """One page of ``patient_id``'s access log, newest first, grouped by day in Vietnam's
    time, without the caller's own accesses (the caller: a citizen and their door)."""
    repo.require_patient(patient_id, "read")
    with repo.snapshot() as tx:
        people = linked_patient_ids(tx, patient_id)
        rows = tx.care(people)
    page = max(page, 1)
    events, total = repo.auditor.for_patient(
        people,
        PER_PAGE,
        (page - 1) * PER_PAGE,
        exclude_agents=[agent_key(repo.principal)],
    )
    sites = {str((e.get("source") or {}).get("site") or "") for e in events}
    places = facilities(repo, sites)
    basis = _basis(repo, patient_id, rows)
    reported = concerns(repo, patient_id)
    days: list[Day] = []
    for event in events:
        access = _access(event, places, basis, reported)
        day = _local(access.when).date()
        if not days or days[-1].day != day:
            days.append(Day(day, []))
        days[-1].accesses.append(access)
    pages = max(1, -(-total // PER_PAGE))
    return LogPage(days, total, page, pages)


def access_of(repo: GuardedRepository, patient_id: str, seq: int) -> Access | None:
    """One access to ``patient_id``'s record as :func:`access_log` shows it (None when the
    row is not that record's, or is the caller's own)."""
    repo.require_patient(patient_id, "read")
    with repo.snapshot() as tx:
        people = linked_patient_ids(tx, patient_id)
        rows = tx.care(people)
    event = repo.auditor.event_for_patient(people, seq)
    if event is None:
        return None
    agent = (event.get("agent") or [{}])[0]
    subject = str(((agent.get("who") or {}).get("identifier") or {}).get("value", ""))
    if _agent(event)[0] == "citizen" and f"citizen:{subject}" == agent_key(repo.principal):
        return None
    site = str((event.get("source") or {}).get("site") or "")
    places = facilities(repo, [site])
    return _access(event, places, _basis(repo, patient_id, rows), concerns(repo, patient_id))


def _access(
    event: dict[str, Any],
    places: dict[str, Facility],
    basis: _Basis,
    reported: dict[int, Concern],
) -> Access:
    kind, display, role = _agent(event)
    site = (event.get("source") or {}).get("site")
    place = places.get(site) if site else None
    seq = int(event["id"])
    actor = _actor(kind, role, place)
    app = _app(event)
    if app is not None:  # the app's name, and who it acted for
        if kind == "citizen":
            actor = Message("the app %(app)s", app=app)
        else:
            actor = Message("%(who)s, through the app %(app)s", who=actor, app=app)
    return Access(
        seq,
        parse_instant(str(event["recorded"])).astimezone(UTC),
        display if kind == "staff" else "",
        actor,
        place,
        what_was_done(event),
        why(event, basis),
        _kind(event) == "break-the-glass",
        event.get("outcome") not in (None, "0"),
        reported.get(seq),
        citizen_app=app is not None and kind == "citizen",
    )


__all__ = ["PER_PAGE", "Access", "Day", "LogPage", "access_log", "access_of", "what_was_done"]
