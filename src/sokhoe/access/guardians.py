"""Parents and guardians: a citizen also sees the records of the children in their care.

A facility records who a child's parent or guardian is as a RelatedPerson (``patient`` = the
child, ``relationship`` = mother, father or guardian, ``telecom`` = their phone). When a
citizen signs in with that phone, the children under 18 it names join their ``patient_ids``.
See: https://hl7.org/fhir/R4/relatedperson.html
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from sokhoe.access.principal import Principal
from sokhoe.fhir.repository import FhirRepository

GUARDIAN_CODES = ("MTH", "FTH", "PRN", "GUARD", "NMTH", "NFTH", "STPMTH", "STPFTH")
"""v3 RoleCode relationships that carry parental authority."""
ADULT_AGE = 18


def with_wards(repo: FhirRepository, principal: Principal, today: date | None = None) -> Principal:
    """``principal`` (a citizen) with the minors it is parent or guardian of."""
    if principal.kind != "citizen":
        return principal
    day = today or repo.clock().date()
    query = repo.parse_query(
        "RelatedPerson",
        [("phone", principal.subject), ("relationship", ",".join(GUARDIAN_CODES))],
    )
    wards: list[str] = []
    for rp in repo.search(query).matches:
        ref = ((rp.content or {}).get("patient") or {}).get("reference", "")
        if not ref.startswith("Patient/") or (rp.content or {}).get("active") is False:
            continue
        child = repo.read("Patient", ref.split("/", 1)[1]).content or {}
        born = child.get("birthDate", "")
        if len(born) >= 4 and _age(born, day) < ADULT_AGE:
            wards.append(child["id"])
    if not wards:
        return principal
    return replace(principal, patient_ids=tuple(dict.fromkeys([*principal.patient_ids, *wards])))


def _age(born: str, day: date) -> int:
    year, month, dom = (int(x) for x in ([*born.split("-"), "12", "31"][:3]))
    return day.year - year - ((day.month, day.day) < (month, dom))
