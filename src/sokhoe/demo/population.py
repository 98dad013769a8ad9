"""People: demographics, identifiers and the FHIR Patient of one synthetic person.

Each person is drawn from its own ``random.Random`` derived from (seed, index), so person 17 is
the same whether 100 or 1,000,000 people are generated.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date
from itertools import accumulate
from typing import Any

from sokhoe.demo.facilities import Facility, FacilityIndex
from sokhoe.demo.names import human_name, person_name
from sokhoe.ig.urls import PATIENT as CORE_PATIENT
from sokhoe.mpi.identifiers import BHYT, CCCD, CMND, OLD_PROVINCE_CODES, make_cccd, mrn_system
from sokhoe.registry.places import Province, Ward, provinces

REFERENCE_DATE = date(2026, 6, 30)
""""Today" of the demo: fixed, so output never depends on the clock."""
REF_ORD = REFERENCE_DATE.toordinal()

_AGE_BANDS = [  # (first age, share %) of 5-year bands, roughly Vietnam 2024
    (0, 7.5),
    (5, 8.0),
    (10, 7.8),
    (15, 7.0),
    (20, 7.0),
    (25, 7.5),
    (30, 8.2),
    (35, 8.0),
    (40, 7.3),
    (45, 6.8),
    (50, 6.0),
    (55, 5.3),
    (60, 4.5),
    (65, 3.5),
    (70, 2.3),
    (75, 1.4),
    (80, 0.9),
    (85, 0.8),
]
_AGE_CUM = list(accumulate(w for _, w in _AGE_BANDS))
_AGE_START = [a for a, _ in _AGE_BANDS]
_BIG = {"01": 8.5, "79": 9.5, "31": 4.0, "48": 3.0, "92": 3.0, "75": 4.5, "38": 3.6, "40": 3.5}
"""Rough population weights of the largest provinces; the rest weigh 2.3 (merged units)."""
_OLD_CODES = sorted(OLD_PROVINCE_CODES)
_PHONE_PREFIX = ["03", "05", "07", "08", "09"]
_STREETS = (
    "Lê Lợi, Trần Hưng Đạo, Nguyễn Huệ, Hai Bà Trưng, Lý Thường Kiệt, Quang Trung, Hùng Vương, "
    "Nguyễn Trãi, Điện Biên Phủ, Lê Duẩn, Phan Đình Phùng, Võ Thị Sáu, Nguyễn Du, Bà Triệu"
).split(", ")


@dataclass(slots=True)
class Person:
    index: int
    id: str
    rng: random.Random
    sex: str
    birth_ord: int
    province: Province
    ward: Ward
    home: Facility
    """The commune station or clinic where the person's insurance card is registered."""
    local: dict[str, list[Facility]]

    @property
    def age(self) -> int:
        return (REF_ORD - self.birth_ord) // 365


@dataclass(slots=True)
class Population:
    seed: int
    namespace: uuid.UUID
    facilities: FacilityIndex
    provinces: list[Province]
    province_cum: list[float]


def population(seed: int, facilities: FacilityIndex) -> Population:
    ps = provinces()
    cum = list(accumulate(_BIG.get(p.code, 2.3) for p in ps))
    ns = uuid.uuid5(uuid.NAMESPACE_URL, f"https://fhir.sokhoe.vn/demo/{seed}")
    return Population(seed, ns, facilities, ps, cum)


def _bhyt_group(rng: random.Random, age: int) -> tuple[str, int]:
    """(beneficiary group, benefit level) by age; shares are rough."""
    if age < 6:
        return "TE", 1
    if age < 18:
        return "HS", 4
    r = rng.random()
    if age < 23 and r < 0.5:
        return "SV", 4
    if age >= 60:
        return ("HT", 3) if r < 0.4 else ("CC", 1) if r < 0.45 else ("GD", 4)
    if r < 0.45:
        return "DN", 4
    if r < 0.55:
        return "HC", 4
    if r < 0.63:
        return "HN", 1
    return "GD", 4


def make_person(pop: Population, index: int) -> tuple[Person, dict[str, Any]]:
    """The person with this index and their Patient resource."""
    rng = random.Random(pop.seed * 10_000_019 + index)
    sex = "female" if rng.random() < 0.505 else "male"
    band = rng.choices(_AGE_START, cum_weights=_AGE_CUM)[0]
    age_days = int((band + rng.random() * 5) * 365.25)
    birth_ord = REF_ORD - age_days
    birth = date.fromordinal(birth_ord)
    province = rng.choices(pop.provinces, cum_weights=pop.province_cum)[0]
    ward = rng.choice(province.wards)
    local = pop.facilities.by_province[province.code]
    communes = local["commune"]
    home = communes[int(ward.code) % len(communes)] if rng.random() < 0.85 else local["regional"][0]
    pid = str(uuid.uuid5(pop.namespace, f"patient:{index}"))
    person = Person(index, pid, rng, sex, birth_ord, province, ward, home, local)
    age = person.age

    birth_prov = ("0" + province.code) if rng.random() < 0.85 else "0" + rng.choice(_OLD_CODES)
    serial = rng.randrange(1_000_000)
    identifiers: list[dict[str, Any]] = [
        {"use": "official", "system": CCCD, "value": make_cccd(birth_prov, sex, birth.year, serial)}
    ]
    if birth.year < 2007 and rng.random() < 0.3:  # CMND issuance ended in 2021
        identifiers.append({"use": "old", "system": CMND, "value": f"{rng.randrange(10**9):09d}"})
    if rng.random() < 0.92:
        group, level = _bhyt_group(rng, age)
        card = f"{group}{level}{province.code}{rng.randrange(10**10):010d}"
        identifiers.append(
            {
                "system": BHYT,
                "value": card,
                "period": {"start": "2026-01-01", "end": "2026-12-31"},
                "assigner": {"reference": f"Organization/{home.id}", "display": home.name},
            }
        )
    identifiers.append({"use": "usual", "system": mrn_system(home.code), "value": f"BN{index:08d}"})
    family, middle, given = person_name(rng, sex)
    if ward.name.startswith("Phường"):
        line = f"Số {rng.randint(1, 299)} đường {rng.choice(_STREETS)}"
    else:
        line = f"Thôn {rng.randint(1, 15)}"
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "meta": {"profile": [CORE_PATIENT]},  # a vendor's record should claim it: so do ours
        "identifier": identifiers,
        "active": True,
        "name": [human_name(family, middle, given)],
        "gender": sex,
        "birthDate": birth.isoformat(),
        "address": [
            {
                "use": "home",
                "line": [line],
                "city": ward.name,
                "state": province.name,
                "country": "VN",
            }
        ],
        "communication": [
            {
                "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "vi"}]},
                "preferred": True,
            }
        ],
        "managingOrganization": {"reference": f"Organization/{home.id}", "display": home.name},
    }
    if age >= 12:
        phone = f"{rng.choice(_PHONE_PREFIX)}{rng.randrange(10**8):08d}"
        patient["telecom"] = [{"system": "phone", "value": phone, "use": "mobile"}]
    return person, patient
