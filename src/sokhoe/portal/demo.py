"""The portal's demo (``make run``): the demo station's ward QR, and a parent whose phone opens
their own health book and their child's.

The ward is the one the demo commune station (:data:`sokhoe.clinic.demo.STATION`) serves, so
the QR's landing page greets residents of the station's own ward. The parent is one of the
station's regulars (their insurance card is registered there) aged 20 to 60 with a mobile
phone, a resident of the station's ward when it has one. The demo population has no families,
so the demo adds the parent's two-year-old as the population's generator would have (a record
loaded by the platform with the station's record number: same family name and address, a
personal ID, a child's insurance card). Then the station links them the way it does when the parent
brings the birth certificate: its nurse records the parent as a RelatedPerson of the child
(mother or father, with the parent's phone) and, having checked the paper, confirms it
(:func:`sokhoe.access.guardians.confirm_guardian`, the same call as
``RelatedPerson/{id}/$confirm-guardian``). The parent's phone is linked to their own record as
a claimed record is (:func:`sokhoe.access.otp.link_citizen`).

Re-running is safe: the child and the RelatedPerson have ids derived from the parent, the
family is found again by the demo identifier the RelatedPerson carries, and a link already
confirmed is not confirmed twice.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

from sqlalchemy import Engine

from sokhoe.access.accounts import account
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.guardians import confirm_guardian, with_wards
from sokhoe.access.otp import link_citizen, linked_patient, normalise_phone
from sokhoe.access.principal import Principal
from sokhoe.clinic.demo import STATION
from sokhoe.clinic.records import find, read
from sokhoe.demo.names import human_name, person_name
from sokhoe.interop.claims.formats import name_text
from sokhoe.interop.claims.sources import VIETNAM_TZ, FacilityRef, find_facility
from sokhoe.mpi.identifiers import BHYT, CCCD, make_cccd, mrn_system
from sokhoe.portal.poster import landing_url
from sokhoe.registry.places import Province, Ward, find_ward, resolve_province

FAMILY_SYSTEM: Final = "https://fhir.sokhoe.vn/sid/demo-portal-family"
"""Marks the RelatedPerson the demo made, so a later start finds the same family."""
_NAMESPACE: Final = uuid.UUID("6b1f1c9e-1d0e-5c55-9a52-2f7a1d7c0b14")
_V3_ROLE: Final = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
NURSE: Final = next(u for u, role, _ in STATION.staff if role == "nurse")
_PARENT_AGES: Final = (20, 60)
CHILD_AGE_DAYS: Final = 2 * 365 + 100
"""The child is two years and three months old: due and overdue doses to show."""


@dataclass(frozen=True)
class PortalDemo:
    station: FacilityRef
    ward: Ward
    province: Province
    parent_id: str
    parent: str
    phone: str
    child_id: str
    child: str
    child_born: str
    confirmed_by: str

    def sign_in_text(self, base_url: str, outbox: str) -> str:
        """Where the ward's QR leads, who to sign in as, and where the codes arrive."""
        born = date.fromisoformat(self.child_born[:10])
        return "\n".join(
            [
                f"Citizen portal: {base_url}/portal",
                f"  the QR of {self.ward.name}, {self.province.name} (served by "
                f"{self.station.name}): {landing_url(base_url, self.ward.code)}",
                f"    its poster: sokhoe portal ward-qr --ward {self.ward.code} --out "
                f"poster.pdf --base-url {base_url}",
                f"  a parent: {self.parent}, phone {self.phone}: sign in at "
                f"{base_url}/portal/sign-in; their child {self.child} (born "
                f"{born:%d/%m/%Y}) is among their profiles (the link confirmed by "
                f"{self.confirmed_by} at the station)",
                f"  one-time codes are not sent by SMS in the demo: read them in {outbox}",
            ]
        )


def ensure_portal_demo(platform: GuardedRepository, engine: Engine) -> PortalDemo:
    """Find or make the demo family; see the module docstring. LookupError when the clinic
    demo (its station and staff) is not there to make it."""
    nurse = account(engine, NURSE)
    if nurse is None or nurse.facility is None:
        raise LookupError("the demo station's nurse has no account: run the clinic demo first")
    station = find_facility(platform, nurse.facility)
    ward, province = _ward_of(platform, station)
    related = _existing(platform) or _make(platform, nurse, station, ward)
    child_id = str(related["patient"]["reference"]).split("/", 1)[1]
    phone = next(t["value"] for t in related["telecom"] if t.get("system") == "phone")
    parent_id = next(i["value"] for i in related["identifier"] if i["system"] == FAMILY_SYSTEM)
    if linked_patient(engine, phone) != parent_id:
        link_citizen(engine, phone, parent_id)
    citizen = Principal(kind="citizen", subject=normalise_phone(phone), display=phone)
    if child_id not in with_wards(platform, citizen).patient_ids:
        confirm_guardian(platform.for_caller(nurse), str(related["id"]))
    parent = read(platform, "Patient", parent_id) or {}
    child = read(platform, "Patient", child_id) or {}
    return PortalDemo(
        station,
        ward,
        province,
        parent_id,
        name_text(parent),
        phone,
        child_id,
        name_text(child),
        str(child.get("birthDate", "")),
        nurse.display,
    )


def _ward_of(platform: GuardedRepository, station: FacilityRef) -> tuple[Ward, Province]:
    """The ward the station serves: its address (the registry writes the ward as ``city`` and
    the province as ``state``)."""
    org = read(platform, "Organization", station.id) or {}
    for address in org.get("address", []):
        province = resolve_province(str(address.get("state", "")))
        ward = find_ward(province, str(address.get("city", ""))) if province else None
        if province is not None and ward is not None:
            return ward, province
    raise LookupError(f"{station.name} has no ward in its address")


def _existing(platform: GuardedRepository) -> dict[str, Any] | None:
    found = find(platform, "RelatedPerson", [("identifier", f"{FAMILY_SYSTEM}|")], 1)
    return found[0] if found else None


def _age(patient: dict[str, Any], today: date) -> int:
    born = date.fromisoformat(str(patient["birthDate"])[:10])
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _phone_of(patient: dict[str, Any]) -> str | None:
    for telecom in patient.get("telecom", []):
        if telecom.get("system") == "phone":
            return str(telecom["value"])
    return None


def _make(
    platform: GuardedRepository, nurse: Principal, station: FacilityRef, ward: Ward
) -> dict[str, Any]:
    """Pick the parent among the station's regulars, add their child, and record the link as
    the station's nurse."""
    today = platform.clock().astimezone(VIETNAM_TZ).date()
    params = [("organization", f"Organization/{station.id}"), ("_sort", "_id")]
    parents = [
        p
        for p in find(platform, "Patient", params, 300)
        if p.get("active", True)
        and not p.get("link")
        and p.get("birthDate")
        and _PARENT_AGES[0] <= _age(p, today) <= _PARENT_AGES[1]
        and _phone_of(p)
        and any(i.get("system") == CCCD for i in p.get("identifier", []))
    ]
    if not parents:
        raise LookupError(f"{station.name} has no regular aged 20 to 60 with a phone")
    home = [p for p in parents if any(a.get("city") == ward.name for a in p.get("address", []))]
    parent = (home or parents)[0]
    child = _child(platform, parent, station, today)
    phone = str(_phone_of(parent))
    relationship = "MTH" if parent.get("gender") == "female" else "FTH"
    rid = str(uuid.uuid5(_NAMESPACE, f"guardian|{parent['id']}"))
    related = {
        "resourceType": "RelatedPerson",
        "id": rid,
        "identifier": [{"system": FAMILY_SYSTEM, "value": str(parent["id"])}],
        "active": True,
        "patient": {"reference": f"Patient/{child['id']}", "display": name_text(child)},
        "relationship": [{"coding": [{"system": _V3_ROLE, "code": relationship}]}],
        "name": parent.get("name", []),
        "telecom": [{"system": "phone", "value": phone, "use": "mobile"}],
        "gender": parent.get("gender", "unknown"),
    }
    platform.for_caller(nurse).update(related, "RelatedPerson", rid)
    return related


def _child(
    platform: GuardedRepository, parent: dict[str, Any], station: FacilityRef, today: date
) -> dict[str, Any]:
    """The parent's child, as the population's generator writes a person (see
    :mod:`sokhoe.demo.population`), loaded by the platform.

    The station knows the child by its record number (the care index's ``record`` row), not
    as its registered facility (no ``managingOrganization``): the clinic demo draws each day's
    list from the facility's registered people, and a restart the same day must find the same
    ones, not a list grown by the child added in between."""
    cid = str(uuid.uuid5(_NAMESPACE, f"child|{parent['id']}"))
    found = read(platform, "Patient", cid)
    if found is not None:
        return found
    rng = random.Random(cid)  # noqa: S311 - made-up people, not secrets
    sex = rng.choice(("female", "male"))
    _, middle, given = person_name(rng, sex)
    family = str((parent.get("name") or [{}])[0].get("family", "Nguyễn"))
    born = today - timedelta(days=CHILD_AGE_DAYS)
    cccd = next(i["value"] for i in parent["identifier"] if i.get("system") == CCCD)
    province = str(cccd)[:3]
    card_province = station.code[:2]
    child: dict[str, Any] = {
        "resourceType": "Patient",
        "id": cid,
        "identifier": [
            {
                "use": "official",
                "system": CCCD,
                "value": make_cccd(province, sex, born.year, rng.randrange(1_000_000)),
            },
            {
                "system": BHYT,
                "value": f"TE1{card_province}{rng.randrange(10**10):010d}",
                "period": {"start": born.isoformat(), "end": f"{born.year + 6}-12-31"},
                "assigner": {"reference": f"Organization/{station.id}", "display": station.name},
            },
            {"use": "usual", "system": mrn_system(station.code), "value": f"BN-TE-{cid[:8]}"},
        ],
        "active": True,
        "name": [human_name(family, middle, given)],
        "gender": sex,
        "birthDate": born.isoformat(),
        "address": parent.get("address", []),
    }
    platform.update(child, "Patient", cid)
    return child


__all__ = ["FAMILY_SYSTEM", "PortalDemo", "ensure_portal_demo"]
