"""Health facilities (cơ sở khám bệnh, chữa bệnh) as FHIR Organization + Location, and a generator.

Why: every record names the facility that wrote it, referrals go up and down the levels
(commune station → regional centre → provincial → central hospital), and the EMR roll-out
(Circular 13/2025/TT-BYT: hospitals by 30 Sep 2025, others by 31 Dec 2026) is tracked per
facility. A facility is identified by its 5-character insurance code MA_CSKCB (QĐ 384/2019:
2-digit province code + 3 digits); the generated codes have that shape but are synthetic, not
the real insurance codes. Its parent authority (Bộ Y tế, a ministry such as Bộ Quốc phòng, or the
provincial Sở Y tế) is an Organization too, reached through ``Organization.partOf``.

The Organization is the legal/administrative body, the Location the physical site: FHIR keeps
them apart so a hospital with several campuses stays one organisation.
See: https://hl7.org/fhir/R4/organization.html and https://hl7.org/fhir/R4/location.html
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any

from sokhoe.mpi.identifiers import FACILITY
from sokhoe.registry.places import (
    Province,
    Ward,
    find_ward,
    province_by_code,
    provinces,
    resolve_province,
)

LEVEL_SYSTEM = "https://fhir.sokhoe.vn/CodeSystem/facility-level"
OWNERSHIP_SYSTEM = "https://fhir.sokhoe.vn/CodeSystem/facility-ownership"
EMR_STATUS_SYSTEM = "https://fhir.sokhoe.vn/CodeSystem/emr-status"
EMR_EXTENSION = "https://fhir.sokhoe.vn/StructureDefinition/emr-status"
PHARMACY_CODE = "https://fhir.sokhoe.vn/sid/ma-co-so-duoc"
"""Identifier system of a pharmacy's national code: the establishment code the national
prescription system and pharmaceutical database know it by (format unconfirmed: kept as
registered; the generated ones, ``NT`` + the facility code, are synthetic)."""
HEALTH_AUTHORITY = "https://fhir.sokhoe.vn/sid/health-authority"
"""Identifier system of the health authorities' short codes ("BYT", "SYT01"); ours, not official."""
_ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
_PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"

LEVELS = {
    "central": "Bệnh viện tuyến trung ương",
    "provincial": "Bệnh viện tuyến tỉnh",
    "regional": "Trung tâm y tế khu vực",
    "commune": "Trạm y tế xã",
    "private-clinic": "Phòng khám tư nhân",
    "pharmacy": "Nhà thuốc",
}
OWNERSHIPS = {
    "public": "Công lập",
    "ministry-sector": "Y tế bộ, ngành",
    "private": "Tư nhân",
}
EMR_STATUSES = {
    "none": "Chưa triển khai bệnh án điện tử",
    "partial": "Bệnh án điện tử tại một số khoa",
    "whole": "Bệnh án điện tử toàn cơ sở",
}
_MINISTRIES = {"BYT": "Bộ Y tế", "BQP": "Bộ Quốc phòng", "BCA": "Bộ Công an"}
_CENTRAL = [
    ("01", "Bệnh viện Bạch Mai", "public", "BYT"),
    ("01", "Bệnh viện Hữu nghị Việt Đức", "public", "BYT"),
    ("01", "Bệnh viện Nhi Trung ương", "public", "BYT"),
    ("01", "Bệnh viện Trung ương Quân đội 108", "ministry-sector", "BQP"),
    ("46", "Bệnh viện Trung ương Huế", "public", "BYT"),
    ("79", "Bệnh viện Chợ Rẫy", "public", "BYT"),
    ("79", "Bệnh viện Thống Nhất", "public", "BYT"),
    ("79", "Bệnh viện 30-4", "ministry-sector", "BCA"),
]
_CLINIC_NAMES = ["An Khang", "Tâm Đức", "Phúc An", "Thiện Nhân", "Minh Đức", "Hòa Hảo", "An Phúc"]
_PER_PROVINCE = {"private-clinic": 3, "pharmacy": 3}
# Share of each level with (whole, partial) EMR; the rest has none yet.
_EMR_SHARE = {
    "central": (0.9, 0.1),
    "provincial": (0.6, 0.35),
    "regional": (0.25, 0.45),
    "commune": (0.05, 0.2),
    "private-clinic": (0.2, 0.2),
    "pharmacy": (0.0, 0.0),
}


@dataclass(frozen=True, slots=True)
class Authority:
    """A body facilities report to: a ministry or a provincial health department (Sở Y tế)."""

    code: str
    """Short code: "BYT", "BQP", "BCA" or "SYT" + 2-digit province code."""
    name: str
    province_code: str | None = None

    @property
    def id(self) -> str:
        """Fixed resource id: these are real, seed-independent bodies."""
        return authority_id(self.code)


def authority_id(code: str) -> str:
    """The Organization id of the authority with this code ("SYT01" → "authority-syt01")."""
    return f"authority-{code.lower()}"


@dataclass(frozen=True, slots=True)
class Facility:
    """One health facility; ``level``, ``ownership`` and ``emr_status`` are codes of our systems."""

    id: str
    code: str
    """MA_CSKCB: 2-digit province code + 3 digits."""
    name: str
    level: str
    ownership: str
    authority: str
    """Code of the parent authority (see :class:`Authority`)."""
    province_code: str
    ward_code: str | None
    """The commune a station serves, or the ward where a larger facility stands."""
    emr_status: str = "none"
    emr_go_live: date | None = None

    @property
    def location_id(self) -> str:
        """The id of the facility's Location, derived so both resources travel together."""
        return str(uuid.uuid5(uuid.UUID(self.id), "location"))


@dataclass(frozen=True)  # no slots: the lookups below are cached_property
class FacilityRegistry:
    """The authorities and facilities of one generated network; deterministic in ``seed``."""

    seed: int
    authorities: tuple[Authority, ...]
    facilities: tuple[Facility, ...]

    @cached_property
    def _by_code(self) -> dict[str, Facility]:
        return {f.code: f for f in self.facilities}

    def by_code(self, code: str) -> Facility:
        """The facility with this MA_CSKCB; KeyError if unknown."""
        return self._by_code[code]

    @cached_property
    def _authorities(self) -> dict[str, Authority]:
        return {a.code: a for a in self.authorities}

    def authority(self, code: str) -> Authority:
        """The authority with this code; KeyError if unknown."""
        return self._authorities[code]

    def resources(self) -> list[dict[str, Any]]:
        """Authority Organizations, then each facility's Organization and Location."""
        out = [authority_to_fhir(a) for a in self.authorities]
        for f in self.facilities:
            out.extend(to_fhir(f, self.authority(f.authority)))
        return out


def _coding(system: str, code: str, display: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


def _address(province_code: str, ward_code: str | None) -> dict[str, Any]:
    province = province_by_code(province_code)
    ward = next((w for w in province.wards if w.code == ward_code), None)
    address: dict[str, Any] = {"use": "work", "type": "physical"}
    if ward is not None:
        address["text"] = f"{ward.name}, {province.name}"
        address["city"] = ward.name
    else:
        address["text"] = province.name
    address.update(state=province.name, country="VN")
    return address


def authority_to_fhir(a: Authority) -> dict[str, Any]:
    """The Organization of a ministry or Sở Y tế (HL7 organization type ``govt``)."""
    org: dict[str, Any] = {
        "resourceType": "Organization",
        "id": a.id,
        "identifier": [{"system": HEALTH_AUTHORITY, "value": a.code}],
        "active": True,
        "type": [{"coding": [_coding(_ORG_TYPE, "govt", "Government")]}],
        "name": a.name,
    }
    if a.province_code:
        org["address"] = [_address(a.province_code, None)]
    return org


def emr_extension(status: str, go_live: date | None) -> dict[str, Any]:
    """The EMR-status complex extension: sub-extensions ``status`` (Coding) and ``goLive``.

    R4 invariant ext-1 forbids a value and sub-extensions on the same extension, so the status
    is a sub-extension rather than a top-level valueCoding.
    See: https://hl7.org/fhir/R4/extensibility.html#ext-1
    """
    parts: list[dict[str, Any]] = [
        {"url": "status", "valueCoding": _coding(EMR_STATUS_SYSTEM, status, EMR_STATUSES[status])}
    ]
    if go_live is not None:
        parts.append({"url": "goLive", "valueDate": go_live.isoformat()})
    return {"url": EMR_EXTENSION, "extension": parts}


def to_fhir(f: Facility, authority: Authority) -> tuple[dict[str, Any], dict[str, Any]]:
    """The facility's Organization and Location."""
    address = _address(f.province_code, f.ward_code)
    org: dict[str, Any] = {
        "resourceType": "Organization",
        "id": f.id,
        "extension": [emr_extension(f.emr_status, f.emr_go_live)],
        "identifier": [{"use": "official", "system": FACILITY, "value": f.code}],
        "active": True,
        "type": [
            {
                "coding": [
                    _coding(LEVEL_SYSTEM, f.level, LEVELS[f.level]),
                    _coding(_ORG_TYPE, "prov", "Healthcare Provider"),
                ],
                "text": LEVELS[f.level],
            },
            {
                "coding": [_coding(OWNERSHIP_SYSTEM, f.ownership, OWNERSHIPS[f.ownership])],
                "text": OWNERSHIPS[f.ownership],
            },
        ],
        "name": f.name,
        "address": [address],
        "partOf": {"reference": f"Organization/{authority.id}", "display": authority.name},
    }
    if f.level == "pharmacy":
        org["identifier"].append({"system": PHARMACY_CODE, "value": f"NT{f.code}"})
    location: dict[str, Any] = {
        "resourceType": "Location",
        "id": f.location_id,
        "identifier": [{"system": FACILITY, "value": f.code}],
        "status": "active",
        "name": f.name,
        "mode": "instance",
        "address": address,
        "physicalType": {"coding": [_coding(_PHYSICAL_TYPE, "bu", "Building")]},
        "managingOrganization": {"reference": f"Organization/{f.id}", "display": f.name},
    }
    return org, location


def served_ward(organization: dict[str, Any] | None) -> str | None:
    """The ward or commune (statistics-office code) a commune health station (*trạm y tế xã,
    phường*) serves: an Organization of level ``commune`` whose address names the ward
    (``city``) in its province (``state``), as :func:`to_fhir` writes it. None for any other
    facility, or a station whose address names no current ward.

    The station keeps the personal health records of the ward's residents (the form of
    QĐ 831/QĐ-BYT is a commune station's), so its clinicians read them (``access/rights.py``).
    """
    org = organization or {}
    levels = {
        c.get("code")
        for t in org.get("type", [])
        for c in (t.get("coding") or [])
        if c.get("system") == LEVEL_SYSTEM
    }
    if "commune" not in levels:
        return None
    for address in org.get("address", []):
        if "end" in (address.get("period") or {}):
            continue
        province = resolve_province(str(address.get("state", "")))
        ward = find_ward(province, str(address.get("city", ""))) if province else None
        if ward is not None:
            return str(ward.code)
    return None


def bare_ward_name(name: str) -> str:
    """ "Phường Hoàn Kiếm" → "Hoàn Kiếm", for naming facilities after their place."""
    for prefix in ("Phường ", "Xã ", "Đặc khu "):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


class _Builder:
    """Numbers facilities per province and draws EMR status; one per generated network."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(f"facilities:{seed}")  # noqa: S311 - synthetic, must be seeded
        self.ns = uuid.uuid5(uuid.NAMESPACE_URL, f"https://fhir.sokhoe.vn/demo/{seed}")
        self.counters: dict[str, int] = {}
        self.facilities: list[Facility] = []

    def add(
        self, p: Province, level: str, name: str, ward: Ward, ownership: str, authority: str
    ) -> None:
        self.counters[p.code] = self.counters.get(p.code, 0) + 1
        code = f"{p.code}{self.counters[p.code]:03d}"
        whole, partial = _EMR_SHARE[level]
        r = self.rng.random()
        status = "whole" if r < whole else "partial" if r < whole + partial else "none"
        go_live = None
        if status != "none":
            go_live = date.fromordinal(date(2018, 1, 1).toordinal() + self.rng.randrange(2800))
        fid = str(uuid.uuid5(self.ns, f"org:{code}"))
        self.facilities.append(
            Facility(
                fid, code, name, level, ownership, authority, p.code, ward.code, status, go_live
            )
        )


def build_registry(seed: int) -> FacilityRegistry:
    """A plausible network for all 34 provinces (about 1,000 facilities); deterministic in seed.

    Per province: one provincial general hospital, 2–5 regional medical centres (trung tâm y tế
    khu vực, which replaced district centres in 2025), commune health stations for a sample of
    its communes (15 + one per 20 communes, not all 3,321), private clinics and pharmacies; plus
    a few central hospitals in Hà Nội, Huế and TP Hồ Chí Minh.
    """
    from sokhoe.demo.names import person_name  # lazy: sokhoe.demo imports this module

    b = _Builder(seed)
    rng = b.rng
    authorities = [Authority(code, name) for code, name in _MINISTRIES.items()]
    authorities += [
        Authority(f"SYT{p.code}", f"Sở Y tế {p.short_name}", p.code) for p in provinces()
    ]
    for pcode, name, ownership, authority in _CENTRAL:
        p = province_by_code(pcode)
        b.add(p, "central", name, rng.choice(p.wards), ownership, authority)
    for p in provinces():
        syt = f"SYT{p.code}"
        wards = list(p.wards)
        prefix = "" if p.short_name != p.name else "tỉnh "
        name = f"Bệnh viện Đa khoa {prefix}{p.short_name}"
        b.add(p, "provincial", name, rng.choice(wards), "public", syt)
        for w in rng.sample(wards, 2 + min(3, len(wards) // 50)):
            b.add(
                p, "regional", f"Trung tâm Y tế khu vực {bare_ward_name(w.name)}", w, "public", syt
            )
        communes = sorted(rng.sample(wards, min(len(wards), 15 + len(wards) // 20)), key=_code)
        for w in communes:
            station = f"Trạm Y tế {w.name[:1].lower()}{w.name[1:]}"
            b.add(p, "commune", station, w, "public", syt)
        for _ in range(_PER_PROVINCE["private-clinic"]):
            w = rng.choice(wards)
            clinic = f"Phòng khám Đa khoa {rng.choice(_CLINIC_NAMES)} {bare_ward_name(w.name)}"
            b.add(p, "private-clinic", clinic, w, "private", syt)
        for _ in range(_PER_PROVINCE["pharmacy"]):
            w = rng.choice(wards)
            owner = person_name(rng, "female")[2]
            b.add(p, "pharmacy", f"Nhà thuốc {owner} {bare_ward_name(w.name)}", w, "private", syt)
    return FacilityRegistry(seed, tuple(authorities), tuple(b.facilities))


def _code(w: Ward) -> str:
    return w.code
