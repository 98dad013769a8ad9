"""My family (*gia đình tôi*): a parent asks to look after a child's health book, and the
station checks the papers before anything of the child is shown.

A signed-in citizen names the child by the child's personal ID (12 digits) or birth-certificate
number, and says how they are related (mother, father, guardian). If a record carries that
number and belongs to a minor, a pending ``RelatedPerson`` is written into the child's record
(``patient`` the child, ``telecom`` the citizen's own phone, tagged :data:`REQUESTED`). Nothing
else happens: the relationship grants nothing until a member of staff of a facility that may
see the child confirms it with ``RelatedPerson/$confirm-guardian`` (``access/guardians.py``),
which is what opens the child's record to that phone.

The citizen learns nothing about any record: whether a number matched, matched an adult, or
matched nobody, the answer is the same "request sent; bring the birth certificate to the
station, which registers the child if needed". Their list of requests shows only what they
typed (the number, partly masked, and the relationship) and where the check stands. Requests
are limited per phone and day, so the form is no way to probe which numbers have a record.
See: https://hl7.org/fhir/R4/relatedperson.html
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from sokhoe.access.care import current
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.guardians import GUARDIAN_CODES, adulthood
from sokhoe.access.ratelimit import hit
from sokhoe.access.scopes import scopes_allow
from sokhoe.errors import InvalidRequest
from sokhoe.fhir.references import codings
from sokhoe.messages import Message
from sokhoe.mpi.identifiers import BIRTH_CERTIFICATE, CCCD, validate_cccd
from sokhoe.store.ports import StoreSession

REQUEST_SYSTEM: Final = "https://fhir.sokhoe.vn/CodeSystem/guardian-request"
REQUESTED: Final = {
    "system": REQUEST_SYSTEM,
    "code": "requested",
    "display": "Người dân đề nghị trên cổng sổ sức khỏe",
}
"""``meta.tag`` of a RelatedPerson a citizen asked for on the portal."""
TYPED: Final = "https://fhir.sokhoe.vn/StructureDefinition/guardian-request-identifier"
"""Extension (valueIdentifier): the number the citizen typed to name the child."""
ROLE_CODES: Final = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
RELATIONSHIPS: Final[dict[str, tuple[str, str]]] = {
    "mother": ("MTH", "Mẹ"),
    "father": ("FTH", "Bố"),
    "guardian": ("GUARD", "Người giám hộ"),
}
KINDS: Final[dict[str, str]] = {"cccd": CCCD, "birth-certificate": BIRTH_CERTIFICATE}
REQUESTS_PER_DAY: Final = 5
VIETNAM: Final = ZoneInfo("Asia/Ho_Chi_Minh")
_BIRTH_CERTIFICATE = re.compile(r"[0-9A-Za-z./-]{1,30}")

Status = Literal["waiting", "confirmed", "declined"]


@dataclass(frozen=True)
class Asked:
    """A valid request: which number, of which kind, and the relationship."""

    kind: str
    number: str
    relationship: str


def checked(kind: str, number: str, relationship: str) -> Asked:
    """The request if its parts are well formed; InvalidRequest naming the field otherwise."""
    if kind not in KINDS:
        raise InvalidRequest(Message("Choose the child's personal ID or birth certificate"), "kind")
    typed = re.sub(r"\s+", "", number)
    if kind == "cccd":
        if not re.fullmatch(r"\d{12}", typed):
            raise InvalidRequest(Message("A personal ID has 12 digits"), "number")
        try:
            validate_cccd(typed)
        except ValueError as exc:
            raise InvalidRequest(
                Message("This is not a personal ID number: check the digits"), "number"
            ) from exc
    elif not _BIRTH_CERTIFICATE.fullmatch(typed):
        raise InvalidRequest(
            Message("Write the birth certificate number as it is printed, without spaces"),
            "number",
        )
    if relationship not in RELATIONSHIPS:
        raise InvalidRequest(Message("Choose how you are related to the child"), "relationship")
    return Asked(kind, typed, relationship)


def _find_child(
    repo: GuardedRepository, tx: StoreSession, asked: Asked, now: datetime
) -> str | None:
    """The one record carrying the number, if it is a minor's (looked up by the operation,
    not by the citizen, whose door would show nothing)."""
    query = repo.parse_query("Patient", [("identifier", f"{KINDS[asked.kind]}|{asked.number}")])
    ids = tx.search_ids(query, 2)
    if len(ids) != 1:
        return None  # none, or several: the station sorts it out with the papers
    found = tx.read("Patient", ids[0])
    if found is None or found.content is None or found.content.get("active") is False:
        return None
    until = adulthood(str(found.content.get("birthDate") or ""))
    return found.id if until is not None and until > now else None


def _already(tx: StoreSession, repo: GuardedRepository, phone: str, child: str) -> bool:
    """Whether this phone already asked for (or looks after) this child."""
    query = repo.parse_query("RelatedPerson", [("patient", f"Patient/{child}"), ("telecom", phone)])
    for found in tx.read_many([("RelatedPerson", i) for i in tx.search_ids(query, 20)]):
        if found.content is not None and found.content.get("active") is not False:
            return True
    return False


def related_person(child: str, phone: str, asked: Asked, now: datetime) -> dict[str, Any]:
    code, display = RELATIONSHIPS[asked.relationship]
    return {
        "resourceType": "RelatedPerson",
        "meta": {"tag": [dict(REQUESTED)]},
        "extension": [
            {"url": TYPED, "valueIdentifier": {"system": KINDS[asked.kind], "value": asked.number}}
        ],
        "active": True,
        "patient": {"reference": f"Patient/{child}"},
        "relationship": [{"coding": [{"system": ROLE_CODES, "code": code, "display": display}]}],
        "telecom": [{"system": "phone", "value": phone, "use": "mobile"}],
        "period": {"start": now.astimezone(VIETNAM).date().isoformat()},
    }


def request_child(repo: GuardedRepository, engine: Engine, phone: str, asked: Asked) -> None:
    """Ask to look after the child ``asked`` names, as the citizen signed in with ``phone``.

    Returns nothing whatever was found (see the module's docstring): a pending RelatedPerson
    is written only for one minor's record that this phone has not asked for already."""
    hit(engine, f"family:{phone}", REQUESTS_PER_DAY, timedelta(days=1))
    now = repo.clock()
    with repo.operation("request-guardian", resource_type="RelatedPerson") as tx:
        child = _find_child(repo, tx, asked, now)
        if child is None or child in repo.principal.patient_ids:
            return
        if _already(tx, repo, phone, child):
            return
        repo.create(related_person(child, phone, asked, now), "RelatedPerson", tx=tx)


@dataclass(frozen=True)
class Request:
    """One of the citizen's requests as they may see it: what they typed, nothing found."""

    id: str
    kind: str
    number: str
    """Masked but for the last four characters."""
    relationship: str
    sent: str | None
    status: Status


def _mask(number: str) -> str:
    return "•" * max(0, len(number) - 4) + number[-4:]


def _confirmed(tx: StoreSession, children: list[str], now: datetime) -> set[str]:
    """The RelatedPersons a facility confirmed (their guardian rows of the care index)."""
    return {
        row.source_ref
        for row in tx.care(children)
        if row.source == "guardian" and current(row, now)
    }


def _status(related: dict[str, Any], confirmed: set[str]) -> Status:
    if f"RelatedPerson/{related.get('id')}" in confirmed:
        return "confirmed"
    return "declined" if related.get("active") is False else "waiting"


def requests(repo: GuardedRepository, phone: str) -> list[Request]:
    """The requests this phone sent, newest first. They sit in the children's records, which
    the citizen's door does not open, so they are looked up here by the phone that sent them
    and only the citizen's own words come back."""
    now = repo.clock()
    query = repo.parse_query(
        "RelatedPerson", [("telecom", phone), ("_tag", f"{REQUEST_SYSTEM}|requested")]
    )
    with repo.snapshot() as tx:
        found = tx.read_many([("RelatedPerson", i) for i in tx.search_ids(query, 50)])
        mine = [r for r in found if r.content is not None]
        confirmed = _confirmed(tx, sorted({r.patient_id for r in mine if r.patient_id}), now)
    out = []
    for stored in mine:
        content = stored.content or {}
        typed = next(
            (
                e.get("valueIdentifier") or {}
                for e in content.get("extension", [])
                if e.get("url") == TYPED
            ),
            {},
        )
        kind = next((k for k, system in KINDS.items() if system == typed.get("system")), "cccd")
        out.append(
            Request(
                stored.id,
                kind,
                _mask(str(typed.get("value", ""))),
                _relationship(content),
                (content.get("period") or {}).get("start"),
                _status(content, confirmed),
            )
        )
    return sorted(out, key=lambda r: r.sent or "", reverse=True)


def _relationship(related: dict[str, Any]) -> str:
    codes = {c.get("code") for r in related.get("relationship", []) for c in codings(r)}
    return next((name for name, (code, _) in RELATIONSHIPS.items() if code in codes), "guardian")


@dataclass(frozen=True)
class Pending:
    """A guardian relationship waiting on the child's chart for the station's check."""

    id: str
    relationship: str
    phone: str
    typed: str | None
    """The number the parent typed on the portal (None: recorded by a facility)."""
    sent: str | None


def pending_for(repo: GuardedRepository, patient_id: str) -> list[Pending]:
    """The child's parental RelatedPersons no facility confirmed yet, as the caller may see
    them (a search through the door: a facility that may not see the child sees none)."""
    query = repo.parse_query(
        "RelatedPerson",
        [("patient", f"Patient/{patient_id}"), ("_count", "20"), ("_total", "none")],
        strict=True,
    )
    if not scopes_allow(repo.principal.scopes, "RelatedPerson", "search"):
        return []
    found = [m.content for m in repo.search(query).matches if m.content is not None]
    with repo.snapshot() as tx:
        confirmed = _confirmed(tx, [patient_id], repo.clock())
    out = []
    for related in found:
        codes = {c.get("code") for r in related.get("relationship", []) for c in codings(r)}
        phones = [t.get("value") for t in related.get("telecom", []) if t.get("system") == "phone"]
        if not codes & set(GUARDIAN_CODES) or not phones:
            continue
        if _status(related, confirmed) != "waiting":
            continue
        typed = next(
            (
                (e.get("valueIdentifier") or {}).get("value")
                for e in related.get("extension", [])
                if e.get("url") == TYPED
            ),
            None,
        )
        out.append(
            Pending(
                str(related["id"]),
                _relationship(related),
                str(phones[0]),
                typed,
                (related.get("period") or {}).get("start"),
            )
        )
    return out


def decline(repo: GuardedRepository, related_person_id: str) -> None:
    """The station did not confirm the relationship: the request is made inactive (kept, so
    the parent sees it was declined)."""
    found = repo.read("RelatedPerson", related_person_id)
    content = dict(found.content or {})
    content["active"] = False
    content.pop("meta", None)
    content["meta"] = {"tag": (found.content or {}).get("meta", {}).get("tag", [])}
    repo.update(content, "RelatedPerson", related_person_id, if_match=f'W/"{found.version_id}"')


__all__ = [
    "KINDS",
    "RELATIONSHIPS",
    "REQUESTED",
    "REQUESTS_PER_DAY",
    "Asked",
    "Pending",
    "Request",
    "checked",
    "decline",
    "pending_for",
    "request_child",
    "requests",
]
