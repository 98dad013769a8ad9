"""The prescribing tests' world: the clinic world (station A without beds, hospitals B and C)
with C registered as a provincial hospital (inpatient beds), part of the drug catalogue, and a
way to make a person with a visit at a facility."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sokhoe.access.accounts import ROLE_SCOPES
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.principal import Principal
from sokhoe.fhir.resources import format_instant, new_id
from sokhoe.prescribing import import_catalogue, reference_entries
from sokhoe.prescribing.catalogue import DRUG_SYSTEM, REFERENCE_SOURCE
from sokhoe.registry.facilities import LEVEL_SYSTEM
from sokhoe.store.sql import SqlStore
from tests.clinic.clinic_world import A, B, C, World, make_world

CODES = (
    "PARACETAMOL-500",
    "AMLODIPIN-5",
    "ENALAPRIL-5",
    "SPIRONOLACTON-25",
    "WARFARIN-5",
    "IBUPROFEN-400",
    "MORPHIN-10",
    "DIAZEPAM-5",
    "CLARITHROMYCIN-500",
    "SIMVASTATIN-20",
)
"""The catalogue entries the tests prescribe (publishing all 348 costs seconds per world)."""


@dataclass
class RxWorld:
    world: World

    @property
    def platform(self) -> GuardedRepository:
        return self.world.platform

    def doctor(self, username: str, facility: str, role: str = "doctor") -> GuardedRepository:
        who = Principal(
            "staff", username, f"BS. {username}", role, facility, scopes=ROLE_SCOPES[role]
        )
        return self.platform.for_caller(who)

    def person(
        self, facility: str, name: str, born: str = "1970-05-01", **extra: Any
    ) -> tuple[str, str]:
        """A person known at ``facility`` (platform data: a proven relationship) with a visit
        there today; (Patient id, Encounter id)."""
        pid, eid = new_id(), new_id()
        self.platform.update(
            {
                "resourceType": "Patient",
                "id": pid,
                "name": [{"text": name}],
                "gender": "female",
                "birthDate": born,
                **extra,
            },
            "Patient",
            pid,
        )
        self.platform.update(self.visit(pid, eid, facility), "Encounter", eid)
        return pid, eid

    def visit(self, pid: str, eid: str, facility: str) -> dict[str, Any]:
        return {
            "resourceType": "Encounter",
            "id": eid,
            "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{pid}"},
            "period": {"start": format_instant(datetime.now(UTC))},
            "serviceProvider": {"reference": f"Organization/org-{facility}"},
        }

    def diagnose(self, pid: str, eid: str, icd10: str) -> None:
        cid = new_id()
        self.platform.update(
            {
                "resourceType": "Condition",
                "id": cid,
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": icd10}]},
                "subject": {"reference": f"Patient/{pid}"},
                "encounter": {"reference": f"Encounter/{eid}"},
            },
            "Condition",
            cid,
        )
        enc = dict(self.platform.read("Encounter", eid).content or {})
        enc["diagnosis"] = [
            *enc.get("diagnosis", []),
            {"condition": {"reference": f"Condition/{cid}"}},
        ]
        self.platform.update(enc, "Encounter", eid)


def line(
    code: str, per_dose: float = 1, per_day: int = 3, days: int = 5, **extra: Any
) -> dict[str, Any]:
    """A prescription line as a connected system writes it."""
    return {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/x"},
        "medicationCodeableConcept": {"coding": [{"system": DRUG_SYSTEM, "code": code}]},
        "dosageInstruction": [
            {
                "text": f"Uống {per_dose} viên/lần, {per_day} lần/ngày",
                "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": per_dose, "unit": "viên"}}],
            }
        ],
        "dispenseRequest": {"expectedSupplyDuration": {"value": days, "unit": "ngày"}},
        **extra,
    }


def parameters(
    pid: str,
    eid: str,
    lines: list[dict[str, Any]],
    overrides: dict[int, str] | None = None,
    **more: Any,
) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": "patient", "valueReference": {"reference": f"Patient/{pid}"}},
        {"name": "encounter", "valueReference": {"reference": f"Encounter/{eid}"}},
    ]
    for n, item in enumerate(lines):
        parts: list[dict[str, Any]] = [{"name": "resource", "resource": item}]
        if overrides and n in overrides:
            parts.append({"name": "override", "valueString": overrides[n]})
        params.append({"name": "line", "part": parts})
    for name, value in more.items():
        params.append({"name": name.replace("_", "-"), **value})
    return {"resourceType": "Parameters", "parameter": params}


def make_rx_world(folder: Path, base_url: str, store: SqlStore | None = None) -> RxWorld:
    world = make_world(folder, base_url, store)
    repo = world.platform
    entries = [e for e in reference_entries() if e.code in CODES]
    assert len(entries) == len(CODES)
    import_catalogue(repo, REFERENCE_SOURCE, entries, label="test subset")
    hospital = dict(repo.read("Organization", f"org-{C}").content or {})
    hospital["type"] = [{"coding": [{"system": LEVEL_SYSTEM, "code": "provincial"}]}]
    repo.update(hospital, "Organization", f"org-{C}")
    return RxWorld(world)


def years_ago(years: int, days: int = 0) -> str:
    today = date.today()
    return (today.replace(year=today.year - years) - timedelta(days=days)).isoformat()


__all__ = ["CODES", "A", "B", "C", "Decimal", "RxWorld", "line", "make_rx_world", "parameters"]
