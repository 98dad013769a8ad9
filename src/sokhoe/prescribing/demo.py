"""The prescriptions' demo (``make run``): a pharmacy near the demo commune station, its
pharmacist's account, and a few prescriptions issued at the station today to dispense.

The pharmacy is a registry ``Organization`` of level ``pharmacy`` in the station's province,
with a synthetic national pharmacy code (``DEMO-…``: the real format is unconfirmed). The
prescriptions are issued by the station's demo doctor through the same service as the visit
page and ``$prescribe`` — every check runs; a warning a regular's history raises (their
medicines from earlier visits) is answered as a doctor renewing a prescription would, and a
person the rules refuse (a young child without a weight) is left out. Re-running is safe: the
pharmacy and the account are made once, and a visit that already has a prescription gets no
second one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from argon2 import PasswordHasher
from sqlalchemy import Engine

from sokhoe.access.accounts import ROLE_SCOPES
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.passwords import STRONG
from sokhoe.access.principal import Principal
from sokhoe.clinic.records import find
from sokhoe.clinic.setup import add_staff
from sokhoe.errors import FhirError
from sokhoe.interop.claims.sources import VIETNAM_TZ, FacilityRef, encounters_on
from sokhoe.prescribing.catalogue import DRUG_SYSTEM
from sokhoe.prescribing.catalogue_store import publish_reference
from sokhoe.prescribing.code import CODE_SYSTEM
from sokhoe.prescribing.pharmacy import pharmacy_organization
from sokhoe.prescribing.prescribe import prescribe

log = logging.getLogger("sokhoe.prescribing.demo")

PHARMACIST: Final = ("ds.nhathuoc", "pharmacist", "DS. Ngô Thị Minh Tâm")
PRESCRIPTIONS: Final = 3
"""Prescriptions issued at the station each day (to the first people of its list whose history
is open to it: someone checked in by a number only needs their presence code first)."""
LINES: Final = (
    (("PARACETAMOL-500", 1, 3, 5), ("VITAMIN-C-500", 1, 1, 10)),
    (("AMLODIPIN-5", 1, 1, 30),),
    (("METFORMIN-500", 1, 2, 30), ("PARACETAMOL-500", 1, 2, 3)),
)
"""(catalogue code, per dose, times a day, days) per prescription, cycled."""
RENEWAL: Final = "Tái khám, kê tiếp thuốc đang dùng (dữ liệu demo)"


@dataclass(frozen=True)
class PharmacyDemo:
    pharmacy: str
    code: str
    prescriptions: tuple[str, ...]

    def sign_in_text(self, base_url: str, password: str) -> str:
        lines = [
            f"Pharmacy pages: {base_url}/pharmacy, password {password}:",
            f"  {self.pharmacy} ({self.code}): {PHARMACIST[0]:<15} {PHARMACIST[1]:<13} "
            f"{PHARMACIST[2]}",
        ]
        if self.prescriptions:
            lines.append(
                f"  Prescriptions issued today to dispense: {', '.join(self.prescriptions)}"
            )
        return "\n".join(lines)


def _pharmacy_code(station: FacilityRef) -> str:
    """A facility code in the station's province that demo facilities do not use."""
    return f"{station.code[:2]}9{station.code[-2:]}"


def _line(code: str, dose: int, times: int, days: int) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/unknown"},
        "medicationCodeableConcept": {"coding": [{"system": DRUG_SYSTEM, "code": code}]},
        "dosageInstruction": [
            {
                "text": f"Ngày {times} lần, mỗi lần {dose} viên, sau ăn",
                "timing": {"repeat": {"frequency": times, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": dose, "unit": "viên"}}],
            }
        ],
        "dispenseRequest": {"expectedSupplyDuration": {"value": days, "unit": "ngày"}},
    }


def _issued(platform: GuardedRepository, encounter_id: str) -> str | None:
    for request in find(
        platform, "MedicationRequest", [("encounter", f"Encounter/{encounter_id}")]
    ):
        ident = request.get("groupIdentifier") or {}
        if ident.get("system") == CODE_SYSTEM:
            return str(ident.get("value"))
    return None


def ensure_pharmacy_demo(
    platform: GuardedRepository,
    engine: Engine,
    password: str,
    station: FacilityRef,
    doctor: str,
    now: datetime,
    *,
    hasher: PasswordHasher = STRONG,
) -> PharmacyDemo:
    """The pharmacy, its pharmacist and today's prescriptions at ``station`` (see above)."""
    code = _pharmacy_code(station)
    name = f"Nhà thuốc Minh Tâm (gần {station.name})"
    oid = f"demo-pharmacy-{code}"
    platform.update(pharmacy_organization(oid, code, name, f"DEMO-NT-{code}"), "Organization", oid)
    add_staff(engine, code, password, [PHARMACIST], hasher=hasher)
    publish_reference(platform)
    prescriber = platform.for_caller(
        Principal("staff", doctor, doctor, "doctor", station.code, scopes=ROLE_SCOPES["doctor"])
    )
    codes: list[str] = []
    today = now.astimezone(VIETNAM_TZ).date()  # the station's day, as its list is made
    for visit in encounters_on(platform, station, today):
        if len(codes) == PRESCRIPTIONS:
            break
        n = len(codes)
        eid = str(visit["id"])
        done = _issued(platform, eid)
        if done is not None:
            codes.append(done)
            continue
        patient = str((visit.get("subject") or {}).get("reference", "")).split("/")[-1]
        lines = [(_line(*spec), RENEWAL) for spec in LINES[n % len(LINES)]]
        try:
            issued = prescribe(
                prescriber, patient_id=patient, encounter_id=eid, lines=lines, now=now
            )
        except FhirError as refused:  # the rules said no (a young child without a weight…)
            log.info("demo prescription for Encounter/%s not issued: %s", eid, refused)
            continue
        codes.append(issued.code)
    return PharmacyDemo(name, code, tuple(codes))


__all__ = ["PHARMACIST", "PharmacyDemo", "ensure_pharmacy_demo"]
