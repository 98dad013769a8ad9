"""What the privacy tests share: the clinic world with An's phone linked, staff doors as the
clinic pages make them, break-the-glass, a child with a confirmed guardian, and reading the
citizen's pages."""

from __future__ import annotations

import re
from typing import Any

from sokhoe.access.accounts import account
from sokhoe.access.guard import PLATFORM_SCOPES, GuardedRepository
from sokhoe.access.guardians import confirm_guardian
from sokhoe.access.otp import link_citizen
from sokhoe.access.principal import system_principal
from tests.clinic.clinic_world import PHONE, World

GUARDIAN = "0977111222"
STRANGER = "0987000111"
REASON = "Bệnh nhân hôn mê, được đưa vào cấp cứu"
CHILD = "p-be"


def link(world: World, phone: str = PHONE, patient_id: str | None = None) -> None:
    link_citizen(world.app.state.tokens.engine, phone, patient_id or world.patient_id)


def staff(world: World, username: str, glass: str | None = None) -> GuardedRepository:
    """The door of a staff member as the clinic pages make it (reads audited)."""
    who = account(world.app.state.tokens.engine, username)
    assert who is not None
    return world.platform.for_caller(who, audit_reads=True, break_glass=glass)


def facility_system(world: World, facility: str) -> GuardedRepository:
    """A facility's connected system (every scope, confined to its facility)."""
    who = system_principal(f"his-{facility}", f"HIS {facility}", PLATFORM_SCOPES, facility)
    return world.platform.for_caller(who, audit_reads=True)


def person(world: World, pid: str, name: tuple[str, str], born: str) -> None:
    world.platform.update(
        {
            "resourceType": "Patient",
            "id": pid,
            "name": [{"family": name[0], "given": name[1].split()}],
            "birthDate": born,
        },
        "Patient",
        pid,
    )


def child_with_guardian(world: World, phone: str = GUARDIAN) -> str:
    """A child (Nguyễn Minh Khang, born 2020) whose mother's phone a facility confirmed."""
    person(world, CHILD, ("Nguyễn", "Minh Khang"), "2020-05-01")
    mother = {
        "resourceType": "RelatedPerson",
        "id": "rp-me",
        "patient": {"reference": f"Patient/{CHILD}"},
        "relationship": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}
                ]
            }
        ],
        "telecom": [{"system": "phone", "value": phone}],
    }
    world.platform.update(mother, "RelatedPerson", "rp-me")
    confirm_guardian(world.platform, "rp-me")
    return CHILD


def main_of(html: str) -> str:
    """The page's main content as one line of text (tags kept)."""
    main = html[html.index("<main") : html.index("</main>")]
    return re.sub(r"\s+", " ", main)


def cards(html: str) -> list[str]:
    """The access cards of an access-log page."""
    return re.findall(r'<article class="card access.*?</article>', main_of(html))


def tasks(world: World, **criteria: Any) -> list[dict[str, Any]]:
    params = [("code", "https://fhir.sokhoe.vn/CodeSystem/access-concern|access-concern")]
    params += [(k, str(v)) for k, v in criteria.items()]
    query = world.platform.parse_query("Task", params)
    return [m.content or {} for m in world.platform.search(query).matches]
