"""The small code systems the platform uses besides ICD-10: a LOINC subset, CVX vaccines, and
sokhoe's own code systems.

LOINC is not mandated in Vietnam, but it is what connected labs and FHIR peers understand. Only
the codes the platform writes are listed, with their official long common names: the LOINC
licence allows using codes and names, not redistributing the full table here.
The platform's own tables (facility level, ownership and EMR status, practitioner role, drugs)
are imported from the modules that write them, so that they are typed once. CVX names are the
CDC short descriptions of the codes in the EPI (*tiêm chủng mở rộng*) schedule of the demo.
See: https://hl7.org/fhir/R4/loinc.html
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sokhoe.demo.clinical import CVX, DRUG, DRUGS, LOINC
from sokhoe.registry.facilities import (
    EMR_STATUS_SYSTEM,
    EMR_STATUSES,
    LEVEL_SYSTEM,
    LEVELS,
    OWNERSHIP_SYSTEM,
    OWNERSHIPS,
)
from sokhoe.registry.practitioners import ROLE_SYSTEM, ROLES

VALUE_SET_BASE = "https://fhir.sokhoe.vn/ValueSet"


@dataclass(frozen=True, slots=True)
class Concept:
    """A code with its display (the code system's own language) and an optional Vietnamese one."""

    code: str
    display: str
    display_vi: str | None = None


@dataclass(frozen=True)
class LocalCodeSystem:
    """A code system small enough to be listed in full in this module."""

    url: str
    name: str
    title: str
    version: str
    concepts: dict[str, Concept] = field(default_factory=dict)

    @property
    def value_set(self) -> str:
        """The ValueSet of all its codes: ``https://fhir.sokhoe.vn/ValueSet/<name>``."""
        return f"{VALUE_SET_BASE}/{self.name}"


def _system(url: str, name: str, title: str, version: str, rows: list[Concept]) -> LocalCodeSystem:
    return LocalCodeSystem(url, name, title, version, {c.code: c for c in rows})


LOINC_SUBSET = _system(
    LOINC,
    "loinc",
    "LOINC (subset used by sokhoe)",
    "2.77",
    [
        Concept("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "Glucose máu"),
        Concept("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "HbA1c"),
        Concept("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "Creatinin máu"),
        Concept("777-3", "Platelets [#/volume] in Blood by Automated count", "Số lượng tiểu cầu"),
        Concept("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "Cholesterol toàn phần"),
        Concept("8310-5", "Body temperature", "Nhiệt độ"),
        Concept("8867-4", "Heart rate", "Nhịp tim"),
        Concept("85354-9", "Blood pressure panel with all children optional", "Huyết áp"),
        Concept("8480-6", "Systolic blood pressure", "Huyết áp tâm thu"),
        Concept("8462-4", "Diastolic blood pressure", "Huyết áp tâm trương"),
        Concept("29463-7", "Body weight", "Cân nặng"),
        Concept("8302-2", "Body height", "Chiều cao"),
    ],
)

CVX_SUBSET = _system(
    CVX,
    "cvx",
    "CVX vaccines of the expanded programme on immunisation",
    "2024-01",
    [
        Concept("01", "DTP", "Vắc xin DPT"),
        Concept("04", "M/R", "Vắc xin sởi - rubella (MR)"),
        Concept("05", "measles", "Vắc xin sởi"),
        Concept("08", "Hep B, adolescent or pediatric", "Vắc xin viêm gan B"),
        Concept("10", "IPV", "Vắc xin bại liệt tiêm (IPV)"),
        Concept("19", "BCG", "Vắc xin BCG (phòng lao)"),
        Concept("39", "Japanese encephalitis SC", "Vắc xin viêm não Nhật Bản"),
        Concept("178", "Non-US bivalent oral polio vaccine", "Vắc xin bại liệt uống (OPV)"),
        Concept("198", "DTP-hepB-Hib Pentavalent Non-US", "Vắc xin 5 trong 1 DPT-VGB-Hib"),
    ],
)


def _vietnamese(url: str, name: str, title: str, table: dict[str, str]) -> LocalCodeSystem:
    """One of our own code systems, whose displays are Vietnamese from the start."""
    return _system(url, name, title, "1", [Concept(c, d, d) for c, d in table.items()])


FACILITY_LEVEL = _vietnamese(LEVEL_SYSTEM, "facility-level", "Tuyến (facility level)", LEVELS)
FACILITY_OWNERSHIP = _vietnamese(
    OWNERSHIP_SYSTEM, "facility-ownership", "Hình thức sở hữu (facility ownership)", OWNERSHIPS
)
EMR_STATUS = _vietnamese(
    EMR_STATUS_SYSTEM, "emr-status", "Triển khai bệnh án điện tử (EMR status)", EMR_STATUSES
)
PRACTITIONER_ROLE = _vietnamese(
    ROLE_SYSTEM, "practitioner-role", "Chức danh nghề nghiệp (practitioner role)", ROLES
)
DRUG_CODES = _system(
    DRUG,
    "drug",
    "Thuốc (sokhoe drug list)",
    "1",
    [Concept(code, display, display) for code, (display, _) in DRUGS.items()],
)

LOCAL_SYSTEMS: tuple[LocalCodeSystem, ...] = (
    LOINC_SUBSET,
    CVX_SUBSET,
    FACILITY_LEVEL,
    FACILITY_OWNERSHIP,
    EMR_STATUS,
    PRACTITIONER_ROLE,
    DRUG_CODES,
)
