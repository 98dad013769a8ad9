"""The clinic world's facility A as the commune station of Phường Hoàn Kiếm (ward 00070), a
nurse there, a resident of the ward who declared their health on the portal, and the staff's
doors as the clinic pages open them.

Kept apart from ``clinic_world.py``: making A a station opens the ward's residents to its
clinicians, which the other clinic tests do not expect.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pyotp

from sokhoe.access.accounts import account, enable_totp
from sokhoe.access.guard import GuardedRepository
from sokhoe.clinic.setup import add_staff
from sokhoe.clinic.signing import TotpConfirmation
from sokhoe.clinic.stations import with_station
from sokhoe.portal.selfdeclared import Verification, mark
from sokhoe.registry.facilities import LEVEL_SYSTEM
from tests.clinic.clinic_world import PASSWORD, A, World
from tests.conftest import FAST_HASHER

RESIDENT = "p-lan"
NURSE = "dd.hoa"
WARD_NAME, CITY = "Phường Hoàn Kiếm", "Thành phố Hà Nội"


def make_station(world: World) -> None:
    """A becomes the commune station of the ward (registry level and address); a nurse."""
    station = {
        "resourceType": "Organization",
        "id": f"org-{A}",
        "identifier": [{"system": "https://fhir.sokhoe.vn/sid/ma-cskcb", "value": A}],
        "name": "Trạm Y tế Phường Hoàn Kiếm",
        "type": [{"coding": [{"system": LEVEL_SYSTEM, "code": "commune"}]}],
        "address": [{"use": "work", "city": WARD_NAME, "state": CITY, "country": "VN"}],
    }
    world.platform.update(station, "Organization", f"org-{A}")
    engine = world.app.state.tokens.engine
    add_staff(engine, A, PASSWORD, [(NURSE, "nurse", "ĐD. Vũ Thị Hoa")], hasher=FAST_HASHER)


def totp_secret(world: World, username: str) -> str:
    """Enrol ``username`` in an authenticator app; its secret."""
    return str(pyotp.parse_uri(enable_totp(world.app.state.tokens.engine, username)).secret)


def signer(world: World, username: str, secret: str, step: int = 0, **kw: Any) -> TotpConfirmation:
    """``username``'s confirmation with the code of the current time step (+ ``step``)."""
    totp = pyotp.TOTP(secret)
    code = totp.at(world.platform.clock().timestamp() + step * totp.interval)
    return TotpConfirmation(world.app.state.tokens.engine, username, code, **kw)


def door(world: World, username: str) -> GuardedRepository:
    """The door of a staff member as the clinic pages open it (with the station's ward)."""
    who = account(world.app.state.tokens.engine, username)
    assert who is not None
    return world.platform.for_caller(with_station(world.platform, replace(who)))


def resident(world: World, patient_id: str = RESIDENT, born: str = "1990-06-01") -> str:
    """A person whose home is in the station's ward (never seen at any facility)."""
    patient = {
        "resourceType": "Patient",
        "id": patient_id,
        "name": [{"family": "Đỗ", "given": ["Thị", "Lan"]}],
        "gender": "female",
        "birthDate": born,
        "address": [{"use": "home", "city": WARD_NAME, "state": CITY}],
    }
    world.platform.update(patient, "Patient", patient_id)
    return patient_id


def declared(
    patient_id: str, rid: str, rtype: str, state: Verification = "unconfirmed"
) -> dict[str, Any]:
    """A self-declared item of each type the portal writes, with its native status."""
    who = {"reference": f"Patient/{patient_id}"}
    subject = {"patient": who} if rtype in ("AllergyIntolerance", "FamilyMemberHistory") else {}
    body: dict[str, Any]
    if rtype == "AllergyIntolerance":
        body = {
            "clinicalStatus": {
                "coding": [{"system": _CS + "allergyintolerance-clinical", "code": "active"}]
            },
            "verificationStatus": {
                "coding": [{"system": _CS + "allergyintolerance-verification", "code": state}]
            },
            "code": {"text": "Penicillin"},
            "recorder": who,
            "asserter": who,
        }
    elif rtype == "Condition":
        body = {
            "subject": who,
            "clinicalStatus": {
                "coding": [{"system": _CS + "condition-clinical", "code": "active"}]
            },
            "verificationStatus": {
                "coding": [{"system": _CS + "condition-ver-status", "code": state}]
            },
            "code": {"text": "Tiểu đường"},
            "recorder": who,
            "asserter": who,
        }
    elif rtype == "FamilyMemberHistory":
        body = {
            "status": {"unconfirmed": "partial", "confirmed": "completed"}.get(
                state, "entered-in-error"
            ),
            "relationship": {
                "coding": [{"system": _ROLE, "code": "MTH", "display": "mẹ"}],
                "text": "Mẹ",
            },
            "condition": [{"code": {"text": "Tăng huyết áp"}}],
        }
    elif rtype == "Observation":
        body = {
            "subject": who,
            "status": {"unconfirmed": "preliminary", "confirmed": "final"}.get(
                state, "entered-in-error"
            ),
            "category": [
                {"coding": [{"system": _CS + "observation-category", "code": "social-history"}]}
            ],
            "code": {
                "coding": [{"system": "http://loinc.org", "code": "72166-2"}],
                "text": "Hút thuốc lá",
            },
            "valueCodeableConcept": {"text": "Hút hằng ngày"},
            "performer": [who],
        }
    elif rtype == "Procedure":
        body = {
            "status": "completed",
            "subject": who,
            "code": {"text": "Mổ ruột thừa"},
            "performedDateTime": "2010",
            "recorder": who,
            "asserter": who,
        }
    else:
        body = {
            "status": "completed",
            "patient": who,
            "vaccineCode": {
                "coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "19"}],
                "text": "BCG",
            },
            "occurrenceDateTime": "1990-06-02",
            "primarySource": False,
            "reportOrigin": {"coding": [{"system": _CS + "immunization-origin", "code": "recall"}]},
        }
    resource = {"resourceType": rtype, "id": rid, **subject, **body}
    return mark(resource, state)


_CS = "http://terminology.hl7.org/CodeSystem/"
_ROLE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
TYPES = (
    "AllergyIntolerance",
    "Condition",
    "FamilyMemberHistory",
    "Observation",
    "Immunization",
    "Procedure",
)


def declare_all(world: World, patient_id: str, prefix: str) -> dict[str, str]:
    """One unconfirmed item of each type in ``patient_id``'s record; type -> id."""
    ids = {}
    for rtype in TYPES:
        rid = f"{prefix}-{rtype.lower()[:8]}"
        world.platform.update(declared(patient_id, rid, rtype), rtype, rid)
        ids[rtype] = rid
    return ids
