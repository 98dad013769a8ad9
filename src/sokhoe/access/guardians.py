"""Parents and guardians: a citizen also sees the records of the children in their care.

Who a child's parent or guardian is comes from a verified source only. A facility records the
relationship as a RelatedPerson (``patient`` = the child, ``relationship`` = mother, father or
guardian, ``telecom`` = their phone) — anyone who may write the child's record can write that,
so it proves nothing by itself. A member of the facility's staff who checked the papers then
confirms it (``RelatedPerson/{id}/$confirm-guardian``): that writes a row of the care index
(``citizen:<phone>`` may read the child's record until the child turns 18), and only such rows
make a signed-in citizen a guardian.
See: https://hl7.org/fhir/R4/relatedperson.html
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from sokhoe.access.care import grant
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.otp import normalise_phone
from sokhoe.access.principal import Principal
from sokhoe.errors import Conflict, InvalidRequest
from sokhoe.messages import Message
from sokhoe.search.query import SearchQuery
from sokhoe.store.ports import Confinement

GUARDIAN_CODES = ("MTH", "FTH", "PRN", "GUARD", "NMTH", "NFTH", "STPMTH", "STPFTH")
"""v3 RoleCode relationships that carry parental authority."""
ADULT_AGE = 18
CONFIRMING_ROLES = frozenset(
    {"doctor", "nurse", "receptionist", "facility-admin", "commune-health-worker"}
)


def _guardian_of(related: dict[str, Any]) -> tuple[str, str]:
    """(child's Patient id, the guardian's normalised phone) of a parental RelatedPerson."""
    ref = str((related.get("patient") or {}).get("reference", ""))
    if not ref.startswith("Patient/"):
        raise InvalidRequest(
            Message("RelatedPerson.patient must refer to the child's Patient"), "patient"
        )
    codes = {
        c.get("code") for r in related.get("relationship", []) for c in (r.get("coding") or [])
    }
    if not codes & set(GUARDIAN_CODES):
        raise InvalidRequest(
            Message(
                "RelatedPerson.relationship must be one of %(codes)s",
                codes=", ".join(GUARDIAN_CODES),
            ),
            "relationship",
        )
    if related.get("active") is False:
        raise Conflict(Message("This request was declined: the relationship is inactive"))
    phones = [t.get("value") for t in related.get("telecom", []) if t.get("system") == "phone"]
    for phone in phones:
        try:
            return ref.split("/", 1)[1], normalise_phone(str(phone))
        except ValueError:
            continue
    raise InvalidRequest(
        Message("RelatedPerson.telecom needs the guardian's mobile phone"), "telecom"
    )


def adulthood(born: str) -> datetime | None:
    """The instant a child born on ``born`` (FHIR date) turns 18, or None if unknown."""
    parts = born.split("-")
    try:
        year = int(parts[0])
        month = int(parts[1]) if len(parts) > 1 else 12
        day = int(parts[2]) if len(parts) > 2 else 28
        if month == 2 and day == 29:
            day = 28
        return datetime(year + ADULT_AGE, month, day, tzinfo=UTC)
    except (ValueError, IndexError):
        return None


def confirm_guardian(repo: GuardedRepository, related_person_id: str) -> dict[str, Any]:
    """Confirm the RelatedPerson as the child's guardian; returns a Parameters answer."""
    with repo.snapshot() as tx:
        related = tx.read("RelatedPerson", related_person_id)
    if related is None or related.deleted or related.content is None:
        raise InvalidRequest(
            Message("%(ref)s is not known", ref=f"RelatedPerson/{related_person_id}")
        )
    child, phone = _guardian_of(related.content)
    with repo.operation(
        "confirm-guardian",
        resource_type="RelatedPerson",
        interactions=["read"],
        patients=[child],
        roles=CONFIRMING_ROLES,
    ) as tx:
        patient = tx.read("Patient", child)
        born = str((patient.content or {}).get("birthDate", "")) if patient else ""
        until = adulthood(born)
        now = repo.clock()
        if until is None or until <= now:
            raise Conflict(
                Message(
                    "Patient/%(id)s is not a child (birth date %(born)s)",
                    id=child,
                    born=born or "?",
                )
            )
        grant(
            tx,
            child,
            f"citizen:{phone}",
            "guardian",
            now,
            until=until,
            ref=f"RelatedPerson/{related_person_id}",
        )
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "patient", "valueReference": {"reference": f"Patient/{child}"}},
            {"name": "until", "valueDateTime": until.date().isoformat()},
        ],
    }


def with_wards(
    repo: GuardedRepository, principal: Principal, today: date | None = None
) -> Principal:
    """``principal`` (a citizen signed in with ``subject`` = their phone) with the children a
    facility confirmed them guardian of, while those are minors."""
    if principal.kind != "citizen":
        return principal
    now = (
        repo.clock() if today is None else datetime(today.year, today.month, today.day, tzinfo=UTC)
    )
    wards = Confinement(now, grantees=(f"citizen:{principal.subject}",), shared=False)
    with repo.snapshot() as tx:
        children = tx.search_ids(SearchQuery("Patient"), 50, wards)
    found = [c for c in children if c not in principal.patient_ids]
    if not found:
        return principal
    return replace(principal, patient_ids=tuple(dict.fromkeys([*principal.patient_ids, *found])))
