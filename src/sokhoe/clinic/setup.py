"""Setting a facility up for the clinic pages: its examination rooms, its bank account for
VietQR payments, its staff accounts and the Practitioner each clinician is.

Rooms are ``Location`` resources of the shared registry (``physicalType`` room, managed by the
facility's Organization, part of its building), so only registry administrators — or the
platform, for the demo — write them; the desk only chooses among them.
See: https://hl7.org/fhir/R4/location.html
"""

from __future__ import annotations

import uuid
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import Engine

from sokhoe.access.accounts import create_user, link_practitioner, practitioner_of
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.passwords import STRONG
from sokhoe.clinic.bank import with_bank_account
from sokhoe.clinic.vietqr import BankAccount
from sokhoe.clinic.visits import ROOM_TYPE
from sokhoe.interop.claims.sources import find_facility
from sokhoe.mpi.identifiers import PRACTITIONER
from sokhoe.registry.practitioners import ROLE_SYSTEM, ROLES


def room(org_id: str, name: str) -> dict[str, Any]:
    """A room of the facility whose Organization is ``org_id`` (id derived: re-running the
    setup changes nothing)."""
    return {
        "resourceType": "Location",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sokhoe:room:{org_id}:{name}")),
        "status": "active",
        "name": name,
        "mode": "instance",
        "physicalType": {"coding": [{**ROOM_TYPE, "display": "Room"}]},
        "managingOrganization": {"reference": f"Organization/{org_id}"},
    }


def add_rooms(registry: GuardedRepository, facility_code: str, names: list[str]) -> list[str]:
    """Write the rooms (by the registry's door); their ids."""
    org = find_facility(registry, facility_code)
    ids = []
    for name in names:
        resource = room(org.id, name)
        registry.update(resource, "Location", resource["id"])
        ids.append(str(resource["id"]))
    return ids


def set_bank_account(registry: GuardedRepository, facility_code: str, account: BankAccount) -> None:
    """Record the account the facility's VietQR codes pay into (by the registry's door)."""
    org = find_facility(registry, facility_code)
    stored = registry.read("Organization", org.id)
    updated = with_bank_account(dict(stored.content or {}), account)
    if updated != stored.content:
        registry.update(updated, "Organization", org.id, if_match=f'W/"{stored.version_id}"')


def add_staff(
    engine: Engine,
    facility_code: str,
    password: str,
    people: list[tuple[str, str, str]],
    *,
    hasher: PasswordHasher = STRONG,
) -> None:
    """Staff accounts ``(username, role, display name)`` at the facility; existing ones are
    left as they are. ``hasher``: the settings' (``access.passwords``)."""
    for username, role, display in people:
        try:
            create_user(
                engine, username, password, role, display, facility=facility_code, hasher=hasher
            )
        except ValueError:
            pass  # made on an earlier start


def add_practitioner(
    registry: GuardedRepository,
    engine: Engine,
    username: str,
    display: str,
    role: str,
    facility_code: str,
    certificate: str,
) -> str:
    """Register the clinician ``username`` as a Practitioner with their practising-certificate
    number (*chứng chỉ hành nghề*, CCHN) and a PractitionerRole at the facility (by the
    registry's door), and link the account to it; the Practitioner's id. An account already
    linked keeps its Practitioner.

    What a clinician signs and prescribes names their Practitioner, and the national
    prescription system knows a prescriber only by that number: an account without one
    prescribes validly here, but its prescriptions cannot be sent under its name.
    See: https://hl7.org/fhir/R4/practitioner.html
    """
    linked = practitioner_of(engine, username)
    if linked is not None:
        return linked
    org = find_facility(registry, facility_code)
    pid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sokhoe:practitioner:{certificate}"))
    kind = role if role in ROLES else "doctor"
    coding = {"system": ROLE_SYSTEM, "code": kind, "display": ROLES[kind]}
    practitioner = {
        "resourceType": "Practitioner",
        "id": pid,
        "identifier": [{"use": "official", "system": PRACTITIONER, "value": certificate}],
        "active": True,
        "name": [{"use": "official", "text": display}],
        "qualification": [
            {
                "identifier": [{"system": PRACTITIONER, "value": certificate}],
                "code": {"coding": [coding]},
            }
        ],
    }
    role_id = str(uuid.uuid5(uuid.UUID(pid), "role"))
    job = {
        "resourceType": "PractitionerRole",
        "id": role_id,
        "active": True,
        "practitioner": {"reference": f"Practitioner/{pid}", "display": display},
        "organization": {"reference": f"Organization/{org.id}", "display": org.name},
        "code": [{"coding": [coding]}],
    }
    registry.update(practitioner, "Practitioner", pid)
    registry.update(job, "PractitionerRole", role_id)
    link_practitioner(engine, username, pid)
    return pid


__all__ = ["add_practitioner", "add_rooms", "add_staff", "room", "set_bank_account"]
