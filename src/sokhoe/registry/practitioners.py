"""Health workers (nhân viên y tế) as FHIR Practitioner + PractitionerRole, and a generator.

Why: a record says who treated the patient, and only a licensed worker may sign one. The person
(Practitioner) carries the practising-certificate number (chứng chỉ hành nghề, CCHN; since the
2023 Law on Medical Examination and Treatment, giấy phép hành nghề) issued by the Ministry or a
provincial health department; the job at one facility (PractitionerRole) says what they do
there, so a doctor working at two facilities has two roles and one certificate.

The certificate number format used here, ``NNNNNN/XXX-CCHN`` (serial / issuer abbreviation),
is what printed certificates commonly show; it is unconfirmed against the official wording, so
nothing validates it strictly.
See: https://hl7.org/fhir/R4/practitioner.html and https://hl7.org/fhir/R4/practitionerrole.html
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

from sokhoe.mpi.identifiers import PRACTITIONER
from sokhoe.registry.facilities import Authority, Facility, FacilityRegistry
from sokhoe.registry.places import province_by_code
from sokhoe.search.index import normalize_string

ROLE_SYSTEM = "https://fhir.sokhoe.vn/CodeSystem/practitioner-role"
ROLES = {
    "doctor": "Bác sĩ",
    "nurse": "Điều dưỡng",
    "midwife": "Hộ sinh",
    "pharmacist": "Dược sĩ",
}
_TITLE = {"doctor": "BS.", "nurse": "ĐD.", "midwife": "HS.", "pharmacist": "DS."}
_STAFF: dict[str, tuple[tuple[str, int], ...]] = {
    "central": (("doctor", 4), ("nurse", 2)),
    "provincial": (("doctor", 3), ("nurse", 2), ("pharmacist", 1)),
    "regional": (("doctor", 2), ("nurse", 1)),
    "commune": (("doctor", 1), ("midwife", 1)),
    "private-clinic": (("doctor", 1),),
    "pharmacy": (("pharmacist", 1),),
}
_SPECIALTIES = [
    "Nội khoa",
    "Ngoại khoa",
    "Nhi khoa",
    "Sản phụ khoa",
    "Hồi sức cấp cứu",
    "Y học gia đình",
]


@dataclass(frozen=True, slots=True)
class HealthWorker:
    """One licensed worker with their single job in the generated network."""

    id: str
    cchn: str
    """Practising-certificate number (format unconfirmed, see the module docstring)."""
    family: str
    middle: str
    given: str
    sex: str
    role: str
    facility_code: str
    issuer: str
    """Code of the authority that issued the certificate (Bộ Y tế or the Sở Y tế)."""
    specialty: str | None = None

    @property
    def role_id(self) -> str:
        """The id of the PractitionerRole, derived so both resources travel together."""
        return str(uuid.uuid5(uuid.UUID(self.id), "role"))


def cchn_number(serial: int, issuer: str) -> str:
    """A certificate number: 6-digit serial / issuer abbreviation + "-CCHN" ("000123/HN-CCHN").

    The issuer abbreviation is "BYT" for the Ministry, otherwise the initials of the province's
    romanised name ("SYT79" → "HCM").
    """
    if not issuer.startswith("SYT"):
        return f"{serial:06d}/{issuer}-CCHN"
    words = normalize_string(province_by_code(issuer[3:]).short_name).split()
    initials = "".join(word[0] for word in words) if len(words) > 1 else words[0][:3]
    return f"{serial:06d}/{initials.upper()}-CCHN"


def to_fhir(
    w: HealthWorker, facility: Facility, issuer: Authority
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The worker's Practitioner and their PractitionerRole at ``facility``."""
    role = {"system": ROLE_SYSTEM, "code": w.role, "display": ROLES[w.role]}
    practitioner: dict[str, Any] = {
        "resourceType": "Practitioner",
        "id": w.id,
        "identifier": [{"use": "official", "system": PRACTITIONER, "value": w.cchn}],
        "active": True,
        "name": [
            {
                "use": "official",
                "text": f"{w.family} {w.middle} {w.given}",
                "family": w.family,
                "given": [w.middle, w.given],
                "prefix": [_TITLE[w.role]],
            }
        ],
        "gender": w.sex,
        "qualification": [
            {
                "identifier": [{"system": PRACTITIONER, "value": w.cchn}],
                "code": {"coding": [role], "text": f"Chứng chỉ hành nghề {ROLES[w.role].lower()}"},
                "issuer": {"reference": f"Organization/{issuer.id}", "display": issuer.name},
            }
        ],
    }
    practitioner_role: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "id": w.role_id,
        "active": True,
        "practitioner": {
            "reference": f"Practitioner/{w.id}",
            "display": practitioner["name"][0]["text"],
        },
        "organization": {"reference": f"Organization/{facility.id}", "display": facility.name},
        "code": [{"coding": [role], "text": ROLES[w.role]}],
        "location": [{"reference": f"Location/{facility.location_id}", "display": facility.name}],
    }
    if w.specialty:
        practitioner_role["specialty"] = [{"text": w.specialty}]
    return practitioner, practitioner_role


@dataclass(frozen=True, slots=True)
class Workforce:
    """All generated health workers of a facility network."""

    registry: FacilityRegistry
    workers: tuple[HealthWorker, ...]

    def at(self, facility_code: str) -> list[HealthWorker]:
        """The workers of one facility, in generation order."""
        return [w for w in self.workers if w.facility_code == facility_code]

    def resources(self) -> list[dict[str, Any]]:
        """Each worker's Practitioner then PractitionerRole."""
        reg = self.registry
        out: list[dict[str, Any]] = []
        for w in self.workers:
            out.extend(to_fhir(w, reg.by_code(w.facility_code), reg.authority(w.issuer)))
        return out


def build_workforce(registry: FacilityRegistry) -> Workforce:
    """Staff every facility by level (a commune station: a doctor and a midwife; …).

    Deterministic in ``registry.seed``. Certificates of central-hospital staff are issued by the
    Ministry (BYT), all others by the provincial health department.
    """
    from sokhoe.demo.names import person_name  # lazy: sokhoe.demo imports this module

    rng = random.Random(f"practitioners:{registry.seed}")  # noqa: S311 - synthetic, seeded
    ns = uuid.uuid5(uuid.NAMESPACE_URL, f"https://fhir.sokhoe.vn/demo/{registry.seed}")
    workers: list[HealthWorker] = []
    for f in registry.facilities:
        issuer = "BYT" if f.level == "central" else f"SYT{f.province_code}"
        for role, count in _STAFF[f.level]:
            for _ in range(count):
                n = len(workers) + 1
                female = {"nurse": 0.8, "midwife": 1.0}.get(role, 0.55)
                sex = "female" if rng.random() < female else "male"
                family, middle, given = person_name(rng, sex)
                specialty = None
                if role == "doctor" and f.level in ("central", "provincial", "regional"):
                    specialty = rng.choice(_SPECIALTIES)
                workers.append(
                    HealthWorker(
                        str(uuid.uuid5(ns, f"practitioner:{n}")),
                        cchn_number(n, issuer),
                        family,
                        middle,
                        given,
                        sex,
                        role,
                        f.code,
                        issuer,
                        specialty,
                    )
                )
    return Workforce(registry, tuple(workers))
