"""Health facilities of every level, and their practitioners, for the demo population.

Per province: one provincial general hospital, a few regional medical centres (trung tâm y tế
khu vực, which replaced district centres in 2025), commune health stations, private clinics and
pharmacies; plus a handful of central hospitals. Codes follow the 5-character MA_CSKCB shape
(2-digit province code + 3 digits); they are synthetic, not the real insurance codes.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from sokhoe.demo.names import human_name, person_name
from sokhoe.mpi.identifiers import FACILITY, PRACTITIONER
from sokhoe.registry.places import Province, provinces

LEVEL_SYSTEM = "https://fhir.sokhoe.vn/CodeSystem/facility-level"
LEVELS = {
    "central": "Bệnh viện tuyến trung ương",
    "provincial": "Bệnh viện tuyến tỉnh",
    "regional": "Trung tâm y tế khu vực",
    "commune": "Trạm y tế xã",
    "private-clinic": "Phòng khám tư nhân",
    "pharmacy": "Nhà thuốc",
}
_CENTRAL = [
    ("01", "Bệnh viện Bạch Mai"),
    ("01", "Bệnh viện Hữu nghị Việt Đức"),
    ("01", "Bệnh viện Nhi Trung ương"),
    ("46", "Bệnh viện Trung ương Huế"),
    ("79", "Bệnh viện Chợ Rẫy"),
]
_PER_PROVINCE = {"regional": 4, "commune": 10, "private-clinic": 2, "pharmacy": 2}
_DOCTORS = {"central": 4, "provincial": 3, "regional": 2, "commune": 1, "private-clinic": 1}


@dataclass(slots=True)
class Facility:
    id: str
    code: str
    name: str
    level: str
    province: str
    practitioners: list[str] = field(default_factory=list)


@dataclass(slots=True)
class FacilityIndex:
    """All facilities, by province and level, for picking where a visit happens."""

    by_province: dict[str, dict[str, list[Facility]]]
    central: list[Facility]
    resources: list[dict[str, Any]]
    """Organization and Practitioner resources, in a stable order."""


def _org(f: Facility, address_state: str) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": f.id,
        "identifier": [{"system": FACILITY, "value": f.code}],
        "active": True,
        "type": [
            {
                "coding": [{"system": LEVEL_SYSTEM, "code": f.level, "display": LEVELS[f.level]}],
                "text": LEVELS[f.level],
            }
        ],
        "name": f.name,
        "address": [{"state": address_state, "country": "VN"}],
    }


def build_facilities(seed: int) -> FacilityIndex:
    """Every facility and practitioner; deterministic in ``seed``."""
    rng = random.Random(f"facilities:{seed}")
    ns = uuid.uuid5(uuid.NAMESPACE_URL, f"https://fhir.sokhoe.vn/demo/{seed}")
    by_province: dict[str, dict[str, list[Facility]]] = {}
    central: list[Facility] = []
    resources: list[dict[str, Any]] = []
    counters: dict[str, int] = {}
    doctor_no = 0

    def add(p: Province, level: str, name: str) -> Facility:
        nonlocal doctor_no
        counters[p.code] = counters.get(p.code, 0) + 1
        code = f"{p.code}{counters[p.code]:03d}"
        f = Facility(str(uuid.uuid5(ns, f"org:{code}")), code, name, level, p.code)
        resources.append(_org(f, p.name))
        for _ in range(_DOCTORS.get(level, 0)):
            doctor_no += 1
            sex = "female" if rng.random() < 0.55 else "male"
            pid = str(uuid.uuid5(ns, f"practitioner:{doctor_no}"))
            f.practitioners.append(pid)
            resources.append(
                {
                    "resourceType": "Practitioner",
                    "id": pid,
                    "identifier": [{"system": PRACTITIONER, "value": f"{doctor_no:06d}/BYT-CCHN"}],
                    "active": True,
                    "name": [{**human_name(*person_name(rng, sex)), "prefix": ["BS."]}],
                    "gender": sex,
                    "qualification": [
                        {
                            "code": {"text": "Bác sĩ"},
                            "issuer": {"reference": f"Organization/{f.id}", "display": f.name},
                        }
                    ],
                }
            )
        if level == "central":
            central.append(f)
        else:
            by_province.setdefault(p.code, {}).setdefault(level, []).append(f)
        return f

    all_provinces = provinces()
    by_code = {p.code: p for p in all_provinces}
    for pcode, name in _CENTRAL:
        add(by_code[pcode], "central", name)
    for p in all_provinces:
        short = p.name.removeprefix("Thành phố ")
        add(p, "provincial", f"Bệnh viện Đa khoa {'tỉnh ' if short == p.name else ''}{short}")
        wards = list(p.wards)
        picks = rng.sample(wards, min(len(wards), _PER_PROVINCE["commune"]))
        for w in rng.sample(wards, min(len(wards), _PER_PROVINCE["regional"])):
            add(p, "regional", f"Trung tâm Y tế khu vực {_bare(w.name)}")
        for w in picks:
            add(p, "commune", f"Trạm Y tế {w.name[:1].lower()}{w.name[1:]}")
        for i in range(_PER_PROVINCE["private-clinic"]):
            fam = person_name(rng, "male")
            add(p, "private-clinic", f"Phòng khám Đa khoa {fam[0]} {fam[2]} {i + 1}")
        for _ in range(_PER_PROVINCE["pharmacy"]):
            fam = person_name(rng, "female")
            add(p, "pharmacy", f"Nhà thuốc {fam[2]} {_bare(rng.choice(wards).name)}")
    return FacilityIndex(by_province, central, resources)


def _bare(ward_name: str) -> str:
    for prefix in ("Phường ", "Xã ", "Đặc khu "):
        if ward_name.startswith(prefix):
            return ward_name[len(prefix) :]
    return ward_name
